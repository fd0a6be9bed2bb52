/* smtp-envelope.c - MAIL and RCPT: who sends, who receives, and the two
 * rules that keep a mail server honest: never relay for strangers, and
 * never let an authenticated user send as someone else. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/config.h>
#include <moonpost/recipient.h>
#include <moonpost/server.h>

#include "smtp-private.h"

static struct mp_auth *
auth_of(struct smtp_session *s)
{
	return mp_server_auth(s->server);
}

/* An authenticated user may send as their own address, or as an alias
 * that delivers to them (a shared postmaster@, say). */
static bool
owns_sender(struct smtp_session *s, const char *sender)
{
	struct mp_recipient r = {0};
	bool owns;

	if (sender[0] == '\0' || strcasecmp(sender, s->user) == 0)
		return true;
	owns = mp_recipient_resolve(auth_of(s), sender, &r) ==
		       MP_RECIPIENT_OK &&
	       mp_strlist_contains_icase(&r.local, s->user);
	mp_recipient_clear(&r);
	return owns;
}

static void
mail_done(struct smtp_session *s, const struct mp_verdict *v)
{
	if (smtp_verdict_refuses(s, v, 550)) {
		smtp_tx_reset(s);
	} else {
		s->state = SMTP_S_MAIL;
		smtp_reply(s, 250, "2.1.0", "Ok");
	}
	smtp_resume(s);
}

enum mp_status
smtp_cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	const char *sender = c->path.mailbox;

	if (smtp_auth_required(s) && s->user == NULL) {
		smtp_reply_error(s, 530, "5.7.0", "Authentication required");
		return MP_OK;
	}
	if (s->user != NULL && !s->cfg->allow_sender_mismatch &&
	    !owns_sender(s, sender)) {
		smtp_reply_error(s, 553, "5.7.1",
				 "Sender address rejected: not owned by user");
		return MP_OK;
	}
	smtp_tx_reset(s);
	s->tx.sender = mp_xstrdup(sender);
	s->tx.smtputf8 = c->mail.smtputf8;
	s->tx.size_hint = c->mail.has_size ? c->mail.size : 0;
	s->tx.number++;
	return smtp_hook(s, "smtp.mail", sender, mail_done);
}

static void
rcpt_done(struct smtp_session *s, const struct mp_verdict *v)
{
	if (!smtp_verdict_refuses(s, v, 550)) {
		mp_strlist_add(&s->tx.rcpts, s->hook_arg);
		s->state = SMTP_S_RCPT;
		smtp_reply(s, 250, "2.1.5", "Ok");
	}
	MP_FREE(s->hook_arg);
	smtp_resume(s);
}

/* <Postmaster> without a domain means this server's postmaster (RFC 5321
 * 4.5.1): the first local domain's. */
static char *
recipient_address(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct mp_strlist *domains =
		mp_config_domains(mp_conn_config(s->conn));

	if (!c->path.postmaster)
		return mp_xstrdup(c->path.mailbox);
	return mp_xasprintf(
		"postmaster@%s",
		domains->n > 0 ? domains->v[0]
			       : mp_config_hostname(mp_conn_config(s->conn)));
}

/* Checks a local recipient; false after a reply. */
static bool
local_recipient_ok(struct smtp_session *s, const char *rcpt)
{
	struct mp_recipient r = {0};
	enum mp_recipient_status st =
		mp_recipient_resolve(auth_of(s), rcpt, &r);
	bool external = r.external.n > 0;

	mp_recipient_clear(&r);
	if (st == MP_RECIPIENT_UNKNOWN) {
		smtp_reply_error(s, 550, "5.1.1",
				 "Recipient address rejected: User unknown");
		return false;
	}
	if (st == MP_RECIPIENT_ERROR) {
		smtp_reply(s, 451, "4.3.0", "Temporary lookup failure");
		return false;
	}
	if (external) {
		/* Forwarding leaves through the outbound queue, which this
		 * server does not have yet: defer this one recipient rather
		 * than the whole message later. */
		smtp_reply(s, 451, "4.3.0",
			   "Forwarding needs the outbound queue, not "
			   "available yet");
		return false;
	}
	return true;
}

/* Checks a recipient in another domain; false after a reply. */
static bool
remote_recipient_ok(struct smtp_session *s)
{
	if (s->user == NULL) {
		/* The MX port, or anyone not logged in: never an open relay
		 * (Postfix's reject_unauth_destination). */
		smtp_reply_error(s, 554, "5.7.1", "Relay access denied");
		return false;
	}
	smtp_reply(s, 451, "4.3.0",
		   "Relaying needs the outbound queue, not available yet");
	return false;
}

enum mp_status
smtp_cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct mp_config *cfg = mp_conn_config(s->conn);
	char *rcpt;
	const char *at;

	if (s->tx.rcpts.n >= (size_t)s->cfg->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, so the client sends the rest in
		 * another transaction. */
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return MP_OK;
	}
	if (c->path.utf8 && !s->tx.smtputf8) {
		struct smtp_error e;
		smtp_error_set_need_smtputf8(&e);
		smtp_reply_error(s, e.code, e.enhanced, e.text);
		return MP_OK;
	}
	rcpt = recipient_address(s, c);
	at = strrchr(rcpt, '@');
	if (at == NULL || (mp_config_is_local_domain(cfg, at + 1)
				   ? !local_recipient_ok(s, rcpt)
				   : !remote_recipient_ok(s))) {
		free(rcpt);
		return MP_OK;
	}
	free(s->hook_arg);
	s->hook_arg = rcpt;
	return smtp_hook(s, "smtp.rcpt", rcpt, rcpt_done);
}
