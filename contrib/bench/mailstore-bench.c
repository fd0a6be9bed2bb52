/* mailstore-bench.c - figures for the mailstore: durable appends per
 * second (one writer; eight writers on one mailbox; eight on eight
 * accounts), and the time to open a 100,000-message mailbox and list its
 * UIDs and flags. Prints figures; never passes or fails.
 *
 *   contrib/bench/mailstore-bench [-n APPENDS] [-m MESSAGES] [-d DIR]
 *
 * DIR should be on the disk you care about: the numbers are mostly the
 * cost of fsync there. */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <moonpost/mailstore.h>

#define MESSAGE_SIZE 5000

struct bench {
	const char *dir;
	struct ms_store *store;
	int appends;
	int messages;
	char body[MESSAGE_SIZE + 1];
};

struct writer {
	struct bench *b;
	const char *account;
	int count;
};

static double
now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void
make_body(char *body)
{
	size_t n = (size_t)snprintf(body, MESSAGE_SIZE,
				    "From: bench@example.test\r\n"
				    "To: user@example.test\r\n"
				    "Subject: benchmark message\r\n"
				    "Message-ID: <bench@example.test>\r\n\r\n");

	while (n + 72 < MESSAGE_SIZE) {
		memset(body + n, 'x', 70);
		memcpy(body + n + 70, "\r\n", 2);
		n += 72;
	}
	body[n] = '\0';
}

static void
die(const char *what, const struct ms_error *err)
{
	fprintf(stderr, "mailstore-bench: %s: %s\n", what, err->text);
	exit(1);
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	struct ms_error err;
	struct ms_user *u = ms_user_open(w->b->store, w->account, &err);

	if (u == NULL)
		die("open", &err);
	for (int i = 0; i < w->count; i++) {
		struct ms_append *a = ms_append_begin(u, "INBOX", &err);
		uint32_t uid, uidvalidity;

		if (a == NULL ||
		    ms_append_write(a, w->b->body, strlen(w->b->body), &err) !=
			    MS_OK ||
		    ms_append_commit(&a, &uid, &uidvalidity, &err) != MS_OK)
			die("append", &err);
	}
	ms_user_unref(&u);
	return NULL;
}

/* Runs threads writers of count appends each; accounts[i] per writer. */
static void
run_writers(struct bench *b, const char *label, int threads,
	    const char *const *accounts, int count)
{
	pthread_t tid[8];
	struct writer w[8];
	double start = now(), secs;

	for (int i = 0; i < threads; i++) {
		w[i] = (struct writer){b, accounts[i], count};
		pthread_create(&tid[i], NULL, writer_main, &w[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	secs = now() - start;
	printf("%-40s %8d appends %7.2f s %9.1f appends/s\n", label,
	       threads * count, secs, threads * count / secs);
}

/* Writes m message files straight into cur/ of a new account, then times
 * the first open (which adopts them all) and a second open + listing. */
static void
big_mailbox(struct bench *b)
{
	struct ms_error err;
	struct ms_user *u = ms_user_open(b->store, "big@example.test", &err);
	struct ms_mailbox *mb;
	struct ms_msg_list list;
	double start;
	char path[4096];

	if (u == NULL)
		die("open", &err);
	for (int i = 0; i < b->messages; i++) {
		snprintf(path, sizeof(path), "%s/cur/%d.M%dP1.bench,S=%zu:2,S",
			 ms_user_dir(u), 1700000000 + i, i, strlen(b->body));
		FILE *f = fopen(path, "w");
		if (f == NULL || fputs(b->body, f) == EOF || fclose(f) != 0) {
			perror(path);
			exit(1);
		}
	}
	start = now();
	mb = ms_mailbox_open(u, "INBOX", &err);
	if (mb == NULL)
		die("adopt", &err);
	printf("%-40s %8d messages %7.2f s\n", "first open (adopts every file)",
	       b->messages, now() - start);
	ms_mailbox_close(&mb);
	start = now();
	mb = ms_mailbox_open(u, "INBOX", &err);
	if (mb == NULL || ms_mailbox_messages(mb, NULL, &list, &err) != MS_OK)
		die("list", &err);
	printf("%-40s %8zu messages %7.3f s\n", "open + list UIDs and flags",
	       list.n, now() - start);
	ms_msg_list_free(&list);
	ms_mailbox_close(&mb);
	ms_user_unref(&u);
}

int
main(int argc, char **argv)
{
	static const char *const one[] = {"a0@example.test"};
	static const char *const same[8] = {"s@example.test", "s@example.test",
					    "s@example.test", "s@example.test",
					    "s@example.test", "s@example.test",
					    "s@example.test", "s@example.test"};
	static const char *const eight[8] = {
		"e0@example.test", "e1@example.test", "e2@example.test",
		"e3@example.test", "e4@example.test", "e5@example.test",
		"e6@example.test", "e7@example.test"};
	struct bench b = {.appends = 1000, .messages = 100000};
	struct ms_store_settings set = {0};
	struct ms_error err;
	char tmpl[] = "/var/tmp/mailstore-bench-XXXXXX";
	int c;

	while ((c = getopt(argc, argv, "n:m:d:")) != -1) {
		switch (c) {
		case 'n':
			b.appends = atoi(optarg);
			break;
		case 'm':
			b.messages = atoi(optarg);
			break;
		case 'd':
			b.dir = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n APPENDS] [-m MESSAGES] "
				"[-d DIR]\n",
				argv[0]);
			return 64;
		}
	}
	if (b.dir == NULL && (b.dir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	make_body(b.body);
	set.root = b.dir;
	b.store = ms_store_new(&set, &err);
	if (b.store == NULL)
		die("store", &err);
	printf("mailstore in %s, %zu-byte messages\n", b.dir, strlen(b.body));
	run_writers(&b, "1 writer", 1, one, b.appends);
	run_writers(&b, "8 writers, one mailbox", 8, same, b.appends / 8);
	run_writers(&b, "8 writers, eight accounts", 8, eight, b.appends / 8);
	big_mailbox(&b);
	ms_store_free(&b.store);
	printf("(left in %s)\n", b.dir);
	return 0;
}
