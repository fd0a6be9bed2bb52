/* tls.c - the server's TLS contexts: a default certificate plus SNI ones.
 *
 * Settings follow the "intermediate" profile most mail servers use today:
 * TLS 1.2 and 1.3, forward-secret AEAD ciphers for 1.2, no renegotiation, no
 * compression. Buffers are released while a connection is idle, which keeps
 * thousands of idle IMAP sessions cheap. */
#include "config.h"

#include <openssl/err.h>
#include <string.h>
#include <strings.h>

#include <moonpost/log.h>

#include "tls.h"

#define TLS12_CIPHERS                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"           \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

struct tls_cert {
	SSL_CTX *ctx;
	struct mp_strlist names; /* empty for the default certificate */
};

struct mp_tls {
	unsigned refcount;
	struct tls_cert *certs; /* certs[0] is the default */
	size_t n_certs;
};

const char *
mp_tls_error_string(const char *fallback)
{
	static __thread char text[256];
	unsigned long err = ERR_get_error();

	if (err == 0)
		return fallback;
	ERR_error_string_n(err, text, sizeof(text));
	ERR_clear_error();
	return text;
}

static bool
name_matches(const char *pattern, const char *name)
{
	const char *dot;

	if (strcasecmp(pattern, name) == 0)
		return true;
	/* "*.example.org" covers exactly one label: a.example.org. */
	if (strncmp(pattern, "*.", 2) != 0)
		return false;
	dot = strchr(name, '.');
	return dot != NULL && dot != name && strcasecmp(pattern + 1, dot) == 0;
}

static int
servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct mp_tls *tls = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (size_t i = 1; i < tls->n_certs; i++) {
		for (size_t j = 0; j < tls->certs[i].names.n; j++) {
			if (name_matches(tls->certs[i].names.v[j], name)) {
				SSL_set_SSL_CTX(ssl, tls->certs[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_OK; /* keep the default certificate */
}

static SSL_CTX *
ctx_new(const struct mp_cfg_tls *rec, const char *file, char **error_r)
{
	static const unsigned char sid_ctx[] = "moonpost";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *what = rec->cert;

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
				      SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, rec->cert) != 1)
		goto fail;
	what = rec->key;
	if (SSL_CTX_use_PrivateKey_file(ctx, rec->key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = mp_xasprintf("%s:%d: %s does not match %s", file,
					rec->line, rec->key, rec->cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
fail:
	*error_r = mp_xasprintf("%s:%d: %s: %s", file, rec->line, what,
				mp_tls_error_string("cannot set up TLS"));
	SSL_CTX_free(ctx);
	return NULL;
}

/* Puts the record without names first: it is the default certificate. */
static size_t
default_index(const struct mp_config *cfg)
{
	for (size_t i = 0; i < mp_config_tls_count(cfg); i++) {
		if (mp_config_tls(cfg, i)->names.n == 0)
			return i;
	}
	return 0;
}

struct mp_tls *
mp_tls_new(const struct mp_config *cfg, char **error_r)
{
	size_t n = mp_config_tls_count(cfg);
	size_t first = default_index(cfg);
	struct mp_tls *tls;

	*error_r = NULL;
	if (n == 0)
		return NULL;
	tls = mp_xcalloc(1, sizeof(*tls));
	tls->refcount = 1;
	tls->certs = mp_xcalloc(n, sizeof(*tls->certs));
	for (size_t k = 0; k < n; k++) {
		size_t i = k == 0 ? first : (k <= first ? k - 1 : k);
		const struct mp_cfg_tls *rec = mp_config_tls(cfg, i);
		struct tls_cert *cert = &tls->certs[tls->n_certs];

		cert->ctx = ctx_new(rec, mp_config_file(cfg), error_r);
		if (cert->ctx == NULL) {
			mp_tls_unref(&tls);
			return NULL;
		}
		tls->n_certs++;
		for (size_t j = 0; j < rec->names.n; j++)
			mp_strlist_add(&cert->names, rec->names.v[j]);
	}
	SSL_CTX_set_tlsext_servername_callback(tls->certs[0].ctx,
					       servername_cb);
	SSL_CTX_set_tlsext_servername_arg(tls->certs[0].ctx, tls);
	return tls;
}

struct mp_tls *
mp_tls_ref(struct mp_tls *tls)
{
	tls->refcount++;
	return tls;
}

void
mp_tls_unref(struct mp_tls **tlsp)
{
	struct mp_tls *tls = *tlsp;

	*tlsp = NULL;
	if (tls == NULL || --tls->refcount > 0)
		return;
	for (size_t i = 0; i < tls->n_certs; i++) {
		SSL_CTX_free(tls->certs[i].ctx);
		mp_strlist_free(&tls->certs[i].names);
	}
	free(tls->certs);
	free(tls);
}

SSL *
mp_tls_session_new(struct mp_tls *tls, int fd)
{
	SSL *ssl = SSL_new(tls->certs[0].ctx);

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		mp_log(MP_LOG_ERROR, "event=tls_setup_failed error=%s",
		       mp_q(mp_tls_error_string("SSL_new failed")));
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}
