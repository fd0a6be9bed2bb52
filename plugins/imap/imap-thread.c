/* imap-thread.c - THREAD's messages (RFC 5256 3): Message-IDs, the set
 * the session fills, ORDEREDSUBJECT, and the answer (RFC 5256 4);
 * REFERENCES is in imap-thread-refs.c. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imap-thread-private.h"

/* --- Message-IDs ---------------------------------------------------------- */

static bool
id_char_ok(unsigned char c)
{
	/* atext, '.', domain-literal brackets, '@', and UTF-8 (RFC 6532);
	 * no controls and none of the other specials. */
	return c > 0x20 && c != 0x7f && c != ',' && c != ';' && c != ':' &&
	       c != '<' && c != '>' && c != '(' && c != ')' && c != '"' &&
	       c != '\\';
}

/* Skips a comment at s[*i] == '(' (nested, quoted-pairs), *i after it. */
static void
skip_comment(const char *s, size_t len, size_t *i)
{
	size_t depth = 0;

	for (; *i < len; (*i)++) {
		if (s[*i] == '\\')
			(*i)++;
		else if (s[*i] == '(')
			depth++;
		else if (s[*i] == ')' && --depth == 0)
			break;
	}
	if (*i < len)
		(*i)++;
}

/* Copies a quoted-string at s[*i] == '"' without its quotes and escapes. */
static bool
copy_quoted(const char *s, size_t len, size_t *i, struct mp_buf *out)
{
	for ((*i)++; *i < len && s[*i] != '"'; (*i)++) {
		if (s[*i] == '\\' && *i + 1 < len)
			(*i)++;
		if (s[*i] == '\r' || s[*i] == '\n')
			continue;
		mp_buf_append(out, &s[*i], 1);
	}
	if (*i >= len)
		return false;
	(*i)++;
	return true;
}

/* Reads from s[*i], just after a '<', to the '>' that ends the ID. The
 * normalized ID goes to out; false when it is no valid one. */
static bool
read_msgid(const char *s, size_t len, size_t *i, struct mp_buf *out,
	   size_t start)
{
	bool ok = true;
	size_t at = 0, at_pos = 0;

	while (*i < len) {
		unsigned char c = (unsigned char)s[*i];

		if (c == '>' || c == '<')
			break;
		if (c == '(') {
			skip_comment(s, len, i);
		} else if (c == '"') {
			ok = copy_quoted(s, len, i, out) && ok;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			(*i)++;
		} else {
			if (c == '@') {
				at++;
				at_pos = out->len;
			}
			ok = ok && id_char_ok(c);
			mp_buf_append(out, &s[*i], 1);
			(*i)++;
		}
		if (out->len - start > IMAP_THREAD_ID_MAX)
			ok = false;
	}
	if (*i >= len || s[*i] != '>')
		return false;
	(*i)++;
	return ok && at == 1 && at_pos > start && at_pos + 1 < out->len;
}

bool
imap_thread_next_msgid(const char *s, size_t len, size_t *pos,
		       struct mp_buf *out)
{
	size_t start = out->len;

	mp_buf_append(out, "", 0); /* data is never NULL below */
	while (*pos < len) {
		const char *lt = memchr(s + *pos, '<', len - *pos);

		if (lt == NULL)
			break;
		*pos = (size_t)(lt - s) + 1;
		if (read_msgid(s, len, pos, out, start))
			return true;
		out->len = start;
		out->data[start] = '\0';
	}
	*pos = len;
	return false;
}

bool
imap_thread_alg_parse(const struct imap_arg *arg, enum imap_thread_alg *alg_r)
{
	if (imap_arg_atom_equals(arg, "ORDEREDSUBJECT")) {
		*alg_r = IMAP_THREAD_ORDEREDSUBJECT;
		return true;
	}
	if (imap_arg_atom_equals(arg, "REFERENCES")) {
		*alg_r = IMAP_THREAD_REFERENCES;
		return true;
	}
	return false;
}

/* --- a string table over a pool ------------------------------------------- */

static uint64_t
hash_bytes(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static size_t
smap_probe(const struct imap_thread_map *m, const char *pool, const char *key,
	   size_t len)
{
	size_t i = (size_t)hash_bytes(key, len) & (m->cap - 1);

	while (m->v[i].val != NIL &&
	       (m->v[i].len != len ||
		memcmp(pool + m->v[i].off, key, len) != 0))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void
smap_grow(struct imap_thread_map *m, const char *pool)
{
	struct imap_thread_map old = *m;

	m->cap = old.cap ? old.cap * 2 : 64;
	m->v = mp_xmalloc(m->cap * sizeof(*m->v));
	for (size_t i = 0; i < m->cap; i++)
		m->v[i].val = NIL;
	for (size_t i = 0; i < old.cap; i++) {
		if (old.v[i].val != NIL)
			m->v[smap_probe(m, pool, pool + old.v[i].off,
					old.v[i].len)] = old.v[i];
	}
	free(old.v);
}

struct imap_thread_slot *
imap_thread_map_get(struct imap_thread_map *m, const char *pool,
		    const char *key, size_t len)
{
	if ((m->used + 1) * 2 > m->cap)
		smap_grow(m, pool);
	return &m->v[smap_probe(m, pool, key, len)];
}

void
imap_thread_map_free(struct imap_thread_map *m)
{
	MP_FREE(m->v);
	m->cap = m->used = 0;
}

/* --- the set -------------------------------------------------------------- */

struct imap_thread_set *
imap_thread_set_new(enum imap_thread_alg alg)
{
	struct imap_thread_set *set = mp_xcalloc(1, sizeof(*set));

	set->alg = alg;
	mp_buf_append(&set->pool, "", 0);
	return set;
}

void
imap_thread_set_free(struct imap_thread_set **setp)
{
	struct imap_thread_set *set = *setp;

	if (set == NULL)
		return;
	free(set->v);
	free(set->refs);
	imap_thread_map_free(&set->ids);
	mp_buf_free(&set->pool);
	mp_buf_free(&set->scratch);
	MP_FREE(*setp);
}

/* The number of the ID in scratch[off, off + len), given one when it is
 * new; NIL once the IDs are over their budget. */
static uint32_t
id_number(struct imap_thread_set *set, size_t off, size_t len)
{
	const char *key = set->scratch.data + off;
	struct imap_thread_slot *sl =
		imap_thread_map_get(&set->ids, set->pool.data, key, len);

	if (sl->val != NIL)
		return sl->val;
	if (set->id_bytes + len > IMAP_THREAD_ID_BYTES_MAX)
		return NIL;
	set->id_bytes += len;
	sl->off = set->pool.len;
	sl->len = (uint32_t)len;
	sl->val = set->nids++;
	set->ids.used++;
	mp_buf_append(&set->pool, key, len);
	return sl->val;
}

static void
add_ref(struct imap_thread_set *set, uint32_t id)
{
	if (set->nrefs == set->refs_cap) {
		set->refs_cap = set->refs_cap ? set->refs_cap * 2 : 256;
		set->refs = mp_xrealloc(set->refs,
					set->refs_cap * sizeof(*set->refs));
	}
	set->refs[set->nrefs++] = id;
}

/* An ID parsed into scratch. */
struct span {
	size_t off, len;
};

/* RFC 5256 3: the Message-IDs of References, or else the first of
 * In-Reply-To; only the last IMAP_THREAD_REFS_MAX are kept. */
static void
add_refs(struct imap_thread_set *set, struct tmsg *m,
	 const struct imap_thread_msg *msg)
{
	struct span ring[IMAP_THREAD_REFS_MAX];
	size_t count = 0, pos = 0, off;
	struct mp_str r = msg->references, irt = msg->in_reply_to;

	mp_buf_reset(&set->scratch);
	off = set->scratch.len;
	while (r.p != NULL &&
	       imap_thread_next_msgid(r.p, r.len, &pos, &set->scratch)) {
		ring[count++ % IMAP_THREAD_REFS_MAX] =
			(struct span){off, set->scratch.len - off};
		off = set->scratch.len;
	}
	pos = 0;
	if (count == 0 && irt.p != NULL &&
	    imap_thread_next_msgid(irt.p, irt.len, &pos, &set->scratch))
		ring[count++] = (struct span){off, set->scratch.len - off};
	m->ref_first = (uint32_t)set->nrefs;
	for (size_t i = count > IMAP_THREAD_REFS_MAX
				? count - IMAP_THREAD_REFS_MAX
				: 0;
	     i < count; i++) {
		const struct span *e = &ring[i % IMAP_THREAD_REFS_MAX];
		uint32_t id = id_number(set, e->off, e->len);

		if (id != NIL)
			add_ref(set, id);
	}
	m->nrefs = (uint32_t)(set->nrefs - m->ref_first);
}

static void
add_id(struct imap_thread_set *set, struct tmsg *m, struct mp_str id)
{
	size_t pos = 0;

	m->id = NIL;
	mp_buf_reset(&set->scratch);
	if (id.p != NULL &&
	    imap_thread_next_msgid(id.p, id.len, &pos, &set->scratch))
		m->id = id_number(set, 0, set->scratch.len);
}

void
imap_thread_set_add(struct imap_thread_set *set,
		    const struct imap_thread_msg *msg)
{
	struct tmsg *m;

	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 64;
		set->v = mp_xrealloc(set->v, set->cap * sizeof(*set->v));
	}
	m = &set->v[set->n];
	*m = (struct tmsg){.num = msg->num, .sent = msg->sent, .id = NIL};
	mp_buf_reset(&set->scratch);
	if (msg->subject.p != NULL)
		m->reply = imap_sort_base_subject(
			msg->subject.p, msg->subject.len, &set->scratch);
	m->subj_off = set->pool.len;
	imap_sort_collate(set->scratch.data != NULL ? set->scratch.data : "",
			  set->scratch.len, &set->pool);
	m->subj_len = (uint32_t)(set->pool.len - m->subj_off);
	if (set->alg == IMAP_THREAD_REFERENCES) {
		add_id(set, m, msg->message_id);
		add_refs(set, m, msg);
	}
	set->n++;
}

/* --- ORDEREDSUBJECT ------------------------------------------------------- */

static int
cmp_subject(const void *ctx, uint32_t a, uint32_t c)
{
	const struct imap_thread_set *set = ctx;
	const struct tmsg *ma = &set->v[a], *mc = &set->v[c];
	size_t n = ma->subj_len < mc->subj_len ? ma->subj_len : mc->subj_len;
	int r = n > 0 ? memcmp(set->pool.data + ma->subj_off,
			       set->pool.data + mc->subj_off, n)
		      : 0;

	if (r != 0)
		return r;
	if (ma->subj_len != mc->subj_len)
		return ma->subj_len < mc->subj_len ? -1 : 1;
	if (ma->sent != mc->sent)
		return ma->sent < mc->sent ? -1 : 1;
	return a < c ? -1 : a > c ? 1 : 0;
}

static bool
same_subject(const struct imap_thread_set *set, uint32_t a, uint32_t c)
{
	const struct tmsg *ma = &set->v[a], *mc = &set->v[c];

	return ma->subj_len == mc->subj_len &&
	       memcmp(set->pool.data + ma->subj_off,
		      set->pool.data + mc->subj_off, ma->subj_len) == 0;
}

/* Threads are runs of order[] from heads[i]; they sort by their first
 * message (sent date, then sequence order). */
struct ordered {
	const struct imap_thread_set *set;
	const uint32_t *order;
};

static int
cmp_heads(const void *ctx, uint32_t i, uint32_t j)
{
	const struct ordered *o = ctx;
	uint32_t a = o->order[i], c = o->order[j];
	int64_t sa = o->set->v[a].sent, sc = o->set->v[c].sent;

	if (sa != sc)
		return sa < sc ? -1 : 1;
	return a < c ? -1 : a > c ? 1 : 0;
}

static void
write_ordered(const struct imap_thread_set *set, const uint32_t *order,
	      uint32_t start, uint32_t end, struct mp_buf *out)
{
	mp_buf_printf(out, "(%u", set->v[order[start]].num);
	if (end - start == 2)
		mp_buf_printf(out, " %u", set->v[order[start + 1]].num);
	else if (end - start > 2) {
		mp_buf_append(out, " ", 1);
		for (uint32_t i = start + 1; i < end; i++)
			mp_buf_printf(out, "(%u)", set->v[order[i]].num);
	}
	mp_buf_append(out, ")", 1);
}

static void
format_ordered(const struct imap_thread_set *set, struct mp_buf *out)
{
	uint32_t *order = mp_xcalloc(set->n + 1, sizeof(*order));
	uint32_t *heads = mp_xcalloc(set->n + 1, sizeof(*heads));
	uint32_t *ends = mp_xcalloc(set->n + 1, sizeof(*ends));
	struct ordered o = {set, order};
	size_t nheads = 0;

	for (uint32_t i = 0; i < set->n; i++)
		order[i] = i;
	imap_sort_indices(order, set->n, cmp_subject, set);
	for (uint32_t i = 0; i < set->n; i++) {
		if (i == 0 || !same_subject(set, order[i - 1], order[i]))
			heads[nheads++] = i;
		ends[heads[nheads - 1]] = i + 1;
	}
	imap_sort_indices(heads, nheads, cmp_heads, &o);
	for (size_t h = 0; h < nheads; h++)
		write_ordered(set, order, heads[h], ends[heads[h]], out);
	free(order);
	free(heads);
	free(ends);
}

void
imap_thread_set_format(struct imap_thread_set *set, struct mp_buf *out)
{
	if (set->n == 0)
		return;
	if (set->alg == IMAP_THREAD_ORDEREDSUBJECT)
		format_ordered(set, out);
	else
		imap_thread_references(set, out);
}
