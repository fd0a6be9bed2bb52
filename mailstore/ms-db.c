/* ms-db.c - the per-account SQLite index: opening, schema, migrations.
 *
 * The schema is versioned with PRAGMA user_version. Each migration is one
 * SQL script run in one transaction, so an index is always at some version,
 * never between two. Counters a STATUS needs (messages, unseen, deleted,
 * bytes) are kept by triggers, so no code path can forget them. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <moonpost/log.h>

#include "ms-private.h"

static const char *const migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;\n"
	"CREATE TABLE mailboxes(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL UNIQUE,\n"
	"  dir TEXT NOT NULL UNIQUE,\n"
	"  uidvalidity INTEGER NOT NULL,\n"
	"  uidnext INTEGER NOT NULL DEFAULT 1,\n"
	"  highestmodseq INTEGER NOT NULL DEFAULT 1,\n"
	"  first_recent INTEGER NOT NULL DEFAULT 1,\n"
	"  special_use INTEGER NOT NULL DEFAULT 0,\n"
	"  noselect INTEGER NOT NULL DEFAULT 0,\n"
	"  messages INTEGER NOT NULL DEFAULT 0,\n"
	"  unseen INTEGER NOT NULL DEFAULT 0,\n"
	"  deleted INTEGER NOT NULL DEFAULT 0,\n"
	"  bytes INTEGER NOT NULL DEFAULT 0,\n"
	"  scan_cur INTEGER NOT NULL DEFAULT 0,\n"
	"  scan_new INTEGER NOT NULL DEFAULT 0);\n"
	"CREATE TABLE messages(\n"
	"  mailbox INTEGER NOT NULL REFERENCES mailboxes(id),\n"
	"  uid INTEGER NOT NULL,\n"
	"  file TEXT NOT NULL,\n"
	"  size INTEGER NOT NULL,\n"
	"  internal_date INTEGER NOT NULL,\n"
	"  tz INTEGER NOT NULL DEFAULT 0,\n"
	"  save_date INTEGER NOT NULL,\n"
	"  flags INTEGER NOT NULL DEFAULT 0,\n"
	"  keywords TEXT NOT NULL DEFAULT '',\n"
	"  modseq INTEGER NOT NULL,\n"
	"  PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;\n"
	"CREATE INDEX messages_modseq ON messages(mailbox, modseq);\n"
	"CREATE INDEX messages_file ON messages(mailbox, file);\n"
	/* The parsed structure, apart: listing UIDs and flags of a large
	 * mailbox reads only the small rows above. */
	"CREATE TABLE mime(\n"
	"  mailbox INTEGER NOT NULL,\n"
	"  uid INTEGER NOT NULL,\n"
	"  data BLOB NOT NULL,\n"
	"  PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;\n"
	"CREATE TABLE expunged(\n"
	"  mailbox INTEGER NOT NULL,\n"
	"  uid INTEGER NOT NULL,\n"
	"  modseq INTEGER NOT NULL,\n"
	"  PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;\n"
	"CREATE TABLE subscriptions(name TEXT PRIMARY KEY) WITHOUT ROWID;\n"
	/* Files and folders whose index rows are gone: unlinked after the
	 * commit, and again at open if a crash came first; never adopted. */
	"CREATE TABLE pending_remove(path TEXT PRIMARY KEY) WITHOUT ROWID;\n"
	"CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN\n"
	"  UPDATE mailboxes SET messages = messages + 1,\n"
	"    unseen = unseen + ((NEW.flags & 1) = 0),\n"
	"    deleted = deleted + ((NEW.flags & 8) != 0),\n"
	"    bytes = bytes + NEW.size WHERE id = NEW.mailbox;\n"
	"END;\n"
	"CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN\n"
	"  UPDATE mailboxes SET messages = messages - 1,\n"
	"    unseen = unseen - ((OLD.flags & 1) = 0),\n"
	"    deleted = deleted - ((OLD.flags & 8) != 0),\n"
	"    bytes = bytes - OLD.size WHERE id = OLD.mailbox;\n"
	"  DELETE FROM mime WHERE mailbox = OLD.mailbox AND uid = OLD.uid;\n"
	"END;\n"
	"CREATE TRIGGER messages_flags AFTER UPDATE OF flags ON messages\n"
	"WHEN OLD.flags != NEW.flags BEGIN\n"
	"  UPDATE mailboxes SET\n"
	"    unseen = unseen - ((OLD.flags & 1) = 0) + ((NEW.flags & 1) = 0),\n"
	"    deleted = deleted - ((OLD.flags & 8) != 0)\n"
	"              + ((NEW.flags & 8) != 0)\n"
	"  WHERE id = NEW.mailbox;\n"
	"END;\n",
	/* 2: what `moonpost import` took from a foreign Maildir, by the
	 * source file's base name, so a second run adds nothing. Kept when
	 * the message is expunged: importing again must not bring it back. */
	"CREATE TABLE import_keys(\n"
	"  mailbox INTEGER NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  uid INTEGER NOT NULL,\n"
	"  PRIMARY KEY(mailbox, key)) WITHOUT ROWID;\n"
	"CREATE TRIGGER import_keys_mailbox AFTER DELETE ON mailboxes BEGIN\n"
	"  DELETE FROM import_keys WHERE mailbox = OLD.id;\n"
	"END;\n",
};

enum ms_result
ms_db_error(sqlite3 *db, const char *what, struct ms_error *err)
{
	int code = sqlite3_errcode(db);
	enum ms_result r = MS_ERR_TEMP;

	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		mp_log(MP_LOG_ERROR, "event=index_corrupt what=%s error=%s",
		       mp_q(what), mp_q(sqlite3_errmsg(db)));
	return ms_fail(err, r, "index %s: %s", what, sqlite3_errmsg(db));
}

enum ms_result
ms_db_exec(sqlite3 *db, const char *sql, struct ms_error *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return ms_db_error(db, "exec", err);
	return MS_OK;
}

sqlite3_stmt *
ms_db_prepare(sqlite3 *db, const char *sql, struct ms_error *err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		ms_db_error(db, "prepare", err);
		return NULL;
	}
	return st;
}

enum ms_result
ms_db_step_done(sqlite3_stmt *st, struct ms_error *err)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return ms_db_error(sqlite3_db_handle(st), "step", err);
	return MS_OK;
}

enum ms_result
ms_db_int(sqlite3 *db, const char *sql, int64_t param, int64_t *value_r,
	  struct ms_error *err)
{
	sqlite3_stmt *st = ms_db_prepare(db, sql, err);
	int rc;

	if (st == NULL)
		return err->code;
	if (param >= 0)
		sqlite3_bind_int64(st, 1, param);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*value_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ms_db_error(db, "query", err);
	return MS_OK;
}

static enum ms_result
migrate(sqlite3 *db, struct ms_error *err)
{
	int64_t version = 0;
	enum ms_result r;

	if ((r = ms_db_exec(db, "BEGIN IMMEDIATE", err)) != MS_OK)
		return r;
	r = ms_db_int(db, "PRAGMA user_version", -1, &version, err);
	if (r == MS_OK && version > (int64_t)MP_NELEMS(migrations))
		r = ms_fail(err, MS_ERR_TEMP,
			    "index schema %lld is newer than this moonpost "
			    "(%zu)",
			    (long long)version, MP_NELEMS(migrations));
	for (; r == MS_OK && version < (int64_t)MP_NELEMS(migrations);
	     version++) {
		char pragma[64];

		r = ms_db_exec(db, migrations[version], err);
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %lld",
			 (long long)version + 1);
		if (r == MS_OK)
			r = ms_db_exec(db, pragma, err);
	}
	if (r != MS_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return ms_db_exec(db, "COMMIT", err);
}

enum ms_result
ms_db_open(const char *path, bool writer, sqlite3 **db_r, struct ms_error *err)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
		    (writer ? SQLITE_OPEN_CREATE : 0);
	sqlite3 *db = NULL;
	enum ms_result r;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		r = ms_fail(err, MS_ERR_TEMP, "%s: %s", path,
			    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return r;
	}
	sqlite3_busy_timeout(db, MS_BUSY_TIMEOUT_MS);
	/* WAL: readers do not wait for writers. synchronous=FULL: a commit
	 * is on disk when it returns; a UID handed out is never handed out
	 * again, even after a power cut. */
	r = ms_db_exec(db,
		       "PRAGMA journal_mode = WAL;"
		       "PRAGMA synchronous = FULL;"
		       "PRAGMA foreign_keys = OFF;",
		       err);
	if (r == MS_OK && writer)
		r = migrate(db, err);
	if (r != MS_OK) {
		sqlite3_close(db);
		return r;
	}
	*db_r = db;
	return MS_OK;
}

enum ms_result
ms_db_begin(struct ms_user *u, struct ms_error *err)
{
	pthread_mutex_lock(&u->wlock);
	if (ms_db_exec(u->wdb, "BEGIN IMMEDIATE", err) != MS_OK) {
		pthread_mutex_unlock(&u->wlock);
		return err->code;
	}
	return MS_OK;
}

enum ms_result
ms_db_commit(struct ms_user *u, struct ms_error *err)
{
	enum ms_result r = ms_db_exec(u->wdb, "COMMIT", err);

	if (r != MS_OK)
		sqlite3_exec(u->wdb, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&u->wlock);
	return r;
}

void
ms_db_rollback(struct ms_user *u)
{
	sqlite3_exec(u->wdb, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&u->wlock);
}
