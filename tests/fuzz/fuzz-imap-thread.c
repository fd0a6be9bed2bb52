/* fuzz-imap-thread.c - SORT and THREAD over arbitrary message headers.
 *
 * Byte 0 picks the sort criteria (bits 0-3: the first key, bit 4:
 * REVERSE, then SUBJECT and DATE) and bit 5 the threading algorithm. The
 * rest is messages, separated by a NUL byte: each is a header block, sent
 * through the real MIME parser as delivery would, then given to both sets
 * as the session gives them (envelope from the structure, References from
 * the header). Message i has internal date i * 1000 and size i.
 *
 * Checks: no crash, no leak, no deep recursion; the sort answer is a
 * permutation of the messages; the thread answer follows RFC 5256 4's
 * grammar and names every message exactly once; the base subject of
 * each subject and the Message-IDs of each References field come out
 * as they should (an ID holds one '@', not at either end). */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moonpost/mime.h>

#include "imap-sort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSGS_MAX 512

static void
check_msgids(struct mp_str refs)
{
	struct mp_buf out = {0};
	size_t pos = 0, prev = 0;

	while (imap_thread_next_msgid(refs.p, refs.len, &pos, &out)) {
		const char *id = out.data + prev;
		size_t len = out.len - prev;
		const char *at = memchr(id, '@', len);

		assert(pos <= refs.len);
		assert(len >= 3 && len <= IMAP_THREAD_ID_MAX);
		assert(at != NULL && at != id && at != id + len - 1);
		prev = out.len;
	}
	assert(pos == refs.len && out.len == prev);
	mp_buf_free(&out);
}

/* RFC 5256 4: thread-list = "(" (thread-members / thread-nested) ")",
 * thread-members = nz-number *(SP nz-number) [SP thread-nested],
 * thread-nested = 2*thread-list. The stacks count, per open list, the
 * numbers and the nested lists in it. */
static void
check_threads(const char *s, size_t len, size_t n)
{
	unsigned char *seen = calloc(n + 1, 1);
	size_t *nums = calloc(len + 1, sizeof(*nums));
	size_t *lists = calloc(len + 1, sizeof(*lists));
	size_t depth = 0, count = 0, i = 0;

	while (i < len) {
		if (s[i] == '(') {
			if (depth > 0)
				lists[depth - 1]++;
			nums[depth] = lists[depth] = 0;
			depth++;
			i++;
		} else if (s[i] == ')') {
			assert(depth > 0);
			depth--;
			assert((nums[depth] > 0 && lists[depth] != 1) ||
			       (nums[depth] == 0 && lists[depth] >= 2));
			i++;
		} else if (s[i] == ' ') {
			assert(i + 1 < len && s[i + 1] != ' ' &&
			       s[i + 1] != ')');
			i++;
		} else {
			size_t v = 0;

			assert(s[i] >= '1' && s[i] <= '9' && depth > 0);
			assert(lists[depth - 1] == 0);
			while (i < len && s[i] >= '0' && s[i] <= '9')
				v = v * 10 + (size_t)(s[i++] - '0');
			assert(v >= 1 && v <= n && !seen[v]);
			seen[v] = 1;
			nums[depth - 1]++;
			count++;
		}
	}
	assert(depth == 0 && count == n);
	free(seen);
	free(nums);
	free(lists);
}

/* The first References field of a header block, as the session finds
 * it; copied into refs. */
static struct mp_str
references(const uint8_t *hdr, size_t len, struct mp_buf *refs)
{
	struct mp_mime_header_iter it;
	struct mp_str name, value, r = {NULL, 0};

	mp_mime_header_iter_init(&it, hdr, len);
	while (mp_mime_header_iter_next(&it, &name, &value)) {
		if (name.len == 10 &&
		    strncasecmp(name.p, "References", 10) == 0) {
			mp_buf_reset(refs);
			mp_buf_append(refs, value.p, value.len);
			r = (struct mp_str){refs->data, refs->len};
			break;
		}
	}
	mp_mime_header_iter_deinit(&it);
	return r;
}

static void
add_message(struct imap_sort_set *sort, struct imap_thread_set *thread,
	    uint32_t num, const uint8_t *hdr, size_t len, struct mp_buf *refs)
{
	struct mp_mime_parser *p = mp_mime_parser_new(NULL);
	struct mp_mime_message *mime;
	const struct mp_mime_envelope *env;
	struct ms_msg meta = {.uid = num,
			      .size = num,
			      .internal_date = (int64_t)num * 1000,
			      .keywords = ""};
	struct imap_sort_msg sm = {.num = num, .meta = &meta};
	struct imap_thread_msg tm = {.num = num};
	struct mp_buf base = {0};

	mp_mime_parser_feed(p, hdr, len);
	mp_mime_parser_feed(p, "\r\n\r\n", 4);
	mime = mp_mime_parser_finish(&p);
	env = mime->root->envelope;
	sm.env = env;
	imap_sort_set_add(sort, &sm);
	tm.sent = imap_sort_sent_date(&meta, env);
	if (env != NULL) {
		tm.subject = env->subject;
		tm.message_id = env->message_id;
		tm.in_reply_to = env->in_reply_to;
		if (env->subject.p != NULL)
			imap_sort_base_subject(env->subject.p, env->subject.len,
					       &base);
	}
	tm.references = references(hdr, len, refs);
	if (tm.references.p != NULL)
		check_msgids(tm.references);
	imap_thread_set_add(thread, &tm);
	mp_buf_free(&base);
	mp_mime_message_free(&mime);
}

static void
check_sort(struct imap_sort_set *set, uint32_t n)
{
	const uint32_t *order = imap_sort_set_sort(set);
	unsigned char *seen = calloc(n + 1, 1);

	assert(imap_sort_set_count(set) == n);
	for (uint32_t i = 0; i < n; i++) {
		assert(order[i] < n && !seen[order[i]]);
		seen[order[i]] = 1;
		assert(imap_sort_set_num(set, order[i]) == order[i] + 1);
	}
	free(seen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_sort_program prog = {.n = 3};
	struct imap_sort_set *sort;
	struct imap_thread_set *thread;
	struct mp_buf out = {0}, refs = {0};
	size_t pos = 1;
	uint32_t n = 0;

	if (size < 1)
		return 0;
	prog.c[0].key =
		(enum imap_sort_key)((data[0] & 0x0f) % IMAP_SORT_KEY_COUNT);
	prog.c[0].reverse = (data[0] & 0x10) != 0;
	prog.c[1].key = IMAP_SORT_SUBJECT;
	prog.c[2].key = IMAP_SORT_DATE;
	prog.c[2].reverse = true;
	sort = imap_sort_set_new(&prog);
	thread = imap_thread_set_new((data[0] & 0x20)
					     ? IMAP_THREAD_REFERENCES
					     : IMAP_THREAD_ORDEREDSUBJECT);
	while (pos < size && n < MSGS_MAX) {
		const uint8_t *end = memchr(data + pos, '\0', size - pos);
		size_t len =
			end != NULL ? (size_t)(end - data) - pos : size - pos;

		add_message(sort, thread, ++n, data + pos, len, &refs);
		pos += len + 1;
	}
	check_sort(sort, n);
	imap_thread_set_format(thread, &out);
	check_threads(out.data != NULL ? out.data : "", out.len, n);
	imap_sort_set_free(&sort);
	imap_thread_set_free(&thread);
	mp_buf_free(&out);
	mp_buf_free(&refs);
	return 0;
}
