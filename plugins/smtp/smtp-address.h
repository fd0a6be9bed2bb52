/* smtp-address.h - RFC 5321 paths and mailboxes: checked, made canonical.
 *
 * The grammar is RFC 5321 4.1.2 with RFC 6531's UTF-8 (well-formed UTF-8
 * in atoms, quoted strings and domain labels). Address literals are
 * checked with inet_pton(); general address literals ("tag:...") are
 * refused, as nothing could deliver to them. Pure, like the parser. */
#ifndef SMTP_ADDRESS_H
#define SMTP_ADDRESS_H

#include "smtp-parser.h"

enum smtp_path_flags {
	SMTP_PATH_ALLOW_NULL = 1 << 0,       /* "<>" (MAIL FROM) */
	SMTP_PATH_ALLOW_POSTMASTER = 1 << 1, /* "<Postmaster>" (RCPT TO) */
};

enum smtp_addr_status {
	SMTP_ADDR_OK = 0,
	SMTP_ADDR_SYNTAX,   /* not a path or mailbox */
	SMTP_ADDR_TOO_LONG, /* a local part, domain or path over its limit */
};

/* Parses the path that starts at s[0] ('<') and ends at the matching '>';
 * what follows is not looked at. *used_r gets the bytes the path took.
 * path is cleared first; its views point into s. */
enum smtp_addr_status smtp_address_parse_path(const char *s, size_t len,
					      unsigned flags,
					      const struct smtp_limits *lim,
					      struct smtp_path *path,
					      size_t *used_r);
/* Parses all of s as a bare mailbox (local@domain, no brackets, no route),
 * as a script or the config may give one; the path limit applies as if it
 * were bracketed. Fills path like smtp_address_parse_path(). */
enum smtp_addr_status smtp_address_parse_mailbox(const char *s, size_t len,
						 const struct smtp_limits *lim,
						 struct smtp_path *path);
/* True when s looks enough like a host name or address literal for EHLO
 * or HELO: letters, digits, '-', '.', '_' and UTF-8, or "[...]" around
 * printable characters. Loose on purpose, like Postfix without
 * reject_invalid_helo_hostname: the argument is only recorded. */
bool smtp_address_helo_valid(const char *s, size_t len);
/* Length of the well-formed UTF-8 sequence of 2 to 4 bytes at s, or 0
 * (overlong forms, surrogates and values past U+10FFFF are malformed). */
size_t smtp_address_utf8_seq(const char *s, size_t len);
/* Decodes the xtext in into out (size bytes) and adds a NUL; *len_r gets
 * the decoded length. False on anything but xtext, or when it does not
 * fit. The parser's AUTH= uses it; smtp_xtext_decode() grows a buffer. */
bool smtp_xtext_decode_buf(const char *in, size_t len, char *out, size_t size,
			   size_t *len_r);
/* True when s holds only well-formed UTF-8 and no control characters
 * but HTAB. */
bool smtp_address_text_valid(const char *s, size_t len);

#endif
