/* test-passwd.c - tests of password hashes, the account file, dev setup. */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "dev.h"
#include "passwd.h"
#include "password.h"

/* From the SHA-crypt specification (Drepper), so {CRYPT} and
 * {SHA512-CRYPT} are checked against a hash we did not make ourselves. */
#define SHA512_VECTOR                                                          \
	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJue" \
	"sI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
#define SHA512_VECTOR_PW "Hello world!"

/* ---- helpers ---------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct tmpdir {
	char *path;
};

static void
tmpdir_setup(struct tmpdir *t, gconstpointer data)
{
	GError *error = NULL;

	t->path = g_dir_make_tmp("test-passwd-XXXXXX", &error);
	g_assert_no_error(error);
}

static void
tmpdir_teardown(struct tmpdir *t, gconstpointer data)
{
	rm_rf(t->path);
	g_free(t->path);
}

static void
write_file(const char *path, const char *text)
{
	GError *error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
}

static char *
read_file(const char *path)
{
	GError *error = NULL;
	char *text = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

static mode_t
file_mode(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st.st_mode & 07777;
}

static guint
count_dir_entries(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	guint n = 0;

	g_assert_nonnull(d);
	while (g_dir_read_name(d) != NULL)
		n++;
	g_dir_close(d);
	return n;
}

/* ---- password ---------------------------------------------------------- */

struct scheme_case {
	const char *scheme;
	const char *prefix;
};

static const struct scheme_case scheme_cases[] = {
	{"yescrypt", "{YESCRYPT}$y$"},
	{"bcrypt", "{BLF-CRYPT}$2b$"},
	{"sha512-crypt", "{SHA512-CRYPT}$6$"},
	{NULL, "{YESCRYPT}$y$"},
};

static void
test_password_hash_verify(gconstpointer data)
{
	const struct scheme_case *c = data;
	const char *error = NULL;
	char *hash = mp_password_hash("correct horse", c->scheme, &error);
	char *again = mp_password_hash("correct horse", c->scheme, &error);

	g_assert_nonnull(hash);
	g_assert_true(g_str_has_prefix(hash, c->prefix));
	g_assert_true(mp_password_verify("correct horse", hash));
	g_assert_false(mp_password_verify("correct horsE", hash));
	g_assert_false(mp_password_verify("correct hors", hash));
	g_assert_false(mp_password_verify("", hash));
	/* A fresh salt each time. */
	g_assert_cmpstr(hash, !=, again);
	free(hash);
	free(again);
}

static void
test_password_hash_errors(void)
{
	const char *error = NULL;
	char *long_pw = g_strnfill(MP_PASSWORD_MAX + 1, 'x');
	char *max_pw = g_strnfill(MP_PASSWORD_MAX, 'x');
	char *hash;

	g_assert_null(mp_password_hash("x", "md5-crypt", &error));
	g_assert_nonnull(error);
	error = NULL;
	g_assert_null(mp_password_hash("", "yescrypt", &error));
	g_assert_nonnull(error);
	error = NULL;
	g_assert_null(mp_password_hash(long_pw, "yescrypt", &error));
	g_assert_nonnull(error);
	hash = mp_password_hash(max_pw, "sha512-crypt", &error);
	g_assert_nonnull(hash);
	g_assert_true(mp_password_verify(max_pw, hash));
	g_assert_false(mp_password_verify(long_pw, hash));
	free(hash);
	g_free(long_pw);
	g_free(max_pw);
}

static void
test_password_verify_crypt(void)
{
	g_assert_true(
		mp_password_verify(SHA512_VECTOR_PW, "{CRYPT}" SHA512_VECTOR));
	g_assert_true(mp_password_verify(SHA512_VECTOR_PW,
					 "{SHA512-CRYPT}" SHA512_VECTOR));
	/* Dovecot writes schemes in upper case; accept any case. */
	g_assert_true(
		mp_password_verify(SHA512_VECTOR_PW, "{crypt}" SHA512_VECTOR));
	g_assert_false(
		mp_password_verify("Hello world?", "{CRYPT}" SHA512_VECTOR));
}

/* Dovecot and PHP write bcrypt as $2y$; it must verify as {BLF-CRYPT}. */
static void
test_password_verify_bcrypt_2y(void)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = g_new0(struct crypt_data, 1);
	char *stored;

	g_assert_nonnull(
		crypt_gensalt_rn("$2y$", 5, NULL, 0, setting, sizeof(setting)));
	stored = g_strconcat("{BLF-CRYPT}",
			     crypt_rn("pw", setting, cd, sizeof(*cd)), NULL);
	g_assert_true(mp_password_verify("pw", stored));
	g_assert_false(mp_password_verify("pW", stored));
	g_free(stored);
	g_free(cd);
}

static void
test_password_verify_rejects(void)
{
	static const char *const bad[] = {
		"",
		"{CRYPT}",
		"{CRYPT}*",
		"{CRYPT}*0",
		"{CRYPT}!" SHA512_VECTOR,
		"{CRYPT}!",
		"{YESCRYPT}",
		"{SHA512-CRYPT}",
		"{BLF-CRYPT}",
		/* Scheme and hash disagree. */
		"{YESCRYPT}" SHA512_VECTOR,
		"{BLF-CRYPT}" SHA512_VECTOR,
		/* Unknown or missing scheme. */
		"{PLAIN}" SHA512_VECTOR_PW,
		"{MD5-CRYPT}" SHA512_VECTOR,
		"{SHA512-CRYPT" SHA512_VECTOR,
		SHA512_VECTOR,
		SHA512_VECTOR_PW,
		/* Truncated or extended hashes. */
		"{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSM",
		"{SHA512-CRYPT}" SHA512_VECTOR "x",
		"{SHA512-CRYPT}$6$",
		"{CRYPT}$6$saltstring",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_test_message("stored=%s", bad[i]);
		g_assert_false(mp_password_verify(SHA512_VECTOR_PW, bad[i]));
	}
	g_assert_false(mp_password_verify(SHA512_VECTOR_PW, NULL));
	g_assert_false(mp_password_verify(NULL, "{CRYPT}" SHA512_VECTOR));
}

static void
test_password_generate(void)
{
	static const char alphabet[] =
		"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
	char a[17], b[17], big[65];

	g_assert_true(mp_password_generate(a, sizeof(a)));
	g_assert_true(mp_password_generate(b, sizeof(b)));
	g_assert_cmpuint(strlen(a), ==, 16);
	g_assert_cmpuint(strspn(a, alphabet), ==, 16);
	g_assert_cmpuint(strcspn(a, "0O1lI"), ==, 16);
	g_assert_cmpstr(a, !=, b);
	g_assert_true(mp_password_generate(big, sizeof(big)));
	g_assert_cmpuint(strlen(big), ==, 64);
	g_assert_cmpuint(strspn(big, alphabet), ==, 64);
}

/* ---- address ---------------------------------------------------------- */

struct address_case {
	const char *address;
	bool valid;
};

static const struct address_case address_cases[] = {
	{"demo@example.test", true},
	{"Demo.User+tag@Mail.Example.TEST", true},
	{"a@b", true},
	{"x_y-z!#$%&'*=?^`{|}~@xn--bcher-kva.example", true},
	{"a@1.2.3.4", true},
	{"", false},
	{"demo", false},
	{"@example.test", false},
	{"demo@", false},
	{"demo@@example.test", false},
	{"de@mo@example.test", false},
	{"demo@example..test", false},
	{"demo@.example.test", false},
	{"demo@example.test.", false},
	{"demo@-example.test", false},
	{"demo@example-.test", false},
	{"demo@exa_mple.test", false},
	{"demo@[127.0.0.1]", false},
	{".demo@example.test", false},
	{"demo.@example.test", false},
	{"de..mo@example.test", false},
	{"de mo@example.test", false},
	{"de:mo@example.test", false},
	{"demo@exa:mple.test", false},
	{"de\tmo@example.test", false},
	{"de\nmo@example.test", false},
	{"d\xc3\xa9mo@example.test", false},
	{"\"demo\"@example.test", false},
	{"../etc@example.test", false},
	{"a/b@example.test", false},
	{"a\\b@example.test", false},
	{"#demo@example.test", false},
};

static void
test_address_valid(void)
{
	char local[70], label[70], *s;

	for (size_t i = 0; i < G_N_ELEMENTS(address_cases); i++) {
		char *shown = g_strescape(address_cases[i].address, NULL);

		g_test_message("address=%s", shown);
		g_free(shown);
		g_assert_cmpint(mp_address_is_valid(address_cases[i].address),
				==, address_cases[i].valid);
	}
	g_assert_false(mp_address_is_valid(NULL));

	/* Limits: 64-byte local part, 63-byte label, 254 bytes in all. */
	memset(local, 'a', 64);
	local[64] = '\0';
	s = g_strconcat(local, "@example.test", NULL);
	g_assert_true(mp_address_is_valid(s));
	g_free(s);
	s = g_strconcat(local, "a@example.test", NULL);
	g_assert_false(mp_address_is_valid(s));
	g_free(s);
	memset(label, 'b', 63);
	label[63] = '\0';
	s = g_strconcat("a@", label, ".test", NULL);
	g_assert_true(mp_address_is_valid(s));
	g_free(s);
	s = g_strconcat("a@b", label, ".test", NULL);
	g_assert_false(mp_address_is_valid(s));
	g_free(s);
	/* 2 + 4 * 63 = 254 bytes, then 255. */
	s = g_strdup_printf("a@%s.%s.%s.%.60s", label, label, label, label);
	g_assert_cmpuint(strlen(s), ==, 254);
	g_assert_true(mp_address_is_valid(s));
	g_free(s);
	s = g_strdup_printf("a@%s.%s.%s.%.61s", label, label, label, label);
	g_assert_false(mp_address_is_valid(s));
	g_free(s);
}

/* ---- passwd file -------------------------------------------------------- */

#define HASH_A "{CRYPT}" SHA512_VECTOR
#define HASH_B "{YESCRYPT}$y$j9T$abc$def"

static void
test_passwd_read_missing(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);
	struct mp_passwd pw = {0};
	char *error = NULL;

	g_assert_true(mp_passwd_read(path, &pw, &error));
	g_assert_cmpuint(pw.n, ==, 0);
	g_assert_null(error);
	g_free(path);
}

static void
test_passwd_round_trip(struct tmpdir *t, gconstpointer data)
{
	const char *input = "# accounts\n"
			    "\n"
			    "Alice@Example.TEST:" HASH_A "\n"
			    "   \n"
			    "# bob below\n"
			    "bob@example.test:" HASH_B; /* no final newline */
	const char *expected = "# accounts\n"
			       "\n"
			       "alice@example.test:" HASH_A "\n"
			       "   \n"
			       "# bob below\n"
			       "bob@example.test:" HASH_B "\n";
	char *path = g_build_filename(t->path, "passwd", NULL);
	char *copy = g_build_filename(t->path, "passwd2", NULL);
	struct mp_passwd pw = {0};
	char *error = NULL, *text;

	write_file(path, input);
	g_assert_true(mp_passwd_read(path, &pw, &error));
	g_assert_cmpuint(pw.n, ==, 6);
	g_assert_null(pw.v[0].address);
	g_assert_cmpstr(pw.v[0].hash, ==, "# accounts");
	g_assert_cmpstr(pw.v[2].address, ==, "alice@example.test");
	g_assert_cmpstr(pw.v[2].hash, ==, HASH_A);
	g_assert_null(pw.v[3].address);
	g_assert_cmpstr(pw.v[3].hash, ==, "   ");
	g_assert_true(mp_passwd_write(copy, &pw, &error));
	text = read_file(copy);
	g_assert_cmpstr(text, ==, expected);
	g_assert_cmpint(file_mode(copy), ==, 0640);
	g_free(text);
	mp_passwd_free(&pw);
	g_assert_cmpuint(pw.n, ==, 0);
	g_assert_null(pw.v);
	g_free(path);
	g_free(copy);
}

struct bad_file {
	const char *text;
	const char *error; /* after "path:" */
};

static const struct bad_file bad_files[] = {
	{"a@example.test:" HASH_A "\nb@example.test:" HASH_B
	 "\nA@EXAMPLE.TEST:" HASH_B "\n",
	 "3: duplicate address a@example.test (first on line 1)"},
	{"# c\nnocolon\n", "2: expected address:{SCHEME}hash"},
	{"a@@example.test:" HASH_A "\n", "1: invalid address"},
	{":" HASH_A "\n", "1: invalid address"},
	{" a@example.test:" HASH_A "\n", "1: invalid address"},
	{"a@example.test:\n", "1: hash must start with {SCHEME}"},
	{"a@example.test:$6$x$y\n", "1: hash must start with {SCHEME}"},
	{"a@example.test:{}x\n", "1: hash must start with {SCHEME}"},
	{"a@example.test:{CRYPT\n", "1: hash must start with {SCHEME}"},
	{"a@example.test:{CR YPT}x\n", "1: bad character in {SCHEME}"},
	{"a@example.test:{CRYPT}\n", "1: empty hash after {SCHEME}"},
	{"a@example.test:{CRYPT}x::1000:1000::/home/a\n",
	 "1: unexpected ':' after the hash"},
	{"a@example.test:{CRYPT}x y\n",
	 "1: space or control character in the hash"},
	{"a@example.test:{CRYPT}x\r\n",
	 "1: space or control character in the hash"},
	{"\n\na@example.test:{CRYPT}x\xc3\xa9\n",
	 "3: space or control character in the hash"},
	/* Several credentials: one space apart, each scheme once. */
	{"a@example.test:{CRYPT}x  {SCRAM-SHA-256}y\n",
	 "1: space or control character in the hash"},
	{"a@example.test:{CRYPT}x \n",
	 "1: space or control character in the hash"},
	{"a@example.test:{CRYPT}x y {SCRAM-SHA-256}z\n",
	 "1: space or control character in the hash"},
	{"a@example.test:{CRYPT}x\t{SCRAM-SHA-256}z\n",
	 "1: space or control character in the hash"},
	{"a@example.test: {CRYPT}x\n", "1: hash must start with {SCHEME}"},
	{"a@example.test:{CRYPT}x {SCRAM-SHA-256}\n",
	 "1: empty hash after {SCHEME}"},
	{"a@example.test:{CRYPT}x {SCR AM}y\n", "1: bad character in {SCHEME}"},
	{"a@example.test:{CRYPT}x {}y\n", "1: hash must start with {SCHEME}"},
	{"a@example.test:{CRYPT}x {SCRAM-SHA-256}y:z\n",
	 "1: unexpected ':' after the hash"},
	{"a@example.test:{CRYPT}x {SCRAM-SHA-256}y {crypt}z\n",
	 "1: two credentials of the same {SCHEME}"},
	{"# ok\na@example.test:{CRYPT}x\0y\n", "2: NUL byte in line"},
};

static void
test_passwd_read_rejects(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);

	for (size_t i = 0; i < G_N_ELEMENTS(bad_files); i++) {
		const struct bad_file *c = &bad_files[i];
		/* The NUL case needs an explicit length. */
		size_t len = strlen(c->text);
		struct mp_passwd pw = {0};
		char *error = NULL, *want;

		if (strstr(c->error, "NUL") != NULL)
			len += 1 + strlen(c->text + len + 1);
		g_assert_true(
			g_file_set_contents(path, c->text, (gssize)len, NULL));
		g_test_message("case %zu", i);
		errno = 12345;
		g_assert_false(mp_passwd_read(path, &pw, &error));
		g_assert_cmpint(errno, ==, 0);
		want = g_strdup_printf("%s:%s", path, c->error);
		g_assert_nonnull(error);
		g_assert_true(g_str_has_prefix(error, want));
		g_assert_cmpuint(pw.n, ==, 0);
		g_assert_null(pw.v);
		g_free(want);
		free(error);
	}
	g_free(path);
}

/* From RFC 7677's example: password "pencil". */
#define SCRAM_PENCIL                                                           \
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"                        \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static void
check_credential(const struct mp_passwd_entry *e, const char *scheme,
		 const char *want)
{
	struct mp_str cred = mp_passwd_credential(e, scheme);

	if (want == NULL) {
		g_assert_null(cred.p);
		g_assert_cmpuint(cred.len, ==, 0);
		return;
	}
	g_assert_cmpmem(cred.p, cred.len, want, strlen(want));
}

static void
test_passwd_credentials(struct tmpdir *t, gconstpointer data)
{
	const char *text = "# {CRYPT}x\n"
			   "a@example.test:" HASH_B " " SCRAM_PENCIL "\n"
			   "b@example.test:" SCRAM_PENCIL " {x-Other_1}abc\n"
			   "c@example.test:" HASH_A "\n";
	char *path = g_build_filename(t->path, "passwd", NULL);
	char *copy = g_build_filename(t->path, "passwd2", NULL);
	const struct mp_passwd_entry *a, *b, *c;
	struct mp_passwd pw = {0};
	char *error = NULL, *written;

	write_file(path, text);
	g_assert_true(mp_passwd_read(path, &pw, &error));
	a = mp_passwd_find(&pw, "a@example.test");
	b = mp_passwd_find(&pw, "b@example.test");
	c = mp_passwd_find(&pw, "c@example.test");
	g_assert_cmpstr(a->hash, ==, HASH_B " " SCRAM_PENCIL);
	check_credential(a, "YESCRYPT", HASH_B);
	check_credential(a, "yescrypt", HASH_B);
	check_credential(a, "SCRAM-SHA-256", SCRAM_PENCIL);
	check_credential(a, "Scram-Sha-256", SCRAM_PENCIL);
	check_credential(a, "SCRAM-SHA", NULL);
	check_credential(a, "SCRAM-SHA-2566", NULL);
	check_credential(a, "CRYPT", NULL);
	check_credential(a, "", NULL);
	check_credential(b, "SCRAM-SHA-256", SCRAM_PENCIL);
	check_credential(b, "X-OTHER_1", "{x-Other_1}abc");
	check_credential(c, "CRYPT", HASH_A);
	check_credential(c, "SCRAM-SHA-256", NULL);
	check_credential(&pw.v[0], "CRYPT", NULL); /* the comment line */
	check_credential(NULL, "CRYPT", NULL);
	/* The password decides by the crypt hash, or by SCRAM alone. */
	g_assert_true(mp_password_verify("pencil", b->hash));
	g_assert_false(mp_password_verify("pencil!", b->hash));
	g_assert_true(mp_password_verify(SHA512_VECTOR_PW, c->hash));
	g_assert_true(mp_passwd_write(copy, &pw, &error));
	written = read_file(copy);
	g_assert_cmpstr(written, ==, text);
	g_free(written);
	mp_passwd_free(&pw);
	g_free(path);
	g_free(copy);
}

/* Of several credentials, the first crypt-style one decides, wherever it
 * is; SCRAM only when there is none; unknown schemes never. */
static void
test_password_verify_list(void)
{
	const char *pw = SHA512_VECTOR_PW;

	g_assert_true(mp_password_verify(pw, "{CRYPT}" SHA512_VECTOR
					     " " SCRAM_PENCIL));
	g_assert_false(mp_password_verify("pencil", "{CRYPT}" SHA512_VECTOR
						    " " SCRAM_PENCIL));
	g_assert_true(mp_password_verify(pw, SCRAM_PENCIL
					 " {SHA512-CRYPT}" SHA512_VECTOR));
	g_assert_false(mp_password_verify("pencil", SCRAM_PENCIL
					  " {CRYPT}" SHA512_VECTOR));
	g_assert_true(
		mp_password_verify("pencil", "{PLAIN}pencil " SCRAM_PENCIL));
	g_assert_true(mp_password_verify("pencil", SCRAM_PENCIL));
	g_assert_false(mp_password_verify("pencil", "{PLAIN}pencil"));
	g_assert_false(mp_password_verify("pencil", "{PLAIN}pencil {X}pencil"));
	/* A broken crypt hash first is not skipped for a SCRAM secret. */
	g_assert_false(mp_password_verify("pencil", "{YESCRYPT}" SHA512_VECTOR
						    " " SCRAM_PENCIL));
	g_assert_false(mp_password_verify("pencil", "{CRYPT}* " SCRAM_PENCIL));
	/* Two SHA512 hashes: only the first one counts. */
	g_assert_false(mp_password_verify(pw, "{CRYPT}$6$saltstring$x "
					      "{SHA512-CRYPT}" SHA512_VECTOR));
}

static void
test_passwd_read_long_line(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);
	/* 1024 bytes is the limit; 1025 is one too many. */
	char *hash_ok =
		g_strnfill(1024 - strlen("a@example.test:{CRYPT}"), 'x');
	char *text = g_strdup_printf("a@example.test:{CRYPT}%s\n"
				     "b@example.test:{CRYPT}%sx\n",
				     hash_ok, hash_ok);
	struct mp_passwd pw = {0};
	char *error = NULL, *want;

	write_file(path, text);
	g_assert_false(mp_passwd_read(path, &pw, &error));
	want = g_strdup_printf("%s:2: line longer than 1024 bytes", path);
	g_assert_cmpstr(error, ==, want);
	free(error);
	g_free(want);
	g_free(text);
	g_free(hash_ok);
	g_free(path);
}

/* A directory where the file should be: the read itself fails. */
static void
test_passwd_read_io_error(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);
	struct mp_passwd pw = {0};
	char *error = NULL;

	g_assert_cmpint(mkdir(path, 0700), ==, 0);
	g_assert_false(mp_passwd_read(path, &pw, &error));
	g_assert_cmpint(errno, !=, 0);
	g_assert_nonnull(error);
	free(error);
	g_free(path);
}

static void
test_passwd_find_set_remove(void)
{
	struct mp_passwd pw = {0};
	const struct mp_passwd_entry *e;

	mp_passwd_set(&pw, "Alice@Example.test", HASH_A);
	mp_passwd_set(&pw, "bob@example.test", HASH_B);
	g_assert_cmpuint(pw.n, ==, 2);
	e = mp_passwd_find(&pw, "ALICE@example.TEST");
	g_assert_nonnull(e);
	g_assert_cmpstr(e->address, ==, "alice@example.test");
	g_assert_cmpstr(e->hash, ==, HASH_A);
	mp_passwd_set(&pw, "alice@EXAMPLE.test", HASH_B);
	g_assert_cmpuint(pw.n, ==, 2);
	g_assert_cmpstr(mp_passwd_find(&pw, "alice@example.test")->hash, ==,
			HASH_B);
	g_assert_null(mp_passwd_find(&pw, "carol@example.test"));
	g_assert_false(mp_passwd_remove(&pw, "carol@example.test"));
	g_assert_true(mp_passwd_remove(&pw, "ALICE@example.test"));
	g_assert_cmpuint(pw.n, ==, 1);
	g_assert_null(mp_passwd_find(&pw, "alice@example.test"));
	g_assert_nonnull(mp_passwd_find(&pw, "bob@example.test"));
	mp_passwd_free(&pw);
}

/* Comment lines are never found, even when they look like an address. */
static void
test_passwd_find_skips_comments(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);
	struct mp_passwd pw = {0};
	char *error = NULL;

	write_file(path, "#a@example.test:" HASH_A "\n");
	g_assert_true(mp_passwd_read(path, &pw, &error));
	g_assert_null(mp_passwd_find(&pw, "#a@example.test"));
	g_assert_false(mp_passwd_remove(&pw, "#a@example.test"));
	mp_passwd_free(&pw);
	g_free(path);
}

static void
test_passwd_write_atomic(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);
	char *bad = g_build_filename(t->path, "nodir", "passwd", NULL);
	struct mp_passwd pw = {0};
	struct stat before, after;
	char *error = NULL, *text;

	write_file(path, "old\n");
	g_assert_cmpint(chmod(path, 0600), ==, 0);
	g_assert_cmpint(stat(path, &before), ==, 0);
	mp_passwd_set(&pw, "a@example.test", HASH_A);
	g_assert_true(mp_passwd_write(path, &pw, &error));
	g_assert_cmpint(stat(path, &after), ==, 0);
	/* A new inode: the file was replaced, not rewritten in place. */
	g_assert_cmpuint(before.st_ino, !=, after.st_ino);
	g_assert_cmpint(after.st_mode & 07777, ==, 0640);
	g_assert_cmpuint(after.st_uid, ==, before.st_uid);
	g_assert_cmpuint(after.st_gid, ==, before.st_gid);
	text = read_file(path);
	g_assert_cmpstr(text, ==, "a@example.test:" HASH_A "\n");
	g_assert_cmpuint(count_dir_entries(t->path), ==, 1);
	g_free(text);

	g_assert_false(mp_passwd_write(bad, &pw, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error, "nodir"));
	free(error);
	g_assert_cmpuint(count_dir_entries(t->path), ==, 1);

	mp_passwd_free(&pw);
	g_free(path);
	g_free(bad);
}

static void
test_passwd_lock(struct tmpdir *t, gconstpointer data)
{
	char *path = g_build_filename(t->path, "passwd", NULL);
	char *lock_path = g_strconcat(path, ".lock", NULL);
	char *bad = g_build_filename(t->path, "nodir", "passwd", NULL);
	char *error = NULL;
	int fd, other;

	fd = mp_passwd_lock(path, &error);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(file_mode(lock_path), ==, 0600);
	/* flock() locks belong to the open file description: a second open
	 * conflicts even in the same process. */
	other = open(lock_path, O_RDWR);
	g_assert_cmpint(other, >=, 0);
	g_assert_cmpint(flock(other, LOCK_EX | LOCK_NB), ==, -1);
	g_assert_cmpint(errno, ==, EWOULDBLOCK);
	close(fd);
	g_assert_cmpint(flock(other, LOCK_EX | LOCK_NB), ==, 0);
	close(other);

	g_assert_cmpint(mp_passwd_lock(bad, &error), ==, -1);
	g_assert_nonnull(error);
	free(error);
	g_free(path);
	g_free(lock_path);
	g_free(bad);
}

/* ---- dev directory ------------------------------------------------------- */

static char *
dev_dir(struct tmpdir *t)
{
	/* Nested, to check the mkdir -p. */
	return g_build_filename(t->path, "a", "b", "dev", NULL);
}

static void
prepare_ok(const char *dir, char **pw_r)
{
	char *error = NULL;

	if (!mp_dev_prepare(dir, pw_r, &error))
		g_error("mp_dev_prepare: %s", error);
}

static void
test_dev_prepare_creates(struct tmpdir *t, gconstpointer data)
{
	char *dir = dev_dir(t), *pw = NULL, *path, *text;
	struct mp_passwd accounts = {0};
	char *error = NULL;

	prepare_ok(dir, &pw);
	g_assert_nonnull(pw);
	g_assert_cmpuint(strlen(pw), ==, 16);
	g_assert_cmpint(file_mode(dir), ==, 0700);
	path = g_build_filename(dir, "tls", NULL);
	g_assert_cmpint(file_mode(path), ==, 0700);
	g_assert_cmpuint(count_dir_entries(path), ==, 2);
	g_free(path);
	path = g_build_filename(dir, "tls", "key.pem", NULL);
	g_assert_cmpint(file_mode(path), ==, 0600);
	text = read_file(path);
	g_assert_true(g_str_has_prefix(text, "-----BEGIN PRIVATE KEY-----"));
	g_free(text);
	g_free(path);
	path = g_build_filename(dir, "passwd", NULL);
	g_assert_cmpint(file_mode(path), ==, 0640);
	g_assert_true(mp_passwd_read(path, &accounts, &error));
	g_assert_cmpuint(accounts.n, ==, 1);
	g_assert_cmpstr(accounts.v[0].address, ==, MP_DEV_DEMO_ADDRESS);
	g_assert_true(g_str_has_prefix(accounts.v[0].hash, "{YESCRYPT}$y$"));
	g_assert_true(mp_password_verify(pw, accounts.v[0].hash));
	mp_passwd_free(&accounts);
	g_free(path);
	free(pw);
	g_free(dir);
}

struct snapshot {
	char *text[3];
	struct stat st[3];
};

static const char *const snapshot_files[] = {"tls/key.pem", "tls/cert.pem",
					     "passwd"};

static void
snapshot_take(const char *dir, struct snapshot *s)
{
	for (size_t i = 0; i < 3; i++) {
		char *path = g_build_filename(dir, snapshot_files[i], NULL);

		s->text[i] = read_file(path);
		g_assert_cmpint(stat(path, &s->st[i]), ==, 0);
		g_free(path);
	}
}

static void
snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < 3; i++)
		g_free(s->text[i]);
}

static void
test_dev_prepare_idempotent(struct tmpdir *t, gconstpointer data)
{
	char *dir = dev_dir(t), *pw = NULL;
	struct snapshot a, b;

	prepare_ok(dir, &pw);
	g_assert_nonnull(pw);
	free(pw);
	snapshot_take(dir, &a);
	pw = (char *)"sentinel";
	prepare_ok(dir, &pw);
	g_assert_null(pw);
	snapshot_take(dir, &b);
	for (size_t i = 0; i < 3; i++) {
		g_assert_cmpstr(a.text[i], ==, b.text[i]);
		g_assert_cmpuint(a.st[i].st_ino, ==, b.st[i].st_ino);
	}
	/* passwd, passwd.lock and tls: no temp file left anywhere. */
	g_assert_cmpuint(count_dir_entries(dir), ==, 3);
	snapshot_free(&a);
	snapshot_free(&b);
	g_free(dir);
}

static X509 *
load_cert(const char *dir)
{
	char *path = g_build_filename(dir, "tls", "cert.pem", NULL);
	FILE *f = fopen(path, "r");
	X509 *x;

	g_assert_nonnull(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	g_assert_nonnull(x);
	fclose(f);
	g_free(path);
	return x;
}

static EVP_PKEY *
load_key(const char *dir)
{
	char *path = g_build_filename(dir, "tls", "key.pem", NULL);
	FILE *f = fopen(path, "r");
	EVP_PKEY *key;

	g_assert_nonnull(f);
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	g_assert_nonnull(key);
	fclose(f);
	g_free(path);
	return key;
}

static void
check_sans(X509 *x)
{
	static const char *const want[] = {
		"DNS:localhost", "DNS:example.test", "DNS:mail.example.test",
		"IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"};
	GENERAL_NAMES *names =
		X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	GString *got = g_string_new(NULL);
	BIO *bio = BIO_new(BIO_s_mem());
	char *text;
	long len;

	g_assert_nonnull(names);
	g_assert_cmpint(sk_GENERAL_NAME_num(names), ==, G_N_ELEMENTS(want));
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME_print(bio, sk_GENERAL_NAME_value(names, i));
		BIO_puts(bio, "|");
	}
	len = BIO_get_mem_data(bio, &text);
	g_string_append_len(got, text, len);
	for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
		char *item = g_strconcat(want[i], "|", NULL);

		g_assert_nonnull(strstr(got->str, item));
		g_free(item);
	}
	g_assert_cmpint(X509_check_host(x, "mail.example.test", 0, 0, NULL), ==,
			1);
	g_assert_cmpint(X509_check_ip_asc(x, "::1", 0), ==, 1);
	g_assert_cmpint(X509_check_ip_asc(x, "127.0.0.1", 0), ==, 1);
	BIO_free(bio);
	g_string_free(got, TRUE);
	GENERAL_NAMES_free(names);
}

static void
check_validity(X509 *x)
{
	int days, secs;

	/* Started about an hour ago, ends 3650 days after that. */
	g_assert_cmpint(X509_cmp_current_time(X509_get0_notBefore(x)), <, 0);
	g_assert_cmpint(
		ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(x)), ==,
		1);
	g_assert_cmpint(days, ==, 0);
	g_assert_cmpint(secs, <=, -3590);
	g_assert_cmpint(secs, >=, -3700);
	g_assert_cmpint(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
				       X509_get0_notAfter(x)),
			==, 1);
	g_assert_cmpint(days, ==, 3650);
	g_assert_cmpint(secs, ==, 0);
}

static void
check_extensions(X509 *x)
{
	BASIC_CONSTRAINTS *bc =
		X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);

	g_assert_nonnull(bc);
	g_assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	g_assert_cmpuint(X509_get_key_usage(x), ==, KU_DIGITAL_SIGNATURE);
	g_assert_cmpuint(X509_get_extended_key_usage(x), ==, XKU_SSL_SERVER);
	g_assert_cmpint(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), ==,
			1);
	g_assert_cmpint(X509_get_version(x), ==, X509_VERSION_3);
}

static void
check_subject_and_serial(X509 *x)
{
	char cn[64];
	BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

	g_assert_cmpint(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
						  NID_commonName, cn,
						  sizeof(cn)),
			>, 0);
	g_assert_cmpstr(cn, ==, "localhost");
	g_assert_cmpint(X509_NAME_cmp(X509_get_subject_name(x),
				      X509_get_issuer_name(x)),
			==, 0);
	g_assert_nonnull(serial);
	g_assert_false(BN_is_negative(serial));
	/* 128 random bits: fewer than 96 is a 1 in 2^32 chance. */
	g_assert_cmpint(BN_num_bits(serial), >, 96);
	g_assert_cmpint(BN_num_bits(serial), <=, 128);
	BN_free(serial);
	g_assert_cmpint(X509_get_signature_nid(x), ==, NID_ecdsa_with_SHA256);
}

static void
test_dev_prepare_cert(struct tmpdir *t, gconstpointer data)
{
	char *dir = dev_dir(t), *pw = NULL;
	char group[64];
	EVP_PKEY *key, *pub;
	X509 *x;

	prepare_ok(dir, &pw);
	free(pw);
	x = load_cert(dir);
	key = load_key(dir);
	pub = X509_get0_pubkey(x);
	g_assert_cmpint(EVP_PKEY_get_base_id(pub), ==, EVP_PKEY_EC);
	g_assert_true(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL));
	g_assert_cmpstr(group, ==, "prime256v1");
	g_assert_cmpint(X509_check_private_key(x, key), ==, 1);
	/* Self-signed: its own key verifies it. */
	g_assert_cmpint(X509_verify(x, pub), ==, 1);
	check_sans(x);
	check_validity(x);
	check_extensions(x);
	check_subject_and_serial(x);
	EVP_PKEY_free(key);
	X509_free(x);
	g_free(dir);
}

/* A key.pem without its cert (a crash between the renames) is redone. */
static void
test_dev_prepare_lone_key(struct tmpdir *t, gconstpointer data)
{
	char *dir = dev_dir(t), *pw = NULL;
	char *cert = g_build_filename(dir, "tls", "cert.pem", NULL);
	char *key = g_build_filename(dir, "tls", "key.pem", NULL);
	char *old_key, *new_key;
	X509 *x;
	EVP_PKEY *k;

	prepare_ok(dir, &pw);
	free(pw);
	old_key = read_file(key);
	g_assert_cmpint(unlink(cert), ==, 0);
	prepare_ok(dir, &pw);
	g_assert_null(pw);
	new_key = read_file(key);
	g_assert_cmpstr(old_key, !=, new_key);
	x = load_cert(dir);
	k = load_key(dir);
	g_assert_cmpint(X509_check_private_key(x, k), ==, 1);
	EVP_PKEY_free(k);
	X509_free(x);
	g_free(old_key);
	g_free(new_key);
	g_free(cert);
	g_free(key);
	g_free(dir);
}

static void
test_dev_prepare_keeps_accounts(struct tmpdir *t, gconstpointer data)
{
	char *dir = g_build_filename(t->path, "dev", NULL);
	char *path = g_build_filename(dir, "passwd", NULL);
	struct mp_passwd accounts = {0};
	char *pw = NULL, *error = NULL, *text;

	g_assert_cmpint(mkdir(dir, 0755), ==, 0);
	write_file(path, "# mine\nalice@example.test:" HASH_A "\n");
	prepare_ok(dir, &pw);
	g_assert_nonnull(pw);
	/* An existing directory keeps its mode. */
	g_assert_cmpint(file_mode(dir), ==, 0755);
	g_assert_true(mp_passwd_read(path, &accounts, &error));
	g_assert_cmpuint(accounts.n, ==, 3);
	g_assert_cmpstr(accounts.v[0].hash, ==, "# mine");
	g_assert_cmpstr(accounts.v[1].address, ==, "alice@example.test");
	g_assert_true(mp_password_verify(
		pw, mp_passwd_find(&accounts, MP_DEV_DEMO_ADDRESS)->hash));
	mp_passwd_free(&accounts);
	free(pw);

	/* Demo already there (in any case): nothing is written. */
	write_file(path, "DEMO@example.test:" HASH_A "\n");
	prepare_ok(dir, &pw);
	g_assert_null(pw);
	text = read_file(path);
	g_assert_cmpstr(text, ==, "DEMO@example.test:" HASH_A "\n");
	g_free(text);
	g_free(path);
	g_free(dir);
}

static void
test_dev_prepare_errors(struct tmpdir *t, gconstpointer data)
{
	char *file = g_build_filename(t->path, "file", NULL);
	char *under = g_build_filename(file, "dev", NULL);
	char *dir = g_build_filename(t->path, "dev", NULL);
	char *path = g_build_filename(dir, "passwd", NULL);
	char *pw = (char *)"sentinel", *error = NULL;

	write_file(file, "x");
	g_assert_false(mp_dev_prepare(file, &pw, &error));
	g_assert_null(pw);
	g_assert_nonnull(strstr(error, "not a directory"));
	free(error);
	error = NULL;
	g_assert_false(mp_dev_prepare(under, &pw, &error));
	g_assert_nonnull(error);
	free(error);
	error = NULL;

	/* A broken passwd file is reported, not overwritten. */
	g_assert_cmpint(mkdir(dir, 0700), ==, 0);
	write_file(path, "garbage\n");
	g_assert_false(mp_dev_prepare(dir, &pw, &error));
	g_assert_null(pw);
	g_assert_nonnull(strstr(error, ":1: expected address"));
	free(error);
	g_free(file);
	g_free(under);
	g_free(dir);
	g_free(path);
}

static void
add_tmp_test(const char *name, void (*fn)(struct tmpdir *, gconstpointer))
{
	g_test_add(name, struct tmpdir, NULL, tmpdir_setup, fn,
		   tmpdir_teardown);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/auth/password/hash/yescrypt", &scheme_cases[0],
			     test_password_hash_verify);
	g_test_add_data_func("/auth/password/hash/bcrypt", &scheme_cases[1],
			     test_password_hash_verify);
	g_test_add_data_func("/auth/password/hash/sha512-crypt",
			     &scheme_cases[2], test_password_hash_verify);
	g_test_add_data_func("/auth/password/hash/default", &scheme_cases[3],
			     test_password_hash_verify);
	g_test_add_func("/auth/password/hash/errors",
			test_password_hash_errors);
	g_test_add_func("/auth/password/verify/crypt",
			test_password_verify_crypt);
	g_test_add_func("/auth/password/verify/bcrypt-2y",
			test_password_verify_bcrypt_2y);
	g_test_add_func("/auth/password/verify/rejects",
			test_password_verify_rejects);
	g_test_add_func("/auth/password/verify/list",
			test_password_verify_list);
	g_test_add_func("/auth/password/generate", test_password_generate);
	g_test_add_func("/auth/address/valid", test_address_valid);
	add_tmp_test("/auth/passwd/read/missing", test_passwd_read_missing);
	add_tmp_test("/auth/passwd/read/round-trip", test_passwd_round_trip);
	add_tmp_test("/auth/passwd/read/rejects", test_passwd_read_rejects);
	add_tmp_test("/auth/passwd/read/long-line", test_passwd_read_long_line);
	add_tmp_test("/auth/passwd/read/credentials", test_passwd_credentials);
	add_tmp_test("/auth/passwd/read/io-error", test_passwd_read_io_error);
	g_test_add_func("/auth/passwd/find-set-remove",
			test_passwd_find_set_remove);
	add_tmp_test("/auth/passwd/find/skips-comments",
		     test_passwd_find_skips_comments);
	add_tmp_test("/auth/passwd/write/atomic", test_passwd_write_atomic);
	add_tmp_test("/auth/passwd/lock", test_passwd_lock);
	add_tmp_test("/dev/prepare/creates", test_dev_prepare_creates);
	add_tmp_test("/dev/prepare/idempotent", test_dev_prepare_idempotent);
	add_tmp_test("/dev/prepare/cert", test_dev_prepare_cert);
	add_tmp_test("/dev/prepare/lone-key", test_dev_prepare_lone_key);
	add_tmp_test("/dev/prepare/keeps-accounts",
		     test_dev_prepare_keeps_accounts);
	add_tmp_test("/dev/prepare/errors", test_dev_prepare_errors);
	return g_test_run();
}
