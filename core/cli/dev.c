/* dev.c - the data directory of `serve --dev`: TLS certificate, demo user. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "dev.h"
#include "passwd.h"
#include "password.h"

/* Ten years: a dev certificate should never be why a demo stops working. */
#define DEV_CERT_DAYS 3650L
/* Start an hour back so a client whose clock lags still accepts it. */
#define DEV_CERT_BACKDATE 3600L
/* The names the dev config listens on and the demo domain. */
#define DEV_CERT_SAN                                                           \
	"DNS:localhost,DNS:example.test,DNS:mail.example.test,"                \
	"IP:127.0.0.1,IP:::1"
#define DEV_PASSWORD_LEN 16

static bool
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool
mkdir_one(const char *path, char **error_r)
{
	if (mkdir(path, 0700) == 0 || (errno == EEXIST && is_dir(path)))
		return true;
	*error_r = mp_xasprintf("cannot create %s: %s", path,
				errno == EEXIST ? "not a directory"
						: strerror(errno));
	return false;
}

/* mkdir -p; directories it creates get mode 0700. */
static bool
mkdir_p(const char *path, char **error_r)
{
	char *copy = mp_xstrdup(path);
	bool ok = true;

	for (char *p = copy + 1; ok && *p != '\0'; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		ok = mkdir_one(copy, error_r);
		*p = '/';
	}
	if (ok)
		ok = mkdir_one(copy, error_r);
	free(copy);
	return ok;
}

static bool
file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* The first queued OpenSSL error, for a message; clears the queue. */
static char *
openssl_error(const char *what)
{
	char reason[256] = "unknown error";
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	return mp_xasprintf("cannot %s: %s", what, reason);
}

static bool
set_random_serial(X509 *x)
{
	unsigned char bytes[16];
	BIGNUM *bn;
	bool ok;

	/* RFC 5280 4.1.2.2: positive, unique per issuer, at most 20 bytes;
	 * 128 random bits make a clash with an older dev cert impossible. */
	do {
		if (RAND_bytes(bytes, sizeof(bytes)) != 1)
			return false;
		bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
		if (bn == NULL)
			return false;
		if (!BN_is_zero(bn))
			break;
		BN_free(bn);
	} while (true);
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

static bool
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return false;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

static bool
set_extensions(X509 *x)
{
	return add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
	       add_ext(x, NID_key_usage, "critical,digitalSignature") &&
	       add_ext(x, NID_ext_key_usage, "serverAuth") &&
	       add_ext(x, NID_subject_alt_name, DEV_CERT_SAN) &&
	       add_ext(x, NID_subject_key_identifier, "hash");
}

static bool
set_name_and_validity(X509 *x)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"localhost", -1,
					-1, 0))
		return false;
	/* Self-signed: the issuer is the subject. */
	if (X509_set_issuer_name(x, name) != 1)
		return false;
	return X509_gmtime_adj(X509_getm_notBefore(x), -DEV_CERT_BACKDATE) &&
	       X509_gmtime_adj(X509_getm_notAfter(x),
			       DEV_CERT_DAYS * 86400 - DEV_CERT_BACKDATE);
}

/* A self-signed server certificate for key; NULL on failure. */
static X509 *
make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();

	if (x == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) == 1 && set_random_serial(x) &&
	    set_name_and_validity(x) && X509_set_pubkey(x, key) == 1 &&
	    set_extensions(x) && X509_sign(x, key, EVP_sha256()) > 0)
		return x;
	X509_free(x);
	return NULL;
}

static bool
pem_to_file(FILE *f, EVP_PKEY *key, X509 *cert)
{
	if (key != NULL)
		return PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,
					    NULL) == 1;
	return PEM_write_X509(f, cert) == 1;
}

/* Fills fd (closed on return) with key or cert; NULL or why it failed. */
static const char *
fill_pem(int fd, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	FILE *f = fdopen(fd, "w");
	const char *error = NULL;

	if (f == NULL) {
		error = strerror(errno);
		close(fd);
		return error;
	}
	if (fchmod(fd, mode) < 0)
		error = strerror(errno);
	else if (!pem_to_file(f, key, cert))
		error = "PEM encoding failed";
	else if (fflush(f) != 0 || fsync(fd) < 0)
		error = strerror(errno);
	if (fclose(f) != 0 && error == NULL)
		error = strerror(errno);
	return error;
}

/* Writes key or cert to path with mode, through a temp file and a rename
 * so that a crash leaves the old file or the new one, never half of one. */
static bool
write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert,
	  char **error_r)
{
	char *tmp = mp_xasprintf("%s.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	const char *error;

	if (fd < 0) {
		*error_r = mp_xasprintf("cannot create %s: %s", tmp,
					strerror(errno));
		free(tmp);
		return false;
	}
	error = fill_pem(fd, mode, key, cert);
	if (error == NULL && rename(tmp, path) < 0)
		error = strerror(errno);
	if (error != NULL) {
		*error_r = mp_xasprintf("cannot write %s: %s", path, error);
		unlink(tmp);
	}
	free(tmp);
	return error == NULL;
}

/* Makes the renames in dir survive a crash. */
static bool
fsync_dir(const char *dir, char **error_r)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0 && fsync(fd) == 0) {
		close(fd);
		return true;
	}
	*error_r = mp_xasprintf("cannot fsync %s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return false;
}

static bool
write_key_and_cert(const char *tls_dir, EVP_PKEY *key, X509 *cert,
		   char **error_r)
{
	char *key_path = mp_xasprintf("%s/key.pem", tls_dir);
	char *cert_path = mp_xasprintf("%s/cert.pem", tls_dir);
	/* A crash between the two leaves a lone key, which the next run
	 * replaces (see prepare_cert). */
	bool ok = write_pem(key_path, 0600, key, NULL, error_r) &&
		  write_pem(cert_path, 0644, NULL, cert, error_r) &&
		  fsync_dir(tls_dir, error_r);

	free(key_path);
	free(cert_path);
	return ok;
}

static bool
cert_is_there(const char *tls_dir)
{
	char *key_path = mp_xasprintf("%s/key.pem", tls_dir);
	char *cert_path = mp_xasprintf("%s/cert.pem", tls_dir);
	bool there = file_exists(key_path) && file_exists(cert_path);

	free(key_path);
	free(cert_path);
	return there;
}

/* Makes tls/key.pem and tls/cert.pem unless both exist already. A lone one
 * (a crash between the two renames) is replaced: they must match. */
static bool
prepare_cert(const char *dir, char **error_r)
{
	char *tls_dir = mp_xasprintf("%s/tls", dir);
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	bool ok = mkdir_one(tls_dir, error_r);

	if (!ok || cert_is_there(tls_dir))
		goto out;
	key = EVP_EC_gen("P-256");
	if (key == NULL) {
		*error_r = openssl_error("make the dev TLS key");
		ok = false;
		goto out;
	}
	cert = make_cert(key);
	if (cert == NULL) {
		*error_r = openssl_error("make the dev TLS certificate");
		ok = false;
		goto out;
	}
	ok = write_key_and_cert(tls_dir, key, cert, error_r);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	free(tls_dir);
	return ok;
}

/* Adds the demo account to pw and writes it; the password on success. */
static char *
add_demo(const char *path, struct mp_passwd *pw, char **error_r)
{
	char password[DEV_PASSWORD_LEN + 1];
	char *hash, *scram, *creds, *result;
	const char *error;

	if (!mp_password_generate(password, sizeof(password))) {
		*error_r = mp_xstrdup("cannot generate the demo password: "
				      "the system RNG failed");
		return NULL;
	}
	hash = mp_password_hash(password, "yescrypt", &error);
	/* The SCRAM secret too, as `moonpost user add` stores it, so every
	 * mechanism works against the dev account. */
	scram = hash != NULL ? mp_scram_secret_new(password, 0, &error) : NULL;
	if (scram == NULL) {
		explicit_bzero(password, sizeof(password));
		free(hash);
		*error_r = mp_xasprintf("cannot hash the demo password: %s",
					error);
		return NULL;
	}
	creds = mp_xasprintf("%s %s", hash, scram);
	mp_passwd_set(pw, MP_DEV_DEMO_ADDRESS, creds);
	free(creds);
	free(scram);
	free(hash);
	result = mp_passwd_write(path, pw, error_r) ? mp_xstrdup(password)
						    : NULL;
	explicit_bzero(password, sizeof(password));
	return result;
}

static bool
prepare_passwd(const char *dir, char **demo_password_r, char **error_r)
{
	char *path = mp_xasprintf("%s/passwd", dir);
	struct mp_passwd pw = {0};
	bool ok;
	int lock;

	if ((lock = mp_passwd_lock(path, error_r)) < 0) {
		free(path);
		return false;
	}
	ok = mp_passwd_read(path, &pw, error_r);
	if (ok && mp_passwd_find(&pw, MP_DEV_DEMO_ADDRESS) == NULL) {
		*demo_password_r = add_demo(path, &pw, error_r);
		ok = *demo_password_r != NULL;
	}
	mp_passwd_free(&pw);
	close(lock);
	free(path);
	return ok;
}

bool
mp_dev_prepare(const char *dir, char **demo_password_r, char **error_r)
{
	*demo_password_r = NULL;
	return mkdir_p(dir, error_r) && prepare_cert(dir, error_r) &&
	       prepare_passwd(dir, demo_password_r, error_r);
}
