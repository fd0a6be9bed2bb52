/* events.c - `login`, `logout` and `mailbox.*`: what each hook's handlers
 * get (docs/lua.md lists the fields), and the login check. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include <moonpost/log.h>
#include <moonpost/lua.h>

#include "events-private.h"

struct mp_login_check {
	struct mp_lua_call *call;
	struct mp_event *args;
	char *user; /* for the log line */
	mp_login_done_fn *done;
	void *ctx;
};

/* ---- login ------------------------------------------------------------ */

static void
session_fields(struct mp_event *e, const struct mp_session_info *info)
{
	mp_event_str(e, "user", info->user);
	mp_event_str(e, "service", info->service);
	mp_event_str(e, "ip", info->ip);
	mp_event_int(e, "port", info->port);
	mp_event_str(e, "local_ip", info->local_ip);
	mp_event_int(e, "local_port", info->local_port);
	mp_event_bool(e, "tls", info->tls);
	mp_event_str(e, "session", info->session_id);
}

static int
login_push(struct lua_State *L, void *ctx)
{
	mp_event_push(L, ((struct mp_login_check *)ctx)->args);
	return 1;
}

static enum mp_login_result
login_result(enum mp_verdict_kind kind)
{
	switch (kind) {
	case MP_VERDICT_CONTINUE:
	case MP_VERDICT_ACCEPT:
		return MP_LOGIN_OK;
	case MP_VERDICT_REJECT:
		return MP_LOGIN_REFUSED;
	case MP_VERDICT_DISCONNECT:
		return MP_LOGIN_DISCONNECT;
	case MP_VERDICT_DEFER:
	case MP_VERDICT_TEMPFAIL:
		break;
	}
	return MP_LOGIN_TEMPFAIL;
}

static void
login_done(const struct mp_verdict *v, void *ctx)
{
	struct mp_login_check *check = ctx;
	enum mp_login_result result = login_result(v->kind);
	mp_login_done_fn *done = check->done;
	void *done_ctx = check->ctx;

	if (result != MP_LOGIN_OK)
		mp_log(MP_LOG_INFO,
		       "session=%s event=login_refused user=%s verdict=%s",
		       check->args->session != NULL ? check->args->session
						    : "-",
		       mp_q(check->user), mp_verdict_name(v->kind));
	mp_event_free(&check->args);
	free(check->user);
	free(check);
	/* The script's words, but not our own "temporary local problem":
	 * the protocol has its own text for a failure. */
	done(result, v->kind == MP_VERDICT_TEMPFAIL ? "" : v->text, done_ctx);
}

struct mp_login_check *
mp_event_login(struct mp_lua *lua, const struct mp_session_info *info,
	       mp_login_done_fn *done, void *ctx)
{
	struct mp_login_check *check;
	struct mp_lua_call *call;

	if (lua == NULL || !mp_lua_has_hook(lua, "login")) {
		done(MP_LOGIN_OK, "", ctx);
		return NULL;
	}
	check = mp_xcalloc(1, sizeof(*check));
	check->args = mp_event_new("login", info->session_id);
	session_fields(check->args, info);
	mp_event_str(check->args, "mechanism", info->mechanism);
	check->user = mp_xstrdup(info->user);
	check->done = done;
	check->ctx = ctx;
	call = mp_lua_call_hook(lua, "login", info->session_id, login_push,
				login_done, check);
	if (call == NULL)
		return NULL; /* done ran, check is freed */
	check->call = call;
	return check;
}

void
mp_login_check_cancel(struct mp_login_check **checkp)
{
	struct mp_login_check *check = *checkp;

	*checkp = NULL;
	if (check == NULL)
		return;
	mp_lua_call_cancel(&check->call);
	mp_event_free(&check->args);
	free(check->user);
	free(check);
}

/* ---- notifications ----------------------------------------------------- */

static bool
wanted(struct mp_lua *lua, const char *hook)
{
	return lua != NULL && mp_lua_has_hook(lua, hook);
}

void
mp_event_logout(struct mp_lua *lua, const struct mp_session_info *info,
		const char *reason, const struct mp_event_counter *counters,
		size_t n)
{
	struct mp_event *e;

	if (!wanted(lua, "logout"))
		return;
	e = mp_event_new("logout", info->session_id);
	session_fields(e, info);
	mp_event_str(e, "reason", reason);
	mp_event_counters(e, "counters", counters, counters != NULL ? n : 0);
	mp_events_queue(lua, e);
}

static struct mp_event *
mailbox_event(const char *hook, const struct mp_event_who *who,
	      const char *mailbox)
{
	struct mp_event *e = mp_event_new(hook, who->session_id);

	mp_event_str(e, "user", who->user);
	mp_event_str(e, "service", who->service);
	mp_event_str(e, "session", who->session_id);
	mp_event_str(e, "mailbox", mailbox);
	return e;
}

void
mp_event_mailbox_create(struct mp_lua *lua, const struct mp_event_who *who,
			const char *mailbox)
{
	if (wanted(lua, "mailbox.create"))
		mp_events_queue(lua,
				mailbox_event("mailbox.create", who, mailbox));
}

void
mp_event_mailbox_delete(struct mp_lua *lua, const struct mp_event_who *who,
			const char *mailbox)
{
	if (wanted(lua, "mailbox.delete"))
		mp_events_queue(lua,
				mailbox_event("mailbox.delete", who, mailbox));
}

void
mp_event_mailbox_rename(struct mp_lua *lua, const struct mp_event_who *who,
			const char *old_name, const char *new_name)
{
	struct mp_event *e;

	if (!wanted(lua, "mailbox.rename"))
		return;
	e = mailbox_event("mailbox.rename", who, new_name);
	mp_event_str(e, "old", old_name);
	mp_event_str(e, "new", new_name);
	mp_events_queue(lua, e);
}

void
mp_event_mailbox_append(struct mp_lua *lua, const struct mp_event_who *who,
			const struct mp_event_append *a)
{
	struct mp_event *e;

	if (!wanted(lua, "mailbox.append"))
		return;
	e = mailbox_event("mailbox.append", who, a->mailbox);
	mp_event_int(e, "uid", a->uid);
	mp_event_int(e, "uidvalidity", a->uidvalidity);
	mp_event_int(e, "size", (int64_t)a->size);
	mp_event_flags(e, "flags", a->flags, a->keywords);
	mp_event_str(e, "sender", a->sender);
	mp_event_str(e, "from", a->from);
	mp_event_str(e, "subject", a->subject);
	mp_event_str(e, "message_id", a->message_id);
	mp_events_queue(lua, e);
}

void
mp_event_mailbox_expunge(struct mp_lua *lua, const struct mp_event_who *who,
			 const char *mailbox, uint32_t uidvalidity,
			 const uint32_t *uids, size_t n)
{
	struct mp_event *e;

	if (!wanted(lua, "mailbox.expunge") || n == 0)
		return;
	e = mailbox_event("mailbox.expunge", who, mailbox);
	mp_event_int(e, "uidvalidity", uidvalidity);
	mp_event_uids(e, "uids", uids, n);
	mp_events_queue(lua, e);
}

void
mp_event_mailbox_flags(struct mp_lua *lua, const struct mp_event_who *who,
		       const struct mp_event_flags *f)
{
	static const char *const modes[] = {"add", "remove", "replace"};
	struct mp_event *e;

	if (!wanted(lua, "mailbox.flags") || f->n == 0)
		return;
	e = mailbox_event("mailbox.flags", who, f->mailbox);
	mp_event_int(e, "uidvalidity", f->uidvalidity);
	mp_event_uids(e, "uids", f->uids, f->n);
	mp_event_str(e, "mode", modes[f->mode]);
	mp_event_flags(e, "flags", f->flags, f->keywords);
	mp_events_queue(lua, e);
}
