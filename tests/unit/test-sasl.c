/* test-sasl.c - base64, SCRAM secrets, and the PLAIN, LOGIN and
 * SCRAM-SHA-256 mechanisms, SCRAM against RFC 7677 and a client of its own.
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <moonpost/base64.h>
#include <moonpost/sasl.h>

#include "password.h"

/* RFC 7677 3: user "user", password "pencil". */
#define V_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define V_SNONCE       "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define V_SERVER_FIRST                                                         \
	"r=rOprNGfwEbeRWgbNEkqO" V_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define V_CLIENT_FINAL                                                         \
	"c=biws,r=rOprNGfwEbeRWgbNEkqO" V_SNONCE                               \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define V_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The same account as Dovecot stores it: the keys were computed with
 * Python's hashlib, not with our code. */
#define V_SECRET                                                               \
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"                        \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* ---- helpers ------------------------------------------------------------ */

/* Random bytes from a seeded GRand, or fixed ones when bytes is set. */
struct rnd {
	GRand *rand;
	const unsigned char *bytes;
	size_t len, pos;
};

static bool
test_random(void *ctx, void *buf, size_t len)
{
	struct rnd *r = ctx;
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		if (r->bytes != NULL && r->pos == r->len)
			return false;
		p[i] = r->bytes != NULL ? r->bytes[r->pos++]
					: (unsigned char)g_rand_int(r->rand);
	}
	return true;
}

static const unsigned char fake_key[MP_SASL_FAKE_KEY_LEN] = {
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 1, 2, 3, 4, 5, 6, 7, 8};

static struct rnd the_rnd;

static struct mp_sasl_settings
settings(void)
{
	struct mp_sasl_settings set = {.random = test_random,
				       .random_ctx = &the_rnd,
				       .fake_key = fake_key};

	if (the_rnd.rand == NULL)
		the_rnd.rand = g_rand_new_with_seed(g_test_rand_int());
	the_rnd.bytes = NULL;
	return set;
}

static struct mp_sasl *
new_mech(const char *name)
{
	struct mp_sasl_settings set = settings();
	struct mp_sasl *s = mp_sasl_new(name, &set);

	g_assert_nonnull(s);
	return s;
}

static enum mp_sasl_status
step_n(struct mp_sasl *s, const char *in, size_t len, struct mp_buf *out)
{
	return mp_sasl_step(s, in, len, true, out);
}

static enum mp_sasl_status
step(struct mp_sasl *s, const char *in, struct mp_buf *out)
{
	return in == NULL ? mp_sasl_step(s, NULL, 0, false, out)
			  : step_n(s, in, strlen(in), out);
}

/* OpenSSL's base64, so the client does not share our encoder's bugs. */
static char *
b64(const void *p, size_t len)
{
	char *out = g_malloc(len / 3 * 4 + 5);

	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

/* ---- base64 ------------------------------------------------------------- */

struct b64_case {
	const char *raw;
	size_t raw_len;
	const char *enc;
};

static const struct b64_case b64_cases[] = {
	/* RFC 4648 10. */
	{"", 0, ""},
	{"f", 1, "Zg=="},
	{"fo", 2, "Zm8="},
	{"foo", 3, "Zm9v"},
	{"foob", 4, "Zm9vYg=="},
	{"fooba", 5, "Zm9vYmE="},
	{"foobar", 6, "Zm9vYmFy"},
	{"\0", 1, "AA=="},
	{"\0\0\0", 3, "AAAA"},
	{"\xff\xfe\xfd", 3, "//79"},
	{"\xfb\xef\xbe", 3, "++++"},
	{"\0alice\0pw", 9, "AGFsaWNlAHB3"},
};

static void
test_base64_good(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(b64_cases); i++) {
		const struct b64_case *c = &b64_cases[i];
		struct mp_buf buf = {0};
		const char *error = NULL;

		mp_base64_encode(c->raw, c->raw_len, &buf);
		g_assert_cmpstr(buf.data, ==, c->enc);
		g_assert_cmpuint(mp_base64_encoded_len(c->raw_len), ==,
				 strlen(c->enc));
		mp_buf_reset(&buf);
		g_assert_true(
			mp_base64_decode(c->enc, strlen(c->enc), &buf, &error));
		g_assert_cmpmem(buf.data, buf.len, c->raw, c->raw_len);
		g_assert_nonnull(buf.data);
		g_assert_null(error);
		mp_buf_free(&buf);
	}
}

struct b64_bad {
	const char *enc;
	size_t len;
	const char *error;
};

static const struct b64_bad b64_bad[] = {
	{"Z", 1, "length is not a multiple of 4"},
	{"Zg", 2, "length is not a multiple of 4"},
	{"Zg=", 3, "length is not a multiple of 4"},
	{"Zm9vY", 5, "length is not a multiple of 4"},
	{"Zm9v\r\n", 6, "length is not a multiple of 4"},
	{"Zm9 ", 4, "invalid character"},
	{" Zm9", 4, "invalid character"},
	{"Zm\t9", 4, "invalid character"},
	{"Zm9v\nZm9", 8, "invalid character"},
	{"Zm9-", 4, "invalid character"},
	{"Zm9_", 4, "invalid character"},
	{"Zm9.", 4, "invalid character"},
	{"Zm\0v", 4, "invalid character"},
	{"Zm9\xc3", 4, "invalid character"},
	{"Zm9vZ\x80==", 8, "invalid character"},
	{"====", 4, "misplaced padding"},
	{"Z===", 4, "misplaced padding"},
	{"=Zm9", 4, "misplaced padding"},
	{"Zm=v", 4, "misplaced padding"},
	{"Zg=A", 4, "misplaced padding"},
	{"Zg==Zg==", 8, "misplaced padding"},
	{"Zm8=Zm9v", 8, "misplaced padding"},
	{"Zh==", 4, "non-zero bits after the last byte"},
	{"Zm9=", 4, "non-zero bits after the last byte"},
	{"Zm9vYh==", 8, "non-zero bits after the last byte"},
	{"AB==", 4, "non-zero bits after the last byte"},
	{"AAB=", 4, "non-zero bits after the last byte"},
};

static void
test_base64_bad(void)
{
	struct mp_buf buf = {0};

	for (size_t i = 0; i < G_N_ELEMENTS(b64_bad); i++) {
		const char *error = NULL;

		g_test_message("case %zu", i);
		mp_buf_puts(&buf, "kept");
		g_assert_false(mp_base64_decode(b64_bad[i].enc, b64_bad[i].len,
						&buf, &error));
		g_assert_cmpstr(error, ==, b64_bad[i].error);
		/* Nothing half-decoded is left behind. */
		g_assert_cmpstr(buf.data, ==, "kept");
		g_assert_cmpuint(buf.len, ==, 4);
		g_assert_false(mp_base64_decode(b64_bad[i].enc, b64_bad[i].len,
						&buf, NULL));
		mp_buf_reset(&buf);
	}
	mp_buf_free(&buf);
}

/* Random bytes survive a round trip, and agree with OpenSSL's encoder. */
static void
test_base64_random(void)
{
	for (size_t len = 0; len < 200; len++) {
		unsigned char raw[200];
		struct mp_buf enc = {0}, dec = {0};
		char *ref;

		for (size_t i = 0; i < len; i++)
			raw[i] = (unsigned char)g_test_rand_int();
		mp_base64_encode(raw, len, &enc);
		ref = b64(raw, len);
		g_assert_cmpstr(enc.data, ==, ref);
		g_assert_true(mp_base64_decode(enc.data, enc.len, &dec, NULL));
		g_assert_cmpmem(dec.data, dec.len, raw, len);
		g_free(ref);
		mp_buf_free(&enc);
		mp_buf_free(&dec);
	}
}

/* ---- SCRAM secrets ------------------------------------------------------ */

static void
test_secret_known(void)
{
	static const unsigned char salt[] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12,
					     0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14,
					     0x12, 0x36, 0xfa, 0x81};
	struct mp_scram_secret parsed, derived;
	const char *error = NULL;
	char *text;

	g_assert_true(mp_scram_secret_parse(V_SECRET, strlen(V_SECRET), &parsed,
					    &error));
	g_assert_cmpuint(parsed.iterations, ==, 4096);
	g_assert_cmpmem(parsed.salt, parsed.salt_len, salt, sizeof(salt));
	g_assert_true(mp_scram_secret_derive("pencil", 6, salt, sizeof(salt),
					     4096, &derived));
	g_assert_cmpmem(derived.stored_key, 32, parsed.stored_key, 32);
	g_assert_cmpmem(derived.server_key, 32, parsed.server_key, 32);
	text = mp_scram_secret_format(&derived);
	g_assert_cmpstr(text, ==, V_SECRET);
	free(text);
	g_assert_true(mp_password_verify("pencil", V_SECRET));
	g_assert_false(mp_password_verify("pencil2", V_SECRET));
	g_assert_false(mp_password_verify("Pencil", V_SECRET));
	/* Scheme names are case-insensitive, as in Dovecot. */
	text = g_strconcat("{scram-sha-256}", V_SECRET + 15, NULL);
	g_assert_true(
		mp_scram_secret_parse(text, strlen(text), &parsed, &error));
	g_assert_true(mp_password_verify("pencil", text));
	g_free(text);
}

static void
test_secret_new(void)
{
	struct mp_scram_secret a, b;
	const char *error = NULL;
	char *sa = mp_scram_secret_new("correct horse", 0, &error);
	char *sb = mp_scram_secret_new("correct horse", 5000, &error);
	char *long_pw = g_strnfill(MP_PASSWORD_MAX + 1, 'x');

	g_assert_nonnull(sa);
	g_assert_nonnull(sb);
	g_assert_true(g_str_has_prefix(sa, "{SCRAM-SHA-256}4096,"));
	g_assert_true(g_str_has_prefix(sb, "{SCRAM-SHA-256}5000,"));
	g_assert_true(mp_scram_secret_parse(sa, strlen(sa), &a, &error));
	g_assert_true(mp_scram_secret_parse(sb, strlen(sb), &b, &error));
	g_assert_cmpuint(a.iterations, ==, 4096);
	g_assert_cmpuint(a.salt_len, ==, MP_SCRAM_SALT_LEN);
	g_assert_cmpint(memcmp(a.salt, b.salt, MP_SCRAM_SALT_LEN), !=, 0);
	g_assert_true(mp_password_verify("correct horse", sa));
	g_assert_true(mp_password_verify("correct horse", sb));
	g_assert_false(mp_password_verify("correct horsE", sa));
	g_assert_false(mp_password_verify("", sa));
	free(sa);
	free(sb);

	g_assert_null(mp_scram_secret_new("pw", 4095, &error));
	g_assert_cmpstr(error, ==, "SCRAM iteration count out of range");
	g_assert_null(
		mp_scram_secret_new("pw", MP_SCRAM_ITERATIONS_MAX + 1, &error));
	error = NULL;
	g_assert_null(mp_scram_secret_new("", 0, &error));
	g_assert_nonnull(error);
	error = NULL;
	g_assert_null(mp_scram_secret_new(long_pw, 0, &error));
	g_assert_nonnull(error);
	g_free(long_pw);
}

#define K32 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="

static const char *const bad_secrets[] = {
	"",
	"{SCRAM-SHA-1}4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}",
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32,
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32 ",",
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32 "," K32,
	"{SCRAM-SHA-256}4095,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}0,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}04096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}+4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}4096x,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}99999999999,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}10000001,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256},W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32,
	"{SCRAM-SHA-256}4096,," K32 "," K32,
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ=," K32 "," K32,
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ== ," K32 "," K32,
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q==," K32,
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 ","
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qYA",
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==," K32 "," K32 "AAAA",
	/* A salt longer than MP_SCRAM_SALT_MAX (64 bytes: 88 characters). */
	"{SCRAM-SHA-256}4096,"
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAA," K32 "," K32,
};

static void
test_secret_bad(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_secrets); i++) {
		struct mp_scram_secret secret;
		const char *error = NULL;

		g_test_message("case %zu: %s", i, bad_secrets[i]);
		g_assert_false(mp_scram_secret_parse(bad_secrets[i],
						     strlen(bad_secrets[i]),
						     &secret, &error));
		g_assert_nonnull(error);
		g_assert_false(mp_password_verify("pencil", bad_secrets[i]));
	}
}

/* ---- mechanism list ----------------------------------------------------- */

static void
test_mechanisms(void)
{
	const char *const *secure = mp_sasl_mechanisms(true);
	const char *const *insecure = mp_sasl_mechanisms(false);
	struct mp_sasl *s;

	g_assert_cmpstr(secure[0], ==, "SCRAM-SHA-256");
	g_assert_cmpstr(secure[1], ==, "PLAIN");
	g_assert_cmpstr(secure[2], ==, "LOGIN");
	g_assert_null(secure[3]);
	g_assert_cmpstr(insecure[0], ==, "SCRAM-SHA-256");
	g_assert_null(insecure[1]);
	g_assert_true(mp_sasl_mechanism_offered("plain", true));
	g_assert_false(mp_sasl_mechanism_offered("plain", false));
	g_assert_false(mp_sasl_mechanism_offered("login", false));
	g_assert_true(mp_sasl_mechanism_offered("Scram-Sha-256", false));
	g_assert_false(mp_sasl_mechanism_offered("CRAM-MD5", true));
	g_assert_false(mp_sasl_mechanism_offered("PLAI", true));
	g_assert_false(mp_sasl_mechanism_offered("PLAINX", true));

	for (size_t i = 0; secure[i] != NULL; i++) {
		char *lower = g_ascii_strdown(secure[i], -1);

		s = mp_sasl_new(lower, NULL);
		g_assert_nonnull(s);
		g_assert_cmpstr(mp_sasl_mech_name(s), ==, secure[i]);
		g_assert_null(mp_sasl_username(s));
		g_assert_null(mp_sasl_error(s));
		mp_sasl_free(&s);
		g_assert_null(s);
		g_free(lower);
	}
	g_assert_null(mp_sasl_new("SCRAM-SHA-256-PLUS", NULL));
	g_assert_null(mp_sasl_new("SCRAM-SHA-1", NULL));
	g_assert_null(mp_sasl_new("", NULL));
	g_assert_null(mp_sasl_new("PLAIN ", NULL));
	mp_sasl_free(&s); /* NULL is harmless */
}

/* ---- PLAIN and LOGIN ---------------------------------------------------- */

/* Answers VERIFY_PASSWORD with ok and returns the outcome. */
static enum mp_sasl_status
answer_verify(struct mp_sasl *s, bool ok, struct mp_buf *out)
{
	enum mp_sasl_status st;

	mp_sasl_verified(s, ok);
	g_assert_null(mp_sasl_password(s));
	st = step(s, NULL, out);
	g_assert_cmpuint(out->len, ==, 0);
	return st;
}

struct plain_good {
	const char *msg;
	size_t len;
	const char *user, *authzid, *password;
};

#define GOOD(lit, user, zid, pw)                                               \
	{                                                                      \
		lit, sizeof(lit) - 1, user, zid, pw                            \
	}

static const struct plain_good plain_goods[] = {
	GOOD("\0alice@example.org\0secret", "alice@example.org", NULL,
	     "secret"),
	GOOD("alice@example.org\0alice@example.org\0pw", "alice@example.org",
	     "alice@example.org", "pw"),
	GOOD("ALICE@Example.org\0alice@example.org\0pw", "alice@example.org",
	     "ALICE@Example.org", "pw"),
	/* Spaces and non-ASCII are fine in a password, as sent. */
	GOOD("\0u\0 p \xc3\xa9 \xff", "u", NULL, " p \xc3\xa9 \xff"),
	GOOD("\0j\xc3\xb6ran@example.org\0pw", "j\xc3\xb6ran@example.org", NULL,
	     "pw"),
	GOOD("\0\xf0\x9f\x93\xac\0pw", "\xf0\x9f\x93\xac", NULL, "pw"),
};

static void
test_plain_good(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(plain_goods); i++) {
		const struct plain_good *c = &plain_goods[i];

		for (int ir = 0; ir < 2; ir++) {
			for (int ok = 0; ok < 2; ok++) {
				struct mp_sasl *s = new_mech("PLAIN");
				struct mp_buf out = {0};

				g_test_message("case %zu ir=%d ok=%d", i, ir,
					       ok);
				if (!ir) {
					g_assert_cmpint(step(s, NULL, &out), ==,
							MP_SASL_CHALLENGE);
					g_assert_cmpuint(out.len, ==, 0);
				}
				g_assert_cmpint(step_n(s, c->msg, c->len, &out),
						==, MP_SASL_VERIFY_PASSWORD);
				g_assert_cmpstr(mp_sasl_username(s), ==,
						c->user);
				g_assert_cmpstr(mp_sasl_authzid(s), ==,
						c->authzid);
				g_assert_cmpstr(mp_sasl_password(s), ==,
						c->password);
				g_assert_cmpint(answer_verify(s, ok, &out), ==,
						ok ? MP_SASL_SUCCESS
						   : MP_SASL_FAIL);
				g_assert_cmpstr(mp_sasl_username(s), ==,
						c->user);
				/* Nothing after the end; a failure keeps its
				 * first reason. */
				g_assert_cmpint(step(s, "x", &out), ==,
						MP_SASL_FAIL);
				g_assert_cmpstr(mp_sasl_error(s), ==,
						ok ? "step after the end of "
						     "the exchange"
						   : "password rejected");
				mp_buf_free(&out);
				mp_sasl_free(&s);
			}
		}
	}
}

struct bad_msg {
	const char *msg;
	size_t len;
	const char *error;
};

#define BAD(lit, err)                                                          \
	{                                                                      \
		lit, sizeof(lit) - 1, err                                      \
	}

static const struct bad_msg plain_bads[] = {
	BAD("", "no NUL after the authorization identity"),
	BAD("alice", "no NUL after the authorization identity"),
	BAD("\0alice", "no NUL after the username"),
	BAD("\0alice\0", "empty password"),
	BAD("\0\0pw", "empty username"),
	BAD("\0\0", "empty username"),
	BAD("\0alice\0pw\0", "NUL in password"),
	BAD("\0alice\0p\0w", "NUL in password"),
	BAD("bob\0alice\0pw", "authorization identity is not the username "
			      "(no proxy authorization)"),
	BAD("alice2\0alice\0pw", "authorization identity is not the username "
				 "(no proxy authorization)"),
	BAD("\x01\0alice\0pw", "bad authorization identity"),
	BAD("\0al\x01ice\0pw", "control character in username"),
	BAD("\0alice\x7f\0pw", "control character in username"),
	BAD("\0alice\n\0pw", "control character in username"),
	BAD("\0al\xc2\x85ice\0pw", "control character in username"),
	BAD("\0al\xffice\0pw", "username is not UTF-8"),
	BAD("\0al\xc3ice\0pw", "username is not UTF-8"),
	BAD("\0\xc0\xaf\0pw", "username is not UTF-8"),
	BAD("\0\xe0\x80\xaf\0pw", "username is not UTF-8"),
	BAD("\0\xed\xa0\x80\0pw", "username is not UTF-8"),
	BAD("\0\xf4\x90\x80\x80\0pw", "username is not UTF-8"),
	BAD("\0\xf8\x88\x80\x80\x80\0pw", "username is not UTF-8"),
	BAD("\0\x80\0pw", "username is not UTF-8"),
	BAD("\0\xe2\x82\0pw", "username is not UTF-8"),
};

/* A PLAIN message with a username of ulen bytes, a password of plen. */
static GString *
plain_of_sizes(size_t ulen, size_t plen)
{
	GString *m = g_string_new(NULL);

	g_string_append_c(m, '\0');
	for (size_t i = 0; i < ulen; i++)
		g_string_append_c(m, 'u');
	g_string_append_c(m, '\0');
	for (size_t i = 0; i < plen; i++)
		g_string_append_c(m, 'p');
	return m;
}

static void
check_plain_fails(const char *msg, size_t len, const char *error)
{
	struct mp_sasl *s = new_mech("PLAIN");
	struct mp_buf out = {0};

	g_assert_cmpint(step_n(s, msg, len, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, error);
	g_assert_null(mp_sasl_password(s));
	g_assert_cmpuint(out.len, ==, 0);
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	mp_buf_free(&out);
	mp_sasl_free(&s);
}

static void
check_plain_verifies(const char *msg, size_t len)
{
	struct mp_sasl *s = new_mech("PLAIN");
	struct mp_buf out = {0};

	g_assert_cmpint(step_n(s, msg, len, &out), ==, MP_SASL_VERIFY_PASSWORD);
	mp_buf_free(&out);
	mp_sasl_free(&s); /* freed while waiting: no leak, no assertion */
}

static void
test_plain_bad(void)
{
	GString *m;

	for (size_t i = 0; i < G_N_ELEMENTS(plain_bads); i++) {
		g_test_message("case %zu", i);
		check_plain_fails(plain_bads[i].msg, plain_bads[i].len,
				  plain_bads[i].error);
	}
	/* Limits: 255-byte names and 511-byte passwords, not one more. */
	m = plain_of_sizes(MP_SASL_USERNAME_MAX, MP_PASSWORD_MAX);
	check_plain_verifies(m->str, m->len);
	g_string_free(m, TRUE);
	m = plain_of_sizes(MP_SASL_USERNAME_MAX + 1, 1);
	check_plain_fails(m->str, m->len, "username too long");
	g_string_free(m, TRUE);
	m = plain_of_sizes(1, MP_PASSWORD_MAX + 1);
	check_plain_fails(m->str, m->len, "password too long");
	g_string_free(m, TRUE);
	m = plain_of_sizes(1, MP_SASL_MESSAGE_MAX);
	check_plain_fails(m->str, m->len, "message too long");
	g_string_free(m, TRUE);
}

/* A missing response after the empty challenge fails. */
static void
test_plain_no_response(void)
{
	struct mp_sasl *s = new_mech("PLAIN");
	struct mp_buf out = {0};

	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "no response");
	mp_buf_free(&out);
	mp_sasl_free(&s);
}

static void
run_login(bool initial, bool ok)
{
	struct mp_sasl *s = new_mech("login");
	struct mp_buf out = {0};

	if (!initial) {
		g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
		g_assert_cmpstr(out.data, ==, "Username:");
	}
	g_assert_cmpint(step(s, "alice@example.org", &out), ==,
			MP_SASL_CHALLENGE);
	g_assert_cmpstr(out.data, ==, "Password:");
	g_assert_cmpstr(mp_sasl_username(s), ==, "alice@example.org");
	g_assert_null(mp_sasl_password(s));
	g_assert_cmpint(step(s, "pass word", &out), ==,
			MP_SASL_VERIFY_PASSWORD);
	g_assert_cmpuint(out.len, ==, 0);
	g_assert_cmpstr(mp_sasl_password(s), ==, "pass word");
	g_assert_null(mp_sasl_authzid(s));
	g_assert_cmpint(answer_verify(s, ok, &out), ==,
			ok ? MP_SASL_SUCCESS : MP_SASL_FAIL);
	if (!ok)
		g_assert_cmpstr(mp_sasl_error(s), ==, "password rejected");
	mp_buf_free(&out);
	mp_sasl_free(&s);
}

static void
test_login_good(void)
{
	run_login(false, true);
	run_login(false, false);
	run_login(true, true);
	run_login(true, false);
}

/* Feeds LOGIN a username then a password (NULL: stop after the name). */
static void
check_login_fails(const char *user, size_t ulen, const char *pw, size_t plen,
		  const char *error)
{
	struct mp_sasl *s = new_mech("LOGIN");
	struct mp_buf out = {0};
	enum mp_sasl_status st;

	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
	st = step_n(s, user, ulen, &out);
	if (pw != NULL) {
		g_assert_cmpint(st, ==, MP_SASL_CHALLENGE);
		st = step_n(s, pw, plen, &out);
	}
	g_assert_cmpint(st, ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, error);
	g_assert_cmpuint(out.len, ==, 0);
	mp_buf_free(&out);
	mp_sasl_free(&s);
}

static void
test_login_bad(void)
{
	char *big = g_strnfill(MP_PASSWORD_MAX + 1, 'p');
	struct mp_sasl *s;
	struct mp_buf out = {0};

	check_login_fails("", 0, NULL, 0, "empty username");
	check_login_fails("a\0b", 3, NULL, 0, "control character in username");
	check_login_fails("a\r\nb", 4, NULL, 0,
			  "control character in username");
	check_login_fails("\xff", 1, NULL, 0, "username is not UTF-8");
	check_login_fails(big, MP_SASL_USERNAME_MAX + 1, NULL, 0,
			  "username too long");
	check_login_fails("u", 1, "", 0, "empty password");
	check_login_fails("u", 1, "p\0w", 3, "NUL in password");
	check_login_fails("u", 1, big, MP_PASSWORD_MAX + 1,
			  "password too long");
	/* No response to "Password:". */
	s = new_mech("LOGIN");
	g_assert_cmpint(step(s, "u", &out), ==, MP_SASL_CHALLENGE);
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	mp_sasl_free(&s);
	mp_buf_free(&out);
	g_free(big);
}

/* A smaller limit from the settings applies to every mechanism. */
static void
test_settings_limits(void)
{
	struct mp_sasl_settings set = settings();
	struct mp_buf out = {0};
	struct mp_sasl *s;

	set.max_message = 10;
	set.max_username = 3;
	s = mp_sasl_new("PLAIN", &set);
	g_assert_cmpint(step_n(s, "\0abc\0pwpwpw", 11, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "message too long");
	mp_sasl_free(&s);
	s = mp_sasl_new("PLAIN", &set);
	g_assert_cmpint(step_n(s, "\0abcd\0pw", 8, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "username too long");
	mp_sasl_free(&s);
	s = mp_sasl_new("PLAIN", &set);
	g_assert_cmpint(step_n(s, "\0abc\0pwpwp", 10, &out), ==,
			MP_SASL_VERIFY_PASSWORD);
	mp_sasl_free(&s);
	mp_buf_free(&out);
}

/* ---- SCRAM-SHA-256: the server side, from RFC 7677 ---------------------- */

/* The bytes that make our nonce encoder produce text: each is the index
 * of its character in printable ASCII without ','. */
static void
nonce_bytes(const char *text, unsigned char *out)
{
	for (size_t i = 0; text[i] != '\0'; i++)
		out[i] = (unsigned char)(text[i] - 0x21 - (text[i] > ','));
}

/* RFC 7677 3, with skip bytes the nonce encoder must drop first. */
static void
run_rfc7677(bool initial, size_t skip)
{
	unsigned char rnd[64];
	const char *error = NULL;
	struct mp_buf out = {0};
	struct mp_sasl *s = new_mech("SCRAM-SHA-256");

	memset(rnd, 0xff, skip);
	nonce_bytes(V_SNONCE, rnd + skip);
	the_rnd.bytes = rnd;
	the_rnd.len = skip + strlen(V_SNONCE);
	the_rnd.pos = 0;
	if (!initial) {
		g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
		g_assert_cmpuint(out.len, ==, 0);
	}
	g_assert_cmpint(step(s, V_CLIENT_FIRST, &out), ==, MP_SASL_NEED_SECRET);
	g_assert_cmpuint(out.len, ==, 0);
	g_assert_cmpstr(mp_sasl_username(s), ==, "user");
	g_assert_null(mp_sasl_authzid(s));
	g_assert_null(mp_sasl_password(s));
	g_assert_true(mp_sasl_set_secret(s, V_SECRET, &error));
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
	g_assert_cmpstr(out.data, ==, V_SERVER_FIRST);
	g_assert_cmpuint(the_rnd.pos, ==, the_rnd.len);
	g_assert_cmpint(step(s, V_CLIENT_FINAL, &out), ==, MP_SASL_SUCCESS);
	g_assert_cmpstr(out.data, ==, V_SERVER_FINAL);
	g_assert_null(mp_sasl_error(s));
	g_assert_cmpint(step(s, V_CLIENT_FINAL, &out), ==, MP_SASL_FAIL);
	g_assert_cmpuint(out.len, ==, 0);
	the_rnd.bytes = NULL;
	mp_buf_free(&out);
	mp_sasl_free(&s);
}

static void
test_scram_rfc7677(void)
{
	run_rfc7677(true, 0);
	run_rfc7677(false, 0);
	/* 186 and up would bias the alphabet: dropped, more are drawn. */
	run_rfc7677(true, 2);
}

/* No random bytes: no nonce, no exchange. */
static void
test_scram_no_random(void)
{
	const char *error = NULL;
	struct mp_buf out = {0};
	struct mp_sasl *s = new_mech("SCRAM-SHA-256");
	unsigned char rnd[4] = {1, 2, 3, 4};

	the_rnd.bytes = rnd;
	the_rnd.len = sizeof(rnd);
	the_rnd.pos = 0;
	g_assert_cmpint(step(s, V_CLIENT_FIRST, &out), ==, MP_SASL_NEED_SECRET);
	g_assert_true(mp_sasl_set_secret(s, V_SECRET, &error));
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "no random bytes for the nonce");
	the_rnd.bytes = NULL;
	mp_buf_free(&out);
	mp_sasl_free(&s);
}

/* ---- SCRAM-SHA-256: against a client written here ----------------------- */

/* What the client sends and how it cheats. */
struct client {
	const char *gs2;      /* the GS2 header it sends: "n,," etc. */
	const char *cb_gs2;   /* what its c= encodes; NULL: gs2 */
	const char *name;     /* saslname as sent, escaped */
	const char *password; /* what the user typed */
	const char *nonce;    /* r= of the final message; NULL: the right one */
	const char *extra;    /* put before ",p="; NULL: nothing */
	char cnonce[33];
	char *first_bare;
	unsigned char
		v[SHA256_DIGEST_LENGTH]; /* the expected ServerSignature */
};

static void
client_init(struct client *c, const char *name, const char *password)
{
	memset(c, 0, sizeof(*c));
	c->gs2 = "n,,";
	c->name = name;
	c->password = password;
	for (size_t i = 0; i < 32; i++)
		c->cnonce[i] = (char)g_test_rand_int_range('-', '~' + 1);
	c->first_bare = g_strdup_printf("n=%s,r=%s", name, c->cnonce);
}

static char *
client_first(const struct client *c)
{
	return g_strconcat(c->gs2, c->first_bare, NULL);
}

static void
hmac(const void *key, size_t key_len, const void *data, size_t len,
     unsigned char *out)
{
	unsigned out_len;

	g_assert_nonnull(HMAC(EVP_sha256(), key, (int)key_len, data, len, out,
			      &out_len));
}

/* The client's keys and proof (RFC 5802 3) for server_first. */
static char *
client_final(struct client *c, const char *server_first)
{
	gchar **f = g_strsplit(server_first, ",", -1);
	unsigned char salted[32], ck[32], sk[32], svk[32], sig[32];
	gsize salt_len;
	guchar *salt;
	gchar *cb, *without, *auth, *proof, *msg;

	g_assert_cmpuint(g_strv_length(f), ==, 3);
	g_assert_true(g_str_has_prefix(f[0], "r="));
	g_assert_true(g_str_has_prefix(f[0] + 2, c->cnonce));
	salt = g_base64_decode(f[1] + 2, &salt_len);
	g_assert_cmpint(PKCS5_PBKDF2_HMAC(c->password, strlen(c->password),
					  salt, (int)salt_len, atoi(f[2] + 2),
					  EVP_sha256(), 32, salted),
			==, 1);
	hmac(salted, 32, "Client Key", 10, ck);
	SHA256(ck, 32, sk);
	hmac(salted, 32, "Server Key", 10, svk);
	cb = g_base64_encode((const guchar *)(c->cb_gs2 ? c->cb_gs2 : c->gs2),
			     strlen(c->cb_gs2 ? c->cb_gs2 : c->gs2));
	without = g_strdup_printf("c=%s,r=%s%s", cb,
				  c->nonce ? c->nonce : f[0] + 2,
				  c->extra ? c->extra : "");
	auth = g_strdup_printf("%s,%s,%s", c->first_bare, server_first,
			       without);
	hmac(sk, 32, auth, strlen(auth), sig);
	for (size_t i = 0; i < 32; i++)
		sig[i] ^= ck[i];
	hmac(svk, 32, auth, strlen(auth), c->v);
	proof = g_base64_encode(sig, 32);
	msg = g_strdup_printf("%s,p=%s", without, proof);
	g_free(proof);
	g_free(auth);
	g_free(without);
	g_free(cb);
	g_free(salt);
	g_strfreev(f);
	return msg;
}

/* Steps through client-first and the secret lookup; returns
 * server-first. stored NULL: an unknown user. */
static char *
scram_begin(struct mp_sasl *s, const char *first, const char *stored)
{
	const char *error = NULL;
	struct mp_buf out = {0};

	g_assert_cmpint(step(s, first, &out), ==, MP_SASL_NEED_SECRET);
	g_assert_true(mp_sasl_set_secret(s, stored, &error));
	g_assert_null(error);
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
	return mp_buf_steal(&out);
}

/* A whole exchange; returns the last status, with *error_r set. */
static enum mp_sasl_status
scram_run(struct client *c, const char *stored, char **server_first_r,
	  const char **error_r)
{
	struct mp_sasl *s = new_mech("SCRAM-SHA-256");
	char *first = client_first(c);
	char *server_first = scram_begin(s, first, stored), *final, *v;
	struct mp_buf out = {0};
	enum mp_sasl_status st;

	final = client_final(c, server_first);
	st = step(s, final, &out);
	*error_r = mp_sasl_error(s);
	v = g_base64_encode(c->v, sizeof(c->v));
	if (st == MP_SASL_SUCCESS) {
		g_assert_true(g_str_has_prefix(out.data, "v="));
		g_assert_cmpstr(out.data + 2, ==, v);
	} else {
		g_assert_cmpuint(out.len, ==, 0);
	}
	if (server_first_r != NULL)
		*server_first_r = server_first;
	else
		free(server_first);
	g_free(v);
	g_free(final);
	g_free(first);
	mp_buf_free(&out);
	mp_sasl_free(&s);
	return st;
}

/* A random password: printable ASCII, and sometimes UTF-8 letters. */
static char *
random_password(void)
{
	GString *pw = g_string_new(NULL);
	int n = g_test_rand_int_range(1, 40);

	for (int i = 0; i < n; i++) {
		if (g_test_rand_int_range(0, 8) == 0)
			g_string_append(pw, "\xc3\xa9");
		else
			g_string_append_c(
				pw, (char)g_test_rand_int_range(' ', '~' + 1));
	}
	return g_string_free(pw, FALSE);
}

static void
test_scram_exchange(void)
{
	for (int i = 0; i < 10; i++) {
		char *pw = random_password(), *other = random_password();
		const char *error = NULL;
		char *stored = mp_scram_secret_new(pw, 0, &error);
		struct client c;

		g_assert_nonnull(stored);
		client_init(&c, "alice@example.org", pw);
		g_assert_cmpint(scram_run(&c, stored, NULL, &error), ==,
				MP_SASL_SUCCESS);
		g_free(c.first_bare);
		/* "y": the client could bind but thinks we cannot. */
		client_init(&c, "alice@example.org", pw);
		c.gs2 = "y,,";
		g_assert_cmpint(scram_run(&c, stored, NULL, &error), ==,
				MP_SASL_SUCCESS);
		g_free(c.first_bare);
		/* An authzid equal to the name; c= encodes it too. */
		client_init(&c, "alice@example.org", pw);
		c.gs2 = "n,a=Alice@Example.org,";
		g_assert_cmpint(scram_run(&c, stored, NULL, &error), ==,
				MP_SASL_SUCCESS);
		g_free(c.first_bare);
		/* Extensions we do not know are ignored. */
		client_init(&c, "alice@example.org", pw);
		c.extra = ",x=whatever,y=2";
		g_assert_cmpint(scram_run(&c, stored, NULL, &error), ==,
				MP_SASL_SUCCESS);
		g_free(c.first_bare);
		if (strcmp(pw, other) != 0) {
			client_init(&c, "alice@example.org", other);
			g_assert_cmpint(scram_run(&c, stored, NULL, &error), ==,
					MP_SASL_FAIL);
			g_assert_cmpstr(error, ==,
					"wrong proof (password or user)");
			g_free(c.first_bare);
		}
		free(stored);
		g_free(pw);
		g_free(other);
	}
}

/* ',' and '=' travel as =2C and =3D. */
static void
test_scram_escaped_name(void)
{
	const char *error = NULL;
	char *stored = mp_scram_secret_new("pw", 0, &error);
	struct mp_sasl *s = new_mech("SCRAM-SHA-256");
	char *sf;

	sf = scram_begin(s, "n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc", stored);
	g_assert_cmpstr(mp_sasl_username(s), ==, "a,b=c");
	g_assert_cmpstr(mp_sasl_authzid(s), ==, "a,b=c");
	free(sf);
	mp_sasl_free(&s);
	free(stored);
}

#define SERVER_FIRST_SHAPE "^r=[-!-+.-~]+,s=[A-Za-z0-9+/]{22}==,i=4096$"

/* An unknown user fails like a wrong password, after the same messages
 * in the same shape, and keeps its fake salt from one try to the next. */
static void
test_scram_unknown_user(void)
{
	const char *error = NULL, *error2 = NULL;
	char *stored = mp_scram_secret_new("right", 0, &error);
	char *sf_known, *sf_unknown, *sf_again, *sf_other;
	struct client c;

	client_init(&c, "alice@example.org", "wrong");
	g_assert_cmpint(scram_run(&c, stored, &sf_known, &error), ==,
			MP_SASL_FAIL);
	g_free(c.first_bare);
	client_init(&c, "nobody@example.org", "wrong");
	g_assert_cmpint(scram_run(&c, NULL, &sf_unknown, &error2), ==,
			MP_SASL_FAIL);
	g_assert_cmpstr(error, ==, error2);
	g_assert_true(g_regex_match_simple(SERVER_FIRST_SHAPE, sf_known, 0, 0));
	g_assert_true(
		g_regex_match_simple(SERVER_FIRST_SHAPE, sf_unknown, 0, 0));
	g_assert_cmpuint(strlen(sf_known), ==, strlen(sf_unknown));
	g_free(c.first_bare);
	client_init(&c, "nobody@example.org", "again");
	g_assert_cmpint(scram_run(&c, NULL, &sf_again, &error2), ==,
			MP_SASL_FAIL);
	g_assert_cmpstr(strstr(sf_again, ",s="), ==, strstr(sf_unknown, ",s="));
	g_free(c.first_bare);
	client_init(&c, "other@example.org", "again");
	g_assert_cmpint(scram_run(&c, NULL, &sf_other, &error2), ==,
			MP_SASL_FAIL);
	g_assert_cmpstr(strstr(sf_other, ",s="), !=, strstr(sf_unknown, ",s="));
	g_free(c.first_bare);
	free(sf_known);
	free(sf_unknown);
	free(sf_again);
	free(sf_other);
	free(stored);
}

/* A stored secret that does not parse: the caller hears of it, and the
 * client sees an unknown user. */
static void
test_scram_bad_stored(void)
{
	const char *error = NULL;
	struct mp_buf out = {0};
	struct mp_sasl *s = new_mech("SCRAM-SHA-256");
	struct mp_sasl *unknown = new_mech("SCRAM-SHA-256");
	char *sf_unknown = scram_begin(unknown, "n,,n=ghost,r=abc", NULL);

	g_assert_cmpint(step(s, "n,,n=ghost,r=abc", &out), ==,
			MP_SASL_NEED_SECRET);
	g_assert_false(mp_sasl_set_secret(s, "{SCRAM-SHA-256}4096,x", &error));
	g_assert_cmpstr(error, ==,
			"expected iterations,salt,StoredKey,ServerKey");
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
	g_assert_true(g_regex_match_simple(SERVER_FIRST_SHAPE, out.data, 0, 0));
	g_assert_cmpstr(strstr(sf_unknown, ",s="), ==, strstr(out.data, ",s="));
	g_assert_cmpint(step(s, "c=biws,r=abc,p=AAAA", &out), ==, MP_SASL_FAIL);
	free(sf_unknown);
	mp_buf_free(&out);
	mp_sasl_free(&s);
	mp_sasl_free(&unknown);
}

/* Without settings: RAND_bytes and the per-process key. */
static void
test_scram_default_settings(void)
{
	char *sf[2];

	for (int i = 0; i < 2; i++) {
		struct mp_sasl *s = mp_sasl_new("SCRAM-SHA-256", NULL);

		sf[i] = scram_begin(s, "n,,n=ghost,r=abc", NULL);
		mp_sasl_free(&s);
	}
	g_assert_true(g_regex_match_simple(SERVER_FIRST_SHAPE, sf[0], 0, 0));
	g_assert_cmpstr(strstr(sf[0], ",s="), ==, strstr(sf[1], ",s="));
	g_assert_cmpstr(sf[0], !=, sf[1]); /* fresh nonces */
	free(sf[0]);
	free(sf[1]);
}

struct cheat {
	const char *gs2, *cb_gs2, *nonce, *extra;
	const char *error;
};

static const struct cheat cheats[] = {
	{"n,,", "y,,", NULL, NULL,
	 "channel binding does not match the GS2 header"},
	{"y,,", "n,,", NULL, NULL,
	 "channel binding does not match the GS2 header"},
	{"n,a=alice@example.org,", "n,,", NULL, NULL,
	 "channel binding does not match the GS2 header"},
	{"n,,", "n,a=alice@example.org,", NULL, NULL,
	 "channel binding does not match the GS2 header"},
	{"n,,", "n,", NULL, NULL,
	 "channel binding does not match the GS2 header"},
	{"n,,", "n,,\x01", NULL, NULL,
	 "channel binding does not match the GS2 header"},
	{"n,,", NULL, "abc", NULL, "nonce mismatch"},
	{"n,,", NULL, "", NULL, "nonce mismatch"},
	{"n,,", NULL, NULL, ",r=more", NULL},
	{"n,,", NULL, NULL, ",=x", "malformed attribute"},
	{"n,,", NULL, NULL, ",1=x", "malformed attribute"},
	{"n,,", NULL, NULL, ",x=", "malformed attribute"},
	{"n,,", NULL, NULL, ",", "malformed attribute"},
};

static void
test_scram_cheats(void)
{
	const char *error = NULL;
	char *stored = mp_scram_secret_new("pw", 0, &error);

	for (size_t i = 0; i < G_N_ELEMENTS(cheats); i++) {
		const struct cheat *ch = &cheats[i];
		struct client c;

		g_test_message("case %zu", i);
		client_init(&c, "alice@example.org", "pw");
		c.gs2 = ch->gs2;
		c.cb_gs2 = ch->cb_gs2;
		c.nonce = ch->nonce;
		c.extra = ch->extra;
		g_assert_cmpint(scram_run(&c, stored, NULL, &error), ==,
				ch->error != NULL ? MP_SASL_FAIL
						  : MP_SASL_SUCCESS);
		g_assert_cmpstr(error, ==, ch->error);
		g_free(c.first_bare);
	}
	free(stored);
}

static const struct bad_msg first_bads[] = {
	BAD("", "bad GS2 header"),
	BAD("n", "bad GS2 header"),
	BAD("n,", "bad GS2 header"),
	BAD("n,,", "no username"),
	BAD("p=tls-unique,,n=user,r=abc",
	    "channel binding requested (no -PLUS offered)"),
	BAD("p=tls-exporter,a=user,n=user,r=abc",
	    "channel binding requested (no -PLUS offered)"),
	BAD("x,,n=user,r=abc", "bad GS2 channel binding flag"),
	BAD("nn,,n=user,r=abc", "bad GS2 channel binding flag"),
	BAD(",,n=user,r=abc", "bad GS2 channel binding flag"),
	BAD("N,,n=user,r=abc", "bad GS2 channel binding flag"),
	BAD("n,user,n=user,r=abc", "bad GS2 authzid"),
	BAD("n,a=,n=user,r=abc", "bad authorization identity"),
	BAD("n,a=us=er,n=user,r=abc", "bad authorization identity"),
	BAD("n,a=bob,n=user,r=abc", "authorization identity is not the "
				    "username (no proxy authorization)"),
	BAD("n,,m=ext,n=user,r=abc", "mandatory extension we do not know"),
	BAD("n,,r=abc,n=user", "no username"),
	BAD("n,,n=user", "no nonce"),
	BAD("n,,n=user,", "no nonce"),
	BAD("n,,n=user,x=abc", "no nonce"),
	BAD("n,,n=user,r=", "bad client nonce"),
	BAD("n,,n=user,r=a b", "bad client nonce"),
	BAD("n,,n=user,r=a\x7f", "bad client nonce"),
	BAD("n,,n=user,r=a\xc3\xa9", "bad client nonce"),
	BAD("n,,n=user,r=abc,", "malformed attribute"),
	BAD("n,,n=user,r=abc,xyz", "malformed attribute"),
	BAD("n,,n=,r=abc", "empty username"),
	BAD("n,,n=us=er,r=abc", "bad '=' escape in name"),
	BAD("n,,n=us=2,r=abc", "bad '=' escape in name"),
	BAD("n,,n=us=2c,r=abc", "bad '=' escape in name"),
	BAD("n,,n=us=41er,r=abc", "bad '=' escape in name"),
	BAD("n,,n=us\x01"
	    "er,r=abc",
	    "control character in username"),
	BAD("n,,n=us\xc2\x9f"
	    "er,r=abc",
	    "control character in username"),
	BAD("n,,n=us\xff"
	    "er,r=abc",
	    "username is not UTF-8"),
	BAD("n,,n=user,r=abc\0", "NUL in message"),
	BAD("n,,n=us\0er,r=abc", "NUL in message"),
	BAD("\0,,n=user,r=abc", "NUL in message"),
};

static void
test_scram_first_bad(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(first_bads); i++) {
		struct mp_sasl *s = new_mech("SCRAM-SHA-256");
		struct mp_buf out = {0};

		g_test_message("case %zu", i);
		g_assert_cmpint(
			step_n(s, first_bads[i].msg, first_bads[i].len, &out),
			==, MP_SASL_FAIL);
		g_assert_cmpstr(mp_sasl_error(s), ==, first_bads[i].error);
		g_assert_cmpuint(out.len, ==, 0);
		mp_buf_free(&out);
		mp_sasl_free(&s);
	}
}

#define RNONCE "r=abc" V_SNONCE

static const struct bad_msg final_bads[] = {
	BAD("", "no proof"),
	BAD(",", "no proof"),
	BAD("p=abc", "no proof"),
	BAD("c=biws," RNONCE, "no proof"),
	BAD("c=biws," RNONCE ",p", "no proof"),
	BAD("c=biws," RNONCE ",p=", "malformed proof"),
	BAD("c=biws," RNONCE ",p=AAAA", "malformed proof"),
	BAD("c=biws," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
	    "malformed proof"),
	BAD("c=biws," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=",
	    "malformed proof"),
	BAD("c=biws," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "wrong proof (password or user)"),
	BAD(RNONCE ",c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "no channel binding"),
	BAD("c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "no nonce"),
	BAD("c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "nonce mismatch"),
	BAD("c=biws," RNONCE "x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "nonce mismatch"),
	BAD("c=biw," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "channel binding does not match the GS2 header"),
	BAD("c=," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "channel binding does not match the GS2 header"),
	BAD("c=biws," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
	    "no proof"),
	BAD("c=biws," RNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,"
	    "x=y",
	    "no proof"),
	BAD("c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=," RNONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "no nonce"),
	BAD("c=biws," RNONCE ",p=dHzbZapWIk4j\0hN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "NUL in message"),
};

/* A SCRAM exchange up to the client-final, with the RFC 7677 secret and
 * the server nonce V_SNONCE after client nonce "abc". */
static struct mp_sasl *
scram_at_final(void)
{
	static unsigned char rnd[64];
	struct mp_sasl *s = new_mech("SCRAM-SHA-256");
	char *sf;

	nonce_bytes(V_SNONCE, rnd);
	the_rnd.bytes = rnd;
	the_rnd.len = strlen(V_SNONCE);
	the_rnd.pos = 0;
	sf = scram_begin(s, "n,,n=user,r=abc", V_SECRET);
	g_assert_true(g_str_has_prefix(sf, RNONCE ","));
	free(sf);
	the_rnd.bytes = NULL;
	return s;
}

static void
test_scram_final_bad(void)
{
	struct mp_buf out = {0};
	struct mp_sasl *s;

	for (size_t i = 0; i < G_N_ELEMENTS(final_bads); i++) {
		g_test_message("case %zu", i);
		s = scram_at_final();
		g_assert_cmpint(
			step_n(s, final_bads[i].msg, final_bads[i].len, &out),
			==, MP_SASL_FAIL);
		g_assert_cmpstr(mp_sasl_error(s), ==, final_bads[i].error);
		g_assert_cmpuint(out.len, ==, 0);
		mp_sasl_free(&s);
	}
	/* No response, and anything after the end. */
	s = scram_at_final();
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "no response");
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	mp_sasl_free(&s);
	s = new_mech("SCRAM-SHA-256");
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_CHALLENGE);
	g_assert_cmpint(step(s, NULL, &out), ==, MP_SASL_FAIL);
	mp_sasl_free(&s);
	mp_buf_free(&out);
}

/* Messages up to the limit pass; one byte more fails. */
static void
test_scram_oversize(void)
{
	struct mp_buf out = {0};
	GString *m = g_string_new("n,,n=user,r=");
	struct mp_sasl *s;

	while (m->len < MP_SASL_MESSAGE_MAX)
		g_string_append_c(m, 'x');
	s = new_mech("SCRAM-SHA-256");
	g_assert_cmpint(step_n(s, m->str, m->len, &out), ==,
			MP_SASL_NEED_SECRET);
	mp_sasl_free(&s);
	g_string_append_c(m, 'x');
	s = new_mech("SCRAM-SHA-256");
	g_assert_cmpint(step_n(s, m->str, m->len, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "message too long");
	mp_sasl_free(&s);
	g_string_assign(m, "c=biws," RNONCE ",x=");
	while (m->len <= MP_SASL_MESSAGE_MAX)
		g_string_append_c(m, 'x');
	s = scram_at_final();
	g_assert_cmpint(step_n(s, m->str, m->len, &out), ==, MP_SASL_FAIL);
	g_assert_cmpstr(mp_sasl_error(s), ==, "message too long");
	mp_sasl_free(&s);
	g_string_free(m, TRUE);
	mp_buf_free(&out);
}

/* Any cut of a valid client-first is a valid shorter one or a failure;
 * any cut or flipped byte of a valid client-final is a failure. */
static void
test_scram_truncated(void)
{
	const size_t final_len = strlen(V_CLIENT_FINAL);
	const size_t first_len = strlen(V_CLIENT_FIRST);
	char final[sizeof(V_CLIENT_FINAL)];
	struct mp_buf out = {0};

	for (int i = 0; i < 200; i++) {
		struct mp_sasl *s = new_mech("SCRAM-SHA-256");
		size_t cut = (size_t)g_test_rand_int_range(0, (int)first_len);
		enum mp_sasl_status st = step_n(s, V_CLIENT_FIRST, cut, &out);

		g_assert_true(st == MP_SASL_NEED_SECRET || st == MP_SASL_FAIL);
		mp_sasl_free(&s);

		s = scram_at_final();
		cut = (size_t)g_test_rand_int_range(0, (int)final_len);
		g_assert_cmpint(step_n(s, V_CLIENT_FINAL "", cut, &out), ==,
				MP_SASL_FAIL);
		mp_sasl_free(&s);

		memcpy(final, V_CLIENT_FINAL, sizeof(final));
		final[g_test_rand_int_range(0, (int)final_len)] ^=
			(char)g_test_rand_int_range(1, 256);
		s = scram_at_final();
		g_assert_cmpint(step_n(s, final, final_len, &out), ==,
				MP_SASL_FAIL);
		mp_sasl_free(&s);
	}
	mp_buf_free(&out);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/auth/base64/good", test_base64_good);
	g_test_add_func("/auth/base64/bad", test_base64_bad);
	g_test_add_func("/auth/base64/random", test_base64_random);
	g_test_add_func("/auth/scram-secret/known", test_secret_known);
	g_test_add_func("/auth/scram-secret/new", test_secret_new);
	g_test_add_func("/auth/scram-secret/bad", test_secret_bad);
	g_test_add_func("/auth/sasl/mechanisms", test_mechanisms);
	g_test_add_func("/auth/sasl/plain/good", test_plain_good);
	g_test_add_func("/auth/sasl/plain/bad", test_plain_bad);
	g_test_add_func("/auth/sasl/plain/no-response", test_plain_no_response);
	g_test_add_func("/auth/sasl/login/good", test_login_good);
	g_test_add_func("/auth/sasl/login/bad", test_login_bad);
	g_test_add_func("/auth/sasl/settings/limits", test_settings_limits);
	g_test_add_func("/auth/sasl/scram/rfc7677-vector", test_scram_rfc7677);
	g_test_add_func("/auth/sasl/scram/no-random", test_scram_no_random);
	g_test_add_func("/auth/sasl/scram/exchange", test_scram_exchange);
	g_test_add_func("/auth/sasl/scram/escaped-name",
			test_scram_escaped_name);
	g_test_add_func("/auth/sasl/scram/unknown-user",
			test_scram_unknown_user);
	g_test_add_func("/auth/sasl/scram/bad-stored", test_scram_bad_stored);
	g_test_add_func("/auth/sasl/scram/default-settings",
			test_scram_default_settings);
	g_test_add_func("/auth/sasl/scram/cheats", test_scram_cheats);
	g_test_add_func("/auth/sasl/scram/first-bad", test_scram_first_bad);
	g_test_add_func("/auth/sasl/scram/final-bad", test_scram_final_bad);
	g_test_add_func("/auth/sasl/scram/oversize", test_scram_oversize);
	g_test_add_func("/auth/sasl/scram/truncated", test_scram_truncated);
	return g_test_run();
}
