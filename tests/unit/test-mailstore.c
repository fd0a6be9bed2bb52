/* test-mailstore.c - the mailstore API: mailboxes, appends, flags, copy,
 * move, expunge, adoption, quota, notification, crash safety and two
 * processes appending at once. */
#include "config.h"

#include <ev.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moonpost/mailstore.h>
#include <moonpost/mime.h>

#define USER "alice@example.test"

struct fx {
	char *root;
	struct ms_store *store;
	struct ms_user *u;
	struct ms_error err;
};

static void
fx_open(struct fx *fx, uint64_t quota_bytes, uint64_t quota_messages,
	struct ev_loop *loop)
{
	struct ms_store_settings set = {.root = fx->root,
					.quota_bytes = quota_bytes,
					.quota_messages = quota_messages,
					.loop = loop};

	fx->store = ms_store_new(&set, &fx->err);
	g_assert_nonnull(fx->store);
	fx->u = ms_user_open(fx->store, USER, &fx->err);
	if (fx->u == NULL)
		g_error("open: %s", fx->err.text);
}

static void
fx_close(struct fx *fx)
{
	ms_user_unref(&fx->u);
	ms_store_free(&fx->store);
}

static void
fx_init(struct fx *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->root = g_dir_make_tmp("test-mailstore-XXXXXX", NULL);
	fx_open(fx, 0, 0, NULL);
}

static void
rm_rf(const char *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		char *sub = g_build_filename(path, name, NULL);
		if (g_file_test(sub, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(sub, G_FILE_TEST_IS_SYMLINK))
			rm_rf(sub);
		else
			g_unlink(sub);
		g_free(sub);
	}
	if (d != NULL)
		g_dir_close(d);
	g_rmdir(path);
}

static void
fx_free(struct fx *fx)
{
	fx_close(fx);
	rm_rf(fx->root);
	g_free(fx->root);
}

#define CHECK(expr)                                                            \
	do {                                                                   \
		enum ms_result r_ = (expr);                                    \
		if (r_ != MS_OK)                                               \
			g_error("%s: %s (%s)", #expr, ms_result_name(r_),      \
				fx->err.text);                                 \
	} while (0)

static uint32_t
append(struct fx *fx, const char *mailbox, const char *text, uint32_t flags)
{
	struct ms_append *a = ms_append_begin(fx->u, mailbox, &fx->err);
	uint32_t uid = 0, uidvalidity = 0;

	if (a == NULL)
		g_error("append_begin: %s", fx->err.text);
	CHECK(ms_append_write(a, text, strlen(text), &fx->err));
	CHECK(ms_append_set(a, flags, NULL, 0, 0, &fx->err));
	CHECK(ms_append_commit(&a, &uid, &uidvalidity, &fx->err));
	g_assert_null(a);
	g_assert_cmpuint(uidvalidity, >, 0);
	return uid;
}

static char *
read_message(struct fx *fx, struct ms_mailbox *mb, uint32_t uid)
{
	int fd = ms_message_open(mb, uid, &fx->err);
	GString *s = g_string_new(NULL);
	char buf[4096];
	ssize_t n;

	g_assert_cmpint(fd, >=, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_string_append_len(s, buf, n);
	close(fd);
	return g_string_free(s, FALSE);
}

static const struct ms_mailbox_info *
find_info(const struct ms_mailbox_list *list, const char *name)
{
	for (size_t i = 0; i < list->n; i++) {
		if (strcmp(list->v[i].name, name) == 0)
			return &list->v[i];
	}
	return NULL;
}

static void
test_defaults(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_mailbox_list list;
	struct mp_strlist subs = {0};

	fx_init(fx);
	CHECK(ms_mailbox_list(fx->u, &list, &fx->err));
	g_assert_cmpuint(list.n, ==, 6);
	g_assert_cmpstr(list.v[0].name, ==, "INBOX");
	g_assert_cmpuint(find_info(&list, "Sent")->special_use, ==,
			 MS_SPECIAL_SENT);
	g_assert_cmpuint(find_info(&list, "Trash")->special_use, ==,
			 MS_SPECIAL_TRASH);
	g_assert_cmpuint(find_info(&list, "Junk")->special_use, ==,
			 MS_SPECIAL_JUNK);
	g_assert_cmpuint(find_info(&list, "Drafts")->special_use, ==,
			 MS_SPECIAL_DRAFTS);
	g_assert_cmpuint(find_info(&list, "Archive")->special_use, ==,
			 MS_SPECIAL_ARCHIVE);
	g_assert_true(find_info(&list, "Sent")->subscribed);
	ms_mailbox_list_free(&list);
	CHECK(ms_subscriptions(fx->u, &subs, &fx->err));
	g_assert_cmpuint(subs.n, ==, 6);
	g_assert_cmpstr(subs.v[0], ==, "INBOX");
	mp_strlist_free(&subs);
	/* The same account opened twice is one handle. */
	struct ms_user *again =
		ms_user_open(fx->store, "ALICE@example.TEST", &fx->err);
	g_assert_true(again == fx->u);
	ms_user_unref(&again);
	g_assert_null(ms_user_open(fx->store, "../etc@x", &fx->err));
	g_assert_cmpint(fx->err.code, ==, MS_ERR_BAD_NAME);
	fx_free(fx);
}

static void
test_mailbox_tree(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_mailbox_list list;
	struct ms_status st;

	fx_init(fx);
	CHECK(ms_mailbox_create(fx->u, "Projects/2026/Q1", 0, &fx->err));
	g_assert_cmpint(
		ms_mailbox_create(fx->u, "Projects/2026/Q1", 0, &fx->err), ==,
		MS_ERR_EXISTS);
	g_assert_cmpint(ms_mailbox_create(fx->u, "inbox", 0, &fx->err), ==,
			MS_ERR_EXISTS);
	static const char *const bad[] = {"",    "/a",  "a/",      "a//b",
					  "a*b", "a%b", "bad\x01", "\xff\xfe"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_cmpint(ms_mailbox_create(fx->u, bad[i], 0, &fx->err),
				==, MS_ERR_BAD_NAME);
	CHECK(ms_mailbox_create(fx->u, "Entwürfe.alt", 0, &fx->err));
	uint32_t uid = append(fx, "Projects/2026", "Subject: x\n\nhi\n", 0);
	g_assert_cmpuint(uid, ==, 1);

	/* Rename moves children; the UIDVALIDITY and messages stay. */
	CHECK(ms_mailbox_status(fx->u, "Projects/2026", &st, &fx->err));
	uint32_t uidvalidity = st.uidvalidity;
	CHECK(ms_mailbox_rename(fx->u, "Projects", "Work/Old", &fx->err));
	CHECK(ms_mailbox_status(fx->u, "Work/Old/2026", &st, &fx->err));
	g_assert_cmpuint(st.uidvalidity, ==, uidvalidity);
	g_assert_cmpuint(st.messages, ==, 1);
	g_assert_cmpint(
		ms_mailbox_status(fx->u, "Projects/2026", &st, &fx->err), ==,
		MS_ERR_NOT_FOUND);
	g_assert_cmpint(ms_mailbox_rename(fx->u, "Work", "Work/Sub", &fx->err),
			==, MS_ERR_NOT_ALLOWED);
	g_assert_cmpint(ms_mailbox_rename(fx->u, "Work", "Sent", &fx->err), ==,
			MS_ERR_EXISTS);

	/* Delete with children leaves a \Noselect parent. */
	CHECK(ms_mailbox_delete(fx->u, "Work/Old", &fx->err));
	CHECK(ms_mailbox_list(fx->u, &list, &fx->err));
	g_assert_true(find_info(&list, "Work/Old")->noselect);
	g_assert_true(find_info(&list, "Work/Old")->has_children);
	g_assert_nonnull(find_info(&list, "Work/Old/2026/Q1"));
	ms_mailbox_list_free(&list);
	g_assert_null(ms_mailbox_open(fx->u, "Work/Old", &fx->err));
	g_assert_cmpint(fx->err.code, ==, MS_ERR_NOT_FOUND);
	g_assert_cmpint(ms_mailbox_delete(fx->u, "INBOX", &fx->err), ==,
			MS_ERR_NOT_ALLOWED);
	/* Creating it again makes it a mailbox once more. */
	CHECK(ms_mailbox_create(fx->u, "Work/Old", 0, &fx->err));
	struct ms_mailbox *mb = ms_mailbox_open(fx->u, "Work/Old", &fx->err);
	g_assert_nonnull(mb);
	ms_mailbox_close(&mb);
	fx_free(fx);
}

static void
test_uidvalidity_not_reused(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_status st;
	uint32_t seen[5];

	fx_init(fx);
	for (int i = 0; i < 5; i++) {
		CHECK(ms_mailbox_create(fx->u, "Again", 0, &fx->err));
		CHECK(ms_mailbox_status(fx->u, "Again", &st, &fx->err));
		seen[i] = st.uidvalidity;
		for (int j = 0; j < i; j++)
			g_assert_cmpuint(seen[j], !=, seen[i]);
		CHECK(ms_mailbox_delete(fx->u, "Again", &fx->err));
	}
	fx_free(fx);
}

static void
test_append_crlf_and_status(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_mailbox *mb;
	struct ms_msg_list msgs;
	struct ms_status st;
	char *body;

	fx_init(fx);
	g_assert_cmpuint(append(fx, "INBOX", "Subject: a\n\nline\n", 0), ==, 1);
	g_assert_cmpuint(
		append(fx, "INBOX", "Subject: b\r\n\r\nx\r\n", MS_FLAG_SEEN),
		==, 2);
	g_assert_cmpuint(append(fx, "INBOX", "Subject: c\n\nmixed\r\nlf\n", 0),
			 ==, 3);
	g_assert_null(ms_append_begin(fx->u, "Nope", &fx->err));
	g_assert_cmpint(fx->err.code, ==, MS_ERR_NOT_FOUND);

	mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	g_assert_nonnull(mb);
	body = read_message(fx, mb, 1);
	g_assert_cmpstr(body, ==, "Subject: a\r\n\r\nline\r\n");
	g_free(body);
	body = read_message(fx, mb, 3);
	g_assert_cmpstr(body, ==, "Subject: c\r\n\r\nmixed\r\nlf\r\n");
	g_free(body);
	CHECK(ms_mailbox_get_status(mb, &st, &fx->err));
	g_assert_cmpuint(st.messages, ==, 3);
	g_assert_cmpuint(st.unseen, ==, 2);
	g_assert_cmpuint(st.recent, ==, 3);
	g_assert_cmpuint(st.uidnext, ==, 4);
	g_assert_cmpuint(st.size, ==, 20 + 17 + 25);
	uint32_t first = 0;
	CHECK(ms_mailbox_take_recent(mb, &first, &fx->err));
	g_assert_cmpuint(first, ==, 1);
	CHECK(ms_mailbox_get_status(mb, &st, &fx->err));
	g_assert_cmpuint(st.recent, ==, 0);
	CHECK(ms_mailbox_take_recent(mb, &first, &fx->err));
	g_assert_cmpuint(first, ==, 0);

	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	g_assert_cmpuint(msgs.n, ==, 3);
	g_assert_cmpuint(msgs.v[1].flags, ==, MS_FLAG_SEEN);
	g_assert_cmpuint(msgs.v[2].size, ==, 25);
	g_assert_cmpstr(msgs.v[0].keywords, ==, "");
	g_assert_cmpuint(msgs.v[0].modseq, <, msgs.v[2].modseq);
	ms_msg_list_free(&msgs);
	ms_mailbox_close(&mb);
	fx_free(fx);
}

static void
test_append_set_keywords_date(void)
{
	struct fx fx_, *fx = &fx_;
	struct mp_strlist kw = {0};
	struct ms_append *a;
	struct ms_mailbox *mb;
	struct ms_msg_list msgs;
	uint32_t uid, uidvalidity;

	fx_init(fx);
	mp_strlist_add(&kw, "$Forwarded");
	mp_strlist_add(&kw, "$Junk");
	mp_strlist_add(&kw, "$Forwarded");
	a = ms_append_begin(fx->u, "Drafts", &fx->err);
	CHECK(ms_append_write(a, "x", 1, &fx->err));
	CHECK(ms_append_set(a, MS_FLAG_DRAFT | 0x100, &kw, 1700000000, -300,
			    &fx->err));
	CHECK(ms_append_commit(&a, &uid, &uidvalidity, &fx->err));
	mb = ms_mailbox_open(fx->u, "Drafts", &fx->err);
	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	g_assert_cmpuint(msgs.v[0].flags, ==, MS_FLAG_DRAFT);
	g_assert_cmpstr(msgs.v[0].keywords, ==, "$Forwarded $Junk");
	g_assert_cmpint(msgs.v[0].internal_date, ==, 1700000000);
	g_assert_cmpint(msgs.v[0].tz_minutes, ==, -300);
	ms_msg_list_free(&msgs);
	ms_mailbox_close(&mb);
	mp_strlist_free(&kw);

	mp_strlist_add(&kw, "bad keyword");
	a = ms_append_begin(fx->u, "Drafts", &fx->err);
	g_assert_cmpint(ms_append_set(a, 0, &kw, 0, 0, &fx->err), ==,
			MS_ERR_BAD_NAME);
	ms_append_abort(&a);
	mp_strlist_free(&kw);
	fx_free(fx);
}

static void
test_store_flags(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_mailbox *mb;
	struct ms_change_list changed, modified;
	struct mp_strlist kw = {0};
	struct ms_uid_range r13 = {1, 3};
	struct ms_uidset set = {&r13, 1};
	struct ms_status st;

	fx_init(fx);
	for (int i = 0; i < 4; i++)
		append(fx, "INBOX", "m\n", 0);
	mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	CHECK(ms_mailbox_get_status(mb, &st, &fx->err));
	uint64_t before = st.highestmodseq;

	mp_strlist_add(&kw, "Important");
	CHECK(ms_message_store(mb, &set, MS_FLAGS_ADD,
			       MS_FLAG_SEEN | MS_FLAG_FLAGGED, &kw, 0, &changed,
			       &modified, &fx->err));
	g_assert_cmpuint(changed.msgs.n, ==, 3);
	g_assert_cmpuint(changed.modseq, ==, before + 1);
	g_assert_cmpuint(changed.msgs.v[0].flags, ==,
			 MS_FLAG_SEEN | MS_FLAG_FLAGGED);
	g_assert_cmpstr(changed.msgs.v[2].keywords, ==, "Important");
	g_assert_cmpuint(changed.msgs.v[1].modseq, ==, before + 1);
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);
	CHECK(ms_mailbox_get_status(mb, &st, &fx->err));
	g_assert_cmpuint(st.unseen, ==, 1);
	g_assert_cmpuint(st.highestmodseq, ==, before + 1);

	/* A STORE that changes nothing changes no MODSEQ. */
	CHECK(ms_message_store(mb, &set, MS_FLAGS_ADD, MS_FLAG_SEEN, NULL, 0,
			       &changed, &modified, &fx->err));
	g_assert_cmpuint(changed.msgs.n, ==, 0);
	g_assert_cmpuint(changed.modseq, ==, 0);
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);

	/* CONDSTORE: UNCHANGEDSINCE older than a message's MODSEQ. */
	struct ms_uid_range r14 = {1, 4};
	struct ms_uidset all = {&r14, 1};
	CHECK(ms_message_store(mb, &all, MS_FLAGS_REPLACE, MS_FLAG_ANSWERED,
			       NULL, before, &changed, &modified, &fx->err));
	g_assert_cmpuint(changed.msgs.n, ==, 1);
	g_assert_cmpuint(changed.msgs.v[0].uid, ==, 4);
	g_assert_cmpuint(modified.n_uids, ==, 3);
	g_assert_cmpuint(modified.uids[0], ==, 1);
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);

	/* Changes since a MODSEQ. */
	struct ms_change_list since;
	CHECK(ms_mailbox_changes(mb, before, &since, &fx->err));
	g_assert_cmpuint(since.msgs.n, ==, 4);
	ms_change_list_free(&since);
	CHECK(ms_mailbox_changes(mb, before + 1, &since, &fx->err));
	g_assert_cmpuint(since.msgs.n, ==, 1);
	g_assert_cmpuint(since.msgs.v[0].uid, ==, 4);
	ms_change_list_free(&since);
	mp_strlist_free(&kw);
	ms_mailbox_close(&mb);
	fx_free(fx);
}

static int
count_files(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	int n = 0;

	while (d != NULL && g_dir_read_name(d) != NULL)
		n++;
	if (d != NULL)
		g_dir_close(d);
	return n;
}

static void
test_copy_move_expunge(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_mailbox *inbox, *arch;
	struct ms_change_list out, changed, modified, since;
	struct ms_uid_range r = {2, 3};
	struct ms_uidset set = {&r, 1};
	struct ms_status st;
	uint32_t uidvalidity;
	char *cur;

	fx_init(fx);
	for (int i = 1; i <= 4; i++) {
		char *text = g_strdup_printf("Subject: %d\n\nbody %d\n", i, i);
		append(fx, "INBOX", text, i == 2 ? MS_FLAG_FLAGGED : 0);
		g_free(text);
	}
	inbox = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	CHECK(ms_message_copy(inbox, &set, "Archive", false, &out, &uidvalidity,
			      &fx->err));
	g_assert_cmpuint(out.n_uids, ==, 2);
	g_assert_cmpuint(out.src_uids[0], ==, 2);
	g_assert_cmpuint(out.uids[0], ==, 1);
	g_assert_cmpuint(out.uids[1], ==, 2);
	ms_change_list_free(&out);
	arch = ms_mailbox_open(fx->u, "Archive", &fx->err);
	g_assert_cmpuint(uidvalidity, ==, ms_mailbox_uidvalidity(arch));
	char *body = read_message(fx, arch, 1);
	g_assert_cmpstr(body, ==, "Subject: 2\r\n\r\nbody 2\r\n");
	g_free(body);
	struct ms_msg_list meta;
	CHECK(ms_message_get(arch, 1, &meta, NULL, &fx->err));
	g_assert_cmpuint(meta.v[0].flags, ==, MS_FLAG_FLAGGED);
	ms_msg_list_free(&meta);

	/* Move: atomic, the source gets tombstones. */
	CHECK(ms_mailbox_get_status(inbox, &st, &fx->err));
	uint64_t before = st.highestmodseq;
	struct ms_uid_range r1 = {1, 1};
	struct ms_uidset one = {&r1, 1};
	CHECK(ms_message_copy(inbox, &one, "Archive", true, &out, &uidvalidity,
			      &fx->err));
	g_assert_cmpuint(out.uids[0], ==, 3);
	ms_change_list_free(&out);
	CHECK(ms_mailbox_changes(inbox, before, &since, &fx->err));
	g_assert_cmpuint(since.n_uids, ==, 1);
	g_assert_cmpuint(since.uids[0], ==, 1);
	ms_change_list_free(&since);
	CHECK(ms_mailbox_get_status(inbox, &st, &fx->err));
	g_assert_cmpuint(st.messages, ==, 3);

	/* Expunge takes only \Deleted messages; files go too. */
	cur = g_strdup_printf("%s/cur", ms_user_dir(fx->u));
	g_assert_cmpint(count_files(cur), ==, 3);
	struct ms_uid_range r34 = {3, 4};
	struct ms_uidset del = {&r34, 1};
	CHECK(ms_message_store(inbox, &del, MS_FLAGS_ADD, MS_FLAG_DELETED, NULL,
			       0, &changed, &modified, &fx->err));
	ms_change_list_free(&changed);
	ms_change_list_free(&modified);
	CHECK(ms_message_expunge(inbox, NULL, &out, &fx->err));
	g_assert_cmpuint(out.n_uids, ==, 2);
	g_assert_cmpuint(out.uids[0], ==, 3);
	ms_change_list_free(&out);
	g_assert_cmpint(count_files(cur), ==, 1);
	CHECK(ms_mailbox_get_status(inbox, &st, &fx->err));
	g_assert_cmpuint(st.messages, ==, 1);
	g_assert_cmpuint(st.deleted, ==, 0);
	g_assert_cmpint(ms_message_open(inbox, 3, &fx->err), ==, -1);
	g_assert_cmpint(fx->err.code, ==, MS_ERR_NOT_FOUND);
	/* The copy in Archive still reads: hard links. */
	body = read_message(fx, arch, 2);
	g_assert_cmpstr(body, ==, "Subject: 3\r\n\r\nbody 3\r\n");
	g_free(body);
	g_free(cur);
	ms_mailbox_close(&arch);
	ms_mailbox_close(&inbox);
	fx_free(fx);
}

static void
write_file(const char *path, const char *text)
{
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
test_adoption(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_mailbox *mb;
	struct ms_msg_list msgs;
	char *path;

	fx_init(fx);
	append(fx, "INBOX", "Subject: ours\n\n1\n", 0);
	/* Another program delivers into new/, LF line ends, flags none. */
	path = g_strdup_printf("%s/new/1700000000.M1P1.other",
			       ms_user_dir(fx->u));
	write_file(path, "Subject: dropped\n\nhello\n");
	g_free(path);
	/* A crash between an append's rename and its commit. */
	path = g_strdup_printf("%s/cur/1700000001.M2P2.crash,S=21:2,FS",
			       ms_user_dir(fx->u));
	write_file(path, "Subject: crash\r\n\r\nx\r\n");
	g_free(path);

	mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	g_assert_nonnull(mb);
	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	g_assert_cmpuint(msgs.n, ==, 3);
	/* In name order: the dropped file (converted to CRLF), then the
	 * crash leftover with its Maildir flags. */
	g_assert_cmpuint(msgs.v[1].flags, ==, 0);
	g_assert_cmpuint(msgs.v[1].size, ==, 27);
	g_assert_cmpuint(msgs.v[2].flags, ==, MS_FLAG_FLAGGED | MS_FLAG_SEEN);
	char *body = read_message(fx, mb, 2);
	g_assert_cmpstr(body, ==, "Subject: dropped\r\n\r\nhello\r\n");
	g_free(body);
	ms_msg_list_free(&msgs);
	ms_mailbox_close(&mb);

	/* Opening again adopts nothing more. */
	mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	g_assert_cmpuint(msgs.n, ==, 3);
	ms_msg_list_free(&msgs);

	/* A file deleted behind our back is expunged at the next scan. */
	char *cur = g_strdup_printf("%s/cur", ms_user_dir(fx->u));
	GDir *d = g_dir_open(cur, 0, NULL);
	const char *name;
	while ((name = g_dir_read_name(d)) != NULL) {
		if (strstr(name, "crash") != NULL) {
			char *victim = g_build_filename(cur, name, NULL);
			g_unlink(victim);
			g_free(victim);
		}
	}
	g_dir_close(d);
	ms_mailbox_close(&mb);
	mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	g_assert_cmpuint(msgs.n, ==, 2);
	ms_msg_list_free(&msgs);
	struct ms_change_list since;
	CHECK(ms_mailbox_changes(mb, 0, &since, &fx->err));
	g_assert_cmpuint(since.n_uids, ==, 1);
	g_assert_cmpuint(since.uids[0], ==, 3);
	ms_change_list_free(&since);
	ms_mailbox_close(&mb);
	g_free(cur);
	fx_free(fx);
}

static void
test_quota(void)
{
	struct fx fx_, *fx = &fx_;
	struct ms_append *a;
	struct ms_quota q;
	uint32_t uid, uidvalidity;

	memset(fx, 0, sizeof(*fx));
	fx->root = g_dir_make_tmp("test-mailstore-XXXXXX", NULL);
	fx_open(fx, 100, 2, NULL);
	append(fx, "INBOX", "0123456789", 0);
	append(fx, "Sent", "0123456789", 0);
	a = ms_append_begin(fx->u, "INBOX", &fx->err);
	CHECK(ms_append_write(a, "x", 1, &fx->err));
	g_assert_cmpint(ms_append_commit(&a, &uid, &uidvalidity, &fx->err), ==,
			MS_ERR_OVER_QUOTA);
	CHECK(ms_quota_get(fx->u, &q, &fx->err));
	g_assert_cmpuint(q.messages, ==, 2);
	g_assert_cmpuint(q.bytes, ==, 20);
	g_assert_cmpuint(q.limit_messages, ==, 2);
	/* Nothing of the refused message is left in tmp/ or cur/. */
	char *tmp = g_strdup_printf("%s/tmp", ms_user_dir(fx->u));
	char *cur = g_strdup_printf("%s/cur", ms_user_dir(fx->u));
	g_assert_cmpint(count_files(tmp), ==, 0);
	g_assert_cmpint(count_files(cur), ==, 1);
	g_free(tmp);
	g_free(cur);
	fx_close(fx);

	/* Bytes limit. */
	fx_open(fx, 25, 0, NULL);
	a = ms_append_begin(fx->u, "INBOX", &fx->err);
	CHECK(ms_append_write(a, "0123456", 7, &fx->err));
	g_assert_cmpint(ms_append_commit(&a, &uid, &uidvalidity, &fx->err), ==,
			MS_ERR_OVER_QUOTA);
	fx_free(fx);
}

struct notify_seen {
	int count;
	char *last;
	struct ev_loop *loop;
};

static void
on_change(struct ms_user *u, const char *mailbox, void *ctx)
{
	struct notify_seen *seen = ctx;

	seen->count++;
	g_free(seen->last);
	seen->last = g_strdup(mailbox != NULL ? mailbox : "(other process)");
	ev_break(seen->loop, EVBREAK_ALL);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
run_until(struct ev_loop *loop, struct notify_seen *seen, int count)
{
	ev_timer t;

	ev_timer_init(&t, timeout_cb, 20.0, 0);
	ev_timer_start(loop, &t);
	while (seen->count < count && ev_is_active(&t))
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	g_assert_cmpint(seen->count, >=, count);
}

static void
test_notify(void)
{
	struct fx fx_, *fx = &fx_;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct notify_seen seen = {.loop = loop};
	struct ms_watch *w;
	pid_t pid;
	int status;

	memset(fx, 0, sizeof(*fx));
	fx->root = g_dir_make_tmp("test-mailstore-XXXXXX", NULL);
	fx_open(fx, 0, 0, loop);
	w = ms_watch_add(fx->u, on_change, &seen);
	g_assert_nonnull(w);
	append(fx, "Sent", "x", 0);
	run_until(loop, &seen, 1);
	g_assert_cmpstr(seen.last, ==, "Sent");

	/* Another process appends: inotify tells us. */
	seen.count = 0;
	pid = fork();
	if (pid == 0) {
		struct fx child = {.root = fx->root};
		fx_open(&child, 0, 0, NULL);
		append(&child, "INBOX", "from the child", 0);
		fx_close(&child);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	run_until(loop, &seen, 1);
	g_assert_cmpstr(seen.last, ==, "(other process)");
	ms_watch_remove(&w);
	g_free(seen.last);
	fx_free(fx);
	ev_loop_destroy(loop);
}

/* Crash safety: a child appends and reports each UID once commit returned;
 * it is killed at a random moment. Everything reported must be there,
 * intact, and no UID may appear twice. */
static void
test_kill_during_appends(void)
{
	struct fx fx_, *fx = &fx_;
	int fds[2];
	GArray *acked = g_array_new(FALSE, FALSE, sizeof(uint32_t));

	fx_init(fx);
	fx_close(fx);
	for (int round = 0; round < 3; round++) {
		g_assert_cmpint(pipe(fds), ==, 0);
		pid_t pid = fork();
		if (pid == 0) {
			struct fx child = {.root = fx->root};
			close(fds[0]);
			fx_open(&child, 0, 0, NULL);
			for (int i = 0;; i++) {
				char *text = g_strdup_printf(
					"Subject: %d/%d\n\nbody\n", round, i);
				uint32_t uid = append(&child, "INBOX", text, 0);
				g_free(text);
				if (write(fds[1], &uid, sizeof(uid)) < 0)
					_exit(1);
			}
		}
		close(fds[1]);
		/* Let it get some done, then kill it mid-flight. */
		uint32_t uid;
		int got = 0;
		while (got < 20 + round * 15 &&
		       read(fds[0], &uid, sizeof(uid)) == sizeof(uid)) {
			g_array_append_val(acked, uid);
			got++;
		}
		kill(pid, SIGKILL);
		while (read(fds[0], &uid, sizeof(uid)) == sizeof(uid))
			g_array_append_val(acked, uid);
		close(fds[0]);
		waitpid(pid, NULL, 0);
	}
	fx_open(fx, 0, 0, NULL);
	struct ms_mailbox *mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	struct ms_msg_list msgs;
	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	for (size_t i = 1; i < msgs.n; i++)
		g_assert_cmpuint(msgs.v[i - 1].uid, <, msgs.v[i].uid);
	for (guint i = 0; i < acked->len; i++) {
		uint32_t want = g_array_index(acked, uint32_t, i);
		bool found = false;
		for (size_t j = 0; j < msgs.n && !found; j++)
			found = msgs.v[j].uid == want;
		if (!found)
			g_error("acknowledged UID %u is lost", want);
		for (guint k = 0; k < i; k++)
			g_assert_cmpuint(g_array_index(acked, uint32_t, k), !=,
					 want);
		char *body = read_message(fx, mb, want);
		g_assert_true(g_str_has_suffix(body, "\r\n\r\nbody\r\n"));
		g_free(body);
	}
	g_assert_cmpuint(msgs.n, >=, acked->len);
	ms_msg_list_free(&msgs);
	ms_mailbox_close(&mb);
	g_array_free(acked, TRUE);
	fx_free(fx);
}

/* Two processes append 1000 messages each to one mailbox. */
static void
test_two_writers(void)
{
	struct fx fx_, *fx = &fx_;
	const int per_child = 1000;
	pid_t pids[2];

	fx_init(fx);
	fx_close(fx);
	for (int c = 0; c < 2; c++) {
		pids[c] = fork();
		if (pids[c] == 0) {
			struct fx child = {.root = fx->root};
			fx_open(&child, 0, 0, NULL);
			for (int i = 0; i < per_child; i++) {
				char *text = g_strdup_printf(
					"Subject: %d-%d\n\nx\n", c, i);
				append(&child, "INBOX", text, 0);
				g_free(text);
			}
			fx_close(&child);
			_exit(0);
		}
	}
	for (int c = 0; c < 2; c++) {
		int status;
		waitpid(pids[c], &status, 0);
		g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	fx_open(fx, 0, 0, NULL);
	struct ms_mailbox *mb = ms_mailbox_open(fx->u, "INBOX", &fx->err);
	struct ms_msg_list msgs;
	CHECK(ms_mailbox_messages(mb, NULL, &msgs, &fx->err));
	g_assert_cmpuint(msgs.n, ==, 2 * per_child);
	for (size_t i = 0; i < msgs.n; i++)
		g_assert_cmpuint(msgs.v[i].uid, ==, i + 1);
	ms_msg_list_free(&msgs);
	ms_mailbox_close(&mb);
	fx_free(fx);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailstore/account/defaults", test_defaults);
	g_test_add_func("/mailstore/mailbox/tree", test_mailbox_tree);
	g_test_add_func("/mailstore/mailbox/uidvalidity-not-reused",
			test_uidvalidity_not_reused);
	g_test_add_func("/mailstore/append/crlf-and-status",
			test_append_crlf_and_status);
	g_test_add_func("/mailstore/append/keywords-and-date",
			test_append_set_keywords_date);
	g_test_add_func("/mailstore/message/store", test_store_flags);
	g_test_add_func("/mailstore/message/copy-move-expunge",
			test_copy_move_expunge);
	g_test_add_func("/mailstore/sync/adoption", test_adoption);
	g_test_add_func("/mailstore/quota", test_quota);
	g_test_add_func("/mailstore/notify", test_notify);
	g_test_add_func("/mailstore/crash/kill-during-appends",
			test_kill_during_appends);
	g_test_add_func("/mailstore/concurrency/two-writers", test_two_writers);
	return g_test_run();
}
