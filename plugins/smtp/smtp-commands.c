/* smtp-commands.c - the command table, and the commands that fit in a few
 * lines: EHLO/HELO, RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS.
 *
 * Every command is checked (the state it may come in), then carried out;
 * a command in the wrong state gets 503 5.5.1 (RFC 5321 4.3.2). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moonpost/config.h>
#include <moonpost/sasl.h>

#include "smtp-private.h"

#define S(x) (1u << (x))
#define ANY_STATE                                                              \
	(S(SMTP_S_START) | S(SMTP_S_READY) | S(SMTP_S_MAIL) | S(SMTP_S_RCPT))

struct command {
	enum smtp_verb verb;
	enum mp_status (*run)(struct smtp_session *s, const struct smtp_cmd *c);
	unsigned states;         /* bit set of enum smtp_state it may come in */
	const char *wrong_state; /* the 503 text */
};

static void
helo_done(struct smtp_session *s, const struct mp_verdict *v)
{
	struct mp_buf line = {0};
	const char *ext[12];
	size_t n = 0;
	char first[300], size[48], auth[120];

	if (smtp_verdict_refuses(s, v, 550)) {
		smtp_resume(s);
		return;
	}
	s->state = SMTP_S_READY;
	snprintf(first, sizeof(first), "%s Hello %.*s [%s]",
		 mp_config_hostname(mp_conn_config(s->conn)), 200, s->helo,
		 smtp_client_ip(s));
	if (!s->esmtp) {
		smtp_reply(s, 250, NULL, first);
		smtp_resume(s);
		return;
	}
	ext[n++] = first;
	ext[n++] = "PIPELINING";
	snprintf(size, sizeof(size), "SIZE %llu",
		 (unsigned long long)s->cfg->max_message_size);
	ext[n++] = size;
	ext[n++] = "8BITMIME";
	ext[n++] = "ENHANCEDSTATUSCODES";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "CHUNKING";
	if (mp_conn_can_starttls(s->conn))
		ext[n++] = "STARTTLS";
	if (smtp_auth_offered(s)) {
		const char *const *mechs = mp_sasl_mechanisms(true);
		size_t off = (size_t)snprintf(auth, sizeof(auth), "AUTH");
		for (size_t i = 0; mechs[i] != NULL && off < sizeof(auth); i++)
			off += (size_t)snprintf(auth + off, sizeof(auth) - off,
						" %s", mechs[i]);
		ext[n++] = auth;
	}
	ext[n++] = "HELP";
	smtp_reply_format_lines(&line, 250, NULL, ext, n);
	mp_conn_write(s->conn, line.data, line.len);
	mp_buf_free(&line);
	smtp_resume(s);
}

enum mp_status
smtp_cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *c)
{
	/* EHLO/HELO also ends a transaction (RFC 5321 4.1.4). */
	smtp_tx_reset(s);
	free(s->helo);
	s->helo = mp_xstrndup(c->arg.p, c->arg.len);
	s->esmtp = c->verb == SMTP_VERB_EHLO;
	return smtp_hook(s, "smtp.helo", s->helo, helo_done);
}

static enum mp_status
cmd_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
	smtp_tx_reset(s);
	smtp_reply(s, 250, "2.0.0", "Ok");
	return MP_OK;
}

static enum mp_status
cmd_noop(struct smtp_session *s, const struct smtp_cmd *c)
{
	smtp_reply(s, 250, "2.0.0", "Ok");
	return MP_OK;
}

static enum mp_status
cmd_quit(struct smtp_session *s, const struct smtp_cmd *c)
{
	smtp_reply(s, 221, "2.0.0", "Bye");
	mp_conn_close(s->conn, "quit");
	s->quitting = true;
	return MP_OK;
}

static enum mp_status
cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *c)
{
	/* RFC 5321 3.5.3: 252 says neither yes nor no, which is all a
	 * stranger should learn about who has an account here. */
	smtp_reply(s, 252, "2.5.2",
		   "Cannot VRFY user, but will accept message and attempt "
		   "delivery");
	return MP_OK;
}

static enum mp_status
cmd_expn(struct smtp_session *s, const struct smtp_cmd *c)
{
	smtp_reply_error(s, 502, "5.5.1", "EXPN not available");
	return MP_OK;
}

static enum mp_status
cmd_help(struct smtp_session *s, const struct smtp_cmd *c)
{
	smtp_reply(s, 214, "2.0.0",
		   "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
		   "VRFY HELP STARTTLS AUTH");
	return MP_OK;
}

static enum mp_status
cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (mp_conn_is_tls(s->conn)) {
		smtp_reply_error(s, 503, "5.5.1", "TLS already active");
		return MP_OK;
	}
	if (!mp_conn_can_starttls(s->conn)) {
		smtp_reply_error(s, 454, "4.7.0", "TLS not available");
		return MP_OK;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: after the handshake everything learnt before is
	 * forgotten, EHLO included. */
	smtp_tx_reset(s);
	MP_FREE(s->helo);
	s->state = SMTP_S_START;
	mp_conn_starttls(s->conn);
	return MP_OK;
}

static const struct command commands[] = {
	{SMTP_VERB_AUTH, smtp_cmd_auth, S(SMTP_S_READY),
	 "AUTH needs EHLO first, and no transaction"},
	{SMTP_VERB_BDAT, smtp_cmd_bdat, S(SMTP_S_RCPT) | S(SMTP_S_BDAT),
	 "Need RCPT before BDAT"},
	{SMTP_VERB_DATA, smtp_cmd_data, S(SMTP_S_RCPT),
	 "Need RCPT before DATA"},
	{SMTP_VERB_EHLO, smtp_cmd_ehlo, ANY_STATE, NULL},
	{SMTP_VERB_EXPN, cmd_expn, ANY_STATE, NULL},
	{SMTP_VERB_HELO, smtp_cmd_ehlo, ANY_STATE, NULL},
	{SMTP_VERB_HELP, cmd_help, ANY_STATE, NULL},
	{SMTP_VERB_MAIL, smtp_cmd_mail, S(SMTP_S_READY),
	 "Need EHLO first, and no transaction in progress"},
	{SMTP_VERB_NOOP, cmd_noop, ANY_STATE, NULL},
	{SMTP_VERB_QUIT, cmd_quit, ANY_STATE | S(SMTP_S_BDAT), NULL},
	{SMTP_VERB_RCPT, smtp_cmd_rcpt, S(SMTP_S_MAIL) | S(SMTP_S_RCPT),
	 "Need MAIL before RCPT"},
	{SMTP_VERB_RSET, cmd_rset, ANY_STATE | S(SMTP_S_BDAT), NULL},
	{SMTP_VERB_STARTTLS, cmd_starttls, S(SMTP_S_READY) | S(SMTP_S_START),
	 "STARTTLS is not allowed during a transaction"},
	{SMTP_VERB_VRFY, cmd_vrfy, ANY_STATE, NULL},
};

enum mp_status
smtp_command(struct smtp_session *s, const struct smtp_cmd *c)
{
	for (size_t i = 0; i < MP_NELEMS(commands); i++) {
		if (commands[i].verb != c->verb)
			continue;
		if ((commands[i].states & S(s->state)) == 0) {
			smtp_reply_error(s, 503, "5.5.1",
					 commands[i].wrong_state != NULL
						 ? commands[i].wrong_state
						 : "Bad sequence of commands");
			smtp_skip_chunk(s, c);
			return MP_OK;
		}
		if (s->state == SMTP_S_BDAT && c->verb != SMTP_VERB_BDAT &&
		    c->verb != SMTP_VERB_QUIT && c->verb != SMTP_VERB_RSET) {
			smtp_reply_error(s, 503, "5.5.1",
					 "Only BDAT may follow BDAT");
			return MP_OK;
		}
		return commands[i].run(s, c);
	}
	smtp_reply_error(s, 500, "5.5.2", "Command not recognized");
	return MP_OK;
}
