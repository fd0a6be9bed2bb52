/* deliver-notify.c - `mailbox.create` for every mailbox a delivery's
 * fileinto created, and `mailbox.append` for every copy it stored,
 * with the envelope sender and a few header fields a notification wants
 * (From, Subject, Message-ID). Runs on the loop thread after the append
 * committed; the header is already in memory (bounded by
 * MP_DELIVER_HEADER_MAX), so this costs one pass over it, and nothing at
 * all when no script listens. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/events.h>
#include <moonpost/lua.h>
#include <moonpost/mime.h>

#include "deliver-private.h"

/* Longest header value handed to a notification: a line's worth (RFC 5322
 * 2.1.1), so a hostile Subject cannot make every event large. */
#define NOTIFY_VALUE_MAX 998

struct notify_fields {
	struct mp_buf from, subject, message_id;
	bool have_from, have_subject, have_message_id;
};

static bool
name_is(struct mp_str n, const char *name)
{
	return n.len == strlen(name) && strncasecmp(n.p, name, n.len) == 0;
}

static void
take(struct mp_buf *out, bool *have, struct mp_str v, bool decode)
{
	size_t len = v.len < NOTIFY_VALUE_MAX ? v.len : NOTIFY_VALUE_MAX;

	if (*have)
		return; /* the first field counts, as msg:header() */
	*have = true;
	if (decode)
		mp_mime_decode_header(v.p, len, out);
	else
		mp_buf_append(out, v.p, len);
	if (out->len > NOTIFY_VALUE_MAX)
		out->len = NOTIFY_VALUE_MAX; /* may cut UTF-8: rare, harmless */
	if (out->data != NULL)
		out->data[out->len] = '\0';
}

static void
fields_read(struct notify_fields *f, const char *header, size_t len)
{
	struct mp_mime_header_iter it;
	struct mp_str n, v;

	mp_mime_header_iter_init(&it, header, len);
	while (mp_mime_header_iter_next(&it, &n, &v)) {
		if (name_is(n, "From"))
			take(&f->from, &f->have_from, v, true);
		else if (name_is(n, "Subject"))
			take(&f->subject, &f->have_subject, v, true);
		else if (name_is(n, "Message-ID"))
			take(&f->message_id, &f->have_message_id, v, false);
	}
	mp_mime_header_iter_deinit(&it);
}

static const char *
value(const struct mp_buf *b, bool have)
{
	return !have ? NULL : b->data != NULL ? b->data : "";
}

/* Keywords as one space-separated string; caller frees. */
static char *
keywords_join(const struct mp_strlist *kw)
{
	struct mp_buf b = {0};

	for (size_t i = 0; i < kw->n; i++)
		mp_buf_printf(&b, "%s%s", i > 0 ? " " : "", kw->v[i]);
	return mp_buf_steal(&b);
}

void
mp_deliver_notify(struct mp_lua *lua, const struct mp_deliver_notify *n,
		  const struct mp_deliver_append *job)
{
	struct notify_fields f = {0};
	struct mp_event_who who = {"deliver", job->account, n->session_id};
	char *keywords;

	for (size_t i = 0; i < job->created.n; i++)
		mp_event_mailbox_create(lua, &who, job->created.v[i]);
	if (job->n_copies == 0 || lua == NULL ||
	    !mp_lua_has_hook(lua, "mailbox.append"))
		return;
	fields_read(&f, n->header, n->header_len);
	keywords = keywords_join(&job->actions->keywords);
	for (size_t i = 0; i < job->n_copies; i++) {
		const struct mp_deliver_copy *c = &job->copies[i];
		struct mp_event_append a = {
			.mailbox = c->mailbox,
			.uid = c->uid,
			.uidvalidity = c->uidvalidity,
			.size = c->size,
			.flags = job->actions->flags,
			.keywords = keywords,
			.sender = n->sender,
			.from = value(&f.from, f.have_from),
			.subject = value(&f.subject, f.have_subject),
			.message_id = value(&f.message_id, f.have_message_id),
		};
		mp_event_mailbox_append(lua, &who, &a);
	}
	free(keywords);
	mp_buf_free(&f.from);
	mp_buf_free(&f.subject);
	mp_buf_free(&f.message_id);
}

void
mp_deliver_copies_free(struct mp_deliver_append *job)
{
	for (size_t i = 0; i < job->n_copies; i++)
		free(job->copies[i].mailbox);
	MP_FREE(job->copies);
	job->n_copies = 0;
	mp_strlist_free(&job->created);
}
