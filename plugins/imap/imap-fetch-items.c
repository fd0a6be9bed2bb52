/* imap-fetch-items.c - FETCH data items: parsing the item list and its
 * modifiers, and writing one message's response from the index and from
 * byte ranges of its file (imap-section.h plans the ranges).
 *
 * Literals are not written here in one go: a section item sets up a
 * literal (f->lit) and imap-fetch.c sends it chunk by chunk through
 * imap_fetch_literal_step() as the client reads. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/log.h>
#include <moonpost/mime.h>

#include "imap-fetch-format.h"
#include "imap-fetch.h"

/* --- parsing ------------------------------------------------------------ */

static const struct {
	const char *name;
	enum imap_fetch_kind kind;
} simple_items[] = {
	{"UID", IMAP_FETCH_UID},
	{"FLAGS", IMAP_FETCH_FLAGS},
	{"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
	{"RFC822.SIZE", IMAP_FETCH_SIZE},
	{"ENVELOPE", IMAP_FETCH_ENVELOPE},
	{"BODY", IMAP_FETCH_BODY},
	{"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
	{"MODSEQ", IMAP_FETCH_MODSEQ},
};

static struct imap_fetch_item *
item_add(struct imap_fetch *f, enum imap_fetch_kind kind)
{
	struct imap_fetch_item *it;

	if (f->n >= IMAP_FETCH_ITEMS_MAX)
		return NULL;
	f->items = mp_xrealloc(f->items, (f->n + 1) * sizeof(*f->items));
	it = &f->items[f->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	f->want |= 1u << kind;
	if (kind == IMAP_FETCH_ENVELOPE || kind == IMAP_FETCH_BODY ||
	    kind == IMAP_FETCH_BODYSTRUCTURE || kind == IMAP_FETCH_SECTION)
		f->need_mime = true;
	return it;
}

/* BODY[...]<...>, BINARY..., RFC822, RFC822.HEADER, RFC822.TEXT. */
static bool
parse_section(struct imap_fetch *f, const struct imap_arg *a,
	      struct mp_str name, const char **error_r)
{
	struct imap_section_parts in = {.name = name};
	struct imap_fetch_item *it;
	struct mp_str *names = NULL;
	bool ok;

	if (a->type == IMAP_ARG_FETCH_ATT) {
		const struct imap_fetch_section *fs = a->section;

		in.bracket = true;
		in.spec = fs->spec;
		in.partial = fs->partial;
		in.offset = fs->offset;
		in.size = fs->count;
		in.nfields = fs->nfields;
		names = mp_xcalloc(fs->nfields + 1, sizeof(*names));
		for (size_t i = 0; i < fs->nfields; i++)
			if (!imap_arg_get_astring(&fs->fields[i], &names[i])) {
				free(names);
				*error_r = "Invalid header field name";
				return false;
			}
		in.fields = names;
	}
	if ((it = item_add(f, IMAP_FETCH_SECTION)) == NULL) {
		free(names);
		*error_r = "Too many fetch items";
		return false;
	}
	ok = imap_section_from_parts(&in, &it->sec, error_r);
	free(names);
	if (ok && !it->sec.peek)
		f->sets_seen = true;
	return ok;
}

static bool
parse_att(struct imap_fetch *f, const struct imap_arg *a, const char **error_r)
{
	struct mp_str name;

	if (a->type == IMAP_ARG_FETCH_ATT)
		return parse_section(f, a, a->str, error_r);
	if (a->type != IMAP_ARG_ATOM || !imap_arg_get_atom(a, &name)) {
		*error_r = "Invalid fetch item";
		return false;
	}
	for (size_t i = 0; i < MP_NELEMS(simple_items); i++) {
		if (!imap_arg_atom_equals(a, simple_items[i].name))
			continue;
		if (item_add(f, simple_items[i].kind) == NULL) {
			*error_r = "Too many fetch items";
			return false;
		}
		return true;
	}
	return parse_section(f, a, name, error_r);
}

/* ALL, FAST and FULL (RFC 3501 6.4.5); only alone, never in a list. */
static bool
parse_macro(struct imap_fetch *f, const struct imap_arg *a)
{
	static const enum imap_fetch_kind fast[] = {
		IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_SIZE,
		IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY};
	size_t n;

	if (imap_arg_atom_equals(a, "FAST"))
		n = 3;
	else if (imap_arg_atom_equals(a, "ALL"))
		n = 4;
	else if (imap_arg_atom_equals(a, "FULL"))
		n = 5;
	else
		return false;
	for (size_t i = 0; i < n; i++)
		item_add(f, fast[i]);
	return true;
}

/* The UID set exactly as given, for VANISHED (its expunged UIDs are no
 * longer in the view). */
static bool
parse_asked(struct imap_session *s, const struct imap_arg *arg,
	    struct imap_fetch *f)
{
	const char *error = NULL;
	struct mp_str text;

	if (!imap_arg_get_atom(arg, &text) ||
	    imap_seqset_parse(&f->asked, text.p, text.len, UINT32_MAX,
			      IMAP_SEQSET_UID, s->limits.seqset_ranges_max,
			      &error) != IMAP_SEQSET_OK)
		return false;
	if (f->asked.saved)
		for (size_t i = 0; i < s->view->saved.count; i++)
			imap_seqset_add(&f->asked, s->view->saved.ranges[i].lo,
					s->view->saved.ranges[i].hi);
	imap_seqset_normalize(&f->asked);
	return true;
}

/* "(CHANGEDSINCE n [VANISHED])" (RFC 7162 3.1.4, 3.2.6). */
static bool
parse_modifiers(struct imap_session *s, const struct imap_command *cmd,
		struct imap_fetch *f, const char **error_r)
{
	const struct imap_arg *m;
	bool since = false;
	size_t n;

	*error_r = "Invalid FETCH modifiers";
	if (!imap_arg_get_list(&cmd->args[2], &m, &n) || n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&m[i], "CHANGEDSINCE") && i + 1 < n &&
		    imap_arg_get_number(&m[i + 1], &f->changedsince)) {
			since = true;
			i++;
		} else if (imap_arg_atom_equals(&m[i], "VANISHED")) {
			f->vanished = true;
		} else {
			*error_r = "Unknown FETCH modifier";
			return false;
		}
	}
	if (f->vanished) {
		/* RFC 7162 3.2.6: UID FETCH only, with CHANGEDSINCE, after
		 * ENABLE QRESYNC. */
		if (!cmd->uid || !since || !(s->enabled & IMAP_EN_QRESYNC)) {
			*error_r = "VANISHED needs UID FETCH, CHANGEDSINCE "
				   "and QRESYNC";
			return false;
		}
		if (!parse_asked(s, &cmd->args[0], f))
			return false;
	}
	if (!since)
		return false;
	/* RFC 7162 3.1: CHANGEDSINCE enables CONDSTORE. */
	s->enabled |= IMAP_EN_CONDSTORE;
	f->changedsince_on = true;
	return true;
}

bool
imap_fetch_parse(struct imap_session *s, const struct imap_command *cmd,
		 struct imap_fetch *f)
{
	const char *error = "Invalid fetch items";
	const struct imap_arg *list = NULL;
	size_t n = 0;

	if (cmd->count < 2 || cmd->count > 3) {
		imap_cmd_bad(s, NULL, "FETCH needs a set and items");
		return false;
	}
	if (cmd->args[1].type == IMAP_ARG_LIST) {
		imap_arg_get_list(&cmd->args[1], &list, &n);
		if (n == 0)
			goto bad;
		for (size_t i = 0; i < n; i++)
			if (!parse_att(f, &list[i], &error))
				goto bad;
	} else if (!parse_macro(f, &cmd->args[1]) &&
		   !parse_att(f, &cmd->args[1], &error)) {
		goto bad;
	}
	if (cmd->count == 3 && !parse_modifiers(s, cmd, f, &error))
		goto bad;
	/* RFC 7162 3.1: fetching MODSEQ enables CONDSTORE. */
	if (f->want & (1u << IMAP_FETCH_MODSEQ))
		s->enabled |= IMAP_EN_CONDSTORE;
	return true;
bad:
	imap_cmd_bad(s, NULL, error);
	return false;
}

/* --- the message -------------------------------------------------------- */

static ssize_t
read_at(void *ctx, uint64_t offset, void *buf, size_t len, const char **error_r)
{
	struct imap_fetch *f = ctx;
	ssize_t n;

	do
		n = pread(f->cur.fd, buf, len, (off_t)offset);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		*error_r = strerror(errno);
	return n;
}

void
imap_fetch_message_close(struct imap_fetch *f)
{
	if (f->lit == IMAP_FETCH_LIT_DECODE)
		imap_binary_reader_deinit(&f->reader);
	f->lit = IMAP_FETCH_LIT_NONE;
	if (!f->open && f->cur.fd < 0 && f->cur.mime == NULL &&
	    f->cur.meta.v == NULL)
		return;
	ms_msg_list_free(&f->cur.meta);
	mp_mime_message_free(&f->cur.mime);
	if (f->cur.fd >= 0)
		close(f->cur.fd);
	memset(&f->cur, 0, sizeof(f->cur));
	f->cur.fd = -1;
	f->open = false;
}

static uint32_t
next_uid(struct imap_fetch *f)
{
	uint32_t uid = f->next;

	if (uid == 0)
		return 0;
	if (uid == f->uids.ranges[f->range].hi) {
		f->range++;
		f->next = f->range < f->uids.count ? f->uids.ranges[f->range].lo
						   : 0;
	} else {
		f->next = uid + 1;
	}
	return uid;
}

/* Plans the section items of the open message. False when it cannot be
 * sent (and why is noted in f). */
static bool
plan_sections(struct imap_session *s, struct imap_fetch *f)
{
	struct imap_fetch_msg *m = &f->cur;
	const char *error = NULL;
	struct ms_error err;

	for (size_t i = 0; i < f->n; i++) {
		struct imap_fetch_item *it = &f->items[i];

		if (it->kind != IMAP_FETCH_SECTION)
			continue;
		imap_section_resolve(&it->sec, m->mime, &it->plan);
		if (it->plan.source == IMAP_SOURCE_UNKNOWN_CTE) {
			f->unknown_cte = true;
			return false;
		}
		if (it->plan.source == IMAP_SOURCE_NIL)
			continue;
		if (m->fd < 0 &&
		    (m->fd = ms_message_open(s->view->mb, m->uid, &err)) < 0) {
			if (err.code == MS_ERR_NOT_FOUND) {
				f->expunged = true;
				return false;
			}
			error = err.text;
			break;
		}
		if (it->plan.source == IMAP_SOURCE_DECODE &&
		    !imap_binary_size(&it->plan, read_at, f, &it->decoded_size,
				      &it->decoded_nul, &error))
			break;
	}
	if (error == NULL)
		return true;
	mp_conn_log(s->conn, MP_LOG_WARN,
		    "event=imap_fetch_failed uid=%u error=%s", m->uid,
		    mp_q(error));
	f->failed = true;
	return false;
}

/* Loads uid; false when it is skipped. */
static bool
message_open(struct imap_session *s, struct imap_fetch *f, uint32_t uid)
{
	struct imap_fetch_msg *m = &f->cur;
	struct ms_error err;
	enum ms_result r;

	m->uid = uid;
	m->seq = imap_view_seq(s->view, uid);
	if (m->seq == 0)
		return false;
	r = ms_message_get(s->view->mb, uid, &m->meta,
			   f->need_mime ? &m->mime : NULL, &err);
	if (r == MS_ERR_NOT_FOUND) {
		f->expunged = true;
		return false;
	}
	if (r != MS_OK || m->meta.n != 1 || (f->need_mime && m->mime == NULL)) {
		mp_conn_log(s->conn, MP_LOG_WARN,
			    "event=imap_fetch_failed uid=%u error=%s", uid,
			    mp_q(r != MS_OK ? err.text : "no structure"));
		f->failed = true;
		return false;
	}
	if (f->changedsince_on && m->meta.v[0].modseq <= f->changedsince)
		return false;
	return plan_sections(s, f);
}

static void
sep(struct imap_fetch *f)
{
	if (f->cur.sep)
		mp_buf_puts(&f->out, " ");
	f->cur.sep = true;
}

bool
imap_fetch_message_next(struct imap_session *s, struct imap_fetch *f)
{
	uint32_t uid;

	while ((uid = next_uid(f)) != 0) {
		if (!message_open(s, f, uid)) {
			imap_fetch_message_close(f);
			continue;
		}
		f->open = true;
		mp_buf_printf(&f->out, "* %u FETCH (", f->cur.seq);
		/* RFC 9051 6.4.9: UID FETCH responses always carry it. */
		if (s->req.uid && !(f->want & (1u << IMAP_FETCH_UID))) {
			sep(f);
			mp_buf_printf(&f->out, "UID %u", uid);
		}
		return true;
	}
	return false;
}

/* --- items -------------------------------------------------------------- */

static void
flush(struct imap_session *s, struct imap_fetch *f)
{
	if (f->out.len > 0)
		imap_write(s, f->out.data, f->out.len);
	mp_buf_reset(&f->out);
}

/* RFC 3501 date-time: "17-Jul-1996 02:44:25 -0700", in the zone the
 * message was stored with. */
static void
write_date(struct mp_buf *out, const struct ms_msg *m)
{
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(m->internal_date + (int64_t)m->tz_minutes * 60);
	int tz = m->tz_minutes < 0 ? -m->tz_minutes : m->tz_minutes;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	mp_buf_printf(out,
		      "INTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
		      tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
		      tm.tm_hour, tm.tm_min, tm.tm_sec,
		      m->tz_minutes < 0 ? '-' : '+', tz / 60, tz % 60);
}

static enum imap_format_flags
format_flags(const struct imap_session *s)
{
	if (!(s->enabled & (IMAP_EN_REV2 | IMAP_EN_UTF8)))
		return 0;
	return IMAP_FORMAT_UTF8 | IMAP_FORMAT_MESSAGE_GLOBAL;
}

/* HEADER.FIELDS[.NOT]: small, filtered in memory and written at once. */
static bool
write_header_fields(struct imap_fetch *f, const struct imap_fetch_item *it,
		    const char **error_r)
{
	const struct imap_section_plan *plan = &it->plan;
	size_t len = plan->size < IMAP_FETCH_HEADER_MAX ? (size_t)plan->size
							: IMAP_FETCH_HEADER_MAX;
	char *hdr = mp_xmalloc(len + 1);
	struct mp_buf res = {0};
	uint64_t off, n;
	size_t got = 0;

	while (got < len) {
		ssize_t r = read_at(f, plan->offset + got, hdr + got, len - got,
				    error_r);

		if (r <= 0) {
			if (r == 0)
				*error_r = "message file is short";
			free(hdr);
			return false;
		}
		got += (size_t)r;
	}
	imap_header_filter(hdr, len, &it->sec.fields,
			   it->sec.text == IMAP_SECTION_HEADER_FIELDS_NOT,
			   &res);
	free(hdr);
	imap_section_clip(&it->sec, res.len, &off, &n);
	mp_buf_printf(&f->out, " {%llu}\r\n", (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++) {
		char c = res.data[off + i];

		mp_buf_append(&f->out, c == '\0' ? "\x80" : &c, 1);
	}
	mp_buf_free(&res);
	return true;
}

static bool
write_section(struct imap_fetch *f, struct imap_fetch_item *it,
	      const char **error_r)
{
	const struct imap_section_plan *plan = &it->plan;
	bool binary = it->sec.item == IMAP_SECTION_ITEM_BINARY;
	uint64_t off, len;

	imap_section_write_name(&it->sec, &f->out);
	if (it->sec.item == IMAP_SECTION_ITEM_BINARY_SIZE) {
		len = plan->source == IMAP_SOURCE_DECODE  ? it->decoded_size
		      : plan->source == IMAP_SOURCE_BYTES ? plan->size
							  : 0;
		mp_buf_printf(&f->out, " %llu", (unsigned long long)len);
		return true;
	}
	switch (plan->source) {
	case IMAP_SOURCE_BYTES:
		/* RFC 3516 4.2: literal8 when the bytes hold a NUL. */
		mp_buf_printf(&f->out, " %s{%llu}\r\n",
			      binary && plan->nul ? "~" : "",
			      (unsigned long long)plan->size);
		f->lit = plan->size > 0 ? IMAP_FETCH_LIT_BYTES
					: IMAP_FETCH_LIT_NONE;
		f->pos = plan->offset;
		f->left = plan->size;
		f->fix_nul = !binary && (f->cur.mime->flags & MP_MIME_HAS_NUL);
		return true;
	case IMAP_SOURCE_HEADER_FIELDS:
		return write_header_fields(f, it, error_r);
	case IMAP_SOURCE_DECODE:
		imap_section_clip(&it->sec, it->decoded_size, &off, &len);
		mp_buf_printf(&f->out, " %s{%llu}\r\n",
			      it->decoded_nul ? "~" : "",
			      (unsigned long long)len);
		if (len > 0) {
			imap_binary_reader_init(&f->reader, plan, off, len);
			f->lit = IMAP_FETCH_LIT_DECODE;
		}
		return true;
	default:
		mp_buf_puts(&f->out, " NIL");
		return true;
	}
}

static bool
write_item(struct imap_session *s, struct imap_fetch *f,
	   struct imap_fetch_item *it, const char **error_r)
{
	const struct ms_msg *m = &f->cur.meta.v[0];
	struct mp_mime_message *mime = f->cur.mime;

	sep(f);
	switch (it->kind) {
	case IMAP_FETCH_UID:
		mp_buf_printf(&f->out, "UID %u", m->uid);
		break;
	case IMAP_FETCH_FLAGS:
		mp_buf_puts(&f->out, "FLAGS ");
		imap_write_flags(&f->out, m, imap_view_recent(s->view, m->uid));
		break;
	case IMAP_FETCH_INTERNALDATE:
		write_date(&f->out, m);
		break;
	case IMAP_FETCH_SIZE:
		mp_buf_printf(&f->out, "RFC822.SIZE %llu",
			      (unsigned long long)m->size);
		break;
	case IMAP_FETCH_ENVELOPE:
		mp_buf_puts(&f->out, "ENVELOPE ");
		imap_fetch_format_envelope(&f->out, mime->root->envelope,
					   format_flags(s));
		break;
	case IMAP_FETCH_BODY:
		mp_buf_puts(&f->out, "BODY ");
		imap_fetch_format_body(&f->out, mime->root, format_flags(s));
		break;
	case IMAP_FETCH_BODYSTRUCTURE:
		mp_buf_puts(&f->out, "BODYSTRUCTURE ");
		imap_fetch_format_bodystructure(&f->out, mime->root,
						format_flags(s));
		break;
	case IMAP_FETCH_MODSEQ:
		mp_buf_printf(&f->out, "MODSEQ (%llu)",
			      (unsigned long long)m->modseq);
		break;
	case IMAP_FETCH_SECTION:
		return write_section(f, it, error_r);
	}
	return true;
}

/* What the client did not ask for but must get: FLAGS of a message this
 * FETCH marked \Seen (RFC 9051 6.4.5), MODSEQ once CONDSTORE is on (RFC
 * 7162 3.1.4.1). */
static void
write_implicit(struct imap_session *s, struct imap_fetch *f)
{
	const struct ms_msg *m = &f->cur.meta.v[0];

	if (!(f->want & (1u << IMAP_FETCH_FLAGS)) &&
	    imap_seqset_contains(&f->seen, m->uid)) {
		sep(f);
		mp_buf_puts(&f->out, "FLAGS ");
		imap_write_flags(&f->out, m, imap_view_recent(s->view, m->uid));
	}
	if (!(f->want & (1u << IMAP_FETCH_MODSEQ)) &&
	    (s->enabled & IMAP_EN_CONDSTORE)) {
		sep(f);
		mp_buf_printf(&f->out, "MODSEQ (%llu)",
			      (unsigned long long)m->modseq);
	}
}

bool
imap_fetch_items_step(struct imap_session *s, struct imap_fetch *f,
		      const char **error_r)
{
	while (f->cur.item < f->n) {
		if (!write_item(s, f, &f->items[f->cur.item++], error_r))
			return false;
		if (f->lit != IMAP_FETCH_LIT_NONE) {
			flush(s, f);
			return true;
		}
	}
	write_implicit(s, f);
	mp_buf_puts(&f->out, ")\r\n");
	flush(s, f);
	imap_fetch_message_close(f);
	return true;
}

bool
imap_fetch_literal_step(struct imap_session *s, struct imap_fetch *f,
			const char **error_r)
{
	enum mp_status r;

	if (f->lit == IMAP_FETCH_LIT_DECODE) {
		r = imap_binary_reader_read(&f->reader, read_at, f, &f->out,
					    error_r);
		flush(s, f);
		if (r == MP_ERROR)
			return false;
		if (r == MP_OK) {
			imap_binary_reader_deinit(&f->reader);
			f->lit = IMAP_FETCH_LIT_NONE;
		}
		return true;
	}
	size_t want =
		f->left < IMAP_FETCH_CHUNK ? (size_t)f->left : IMAP_FETCH_CHUNK;
	char *chunk = mp_xmalloc(want);
	ssize_t n = read_at(f, f->pos, chunk, want, error_r);

	if (n <= 0) {
		if (n == 0)
			*error_r = "message file is short";
		free(chunk);
		return false;
	}
	/* No IMAP string may hold a NUL: BODY sends it as 0x80, as Dovecot
	 * does; BINARY would have used literal8. */
	if (f->fix_nul)
		for (ssize_t i = 0; i < n; i++)
			if (chunk[i] == '\0')
				chunk[i] = (char)0x80;
	imap_write(s, chunk, (size_t)n);
	free(chunk);
	f->pos += (uint64_t)n;
	f->left -= (uint64_t)n;
	if (f->left == 0)
		f->lit = IMAP_FETCH_LIT_NONE;
	return true;
}
