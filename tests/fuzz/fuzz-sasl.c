/* fuzz-sasl.c - the SASL mechanisms and base64 against arbitrary input.
 *
 * The first byte picks the mechanism (bits 0-1: PLAIN, LOGIN, SCRAM, and
 * SCRAM again), whether the first message is an initial response (bit 2),
 * the answer to VERIFY_PASSWORD (bit 3) and whether NEED_SECRET gets the
 * RFC 7677 secret (bit 4), a malformed one (bit 5) or NULL. The rest is split
 * into client messages at 0xff bytes, which UTF-8 never holds. Random bytes are
 * those of RFC 7677's server nonce, so a seed with that example's messages
 * reaches SUCCESS. Every input also goes through base64 both ways. Checks the
 * promises of sasl.h: statuses in order, accessors set when they must be,
 * the password bounded, nothing after the end, no leaks (ASan). */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/base64.h>
#include <moonpost/sasl.h>

#include "password.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET                                                                 \
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"                        \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static const char *const mech_names[] = {"PLAIN", "LOGIN", "SCRAM-SHA-256",
					 "scram-sha-256"};

/* Repeats the bytes that make our encoder write SNONCE. */
static bool
fixed_random(void *ctx, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t *pos = ctx;

	for (size_t i = 0; i < len; i++, (*pos)++) {
		char c = SNONCE[*pos % (sizeof(SNONCE) - 1)];

		p[i] = (unsigned char)(c - 0x21 - (c > ','));
	}
	return true;
}

/* Canonical base64 decodes and encodes back to itself; any bytes encode
 * and decode back to themselves. */
static void
check_base64(const uint8_t *data, size_t size)
{
	struct mp_buf a = {0}, b = {0};

	if (mp_base64_decode((const char *)data, size, &a, NULL)) {
		mp_base64_encode(a.data, a.len, &b);
		assert(b.len == size && memcmp(b.data, data, size) == 0);
	}
	mp_buf_reset(&a);
	mp_buf_reset(&b);
	mp_base64_encode(data, size, &a);
	assert(a.len == mp_base64_encoded_len(size));
	assert(mp_base64_decode(a.data, a.len, &b, NULL));
	assert(b.len == size && (size == 0 || memcmp(b.data, data, size) == 0));
	mp_buf_free(&a);
	mp_buf_free(&b);
}

/* The next message: up to the next 0xff. False when none is left. */
static bool
next_message(const uint8_t **data, size_t *size, const char **msg, size_t *len)
{
	const uint8_t *sep;

	if (*data == NULL)
		return false;
	*msg = (const char *)*data;
	sep = memchr(*data, 0xff, *size);
	if (sep == NULL) {
		*len = *size;
		*data = NULL;
		return true;
	}
	*len = (size_t)(sep - *data);
	*size -= *len + 1;
	*data = sep + 1;
	return true;
}

/* Answers what the exchange waits for; returns the next status. */
static enum mp_sasl_status
answer(struct mp_sasl *s, enum mp_sasl_status st, uint8_t flags,
       struct mp_buf *out)
{
	const char *error = NULL;

	assert(mp_sasl_username(s) != NULL);
	if (st == MP_SASL_VERIFY_PASSWORD) {
		const char *pw = mp_sasl_password(s);

		assert(pw != NULL && pw[0] != '\0' &&
		       strlen(pw) <= MP_PASSWORD_MAX);
		mp_sasl_verified(s, flags & 8);
		assert(mp_sasl_password(s) == NULL);
	} else if (flags & 16) {
		assert(mp_sasl_set_secret(s, SECRET, &error));
	} else if (flags & 32) {
		assert(!mp_sasl_set_secret(s, "{SCRAM-SHA-256}1,a,b,c",
					   &error));
		assert(error != NULL);
	} else {
		assert(mp_sasl_set_secret(s, NULL, &error));
	}
	return mp_sasl_step(s, NULL, 0, false, out);
}

static void
run_exchange(const uint8_t *data, size_t size)
{
	const uint8_t flags = data[0];
	size_t pos = 0, len;
	struct mp_sasl_settings set = {.random = fixed_random,
				       .random_ctx = &pos};
	struct mp_sasl *s = mp_sasl_new(mech_names[flags & 3], &set);
	struct mp_buf out = {0};
	enum mp_sasl_status st;
	const char *msg;

	assert(s != NULL);
	data++;
	size--;
	if ((flags & 4) && next_message(&data, &size, &msg, &len))
		st = mp_sasl_step(s, msg, len, true, &out);
	else
		st = mp_sasl_step(s, NULL, 0, false, &out);
	for (;;) {
		if (st == MP_SASL_VERIFY_PASSWORD || st == MP_SASL_NEED_SECRET)
			st = answer(s, st, flags, &out);
		else if (st == MP_SASL_CHALLENGE &&
			 next_message(&data, &size, &msg, &len))
			st = mp_sasl_step(s, msg, len, true, &out);
		else
			break;
	}
	assert(st != MP_SASL_FAIL ||
	       (mp_sasl_error(s) != NULL && out.len == 0));
	if (st == MP_SASL_SUCCESS || st == MP_SASL_FAIL) {
		assert(mp_sasl_step(s, "x", 1, true, &out) == MP_SASL_FAIL);
		assert(out.len == 0);
	}
	mp_buf_free(&out);
	mp_sasl_free(&s);
	assert(s == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_base64(data, size);
	if (size > 0)
		run_exchange(data, size);
	return 0;
}
