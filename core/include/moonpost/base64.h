/* base64.h - strict RFC 4648 base64, as SASL and SCRAM carry it.
 *
 * Decoding accepts only the canonical form: the standard alphabet, '='
 * padding to a multiple of four, zero bits after the last byte, and no
 * whitespace (a SASL response is a single token, RFC 4422 3.1). */
#ifndef MOONPOST_BASE64_H
#define MOONPOST_BASE64_H

#include <moonpost/common.h>

/* Characters that len bytes take once encoded, padding included. */
MP_API size_t mp_base64_encoded_len(size_t len);
/* Appends the padded base64 form of len bytes of in to out. */
MP_API void mp_base64_encode(const void *in, size_t len, struct mp_buf *out);
/* Appends the bytes that len characters of in encode to out. False, with
 * out as it was and *error_r (static; error_r may be NULL) set, for
 * anything but canonical base64. Empty input is valid and adds nothing. */
MP_API bool mp_base64_decode(const char *in, size_t len, struct mp_buf *out,
			     const char **error_r);

#endif
