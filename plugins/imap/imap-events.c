/* imap-events.c - the Lua hooks of core/include/moonpost/events.h as IMAP
 * fires them: `login` decides between authentication and the authenticated
 * state, `logout` reports the session's end, and `mailbox.*` report changes
 * after the mailstore committed them.
 *
 * Everything is called on the loop thread, from the commands' done
 * callbacks: never from the pool. A notification is queued by the core and
 * cannot change the reply. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <moonpost/events.h>
#include <moonpost/log.h>
#include <moonpost/mailstore.h>
#include <moonpost/server.h>

#include "imap-private.h"

#define TEXT_FAILED "Authentication failed"
#define TEXT_TEMP   "Temporary authentication failure, try again later"

void
imap_session_info(const struct imap_session *s, struct mp_session_info *info)
{
	*info = (struct mp_session_info){
		.service = "imap",
		.user = s->account,
		.session_id = mp_conn_id(s->conn),
		.ip = mp_conn_peer_ip(s->conn),
		.port = mp_conn_peer_port(s->conn),
		.local_ip = mp_conn_local_ip(s->conn),
		.local_port = mp_conn_local_port(s->conn),
		.tls = mp_conn_is_tls(s->conn),
		.mechanism = s->mechanism,
	};
}

static struct mp_event_who
who(const struct imap_session *s)
{
	return (struct mp_event_who){"imap", s->account, mp_conn_id(s->conn)};
}

/* The script's text as resp-text: one line of printable characters, and
 * not so long that a client chokes on it. */
static char *
reply_text(const char *text, const char *fallback)
{
	char *out;

	if (text == NULL || text[0] == '\0')
		text = fallback;
	out = mp_xstrndup(text, strnlen(text, 500));
	for (char *p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

/* --- login ---------------------------------------------------------------
 */

static void
login_done(enum mp_login_result result, const char *text, void *ctx)
{
	struct imap_session *s = ctx;
	char *account = s->login_account;
	char *t;

	s->login_account = NULL;
	s->login_check = NULL;
	switch (result) {
	case MP_LOGIN_OK:
		imap_session_login(s, account);
		break;
	case MP_LOGIN_REFUSED:
		t = reply_text(text, TEXT_FAILED);
		imap_cmd_done(s, "NO", "AUTHENTICATIONFAILED", t);
		free(t);
		break;
	case MP_LOGIN_TEMPFAIL:
		t = reply_text(text, TEXT_TEMP);
		imap_cmd_done(s, "NO", "UNAVAILABLE", t);
		free(t);
		break;
	case MP_LOGIN_DISCONNECT:
		t = reply_text(text, TEXT_FAILED);
		imap_bye(s, t);
		free(t);
		break;
	}
	free(account);
}

/* The password was right: the `login` hook decides, then the session
 * enters the authenticated state (login_done, maybe before this returns). */
void
imap_event_login(struct imap_session *s, const char *account,
		 const char *mechanism)
{
	struct mp_session_info info;

	free(s->mechanism);
	s->mechanism = mp_xstrdup(mechanism);
	free(s->login_account);
	s->login_account = mp_xstrdup(account);
	imap_session_info(s, &info);
	info.user = s->login_account;
	s->login_check =
		mp_event_login(mp_server_lua(s->server), &info, login_done, s);
}

void
imap_event_logout(struct imap_session *s)
{
	struct mp_session_info info;
	const struct mp_event_counter counters[] = {
		{"commands", s->n_commands},
		{"appended", s->n_appended},
		{"expunged", s->n_expunged},
	};

	if (s->account == NULL)
		return;
	imap_session_info(s, &info);
	mp_event_logout(mp_server_lua(s->server), &info,
			s->end_reason != NULL ? s->end_reason : "disconnected",
			counters, MP_NELEMS(counters));
}

/* --- mailbox.* ---------------------------------------------------------- */

void
imap_event_mailbox(struct imap_session *s, const char *op, const char *name,
		   const char *to)
{
	struct mp_event_who w = who(s);
	struct mp_lua *lua = mp_server_lua(s->server);

	if (strcmp(op, "create") == 0)
		mp_event_mailbox_create(lua, &w, name);
	else if (strcmp(op, "delete") == 0)
		mp_event_mailbox_delete(lua, &w, name);
	else if (strcmp(op, "rename") == 0)
		mp_event_mailbox_rename(lua, &w, name, to);
}

void
imap_event_append(struct imap_session *s, const char *mailbox,
		  uint32_t uidvalidity, uint32_t uid, uint64_t size,
		  uint32_t flags, const char *keywords)
{
	struct mp_event_who w = who(s);
	struct mp_event_append a = {
		.mailbox = mailbox,
		.uid = uid,
		.uidvalidity = uidvalidity,
		.size = size,
		.flags = flags,
		.keywords = keywords,
	};

	s->n_appended++;
	mp_event_mailbox_append(mp_server_lua(s->server), &w, &a);
}

void
imap_event_expunge(struct imap_session *s, const char *mailbox,
		   uint32_t uidvalidity, const uint32_t *uids, size_t n)
{
	struct mp_event_who w = who(s);

	if (n == 0)
		return;
	s->n_expunged += n;
	mp_event_mailbox_expunge(mp_server_lua(s->server), &w, mailbox,
				 uidvalidity, uids, n);
}

void
imap_event_flags(struct imap_session *s, const char *mailbox,
		 uint32_t uidvalidity, const struct ms_change_list *changed,
		 int mode, uint32_t flags, const struct mp_strlist *keywords)
{
	struct mp_event_who w = who(s);
	struct mp_event_flags f = {
		.mailbox = mailbox,
		.uidvalidity = uidvalidity,
		.n = changed->msgs.n,
		.flags = flags,
	};
	struct mp_buf kw = {0};
	uint32_t *uids;

	if (changed->msgs.n == 0)
		return;
	f.mode = mode == MS_FLAGS_REMOVE    ? MP_EVENT_FLAGS_REMOVE
		 : mode == MS_FLAGS_REPLACE ? MP_EVENT_FLAGS_REPLACE
					    : MP_EVENT_FLAGS_ADD;
	uids = mp_xcalloc(changed->msgs.n, sizeof(*uids));
	for (size_t i = 0; i < changed->msgs.n; i++)
		uids[i] = changed->msgs.v[i].uid;
	f.uids = uids;
	for (size_t i = 0; keywords != NULL && i < keywords->n; i++)
		mp_buf_printf(&kw, "%s%s", i > 0 ? " " : "", keywords->v[i]);
	f.keywords = kw.data;
	mp_event_mailbox_flags(mp_server_lua(s->server), &w, &f);
	mp_buf_free(&kw);
	free(uids);
}
