/* smtp-received.c - the header lines a receiving server adds: Received
 * (RFC 5321 4.4, with the RFC 3848 protocol keywords), and for messages
 * from authenticated users the Message-ID and Date their client forgot
 * (RFC 6409 8, as Postfix does for submission). */
#include "config.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/config.h>
#include <moonpost/mime.h>

#include "smtp-private.h"

/* The header block searched for Message-ID and Date: a header longer than
 * this keeps whatever it has. */
#define HEADER_SCAN_MAX (64 * 1024)

/* "Sun, 29 Nov 2026 12:00:00 +0000" (RFC 5322 3.3). */
static void
rfc5322_date(char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* RFC 3848 (and 6531 for SMTPUTF8): ESMTP, then S for TLS, A for AUTH. */
static const char *
protocol(const struct smtp_session *s)
{
	static const char *const names[2][2][2] = {
		{{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
		{{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};

	if (!s->esmtp)
		return "SMTP";
	return names[s->tx.smtputf8][mp_conn_is_tls(s->conn)][s->user != NULL];
}

/* Keeps a client-chosen string from breaking the header: no line breaks,
 * no unbalanced parentheses in a comment, bounded. */
static void
append_clean(struct mp_buf *b, const char *s, size_t max)
{
	for (size_t i = 0; s != NULL && s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		mp_buf_printf(b, "%c",
			      c < ' ' || c == 0x7f || c == '(' || c == ')' ? '_'
									   : c);
	}
}

static void
received(struct smtp_session *s, struct mp_buf *b)
{
	const struct mp_config *cfg = mp_conn_config(s->conn);
	char date[64];

	rfc5322_date(date, sizeof(date));
	mp_buf_puts(b, "Received: from ");
	append_clean(b, s->helo != NULL ? s->helo : "unknown", 255);
	mp_buf_puts(b, " (");
	append_clean(b, s->rdns != NULL ? s->rdns : "unknown", 255);
	mp_buf_printf(b, " [%s])\r\n\tby %s (moonpost) with %s id %s.%u\r\n",
		      smtp_client_ip(s), mp_config_hostname(cfg), protocol(s),
		      mp_conn_id(s->conn), s->tx.number);
	if (mp_conn_is_tls(s->conn))
		mp_buf_printf(b, "\t(using %s with cipher %s)\r\n",
			      mp_conn_tls_version(s->conn),
			      mp_conn_tls_cipher(s->conn));
	if (s->user != NULL) {
		mp_buf_puts(b, "\t(authenticated as ");
		append_clean(b, s->user, 255);
		mp_buf_puts(b, ")\r\n");
	}
	/* "for" names the recipient only when there is one: listing all
	 * would show every copy the whole Bcc list. */
	if (s->tx.rcpts.n == 1)
		mp_buf_printf(b, "\tfor <%s>", s->tx.rcpts.v[0]);
	else
		mp_buf_puts(b, "\t");
	mp_buf_printf(b, "; %s\r\n", date);
}

static void
has_id_and_date(struct smtp_session *s, bool *id_r, bool *date_r)
{
	struct mp_mime_header_iter it;
	struct mp_str name, value;
	char *buf = mp_xmalloc(HEADER_SCAN_MAX);
	ssize_t n = pread(s->tx.spool_fd, buf, HEADER_SCAN_MAX, 0);

	*id_r = *date_r = false;
	mp_mime_header_iter_init(&it, buf, n > 0 ? (size_t)n : 0);
	while (mp_mime_header_iter_next(&it, &name, &value)) {
		if (name.len == 10 &&
		    strncasecmp(name.p, "Message-ID", 10) == 0)
			*id_r = true;
		else if (name.len == 4 && strncasecmp(name.p, "Date", 4) == 0)
			*date_r = true;
	}
	mp_mime_header_iter_deinit(&it);
	free(buf);
}

static void
submission_fields(struct smtp_session *s, struct mp_buf *b)
{
	const char *host = mp_config_hostname(mp_conn_config(s->conn));
	bool has_id, has_date;
	uint64_t rnd = 0;
	char date[64];

	has_id_and_date(s, &has_id, &has_date);
	if (!has_id) {
		if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
			rnd = (uint64_t)time(NULL) ^ (uint64_t)getpid();
		mp_buf_printf(b, "Message-ID: <%016llx.%s.%u@%s>\r\n",
			      (unsigned long long)rnd, mp_conn_id(s->conn),
			      s->tx.number, host);
	}
	if (!has_date) {
		rfc5322_date(date, sizeof(date));
		mp_buf_printf(b, "Date: %s\r\n", date);
	}
}

char *
smtp_received_prefix(struct smtp_session *s)
{
	struct mp_buf b = {0};

	received(s, &b);
	if (s->user != NULL)
		submission_fields(s, &b);
	return mp_buf_steal(&b);
}
