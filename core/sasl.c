/* sasl.c - SASL exchanges, and the PLAIN and LOGIN mechanisms. */
#include "config.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <moonpost/log.h>

#include "sasl-private.h"

static const struct sasl_mech mech_plain;
static const struct sasl_mech mech_login;

static const struct sasl_mech *const mechs[] = {
	&sasl_mech_scram_sha256,
	&mech_plain,
	&mech_login,
};

static const char *const mechs_secure[] = {"SCRAM-SHA-256", "PLAIN", "LOGIN",
					   NULL};
static const char *const mechs_insecure[] = {"SCRAM-SHA-256", NULL};

/* ---- helpers the mechanisms share --------------------------------------- */

enum mp_sasl_status
sasl_fail(struct mp_sasl *s, const char *reason)
{
	s->error = reason;
	return MP_SASL_FAIL;
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Not strcasecmp(): its idea of case follows the locale. */
bool
sasl_names_equal(const char *a, const char *b)
{
	for (; *a != '\0' && ascii_lower(*a) == ascii_lower(*b); a++, b++)
		;
	return *a == *b;
}

/* How many bytes a UTF-8 sequence starting with lead has; 0 when no
 * sequence starts so. */
static size_t
utf8_len(unsigned char lead)
{
	if (lead < 0x80)
		return 1;
	if (lead < 0xc0)
		return 0; /* a continuation byte */
	if (lead < 0xe0)
		return 2;
	if (lead < 0xf0)
		return 3;
	return lead < 0xf8 ? 4 : 0;
}

/* The length of the UTF-8 sequence at p (at most left bytes), 0 when it
 * is malformed: overlong, a surrogate, past U+10FFFF or cut short. *cp_r
 * gets the code point. */
static size_t
utf8_char(const unsigned char *p, size_t left, uint32_t *cp_r)
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t n = utf8_len(p[0]);
	uint32_t cp;

	if (n == 0 || n > left)
		return 0;
	cp = n == 1 ? p[0] : p[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

const char *
sasl_name_error(const struct mp_sasl *s, const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	uint32_t cp;

	if (len == 0)
		return "empty username";
	if (len > s->max_username)
		return "username too long";
	for (size_t i = 0, n; i < len; i += n) {
		if ((n = utf8_char(p + i, len - i, &cp)) == 0)
			return "username is not UTF-8";
		/* C0, DEL and C1: RFC 3454 C.2.1 and most of C.2.2. */
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			return "control character in username";
	}
	return NULL;
}

static void
wipe_password(struct mp_sasl *s)
{
	if (s->password == NULL)
		return;
	OPENSSL_cleanse(s->password, strlen(s->password));
	MP_FREE(s->password);
}

/* The password of PLAIN or LOGIN: 1 to MP_PASSWORD_MAX bytes, no NUL
 * (crypt(3) would stop there), otherwise the bytes as sent. */
static const char *
take_password(struct mp_sasl *s, const char *p, size_t len)
{
	if (len == 0)
		return "empty password";
	if (len > MP_PASSWORD_MAX)
		return "password too long";
	if (memchr(p, '\0', len) != NULL)
		return "NUL in password";
	s->password = mp_xstrndup(p, len);
	return NULL;
}

/* NUL counts as a control character, so none gets in. */
static const char *
take_username(struct mp_sasl *s, const char *p, size_t len)
{
	const char *error = sasl_name_error(s, p, len);

	if (error == NULL)
		s->username = mp_xstrndup(p, len);
	return error;
}

/* ---- PLAIN (RFC 4616) --------------------------------------------------- */

/* message = [authzid] NUL authcid NUL passwd */
static const char *
plain_parse(struct mp_sasl *s, const char *in, size_t len)
{
	const char *nul1 = memchr(in, '\0', len), *nul2, *error;
	size_t zid_len, cid_len;

	if (nul1 == NULL)
		return "no NUL after the authorization identity";
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - in));
	if (nul2 == NULL)
		return "no NUL after the username";
	zid_len = (size_t)(nul1 - in);
	cid_len = (size_t)(nul2 - nul1 - 1);
	if ((error = take_username(s, nul1 + 1, cid_len)) != NULL)
		return error;
	if (zid_len > 0 && (error = sasl_name_error(s, in, zid_len)) != NULL)
		return "bad authorization identity";
	if (zid_len > 0) {
		s->authzid = mp_xstrndup(in, zid_len);
		if (!sasl_names_equal(s->authzid, s->username))
			return "authorization identity is not the username "
			       "(no proxy authorization)";
	}
	return take_password(s, nul2 + 1, len - (size_t)(nul2 + 1 - in));
}

static enum mp_sasl_status
plain_step(struct mp_sasl *s, const char *in, size_t len, struct mp_buf *out)
{
	const char *error;

	if (in == NULL && s->stage == 0) {
		s->stage = 1; /* no initial response: an empty challenge */
		return MP_SASL_CHALLENGE;
	}
	if (in == NULL)
		return sasl_fail(s, "no response");
	if ((error = plain_parse(s, in, len)) != NULL)
		return sasl_fail(s, error);
	s->wait = WAIT_VERIFY;
	return MP_SASL_VERIFY_PASSWORD;
}

static const struct sasl_mech mech_plain = {"PLAIN", plain_step};

/* ---- LOGIN (draft-murchison-sasl-login) --------------------------------- */

enum { LOGIN_START, LOGIN_USERNAME, LOGIN_PASSWORD };

static enum mp_sasl_status
login_step(struct mp_sasl *s, const char *in, size_t len, struct mp_buf *out)
{
	const char *error;

	if (in == NULL && s->stage == LOGIN_START) {
		s->stage = LOGIN_USERNAME;
		mp_buf_puts(out, "Username:");
		return MP_SASL_CHALLENGE;
	}
	if (in == NULL)
		return sasl_fail(s, "no response");
	/* An initial response is the username, as many clients send it. */
	if (s->stage != LOGIN_PASSWORD) {
		if ((error = take_username(s, in, len)) != NULL)
			return sasl_fail(s, error);
		s->stage = LOGIN_PASSWORD;
		mp_buf_puts(out, "Password:");
		return MP_SASL_CHALLENGE;
	}
	if ((error = take_password(s, in, len)) != NULL)
		return sasl_fail(s, error);
	s->wait = WAIT_VERIFY;
	return MP_SASL_VERIFY_PASSWORD;
}

static const struct sasl_mech mech_login = {"LOGIN", login_step};

/* ---- the exchange ------------------------------------------------------- */

static bool
random_default(void *ctx, void *buf, size_t len)
{
	assert(len <= INT_MAX);
	return RAND_bytes(buf, (int)len) == 1;
}

/* The one global: fake secrets must not change from one exchange to the
 * next, or a client could spot unknown users by their changing salt. */
static unsigned char process_key[MP_SASL_FAKE_KEY_LEN];
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void
make_process_key(void)
{
	/* Without random bytes there is no TLS either: nothing to save. */
	if (RAND_bytes(process_key, sizeof(process_key)) != 1) {
		mp_log(MP_LOG_ERROR, "event=sasl-key error=\"RAND_bytes "
				     "failed\"");
		abort();
	}
}

static void
apply_settings(struct mp_sasl *s, const struct mp_sasl_settings *set)
{
	static const struct mp_sasl_settings defaults = {0};

	if (set == NULL)
		set = &defaults;
	s->random = set->random != NULL ? set->random : random_default;
	s->random_ctx = set->random_ctx;
	s->max_message =
		set->max_message != 0 ? set->max_message : MP_SASL_MESSAGE_MAX;
	s->max_username = set->max_username != 0 ? set->max_username
						 : MP_SASL_USERNAME_MAX;
	if (set->fake_key != NULL) {
		memcpy(s->fake_key, set->fake_key, sizeof(s->fake_key));
		return;
	}
	pthread_once(&process_key_once, make_process_key);
	memcpy(s->fake_key, process_key, sizeof(s->fake_key));
}

struct mp_sasl *
mp_sasl_new(const char *mech_name, const struct mp_sasl_settings *set)
{
	struct mp_sasl *s;

	for (size_t i = 0; i < MP_NELEMS(mechs); i++) {
		if (!sasl_names_equal(mech_name, mechs[i]->name))
			continue;
		s = mp_xcalloc(1, sizeof(*s));
		s->mech = mechs[i];
		apply_settings(s, set);
		return s;
	}
	return NULL;
}

/* After mp_sasl_verified(): the outcome of PLAIN and LOGIN. */
static enum mp_sasl_status
verify_outcome(struct mp_sasl *s)
{
	s->wait = WAIT_NONE;
	return s->verified_ok ? MP_SASL_SUCCESS
			      : sasl_fail(s, "password rejected");
}

static enum mp_sasl_status
dispatch(struct mp_sasl *s, const char *in, size_t len, struct mp_buf *out)
{
	/* A failure keeps its first reason, which is the one to log. */
	if (s->done && s->error != NULL)
		return MP_SASL_FAIL;
	if (s->done)
		return sasl_fail(s, "step after the end of the exchange");
	if (s->wait == WAIT_VERIFIED)
		return verify_outcome(s);
	if (s->wait == WAIT_SECRET_SET) {
		s->wait = WAIT_NONE;
		return s->mech->step(s, NULL, 0, out);
	}
	if (in != NULL && len > s->max_message)
		return sasl_fail(s, "message too long");
	return s->mech->step(s, in, len, out);
}

enum mp_sasl_status
mp_sasl_step(struct mp_sasl *s, const void *in, size_t len, bool have_input,
	     struct mp_buf *out)
{
	enum mp_sasl_status st;

	/* Stepping while an answer is due, or feeding input with it, is a
	 * bug in the protocol code, not something a client can cause. */
	assert(s->wait != WAIT_VERIFY && s->wait != WAIT_SECRET);
	assert(s->wait == WAIT_NONE || !have_input);
	mp_buf_reset(out);
	if (have_input && in == NULL)
		in = ""; /* an empty message is still a message */
	st = dispatch(s, have_input ? in : NULL, have_input ? len : 0, out);
	if (st == MP_SASL_FAIL)
		mp_buf_reset(out);
	if (st == MP_SASL_SUCCESS || st == MP_SASL_FAIL) {
		s->done = true;
		wipe_password(s);
	}
	return st;
}

void
mp_sasl_verified(struct mp_sasl *s, bool ok)
{
	assert(s->wait == WAIT_VERIFY);
	s->verified_ok = ok;
	s->wait = WAIT_VERIFIED;
	wipe_password(s);
}

const char *
mp_sasl_mech_name(const struct mp_sasl *s)
{
	return s->mech->name;
}

const char *
mp_sasl_username(const struct mp_sasl *s)
{
	return s->username;
}

const char *
mp_sasl_authzid(const struct mp_sasl *s)
{
	return s->authzid;
}

const char *
mp_sasl_password(const struct mp_sasl *s)
{
	return s->wait == WAIT_VERIFY ? s->password : NULL;
}

const char *
mp_sasl_error(const struct mp_sasl *s)
{
	return s->error;
}

void
mp_sasl_free(struct mp_sasl **sp)
{
	struct mp_sasl *s = *sp;

	if (s == NULL)
		return;
	wipe_password(s);
	sasl_scram_free(s);
	free(s->username);
	free(s->authzid);
	OPENSSL_cleanse(s, sizeof(*s));
	MP_FREE(*sp);
}

const char *const *
mp_sasl_mechanisms(bool secure)
{
	return secure ? mechs_secure : mechs_insecure;
}

bool
mp_sasl_mechanism_offered(const char *mech_name, bool secure)
{
	for (const char *const *m = mp_sasl_mechanisms(secure); *m != NULL;
	     m++) {
		if (sasl_names_equal(mech_name, *m))
			return true;
	}
	return false;
}
