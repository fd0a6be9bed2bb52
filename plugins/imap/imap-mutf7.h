/* imap-mutf7.h - modified UTF-7 mailbox names (RFC 3501 5.1.3) <-> UTF-8.
 *
 * Without UTF8=ACCEPT, mailbox names on the wire are modified UTF-7:
 * printable US-ASCII but '&' stands for itself, "&-" is '&', and anything
 * else is UTF-16 in a modified BASE64 (',' for '/', no padding) between
 * '&' and '-'. The mailstore keeps names in UTF-8.
 *
 * Decoding is strict: a name has exactly one encoding, so everything an
 * encoder would not produce is refused, or two names could reach one
 * mailbox: printable ASCII or '&' inside a shift, a shift right after
 * another, an unterminated or empty shift, padding bits that are not zero
 * or a whole spare BASE64 character, unpaired UTF-16 surrogates, U+0000,
 * and raw control characters or 8-bit octets. */
#ifndef IMAP_MUTF7_H
#define IMAP_MUTF7_H

#include <moonpost/common.h>

/* Appends the UTF-8 form of len bytes of modified UTF-7 to out. False,
 * with out as it was and *error_r (static) saying why, on anything but
 * the canonical encoding. */
bool imap_mutf7_to_utf8(const char *in, size_t len, struct mp_buf *out,
			const char **error_r);
/* Appends the modified UTF-7 form of len bytes of UTF-8 to out. False,
 * with out as it was, when in is not valid UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) or holds U+0000. */
bool imap_utf8_to_mutf7(const char *in, size_t len, struct mp_buf *out,
			const char **error_r);
/* True when a UTF-8 name differs from its modified UTF-7 form: it holds
 * '&' or anything but printable US-ASCII. */
bool imap_utf8_needs_mutf7(const char *in, size_t len);

#endif
