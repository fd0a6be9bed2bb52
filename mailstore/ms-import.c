/* ms-import.c - importing messages with chosen UIDs; Maildir++ names.
 *
 * A message is read from its source file straight into tmp/ (as CRLF,
 * parsed as it goes by), then handed to ms_index_add_uid, the same durable
 * end every append has: fsync, rename, directory fsync, commit. The import
 * key is inserted by a hook inside that transaction, so a message and the
 * record that it was imported never exist one without the other. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/mailstore-import.h>
#include <moonpost/mime.h>

#include "ms-private.h"

struct ms_import {
	struct ms_mailbox mb; /* mb.user is referenced */
	size_t added;
};

/* --- opening: the mailbox and its UIDVALIDITY ----------------------------- */

/* Runs sql with up to two integer parameters. */
static enum ms_result
exec_ints(struct ms_user *u, const char *sql, int64_t a, int64_t b,
	  struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(u->wdb, sql, err);
	int params;
	enum ms_result r;

	if (st == NULL)
		return err->code;
	params = sqlite3_bind_parameter_count(st);
	if (params >= 1)
		sqlite3_bind_int64(st, 1, a);
	if (params >= 2)
		sqlite3_bind_int64(st, 2, b);
	r = ms_db_step_done(st, err);
	sqlite3_finalize(st);
	return r;
}

/* Gives an empty mailbox a new UIDVALIDITY: a new UID space, so what was
 * expunged or imported under the old one no longer matters. The meta mark
 * keeps UIDVALIDITYs this account hands out later above it. */
static enum ms_result
replace_uidvalidity(struct ms_mailbox *mb, uint32_t uidvalidity,
		    struct ms_error *err)
{
	struct ms_user *u = mb->user;
	enum ms_result r;

	r = exec_ints(u,
		      "UPDATE mailboxes SET uidvalidity = ?1, uidnext = 1, "
		      "first_recent = 1 WHERE id = ?2",
		      uidvalidity, mb->id, err);
	if (r == MS_OK)
		r = exec_ints(u, "DELETE FROM expunged WHERE mailbox = ?",
			      mb->id, 0, err);
	if (r == MS_OK)
		r = exec_ints(u, "DELETE FROM import_keys WHERE mailbox = ?",
			      mb->id, 0, err);
	if (r == MS_OK)
		r = exec_ints(u,
			      "INSERT OR REPLACE INTO meta VALUES "
			      "('last_uidvalidity', max(?, coalesce((SELECT "
			      "value FROM meta WHERE key = "
			      "'last_uidvalidity'), 0)))",
			      uidvalidity, 0, err);
	if (r == MS_OK)
		mb->uidvalidity = uidvalidity;
	return r;
}

/* Inside a write transaction: whether mb can keep uidvalidity, taking it
 * when the mailbox is empty. */
static enum ms_result
adopt_uidvalidity(struct ms_mailbox *mb, uint32_t uidvalidity, bool *kept_r,
		  bool *changed_r, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		mb->user->wdb,
		"SELECT uidvalidity, messages FROM mailboxes WHERE id = ?",
		err);
	int64_t current = -1, messages = -1;
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		current = sqlite3_column_int64(st, 0);
		messages = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return ms_fail(err, MS_ERR_NOT_FOUND, "mailbox is gone");
	if (rc != SQLITE_ROW)
		return ms_db_error(mb->user->wdb, "import", err);
	mb->uidvalidity = (uint32_t)current;
	*kept_r = current == uidvalidity;
	if (*kept_r || messages != 0)
		return MS_OK;
	*kept_r = *changed_r = true;
	return replace_uidvalidity(mb, uidvalidity, err);
}

static enum ms_result
adopt_locked(struct ms_import *imp, uint32_t uidvalidity, bool *kept_r,
	     bool *changed_r, struct ms_error *err)
{
	struct ms_user *u = imp->mb.user;
	enum ms_result r;

	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	r = adopt_uidvalidity(&imp->mb, uidvalidity, kept_r, changed_r, err);
	if (r == MS_OK)
		return ms_db_commit(u, err);
	ms_db_rollback(u);
	return r;
}

static enum ms_result
lookup(struct ms_import *imp, struct ms_user *u, const char *name,
       struct ms_error *err)
{
	bool noselect = false;
	enum ms_result r;

	pthread_mutex_lock(&u->rlock);
	r = ms_mailbox_lookup(u, u->rdb, name, &imp->mb, &noselect, err);
	pthread_mutex_unlock(&u->rlock);
	imp->mb.user = ms_user_ref(u);
	if (r == MS_OK && noselect)
		r = ms_fail(err, MS_ERR_NOT_FOUND, "%s cannot be selected",
			    name);
	return r;
}

struct ms_import *
ms_import_begin(struct ms_user *u, const char *name, uint32_t uidvalidity,
		bool *uids_kept_r, struct ms_error *err)
{
	struct ms_import *imp = mp_xcalloc(1, sizeof(*imp));
	bool changed = false;
	enum ms_result r = ms_mailbox_create(u, name, 0, err);

	*uids_kept_r = false;
	if (r == MS_ERR_EXISTS)
		r = MS_OK;
	if (r == MS_OK)
		r = lookup(imp, u, name, err);
	else
		imp->mb.user = ms_user_ref(u);
	/* Files another program left in the folder count as messages. */
	if (r == MS_OK)
		r = ms_sync_mailbox(&imp->mb, err);
	if (r == MS_OK && uidvalidity != 0)
		r = adopt_locked(imp, uidvalidity, uids_kept_r, &changed, err);
	if (r != MS_OK) {
		ms_import_free(&imp);
		return NULL;
	}
	if (changed)
		ms_notify_changed(u, imp->mb.name);
	return imp;
}

void
ms_import_free(struct ms_import **impp)
{
	struct ms_import *imp = *impp;

	if (imp == NULL)
		return;
	ms_user_unref(&imp->mb.user);
	free(imp->mb.name);
	free(imp->mb.path);
	free(imp);
	*impp = NULL;
}

enum ms_result
ms_import_status(struct ms_import *imp, uint32_t *uidnext_r,
		 uint32_t *uidvalidity_r, struct ms_error *err)
{
	struct ms_status st;
	enum ms_result r = ms_mailbox_get_status(&imp->mb, &st, err);

	*uidnext_r = st.uidnext;
	*uidvalidity_r = st.uidvalidity;
	return r;
}

enum ms_result
ms_import_key_uid(struct ms_import *imp, const char *key, uint32_t *uid_r,
		  struct ms_error *err)
{
	struct ms_user *u = imp->mb.user;
	sqlite3_stmt *st;
	int rc;

	*uid_r = 0;
	pthread_mutex_lock(&u->rlock);
	st = ms_db_prepare(u->rdb,
			   "SELECT uid FROM import_keys WHERE mailbox = ? AND "
			   "key = ?",
			   err);
	if (st == NULL) {
		pthread_mutex_unlock(&u->rlock);
		return err->code;
	}
	sqlite3_bind_int64(st, 1, imp->mb.id);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*uid_r = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ms_db_error(u->rdb, "import key", err);
	pthread_mutex_unlock(&u->rlock);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? MS_OK : err->code;
}

/* --- adding messages ------------------------------------------------------ */

/* Records the key in the append's transaction (ms_index_hook_fn). */
static enum ms_result
insert_key(struct ms_mailbox *mb, uint32_t uid, void *ctx, struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(
		mb->user->wdb, "INSERT INTO import_keys VALUES (?, ?, ?)", err);
	int rc;

	if (st == NULL)
		return err->code;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_text(st, 2, ctx, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uid);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return ms_fail(err, MS_ERR_EXISTS, "%s was imported before",
			       (const char *)ctx);
	return rc == SQLITE_DONE
		       ? MS_OK
		       : ms_db_error(mb->user->wdb, "import key", err);
}

/* The keywords the store can hold, sorted; the rest are counted. */
static char *
usable_keywords(const struct mp_strlist *kws, unsigned *dropped_r,
		struct ms_error *err)
{
	struct mp_strlist ok = {0};
	char *stored;

	*dropped_r = 0;
	for (size_t i = 0; kws != NULL && i < kws->n; i++) {
		if (mp_strlist_contains(&ok, kws->v[i]))
			continue;
		if (!ms_keyword_valid(kws->v[i]) || ok.n == MS_KEYWORDS_MAX)
			(*dropped_r)++;
		else
			mp_strlist_add(&ok, kws->v[i]);
	}
	stored = ms_keywords_apply("", MS_FLAGS_REPLACE, &ok, err);
	mp_strlist_free(&ok);
	return stored;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Copies in_fd to out_fd as CRLF, feeding the parser. */
static enum ms_result
copy_crlf(int in_fd, int out_fd, const char *tmp, struct mp_mime_parser *p,
	  uint64_t *size_r, struct ms_error *err)
{
	char in[32768], out[65536];
	bool last_cr = false;
	ssize_t n;

	*size_r = 0;
	while ((n = read(in_fd, in, sizeof(in))) != 0) {
		size_t o;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ms_fail_errno(err, "read", "the source message");
		o = ms_crlf(in, (size_t)n, out, &last_cr);
		mp_mime_parser_feed(p, out, o);
		if (!write_all(out_fd, out, o))
			return ms_fail_errno(err, "write", tmp);
		*size_r += o;
	}
	if (fsync(out_fd) != 0)
		return ms_fail_errno(err, "fsync", tmp);
	return MS_OK;
}

/* Writes the message into tmp/ and serializes its structure into blob. */
static enum ms_result
write_tmp(int in_fd, const char *tmp, struct mp_buf *blob, uint64_t *size_r,
	  struct ms_error *err)
{
	struct mp_mime_parser *p;
	struct mp_mime_message *m;
	enum ms_result r;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return ms_fail_errno(err, "create", tmp);
	p = mp_mime_parser_new(NULL);
	r = copy_crlf(in_fd, fd, tmp, p, size_r, err);
	if (close(fd) != 0 && r == MS_OK)
		r = ms_fail_errno(err, "close", tmp);
	m = mp_mime_parser_finish(&p);
	if (r == MS_OK)
		mp_mime_serialize(m, blob);
	mp_mime_message_free(&m);
	return r;
}

enum ms_result
ms_import_add(struct ms_import *imp, int fd, const struct ms_import_msg *msg,
	      struct ms_import_result *res, struct ms_error *err)
{
	struct ms_user *u = imp->mb.user;
	char *base = ms_fs_unique_name(u->store);
	char *tmp = mp_xasprintf("%s/tmp/%s", imp->mb.path, base);
	char *kw;
	struct mp_buf blob = {0};
	struct ms_new_message m = {.tmp_path = tmp, .base = base};
	enum ms_result r;

	memset(res, 0, sizeof(*res));
	kw = usable_keywords(msg->keywords, &res->dropped_keywords, err);
	r = kw != NULL ? write_tmp(fd, tmp, &blob, &m.size, err) : err->code;
	if (r == MS_OK) {
		m.internal_date = msg->internal_date != 0 ? msg->internal_date
							  : (int64_t)time(NULL);
		m.flags = msg->flags & MS_FLAGS_ALL;
		m.keywords = kw;
		m.mime = blob.data;
		m.mime_len = blob.len;
		r = ms_index_add_uid(&imp->mb, &m, msg->uid,
				     msg->key != NULL ? insert_key : NULL,
				     (void *)msg->key, &res->uid, err);
	}
	if (r == MS_OK) {
		res->size = m.size;
		imp->added++;
		ms_notify_changed(u, imp->mb.name);
	}
	unlink(tmp); /* gone already once the message is in */
	mp_buf_free(&blob);
	free(kw);
	free(tmp);
	free(base);
	return r;
}

enum ms_result
ms_import_raise_uidnext(struct ms_import *imp, uint32_t uidnext,
			struct ms_error *err)
{
	struct ms_user *u = imp->mb.user;
	enum ms_result r;

	if ((r = ms_db_begin(u, err)) != MS_OK)
		return r;
	r = exec_ints(u,
		      "UPDATE mailboxes SET uidnext = max(uidnext, ?1) "
		      "WHERE id = ?2",
		      uidnext, imp->mb.id, err);
	if (r == MS_OK)
		return ms_db_commit(u, err);
	ms_db_rollback(u);
	return r;
}

enum ms_result
ms_import_end(struct ms_import **impp, uint32_t first_recent,
	      struct ms_error *err)
{
	struct ms_import *imp = *impp;
	struct ms_user *u = imp->mb.user;
	enum ms_result r = MS_OK;

	/* Nothing added: what is recent stays so (a second run of an
	 * import must not take \Recent from the first one's messages). */
	if (imp->added > 0 && (r = ms_db_begin(u, err)) == MS_OK) {
		r = exec_ints(u,
			      "UPDATE mailboxes SET first_recent = "
			      "max(first_recent, CASE WHEN ?1 = 0 THEN uidnext "
			      "ELSE min(?1, uidnext) END) WHERE id = ?2",
			      first_recent, imp->mb.id, err);
		if (r == MS_OK)
			r = ms_db_commit(u, err);
		else
			ms_db_rollback(u);
	}
	ms_import_free(impp);
	return r;
}

/* --- Maildir++ storage names ---------------------------------------------- */

/* RFC 3501 5.1.3: base64 with ',' for '/', and no padding. */
static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static void
put_utf8(struct mp_buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12), n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18), n = 4;
	}
	for (size_t i = 1; i < n; i++)
		b[i] = (unsigned char)(0x80 |
				       ((cp >> (6 * (n - 1 - i))) & 0x3f));
	mp_buf_append(out, b, n);
}

/* One UTF-16 unit; a high surrogate waits in *high for its partner. */
static bool
put_unit(struct mp_buf *out, uint32_t *high, uint32_t unit)
{
	if (unit >= 0xd800 && unit < 0xdc00 && *high == 0) {
		*high = unit;
		return true;
	}
	/* A lone surrogate, or NUL, which no name may hold. */
	if ((unit >= 0xdc00 && unit < 0xe000) != (*high != 0) || unit == 0)
		return false;
	if (*high != 0)
		unit = 0x10000 + ((*high - 0xd800) << 10) + (unit - 0xdc00);
	put_utf8(out, unit);
	*high = 0;
	return true;
}

/* Decodes the base64 run s[0..len) as UTF-16BE into out. */
static bool
mutf7_run(const char *s, size_t len, struct mp_buf *out)
{
	uint32_t bits = 0, high = 0;
	int nbits = 0;

	for (size_t i = 0; i < len; i++) {
		const char *p = strchr(b64, s[i]);

		if (s[i] == '\0' || p == NULL)
			return false;
		bits = (bits << 6) | (uint32_t)(p - b64);
		if ((nbits += 6) < 16)
			continue;
		nbits -= 16;
		if (!put_unit(out, &high, (bits >> nbits) & 0xffff))
			return false;
	}
	/* Leftover bits are padding: fewer than 6 of them, all zero. */
	return high == 0 && nbits < 6 && (bits & ((1u << nbits) - 1)) == 0;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
is_escape(const char *s)
{
	return s[0] == '\\' && hex_value(s[1]) >= 0 && hex_value(s[2]) >= 0;
}

/* Undoes Dovecot's listescape ("\2e" for '.') in place. */
static void
unescape(struct mp_buf *b, size_t from)
{
	size_t o = from;

	if (b->len == from)
		return;
	for (size_t i = from; i < b->len; i++) {
		if (i + 2 < b->len && is_escape(b->data + i)) {
			b->data[o++] = (char)(hex_value(b->data[i + 1]) * 16 +
					      hex_value(b->data[i + 2]));
			i += 2;
		} else {
			b->data[o++] = b->data[i];
		}
	}
	b->len = o;
	b->data[o] = '\0';
}

/* One level: modified UTF-7, then listescape. Bytes above 0x7f pass
 * (Dovecot's UTF-8 folder names). */
static bool
decode_level(const char *s, size_t len, struct mp_buf *out)
{
	size_t start = out->len;

	for (size_t i = 0; i < len; i++) {
		const char *end;

		if (s[i] != '&') {
			mp_buf_append(out, s + i, 1);
			continue;
		}
		end = memchr(s + i, '-', len - i);
		if (end == NULL)
			return false;
		if (end == s + i + 1)
			mp_buf_puts(out, "&");
		else if (!mutf7_run(s + i + 1, (size_t)(end - s - i - 1), out))
			return false;
		i = (size_t)(end - s);
	}
	unescape(out, start);
	return out->len > start &&
	       memchr(out->data + start, '/', out->len - start) == NULL;
}

char *
ms_maildir_name_decode(const char *storage, char sep)
{
	struct mp_buf out = {0};
	const char *p = storage;

	for (;;) {
		const char *end = strchr(p, sep);
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (!decode_level(p, len, &out)) {
			mp_buf_free(&out);
			return NULL;
		}
		if (end == NULL)
			break;
		mp_buf_puts(&out, "/");
		p = end + 1;
	}
	return mp_buf_steal(&out);
}

/* Reads one UTF-8 code point (names are valid UTF-8). */
static uint32_t
next_cp(const unsigned char **sp)
{
	const unsigned char *s = *sp;
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		n = 1, cp = s[0];
	else if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else
		n = 4, cp = s[0] & 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return *sp += i, 0xfffd;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	*sp += n;
	return cp;
}

struct b64_run {
	uint32_t bits;
	int nbits;
	bool open;
};

static void
run_unit(struct b64_run *run, struct mp_buf *out, uint32_t unit)
{
	if (!run->open)
		mp_buf_puts(out, "&");
	run->open = true;
	run->bits = (run->bits << 16) | unit;
	run->nbits += 16;
	while (run->nbits >= 6) {
		run->nbits -= 6;
		mp_buf_append(out, &b64[(run->bits >> run->nbits) & 0x3f], 1);
	}
}

static void
run_close(struct b64_run *run, struct mp_buf *out)
{
	if (!run->open)
		return;
	if (run->nbits > 0)
		mp_buf_append(out, &b64[(run->bits << (6 - run->nbits)) & 0x3f],
			      1);
	mp_buf_puts(out, "-");
	memset(run, 0, sizeof(*run));
}

static void
put_ascii(struct mp_buf *out, const unsigned char *s)
{
	if (*s == '&')
		mp_buf_puts(out, "&-");
	else if (*s == '.')
		mp_buf_puts(out, "\\2e");
	else if (is_escape((const char *)s))
		mp_buf_puts(out, "\\5c"); /* would read as an escape */
	else
		mp_buf_append(out, s, 1);
}

char *
ms_maildir_name_encode(const char *name, char sep)
{
	struct mp_buf out = {0};
	struct b64_run run = {0};
	const unsigned char *s = (const unsigned char *)name;

	while (*s != '\0') {
		uint32_t cp;

		if (*s >= 0x20 && *s < 0x7f) {
			run_close(&run, &out);
			if (*s == '/')
				mp_buf_append(&out, &sep, 1);
			else
				put_ascii(&out, s);
			s++;
			continue;
		}
		cp = next_cp(&s);
		if (cp >= 0x10000) {
			run_unit(&run, &out, 0xd800 + ((cp - 0x10000) >> 10));
			cp = 0xdc00 + ((cp - 0x10000) & 0x3ff);
		}
		run_unit(&run, &out, cp);
	}
	run_close(&run, &out);
	if (out.data == NULL)
		mp_buf_puts(&out, "");
	return mp_buf_steal(&out);
}
