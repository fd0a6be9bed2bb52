/* fuzz-smtp-data.c - the DATA decoder against arbitrary input and chunking.
 *
 * The first byte picks the mode (bit 0) and the size limit, the second
 * seeds the split points. Checks, in both DATA and BDAT paths:
 *   - the result does not depend on the splits (whole, byte by byte,
 *     pseudo-random chunks give the same output, consumption, counters);
 *   - the data ends exactly after the first "\r\n.\r\n" of the input (or a
 *     leading ".\r\n") and nowhere else: no smuggling variant can end it;
 *   - the output equals a naive, non-streaming reference decoder's;
 *   - a message that was accepted re-stuffs to input that decodes to the
 *     same bytes and ends exactly at its end, and BDAT stores it unchanged:
 *     the stored message can be relayed without a new end appearing. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct mp_buf out;
	size_t consumed;
	bool done;
	struct smtp_data d;
};

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

/* The next chunk size: everything, one byte, or 0 to 8 bytes from a
 * xorshift seeded by the input (empty calls included on purpose). */
static size_t
next_chunk(enum split how, uint32_t *seed, size_t left)
{
	size_t n;

	if (how == SPLIT_WHOLE)
		return left;
	if (how == SPLIT_BYTES)
		return left > 0 ? 1 : 0;
	*seed ^= *seed << 13;
	*seed ^= *seed >> 17;
	*seed ^= *seed << 5;
	n = *seed % 9;
	return n < left ? n : left;
}

static void
run_data(struct run *r, enum smtp_data_mode mode, uint64_t max, const char *in,
	 size_t len, enum split how, uint32_t seed)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&r->d, mode, max);
	do {
		size_t n = next_chunk(how, &seed, len - off);
		size_t used =
			smtp_data_feed(&r->d, in + off, n, &r->out, &r->done);
		assert(used <= n);
		assert(r->done || used == n);
		off += used;
	} while (!r->done && off < len);
	r->consumed = off;
}

static void
run_raw(struct run *r, enum smtp_data_mode mode, uint64_t max, const char *in,
	size_t len, enum split how, uint32_t seed)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&r->d, mode, max);
	do {
		size_t n = next_chunk(how, &seed, len - off);
		smtp_data_feed_raw(&r->d, in + off, n, &r->out);
		off += n;
	} while (off < len);
	smtp_data_finish_raw(&r->d, &r->out);
	r->consumed = off;
}

static void
assert_same(const struct run *a, const struct run *b)
{
	assert(a->out.len == b->out.len);
	assert(a->out.len == 0 ||
	       memcmp(a->out.data, b->out.data, a->out.len) == 0);
	assert(a->consumed == b->consumed && a->done == b->done);
	assert(a->d.state == b->d.state);
	assert(a->d.bytes_in == b->d.bytes_in);
	assert(a->d.bytes_out == b->d.bytes_out);
	assert(a->d.lines == b->d.lines && a->d.nuls == b->d.nuls);
	assert(a->d.longest_line == b->d.longest_line);
	assert(a->d.bare_lf_seen == b->d.bare_lf_seen);
	assert(a->d.bare_cr_seen == b->d.bare_cr_seen);
	assert(a->d.too_big == b->d.too_big && a->d.nul_seen == b->d.nul_seen);
}

/* Where the data must end: after a leading ".\r\n" or the first
 * "\r\n.\r\n"; 0 when it must not end. */
static size_t
reference_end(const char *in, size_t len)
{
	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= len; i++)
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

static bool
is_bare_lf(const char *c, size_t i)
{
	return c[i] == '\n' && (i == 0 || c[i - 1] != '\r');
}

/* A CR at the end of the content was followed by a byte that is not LF
 * (the content never includes a CR still waiting for its next byte). */
static bool
is_bare_cr(const char *c, size_t len, size_t i)
{
	return c[i] == '\r' && (i + 1 == len || c[i + 1] != '\n');
}

/* Normalize mode, naively: any LF starts a line whose leading dot goes;
 * a bare LF becomes CRLF. */
static void
reference_normalize(const char *c, size_t len, struct mp_buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (c[i] == '.' && (i == 0 || c[i - 1] == '\n'))
			continue;
		if (is_bare_lf(c, i))
			mp_buf_append(out, "\r", 1);
		mp_buf_append(out, c + i, 1);
	}
}

/* Strict mode's decoded size: only CRLF starts a line, nothing else
 * changes. */
static size_t
reference_strict_size(const char *c, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		bool bol = i == 0 ||
			   (i >= 2 && c[i - 2] == '\r' && c[i - 1] == '\n');
		n += c[i] == '.' && bol ? 0 : 1;
	}
	return n;
}

static size_t
first_bare(const char *c, size_t len, bool *lf_r, bool *cr_r)
{
	size_t first = len;

	*lf_r = *cr_r = false;
	for (size_t i = len; i-- > 0;) {
		if (is_bare_lf(c, i))
			*lf_r = true;
		else if (is_bare_cr(c, len, i))
			*cr_r = true;
		else
			continue;
		first = i;
	}
	return first;
}

static void
check_reference(const struct run *r, enum smtp_data_mode mode, uint64_t max,
		const char *in, size_t len)
{
	size_t end = reference_end(in, len), clen, cut, want_len;
	struct mp_buf want = {0};
	bool lf, cr;

	assert(r->done == (end != 0));
	assert(r->consumed == (end != 0 ? end : len));
	/* The content: before the terminator's ".", or all of it but a
	 * CR still waiting for its next byte. */
	clen = end != 0 ? end - 3 : len;
	if (end == 0 && clen > 0 && in[clen - 1] == '\r')
		clen--;
	cut = first_bare(in, clen, &lf, &cr);
	assert(r->d.bare_lf_seen == lf && r->d.bare_cr_seen == cr);
	reference_normalize(in, mode == SMTP_DATA_STRICT ? cut : clen, &want);
	if (mode == SMTP_DATA_NORMALIZE || cut == clen)
		assert(r->d.bytes_out == want.len);
	else
		assert(r->d.bytes_out == reference_strict_size(in, clen));
	assert(r->d.too_big == (max != 0 && r->d.bytes_out > max));
	want_len = max != 0 && want.len > max ? (size_t)max : want.len;
	assert(r->out.len == want_len);
	assert(want_len == 0 || memcmp(r->out.data, want.data, want_len) == 0);
	mp_buf_free(&want);
}

static void
stuff(const char *m, size_t len, struct mp_buf *out)
{
	for (size_t i = 0; i < len; i++) {
		bool bol = i == 0 ||
			   (i >= 2 && m[i - 2] == '\r' && m[i - 1] == '\n');
		if (bol && m[i] == '.')
			mp_buf_append(out, ".", 1);
		mp_buf_append(out, m + i, 1);
	}
	mp_buf_append(out, ".\r\n", 3);
}

/* An accepted message, stuffed again as a relay would, decodes to itself
 * and ends exactly at its end; BDAT stores it unchanged. */
static void
check_round_trip(const struct run *r, enum smtp_data_mode mode)
{
	struct mp_buf in = {0};
	struct run again;

	if (!r->done || smtp_data_result(&r->d) != SMTP_DATA_OK)
		return;
	stuff(r->out.data, r->out.len, &in);
	run_data(&again, mode, 0, in.data, in.len, SPLIT_WHOLE, 0);
	assert(again.done && again.consumed == in.len);
	assert(!again.d.bare_lf_seen);
	assert(again.out.len == r->out.len);
	assert(r->out.len == 0 ||
	       memcmp(again.out.data, r->out.data, r->out.len) == 0);
	mp_buf_free(&again.out);
	run_raw(&again, mode, 0, r->out.len > 0 ? r->out.data : "", r->out.len,
		SPLIT_WHOLE, 0);
	assert(again.out.len == r->out.len);
	assert(r->out.len == 0 ||
	       memcmp(again.out.data, r->out.data, r->out.len) == 0);
	mp_buf_free(&again.out);
	mp_buf_free(&in);
}

/* Normalize output holds no bare LF: every stored line ends in CRLF. */
static void
check_no_bare_lf(const struct run *r)
{
	for (size_t i = 0; i < r->out.len; i++)
		assert(!is_bare_lf(r->out.data, i));
}

static void
check_raw_reference(const struct run *r, enum smtp_data_mode mode, uint64_t max,
		    const char *in, size_t len)
{
	struct mp_buf want = {0};
	size_t want_len;
	bool lf, cr;
	size_t cut = first_bare(in, len, &lf, &cr);

	assert(r->d.bare_lf_seen == lf && r->d.bare_cr_seen == cr);
	for (size_t i = 0; i < (mode == SMTP_DATA_STRICT ? cut : len); i++) {
		if (is_bare_lf(in, i))
			mp_buf_append(&want, "\r", 1);
		mp_buf_append(&want, in + i, 1);
	}
	want_len = max != 0 && want.len > max ? (size_t)max : want.len;
	assert(r->out.len == want_len);
	assert(want_len == 0 || memcmp(r->out.data, want.data, want_len) == 0);
	assert(r->d.bytes_in == len);
	mp_buf_free(&want);
}

static void
fuzz_data(enum smtp_data_mode mode, uint64_t max, const char *in, size_t len,
	  uint32_t seed)
{
	struct run whole, bytes, split;

	run_data(&whole, mode, max, in, len, SPLIT_WHOLE, 0);
	run_data(&bytes, mode, max, in, len, SPLIT_BYTES, 0);
	run_data(&split, mode, max, in, len, SPLIT_RANDOM, seed);
	assert_same(&whole, &bytes);
	assert_same(&whole, &split);
	assert(whole.d.bytes_in == whole.consumed);
	check_reference(&whole, mode, max, in, len);
	if (mode == SMTP_DATA_NORMALIZE)
		check_no_bare_lf(&whole);
	check_round_trip(&whole, mode);
	mp_buf_free(&whole.out);
	mp_buf_free(&bytes.out);
	mp_buf_free(&split.out);
}

static void
fuzz_raw(enum smtp_data_mode mode, uint64_t max, const char *in, size_t len,
	 uint32_t seed)
{
	struct run whole, bytes, split;

	run_raw(&whole, mode, max, in, len, SPLIT_WHOLE, 0);
	run_raw(&bytes, mode, max, in, len, SPLIT_BYTES, 0);
	run_raw(&split, mode, max, in, len, SPLIT_RANDOM, seed);
	assert_same(&whole, &bytes);
	assert_same(&whole, &split);
	check_raw_reference(&whole, mode, max, in, len);
	mp_buf_free(&whole.out);
	mp_buf_free(&bytes.out);
	mp_buf_free(&split.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum smtp_data_mode mode;
	uint64_t max;
	uint32_t seed;

	if (size < 2)
		return 0;
	mode = data[0] & 1 ? SMTP_DATA_STRICT : SMTP_DATA_NORMALIZE;
	max = (uint64_t)(data[0] >> 1) * 3;
	seed = 0x9e3779b9u * (uint32_t)(data[1] + 1);
	fuzz_data(mode, max, (const char *)data + 2, size - 2, seed);
	fuzz_raw(mode, max, (const char *)data + 2, size - 2, seed);
	return 0;
}
