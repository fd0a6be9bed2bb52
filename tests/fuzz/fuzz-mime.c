/* fuzz-mime.c - the MIME parser and the index blob against any bytes.
 *
 * Bit 0 of the first byte picks the target.
 *
 * Parser (0): bit 1 picks tiny limits, so that every limit is reached; the
 * second byte seeds the split points; the rest is the message. Parsed whole
 * and in chunks, it must give the same blob; the blob must read back and
 * serialize to itself. The header iterator, the RFC 2047 decoder (which
 * must give valid UTF-8) and the body decoders (whole = split) run on the
 * same bytes.
 *
 * Blob (1): the next 8 bytes are the message size (little-endian), the rest
 * a blob. Reading it must fail cleanly or give a message that serializes
 * to exactly that blob. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/mime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input the decoders see: enough to find their bugs, not so much that a
 * run is slow. */
#define FUZZ_DECODE_MAX 4096

static struct mp_mime_message *
parse(const uint8_t *d, size_t len, const struct mp_mime_limits *lim,
      unsigned seed)
{
	struct mp_mime_parser *p = mp_mime_parser_new(lim);

	for (size_t off = 0; off < len;) {
		size_t n = seed == 0 ? len - off : 1 + (seed * 7 + off) % 97;

		if (n > len - off)
			n = len - off;
		mp_mime_parser_feed(p, d + off, n);
		off += n;
		seed = seed * 1103515245u + 12345u;
	}
	return mp_mime_parser_finish(&p);
}

static void
serialize(const struct mp_mime_message *msg, struct mp_buf *out)
{
	mp_buf_reset(out);
	mp_mime_serialize(msg, out);
}

static bool
utf8_valid(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = s[i] < 0x80   ? 1
			   : s[i] < 0xc2 ? 0
			   : s[i] < 0xe0 ? 2
			   : s[i] < 0xf0 ? 3
			   : s[i] < 0xf5 ? 4
					 : 0;

		if (n == 0 || len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		}
		i += n;
	}
	return true;
}

static void
fuzz_headers(const uint8_t *d, size_t len)
{
	struct mp_mime_header_iter it;
	struct mp_str name, value;
	struct mp_buf out = {0};

	mp_mime_header_iter_init(&it, d, len);
	while (mp_mime_header_iter_next(&it, &name, &value)) {
		assert(name.len > 0 && value.len <= len);
		mp_buf_reset(&out);
		mp_mime_decode_header(value.p, value.len, &out);
		assert(utf8_valid((const uint8_t *)out.data, out.len));
	}
	mp_mime_header_iter_deinit(&it);
	mp_buf_free(&out);
}

static void
decode(enum mp_mime_cte cte, const uint8_t *d, size_t len, size_t split,
       struct mp_buf *out)
{
	struct mp_mime_body_decoder dec;

	mp_buf_reset(out);
	mp_mime_body_decoder_init(&dec, cte);
	mp_mime_body_decoder_feed(&dec, d, split, out);
	mp_mime_body_decoder_feed(&dec, d + split, len - split, out);
	mp_mime_body_decoder_finish(&dec, out);
}

static void
fuzz_decoders(const uint8_t *d, size_t len, unsigned seed)
{
	struct mp_buf a = {0}, b = {0};
	enum mp_mime_cte ctes[] = {MP_MIME_CTE_BASE64, MP_MIME_CTE_QP};

	for (size_t i = 0; i < MP_NELEMS(ctes); i++) {
		decode(ctes[i], d, len, 0, &a);
		decode(ctes[i], d, len, len > 0 ? seed % (len + 1) : 0, &b);
		assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
		assert(a.len <= len);
	}
	mp_buf_free(&a);
	mp_buf_free(&b);
}

/* Every part the tree has is found again by walking numbers. */
static void
fuzz_sections(const struct mp_mime_message *msg, const uint8_t *d, size_t len)
{
	const struct mp_mime_part *part;
	char section[16];
	size_t n = len < sizeof(section) - 1 ? len : sizeof(section) - 1;

	for (size_t i = 0; i < n; i++)
		section[i] = (char)(d[i] % 2 ? '.' : '1' + d[i] % 3);
	section[n] = '\0';
	mp_mime_part_find(msg->root, section, &part);
	for (part = msg->root; part != NULL; part = mp_mime_part_next(part))
		assert(part->body_offset + part->body_size <= msg->size);
}

static void
fuzz_parser(const uint8_t *d, size_t len, bool tiny, unsigned seed)
{
	const struct mp_mime_limits small = {
		.max_depth = 3,
		.max_parts = 8,
		.max_header_fields = 4,
		.max_field_size = 40,
		.max_boundary_len = 8,
		.max_params = 2,
		.max_result_size = 300,
	};
	const struct mp_mime_limits *lim = tiny ? &small : NULL;
	struct mp_mime_message *whole = parse(d, len, lim, 0);
	struct mp_mime_message *split = parse(d, len, lim, seed | 1), *back;
	struct mp_buf a = {0}, b = {0};
	const char *error = NULL;

	assert(whole->size == len);
	serialize(whole, &a);
	serialize(split, &b);
	assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	back = mp_mime_deserialize(a.data, a.len, len, &error);
	assert(back != NULL && error == NULL);
	serialize(back, &b);
	assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	fuzz_sections(back, d, len);
	mp_mime_message_free(&whole);
	mp_mime_message_free(&split);
	mp_mime_message_free(&back);
	mp_buf_free(&a);
	mp_buf_free(&b);
	len = len < FUZZ_DECODE_MAX ? len : FUZZ_DECODE_MAX;
	fuzz_headers(d, len);
	fuzz_decoders(d, len, seed);
}

static void
fuzz_blob(const uint8_t *d, size_t len)
{
	uint64_t size = 0;
	struct mp_mime_message *msg;
	struct mp_buf out = {0};
	const char *error = NULL;

	if (len < 8)
		return;
	for (int i = 7; i >= 0; i--)
		size = size << 8 | d[i];
	msg = mp_mime_deserialize(d + 8, len - 8, size, &error);
	assert((msg == NULL) == (error != NULL));
	if (msg == NULL)
		return;
	serialize(msg, &out);
	assert(out.len == len - 8 && memcmp(out.data, d + 8, out.len) == 0);
	mp_buf_free(&out);
	mp_mime_message_free(&msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (data[0] & 1)
		fuzz_blob(data + 1, size - 1);
	else
		fuzz_parser(data + 2, size - 2, data[0] & 2, data[1]);
	return 0;
}
