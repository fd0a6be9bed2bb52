/* imap-sort.c - SORT's keys and order (RFC 5256 2 and 3, RFC 5957): the
 * base subject, collation, sort criteria, and a set of messages sorted by
 * them. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-search.h"
#include "imap-sort.h"

/* --- base subject (RFC 5256 2.1) ------------------------------------------ */

/* The subject being cut down: text[start .. end) is what is left. */
struct subj {
	const char *s;
	size_t start, end;
	bool reply;
	/* Step (3) failed for every start in [fail_lo, fail_hi]: the same
	 * run of blobs, then the same text that is no subj-refwd. */
	bool memo;
	size_t fail_lo, fail_hi;
};

static bool
ieq(const struct subj *b, size_t at, const char *word)
{
	size_t n = strlen(word);

	return b->end - at >= n && strncasecmp(b->s + at, word, n) == 0;
}

/* Step (1): tabs, line breaks and runs of them to one space, in place. */
static size_t
pack_space(char *s, size_t len)
{
	size_t i, o = 0;
	bool space = false;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (!space)
				s[o++] = ' ';
			space = true;
		} else {
			s[o++] = c;
			space = false;
		}
	}
	return o;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP: moves *pos past it. */
static bool
skip_blob(const struct subj *b, size_t *pos)
{
	size_t p = *pos + 1;

	if (*pos >= b->end || b->s[*pos] != '[')
		return false;
	while (p < b->end && b->s[p] != '[' && b->s[p] != ']')
		p++;
	if (p >= b->end || b->s[p] != ']')
		return false;
	p++;
	if (p < b->end && b->s[p] == ' ')
		p++;
	*pos = p;
	return true;
}

/* Step (2): subj-trailer = "(fwd)" / WSP, as often as it is there. */
static void
remove_trailers(struct subj *b)
{
	while (b->end > b->start) {
		if (b->s[b->end - 1] == ' ') {
			b->end--;
		} else if (b->end - b->start >= 5 &&
			   strncasecmp(b->s + b->end - 5, "(fwd)", 5) == 0) {
			b->end -= 5;
			b->reply = true;
		} else {
			break;
		}
	}
}

static bool
leader_failed(struct subj *b, size_t from, size_t at)
{
	b->memo = true;
	b->fail_lo = from;
	b->fail_hi = at;
	return false;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at *pos. */
static bool
skip_refwd(struct subj *b, size_t from, size_t *pos)
{
	size_t q = *pos;

	if (ieq(b, q, "re"))
		q += 2;
	else if (ieq(b, q, "fwd"))
		q += 3;
	else if (ieq(b, q, "fw"))
		q += 2;
	else
		return leader_failed(b, from, *pos);
	if (q < b->end && b->s[q] == ' ')
		q++;
	if (q < b->end && b->s[q] == '[' && !skip_blob(b, &q))
		return leader_failed(b, from, *pos);
	if (q >= b->end || b->s[q] != ':')
		return leader_failed(b, from, *pos);
	*pos = q + 1;
	return true;
}

/* Step (3): subj-leader = (*subj-blob subj-refwd) / WSP. A failed scan
 * is remembered: step (4) then takes the run's blobs off one by one, and
 * each would be scanned again for nothing. */
static bool
remove_leader(struct subj *b)
{
	bool removed = false;
	size_t q;

	if (b->start < b->end && b->s[b->start] == ' ') {
		b->start++;
		removed = true;
	}
	if (b->memo && b->start >= b->fail_lo && b->start <= b->fail_hi)
		return removed;
	q = b->start;
	while (q < b->end && b->s[q] == '[') {
		if (!skip_blob(b, &q)) {
			leader_failed(b, b->start, q);
			return removed;
		}
	}
	if (!skip_refwd(b, b->start, &q))
		return removed;
	b->start = q;
	b->reply = true;
	return true;
}

/* Step (4): a leading subj-blob, when something is left after it. */
static bool
remove_blob(struct subj *b)
{
	size_t q = b->start;

	if (!skip_blob(b, &q) || q >= b->end)
		return false;
	b->start = q;
	return true;
}

/* Step (6): subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]". */
static bool
remove_fwd_wrapper(struct subj *b)
{
	if (b->end - b->start < 6 || !ieq(b, b->start, "[fwd:") ||
	    b->s[b->end - 1] != ']')
		return false;
	b->start += 5;
	b->end--;
	b->reply = true;
	return true;
}

bool
imap_sort_base_subject(const char *subject, size_t len, struct mp_buf *out)
{
	struct mp_buf dec = {0};
	struct subj b = {0};
	bool found;

	mp_mime_decode_header(subject, len, &dec);
	b.s = dec.data;
	b.end = pack_space(dec.data, dec.len);
	do {
		b.memo = false; /* the end moves: scans start afresh */
		remove_trailers(&b);
		do {
			found = remove_leader(&b);
			found = remove_blob(&b) || found;
		} while (found);
	} while (remove_fwd_wrapper(&b));
	mp_buf_append(out, b.s + b.start, b.end - b.start);
	mp_buf_free(&dec);
	return b.reply;
}

/* --- collation ------------------------------------------------------------ */

/* Canonical decompositions of U+00C0 .. U+017F (Latin-1 Supplement and
 * Latin Extended-A): the base letter, upper-cased, and the combining
 * mark ('a' + index in marks[]); '.' where there is none. */
static const char decomp_base[] =
	"AAAAAA.CEEEEIIII.NOOOOO..UUUUY..AAAAAA.CEEEEIIII.NOOOOO..UUUUY.Y"
	"AAAAAACCCCCCCCDD..EEEEEEEEEEGGGGGGGGHH..IIIIIIIII...JJKK.LLLLLL."
	"...NNNNNN...OOOOOO..RRRRRRSSSSSSSSTTTT..UUUUUUUUUUUUWWYYYZZZZZZ.";
static const char decomp_mark[] =
	"abcdhi.labchabch.dabcdh..abchb..abcdhi.labchabch.dabcdh..abchb.h"
	"eeffmmbbccggkkkk..eeffggmmkkccffggllcc..ddeeffmmg...ccll.bbllkk."
	"...bbllkk...eeffjj..bbllkkbbccllkkllkk..ddeeffiijjmmcccchbbggkk.";
static const uint16_t marks[] = {0x300, 0x301, 0x302, 0x303, 0x304,
				 0x306, 0x307, 0x308, 0x30a, 0x30b,
				 0x30c, 0x327, 0x328};

/* The precomposed Latin letter at s (two bytes of UTF-8) as its base
 * letter and combining mark; false for anything else. */
static bool
put_decomposed(const unsigned char *s, size_t len, struct mp_buf *out)
{
	uint32_t cp;
	uint16_t m;
	char b[3];

	if (len < 2 || s[0] < 0xc3 || s[0] > 0xc5 || (s[1] & 0xc0) != 0x80)
		return false;
	cp = ((uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f)) - 0xc0;
	if (decomp_base[cp] == '.')
		return false;
	m = marks[decomp_mark[cp] - 'a'];
	b[0] = decomp_base[cp];
	b[1] = (char)(0xc0 | (m >> 6));
	b[2] = (char)(0x80 | (m & 0x3f));
	mp_buf_append(out, b, 3);
	return true;
}

/* i;unicode-casemap's titlecase and decomposition (RFC 5051 2) of folded
 * text, for ASCII and the precomposed Latin letters. */
static void
put_titlecase(const char *s, size_t len, struct mp_buf *out)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (put_decomposed(u + i, len - i, out)) {
			i++;
			continue;
		}
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 0x20);
		mp_buf_append(out, &c, 1);
	}
}

static void
ascii_upper(struct mp_buf *out, size_t from)
{
	for (size_t i = from; i < out->len; i++) {
		if (out->data[i] >= 'a' && out->data[i] <= 'z')
			out->data[i] -= 0x20;
	}
}

void
imap_sort_collate(const char *s, size_t len, struct mp_buf *out)
{
	struct mp_buf folded = {0};
	size_t from = out->len;

	/* Folding changes a length by a few bytes at most: cutting the
	 * input first keeps a huge value from being folded whole. */
	if (len > IMAP_SORT_KEY_MAX + 8)
		len = IMAP_SORT_KEY_MAX + 8;
	mp_buf_append(out, "", 0);
	imap_search_fold(s, len, true, &folded);
	put_titlecase(folded.data != NULL ? folded.data : "", folded.len, out);
	mp_buf_free(&folded);
	if (out->len - from > IMAP_SORT_KEY_MAX) {
		out->len = from + IMAP_SORT_KEY_MAX;
		out->data[out->len] = '\0';
	}
}

/* i;ascii-casemap (RFC 4790 9.2): ASCII letters upper-cased. */
static void
collate_ascii(const char *s, size_t len, struct mp_buf *out)
{
	size_t from = out->len;

	mp_buf_append(out, s,
		      len < IMAP_SORT_KEY_MAX ? len : IMAP_SORT_KEY_MAX);
	ascii_upper(out, from);
}

int64_t
imap_sort_sent_date(const struct ms_msg *meta,
		    const struct mp_mime_envelope *env)
{
	int32_t day;
	int64_t t;

	if (env != NULL && env->date.p != NULL &&
	    imap_search_parse_rfc5322_date(env->date.p, env->date.len, &day,
					   &t))
		return t;
	return meta->internal_date;
}

/* --- a stable merge sort of indices --------------------------------------- */

static void
merge(const uint32_t *src, uint32_t *dst, size_t lo, size_t mid, size_t hi,
      int (*cmp)(const void *ctx, uint32_t a, uint32_t b), const void *ctx)
{
	size_t i = lo, j = mid, k = lo;

	while (i < mid && j < hi)
		dst[k++] = cmp(ctx, src[j], src[i]) < 0 ? src[j++] : src[i++];
	while (i < mid)
		dst[k++] = src[i++];
	while (j < hi)
		dst[k++] = src[j++];
}

void
imap_sort_indices(uint32_t *v, size_t n,
		  int (*cmp)(const void *ctx, uint32_t a, uint32_t b),
		  const void *ctx)
{
	uint32_t *tmp, *src = v, *dst, *t;

	if (n < 2)
		return;
	tmp = mp_xcalloc(n, sizeof(*tmp));
	dst = tmp;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = n - lo > w ? lo + w : n;
			size_t hi = n - lo > 2 * w ? lo + 2 * w : n;

			merge(src, dst, lo, mid, hi, cmp, ctx);
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(tmp);
}

/* --- sort criteria -------------------------------------------------------- */

static const char *const key_names[IMAP_SORT_KEY_COUNT] = {
	[IMAP_SORT_ARRIVAL] = "ARRIVAL",
	[IMAP_SORT_CC] = "CC",
	[IMAP_SORT_DATE] = "DATE",
	[IMAP_SORT_FROM] = "FROM",
	[IMAP_SORT_SIZE] = "SIZE",
	[IMAP_SORT_SUBJECT] = "SUBJECT",
	[IMAP_SORT_TO] = "TO",
	[IMAP_SORT_DISPLAYFROM] = "DISPLAYFROM",
	[IMAP_SORT_DISPLAYTO] = "DISPLAYTO",
};

static bool
sort_fail(const char **error_r, const char *text)
{
	*error_r = text;
	return false;
}

static bool
parse_key(const struct imap_arg *arg, enum imap_sort_key *key_r)
{
	for (unsigned k = 0; k < IMAP_SORT_KEY_COUNT; k++) {
		if (imap_arg_atom_equals(arg, key_names[k])) {
			*key_r = (enum imap_sort_key)k;
			return true;
		}
	}
	return false;
}

bool
imap_sort_parse(const struct imap_arg *arg, struct imap_sort_program *prog,
		const char **error_r, bool *limit_r)
{
	const struct imap_arg *list;
	size_t n, i;

	*limit_r = false;
	prog->n = 0;
	if (!imap_arg_get_list(arg, &list, &n))
		return sort_fail(error_r, "SORT needs a list of sort criteria");
	if (n == 0)
		return sort_fail(error_r, "Empty sort criteria");
	for (i = 0; i < n; i++) {
		struct imap_sort_criterion c = {0};

		if (imap_arg_atom_equals(&list[i], "REVERSE")) {
			c.reverse = true;
			if (++i == n)
				return sort_fail(error_r,
						 "REVERSE needs a sort key");
		}
		if (!parse_key(&list[i], &c.key))
			return sort_fail(error_r, "Unknown sort key");
		if (prog->n == IMAP_SORT_CRITERIA_MAX) {
			*limit_r = true;
			return sort_fail(error_r, "Too many sort criteria");
		}
		prog->c[prog->n++] = c;
	}
	return true;
}

/* --- the set -------------------------------------------------------------- */

struct srec {
	uint32_t num;
	uint64_t size;
	int64_t arrival, sent;
};

/* A string key: bytes of the set's pool. */
struct skey {
	size_t off;
	size_t len;
};

struct imap_sort_set {
	struct imap_sort_program prog;
	/* The slot of each string key in a message's keys, or -1. */
	int slot[IMAP_SORT_KEY_COUNT];
	unsigned nslots;
	struct srec *v;
	size_t n, cap;
	struct skey *keys; /* cap * nslots */
	struct mp_buf pool, tmp;
	uint32_t *order;
};

static bool
is_string_key(enum imap_sort_key k)
{
	return k != IMAP_SORT_ARRIVAL && k != IMAP_SORT_DATE &&
	       k != IMAP_SORT_SIZE;
}

struct imap_sort_set *
imap_sort_set_new(const struct imap_sort_program *prog)
{
	struct imap_sort_set *set = mp_xcalloc(1, sizeof(*set));

	set->prog = *prog;
	for (unsigned k = 0; k < IMAP_SORT_KEY_COUNT; k++)
		set->slot[k] = -1;
	for (unsigned i = 0; i < prog->n; i++) {
		enum imap_sort_key k = prog->c[i].key;

		if (is_string_key(k) && set->slot[k] < 0)
			set->slot[k] = (int)set->nslots++;
	}
	return set;
}

static const struct mp_mime_address *
first_mailbox(const struct mp_mime_envelope *env, enum imap_sort_key k)
{
	const struct mp_mime_addrlist *l;

	if (env == NULL)
		return NULL;
	l = k == IMAP_SORT_CC                                   ? &env->cc
	    : k == IMAP_SORT_FROM || k == IMAP_SORT_DISPLAYFROM ? &env->from
								: &env->to;
	for (uint32_t i = 0; i < l->n; i++) {
		if (l->v[i].kind == MP_MIME_ADDR_MAILBOX)
			return &l->v[i];
	}
	return NULL;
}

/* The local part as IMAP's addr-mailbox means it: a quoted one without
 * its quotes and quoted-pairs. */
static void
put_mailbox(struct mp_str m, struct mp_buf *out)
{
	if (m.p == NULL)
		return;
	if (m.len < 2 || m.p[0] != '"' || m.p[m.len - 1] != '"') {
		mp_buf_append(out, m.p, m.len);
		return;
	}
	for (size_t i = 1; i + 1 < m.len; i++) {
		if (m.p[i] == '\\' && i + 2 < m.len)
			i++;
		mp_buf_append(out, &m.p[i], 1);
	}
}

/* RFC 5957 3: the display name, else mailbox@host, else the mailbox. */
static void
put_display(const struct mp_mime_address *a, struct mp_buf *out)
{
	size_t from = out->len;

	if (a->name.p != NULL)
		mp_mime_decode_header(a->name.p, a->name.len, out);
	if (out->len > from)
		return;
	put_mailbox(a->mailbox, out);
	if (a->mailbox.p != NULL && a->host.p != NULL && a->host.len > 0) {
		mp_buf_append(out, "@", 1);
		mp_buf_append(out, a->host.p, a->host.len);
	}
}

/* Appends the key k of msg to the pool. */
static void
put_key(struct imap_sort_set *set, enum imap_sort_key k,
	const struct imap_sort_msg *msg)
{
	const struct mp_mime_address *a = first_mailbox(msg->env, k);

	mp_buf_reset(&set->tmp);
	if (k == IMAP_SORT_SUBJECT) {
		if (msg->env != NULL && msg->env->subject.p != NULL)
			imap_sort_base_subject(msg->env->subject.p,
					       msg->env->subject.len,
					       &set->tmp);
		imap_sort_collate(set->tmp.data, set->tmp.len, &set->pool);
	} else if (k == IMAP_SORT_DISPLAYFROM || k == IMAP_SORT_DISPLAYTO) {
		if (a != NULL)
			put_display(a, &set->tmp);
		imap_sort_collate(set->tmp.data, set->tmp.len, &set->pool);
	} else if (a != NULL) {
		put_mailbox(a->mailbox, &set->tmp);
		collate_ascii(set->tmp.data, set->tmp.len, &set->pool);
	}
}

static void
grow(struct imap_sort_set *set)
{
	size_t cap = set->cap ? set->cap * 2 : 64;

	set->v = mp_xrealloc(set->v, cap * sizeof(*set->v));
	if (set->nslots > 0)
		set->keys = mp_xrealloc(set->keys,
					cap * set->nslots * sizeof(*set->keys));
	set->cap = cap;
}

void
imap_sort_set_add(struct imap_sort_set *set, const struct imap_sort_msg *msg)
{
	struct srec *r;

	if (set->n == set->cap)
		grow(set);
	r = &set->v[set->n];
	r->num = msg->num;
	r->size = msg->meta->size;
	r->arrival = msg->meta->internal_date;
	r->sent = imap_sort_sent_date(msg->meta, msg->env);
	for (unsigned k = 0; k < IMAP_SORT_KEY_COUNT; k++) {
		struct skey *key;

		if (set->slot[k] < 0)
			continue;
		key = &set->keys[set->n * set->nslots + (unsigned)set->slot[k]];
		key->off = set->pool.len;
		put_key(set, (enum imap_sort_key)k, msg);
		key->len = set->pool.len - key->off;
	}
	set->n++;
}

size_t
imap_sort_set_count(const struct imap_sort_set *set)
{
	return set->n;
}

uint32_t
imap_sort_set_num(const struct imap_sort_set *set, uint32_t i)
{
	return set->v[i].num;
}

static int
cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int
cmp_key(const struct imap_sort_set *set, uint32_t a, uint32_t b,
	enum imap_sort_key k)
{
	const struct skey *ka, *kb;
	size_t n;
	int r;

	switch (k) {
	case IMAP_SORT_ARRIVAL:
		return cmp_i64(set->v[a].arrival, set->v[b].arrival);
	case IMAP_SORT_DATE:
		return cmp_i64(set->v[a].sent, set->v[b].sent);
	case IMAP_SORT_SIZE:
		return set->v[a].size < set->v[b].size   ? -1
		       : set->v[a].size > set->v[b].size ? 1
							 : 0;
	default:
		break;
	}
	ka = &set->keys[a * set->nslots + (unsigned)set->slot[k]];
	kb = &set->keys[b * set->nslots + (unsigned)set->slot[k]];
	n = ka->len < kb->len ? ka->len : kb->len;
	r = n > 0 ? memcmp(set->pool.data + ka->off, set->pool.data + kb->off,
			   n)
		  : 0;
	if (r != 0)
		return r;
	return ka->len < kb->len ? -1 : ka->len > kb->len ? 1 : 0;
}

static int
cmp_msgs(const void *ctx, uint32_t a, uint32_t b)
{
	const struct imap_sort_set *set = ctx;

	for (unsigned i = 0; i < set->prog.n; i++) {
		int r = cmp_key(set, a, b, set->prog.c[i].key);

		if (r != 0)
			return set->prog.c[i].reverse ? -r : r;
	}
	/* RFC 5256 3: the implicit last criterion, sequence number. */
	return a < b ? -1 : a > b ? 1 : 0;
}

const uint32_t *
imap_sort_set_sort(struct imap_sort_set *set)
{
	free(set->order);
	set->order = mp_xcalloc(set->n + 1, sizeof(*set->order));
	for (size_t i = 0; i < set->n; i++)
		set->order[i] = (uint32_t)i;
	imap_sort_indices(set->order, set->n, cmp_msgs, set);
	return set->order;
}

void
imap_sort_set_free(struct imap_sort_set **setp)
{
	struct imap_sort_set *set = *setp;

	if (set == NULL)
		return;
	free(set->v);
	free(set->keys);
	free(set->order);
	mp_buf_free(&set->pool);
	mp_buf_free(&set->tmp);
	MP_FREE(*setp);
}
