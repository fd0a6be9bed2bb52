/* pop3-commands.c - the command table, and the commands that fit in a few
 * lines: CAPA, STLS, NOOP, STAT, DELE, RSET, QUIT.
 *
 * Every command is checked (the state it may come in), then carried out;
 * a command in the wrong state gets -ERR and counts as a client error. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <moonpost/sasl.h>

#include "pop3-private.h"

#define S(x)  (1u << (x))
#define AUTHZ S(POP3_S_AUTHORIZATION)
#define TRANS S(POP3_S_TRANSACTION)

struct command {
	enum pop3_verb verb;
	enum mp_status (*run)(struct pop3_session *s, const struct pop3_cmd *c);
	unsigned states; /* bit set of enum pop3_state it may come in */
};

struct pop3_msg *
pop3_message(struct pop3_session *s, uint32_t n)
{
	struct pop3_maildrop *d = s->drop;
	char text[80];

	if (n == 0 || n > d->n) {
		snprintf(text, sizeof(text),
			 "No such message, only %zu in the maildrop", d->n);
		pop3_reply_error(s, NULL, text);
		return NULL;
	}
	if (d->msgs[n - 1].deleted) {
		snprintf(text, sizeof(text), "Message %u is deleted", n);
		pop3_reply_error(s, NULL, text);
		return NULL;
	}
	return &d->msgs[n - 1];
}

static void
capa_sasl(struct mp_buf *out, bool secure)
{
	const char *const *mechs = mp_sasl_mechanisms(secure);

	mp_buf_puts(out, "SASL");
	for (size_t i = 0; mechs[i] != NULL; i++)
		mp_buf_printf(out, " %s", mechs[i]);
	mp_buf_puts(out, "\r\n");
}

/* RFC 2449 5: the same list in both states, so a client can trust what it
 * read before logging in. */
static enum mp_status
cmd_capa(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct mp_buf out = {0};

	mp_buf_puts(&out, "+OK Capability list follows\r\n"
			  "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
			  "PIPELINING\r\n");
	if (s->cfg->expire < 0)
		mp_buf_puts(&out, "EXPIRE NEVER\r\n");
	else
		mp_buf_printf(&out, "EXPIRE %lld\r\n",
			      (long long)s->cfg->expire);
	mp_buf_puts(&out, "IMPLEMENTATION moonpost\r\n");
	if (mp_conn_can_starttls(s->conn))
		mp_buf_puts(&out, "STLS\r\n");
	if (pop3_secure(s))
		mp_buf_puts(&out, "USER\r\n");
	capa_sasl(&out, pop3_secure(s));
	mp_buf_puts(&out, ".\r\n");
	mp_conn_write(s->conn, out.data, out.len);
	mp_buf_free(&out);
	return MP_OK;
}

static enum mp_status
cmd_stls(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (mp_conn_is_tls(s->conn)) {
		pop3_reply_error(s, NULL, "TLS is already active");
		return MP_OK;
	}
	if (!mp_conn_can_starttls(s->conn)) {
		pop3_reply_error(s, NULL, "TLS is not available");
		return MP_OK;
	}
	pop3_reply(s, true, NULL, "Begin TLS negotiation");
	/* RFC 2595 4: what the client said before TLS is forgotten. */
	MP_FREE(s->user);
	mp_conn_starttls(s->conn);
	return MP_OK;
}

static enum mp_status
cmd_noop(struct pop3_session *s, const struct pop3_cmd *c)
{
	pop3_reply(s, true, NULL, NULL);
	return MP_OK;
}

/* STAT's "nn mm" (RFC 1939 5), or the same in words for RSET. */
static void
reply_counts(struct pop3_session *s, bool words)
{
	const struct pop3_maildrop *d = s->drop;
	unsigned long long size = d->size - d->del_size;
	char text[100];

	if (words)
		snprintf(text, sizeof(text),
			 "Maildrop has %zu messages (%llu octets)",
			 d->n - d->n_deleted, size);
	else
		snprintf(text, sizeof(text), "%zu %llu", d->n - d->n_deleted,
			 size);
	pop3_reply(s, true, NULL, text);
}

static enum mp_status
cmd_stat(struct pop3_session *s, const struct pop3_cmd *c)
{
	reply_counts(s, false);
	return MP_OK;
}

static enum mp_status
cmd_dele(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct pop3_msg *m = pop3_message(s, c->msg);
	char text[64];

	if (m == NULL)
		return MP_OK;
	m->deleted = true;
	s->drop->n_deleted++;
	s->drop->del_size += m->size;
	snprintf(text, sizeof(text), "Message %u deleted", c->msg);
	pop3_reply(s, true, NULL, text);
	return MP_OK;
}

static enum mp_status
cmd_rset(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct pop3_maildrop *d = s->drop;

	for (size_t i = 0; i < d->n; i++)
		d->msgs[i].deleted = false;
	d->n_deleted = 0;
	d->del_size = 0;
	reply_counts(s, true);
	return MP_OK;
}

static enum mp_status
cmd_quit(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (s->state == POP3_S_TRANSACTION) {
		pop3_update(s);
		return MP_AGAIN;
	}
	pop3_reply(s, true, NULL, "Logging out");
	mp_conn_close(s->conn, "quit");
	s->quitting = true;
	return MP_OK;
}

static const struct command commands[] = {
	{POP3_VERB_AUTH, pop3_cmd_auth, AUTHZ},
	{POP3_VERB_CAPA, cmd_capa, AUTHZ | TRANS},
	{POP3_VERB_DELE, cmd_dele, TRANS},
	{POP3_VERB_LIST, pop3_cmd_list, TRANS},
	{POP3_VERB_NOOP, cmd_noop, TRANS},
	{POP3_VERB_PASS, pop3_cmd_pass, AUTHZ},
	{POP3_VERB_QUIT, cmd_quit, AUTHZ | TRANS},
	{POP3_VERB_RETR, pop3_cmd_retr, TRANS},
	{POP3_VERB_RSET, cmd_rset, TRANS},
	{POP3_VERB_STAT, cmd_stat, TRANS},
	{POP3_VERB_STLS, cmd_stls, AUTHZ},
	{POP3_VERB_TOP, pop3_cmd_retr, TRANS},
	{POP3_VERB_UIDL, pop3_cmd_uidl, TRANS},
	{POP3_VERB_USER, pop3_cmd_user, AUTHZ},
};

enum mp_status
pop3_command(struct pop3_session *s, const struct pop3_cmd *c)
{
	for (size_t i = 0; i < MP_NELEMS(commands); i++) {
		if (commands[i].verb != c->verb)
			continue;
		if ((commands[i].states & S(s->state)) == 0) {
			pop3_reply_error(s, NULL,
					 s->state == POP3_S_AUTHORIZATION
						 ? "Not logged in"
						 : "Not allowed after login");
			return MP_OK;
		}
		return commands[i].run(s, c);
	}
	pop3_reply_error(s, NULL, "Unknown command");
	return MP_OK;
}
