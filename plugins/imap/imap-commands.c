/* imap-commands.c - the command table, dispatch, and the commands of any
 * state: CAPABILITY, NOOP, LOGOUT, ID, ENABLE, NAMESPACE, CHECK, IDLE.
 *
 * Each file that implements commands exports a table; a command is found
 * by name, then checked against the session's state and the UID prefix
 * before its handler runs. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/log.h>

#include "imap-fetch-format.h"
#include "imap-private.h"

/* RFC 2971 3.3: at most 30 field-value pairs, fields of at most 30
 * octets, values of at most 1024. */
#define ID_PAIRS_MAX 30
#define ID_FIELD_MAX 30
#define ID_VALUE_MAX 1024

static const struct imap_cmd_def *const cmd_tables[] = {
	imap_session_cmds, imap_auth_cmds,   imap_view_cmds, imap_mailbox_cmds,
	imap_list_cmds,    imap_store_cmds,  imap_copy_cmds, imap_fetch_cmds,
	imap_append_cmds,  imap_search_cmds, imap_sort_cmds,
};

static const struct imap_cmd_def *
lookup(const char *verb)
{
	for (size_t t = 0; t < MP_NELEMS(cmd_tables); t++)
		for (const struct imap_cmd_def *d = cmd_tables[t];
		     d->name != NULL; d++)
			if (strcmp(d->name, verb) == 0)
				return d;
	return NULL;
}

static const char *
wrong_state(const struct imap_session *s, const struct imap_cmd_def *def)
{
	if (s->state == IMAP_S_NOT_AUTH)
		return "Not logged in";
	if (def->states == IMAP_S_NOT_AUTH)
		return "Already logged in";
	return "No mailbox selected";
}

enum mp_status
imap_dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def = lookup(cmd->verb);

	free(s->req.tag);
	s->req.tag = mp_xstrndup(cmd->tag.p, cmd->tag.len);
	s->req.uid = cmd->uid;
	s->req.cmd = cmd;
	if (def == NULL || (cmd->uid && !(def->flags & IMAP_CMD_UID))) {
		imap_cmd_bad(s, NULL, "Unknown command");
		return MP_OK;
	}
	if (!(def->states & s->state)) {
		imap_cmd_bad(s, NULL, wrong_state(s, def));
		return MP_OK;
	}
	s->req.def = def;
	if ((def->flags & IMAP_CMD_NO_ARGS) && cmd->count > 0) {
		imap_cmd_bad(s, NULL, "Unexpected arguments");
		return MP_OK;
	}
	s->req.running = true;
	return def->run(s, cmd);
}

/* --- CAPABILITY, NOOP, CHECK, LOGOUT ---------------------------------- */

static enum mp_status
cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_buf caps = {0};

	(void)cmd;
	imap_capabilities(s, &caps);
	imap_untagged(s, "CAPABILITY %s", caps.data);
	mp_buf_free(&caps);
	imap_cmd_ok(s);
	return MP_OK;
}

static enum mp_status
cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	/* imap_cmd_done() reports what changed in the selected mailbox. */
	imap_cmd_ok(s);
	return MP_OK;
}

static enum mp_status
cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_untagged(s, "BYE Logging out");
	imap_view_close(s);
	imap_cmd_ok(s);
	mp_conn_close(s->conn, "logout");
	s->quitting = true;
	s->end_reason = "logout";
	s->state = IMAP_S_LOGOUT;
	return MP_OK;
}

/* --- ID (RFC 2971) ------------------------------------------------------ */

static bool
id_params_ok(const struct imap_arg *args, size_t n)
{
	struct mp_str field, value;

	if (n % 2 != 0 || n / 2 > ID_PAIRS_MAX)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		if (!imap_arg_get_string(&args[i], &field) ||
		    field.len > ID_FIELD_MAX ||
		    !imap_arg_get_nstring(&args[i + 1], &value) ||
		    value.len > ID_VALUE_MAX)
			return false;
	}
	return true;
}

static void
id_log(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct mp_buf line = {0};
	struct mp_str field, value;

	for (size_t i = 0; i < n; i += 2) {
		imap_arg_get_string(&args[i], &field);
		imap_arg_get_nstring(&args[i + 1], &value);
		if (value.p == NULL)
			continue;
		char *f = mp_xstrndup(field.p, field.len);
		char *v = mp_xstrndup(value.p, value.len);

		mp_buf_printf(&line, " %s=%s", f, mp_q(v));
		free(f);
		free(v);
	}
	if (line.len > 0)
		mp_conn_log(s->conn, MP_LOG_INFO, "event=imap_client_id%s",
			    line.data);
	mp_buf_free(&line);
}

static enum mp_status
cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *params = NULL;
	size_t n = 0;

	if (cmd->count != 1 ||
	    (cmd->args[0].type != IMAP_ARG_NIL &&
	     !imap_arg_get_list(&cmd->args[0], &params, &n)) ||
	    !id_params_ok(params, n)) {
		imap_cmd_bad(s, NULL, "Invalid ID parameters");
		return MP_OK;
	}
	id_log(s, params, n);
	imap_untagged(s, "ID (\"name\" \"moonpost\" \"version\" \"%s\")",
		      PACKAGE_VERSION);
	imap_cmd_ok(s);
	return MP_OK;
}

/* --- ENABLE (RFC 5161) --------------------------------------------------- */

static unsigned
enable_flag(const struct mp_str *name)
{
	static const struct {
		const char *name;
		unsigned flag;
	} known[] = {
		{"IMAP4rev2", IMAP_EN_REV2},
		{"UTF8=ACCEPT", IMAP_EN_UTF8},
		{"CONDSTORE", IMAP_EN_CONDSTORE},
		{"QRESYNC", IMAP_EN_QRESYNC | IMAP_EN_CONDSTORE},
	};

	for (size_t i = 0; i < MP_NELEMS(known); i++)
		if (strlen(known[i].name) == name->len &&
		    strncasecmp(known[i].name, name->p, name->len) == 0)
			return known[i].flag;
	return 0;
}

static enum mp_status
cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	struct mp_buf line = {0};
	struct mp_str name;
	unsigned before = s->enabled;

	if (cmd->count == 0) {
		imap_cmd_bad(s, NULL, "ENABLE needs capability names");
		return MP_OK;
	}
	for (size_t i = 0; i < cmd->count; i++) {
		if (!imap_arg_get_atom(&cmd->args[i], &name)) {
			imap_cmd_bad(s, NULL, "Invalid capability name");
			mp_buf_free(&line);
			return MP_OK;
		}
		unsigned flag = enable_flag(&name);

		/* RFC 5161 3.1: only what this command newly enabled is
		 * listed; unknown names are ignored. */
		if (flag == 0 || (s->enabled & flag) == flag)
			continue;
		s->enabled |= flag;
		mp_buf_printf(&line, " %.*s", (int)name.len, name.p);
	}
	if (s->enabled & IMAP_EN_CONDSTORE && !(before & IMAP_EN_CONDSTORE) &&
	    s->view != NULL)
		imap_view_sync(s, false);
	imap_untagged(s, "ENABLED%s", line.len > 0 ? line.data : "");
	mp_buf_free(&line);
	imap_parser_update(s);
	imap_cmd_ok(s);
	return MP_OK;
}

/* --- NAMESPACE (RFC 2342) --------------------------------------------- */

static enum mp_status
cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	/* One personal namespace with "/" between levels; no shared or
	 * other users' folders. */
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_cmd_ok(s);
	return MP_OK;
}

/* --- IDLE (RFC 2177) ------------------------------------------------------ */

static enum mp_status
cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	if (s->view != NULL)
		imap_view_sync(s, true);
	mp_conn_puts(s->conn, "+ idling\r\n");
	/* Lines go to on_line's IDLE branch until DONE; changes are
	 * written as their notifications arrive (imap-view.c). */
	s->idling = true;
	return MP_OK;
}

/* --- COMPRESS (RFC 4978) ------------------------------------------------ */

static enum mp_status
cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_cmd_bad(s, NULL, "COMPRESS needs a mechanism name");
		return MP_OK;
	}
	if (!imap_arg_atom_equals(&cmd->args[0], "DEFLATE")) {
		imap_cmd_done(s, "NO", "CANNOT",
			      "Unknown compression mechanism");
		return MP_OK;
	}
	/* Already on, or a TLS upgrade under way (RFC 4978 3). */
	if (!mp_conn_can_compress(s->conn)) {
		imap_cmd_done(s, "NO", "COMPRESSIONACTIVE",
			      "Compression is already active");
		return MP_OK;
	}
	/* The OK goes out as it is; everything after it is compressed,
	 * both ways (the core treats what the client pipelined after the
	 * command as compressed, as Dovecot does). */
	imap_cmd_done(s, "OK", NULL, "DEFLATE active");
	if (!mp_conn_compress(s->conn)) {
		/* zlib had no memory: the client already compresses, so
		 * nothing it sends can be read any more. */
		imap_bye(s, "Cannot start compression");
	}
	return MP_OK;
}

const struct imap_cmd_def imap_session_cmds[] = {
	{"CAPABILITY", IMAP_S_ANY, IMAP_CMD_NO_ARGS, cmd_capability},
	{"NOOP", IMAP_S_ANY, IMAP_CMD_NO_ARGS, cmd_noop},
	{"LOGOUT", IMAP_S_ANY, IMAP_CMD_NO_ARGS, cmd_logout},
	{"ID", IMAP_S_ANY, 0, cmd_id},
	{"ENABLE", IMAP_S_LOGIN, 0, cmd_enable},
	{"NAMESPACE", IMAP_S_LOGIN, IMAP_CMD_NO_ARGS, cmd_namespace},
	{"CHECK", IMAP_S_SELECTED, IMAP_CMD_NO_ARGS, cmd_noop},
	{"IDLE", IMAP_S_LOGIN, IMAP_CMD_NO_ARGS, cmd_idle},
	{"COMPRESS", IMAP_S_LOGIN, 0, cmd_compress},
	{NULL, 0, 0, NULL},
};
