/* imap-thread-refs.c - THREAD=REFERENCES (RFC 5256 3, steps 1 to 6)
 * and its thread-list answer (RFC 5256 4). Trees are arrays of nodes
 * linked by index; every walk over them is a loop with its own stack,
 * so no thread is too deep for the C stack. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imap-thread-private.h"

/* --- building the threads ------------------------------------------------- */

struct tnode {
	uint32_t msg; /* index in set->v; NIL: a dummy */
	/* The links of step (1), doubly linked so a node leaves its
	 * parent in constant time. */
	uint32_t parent, child, next, prev;
	/* The tree of the answer (steps 2 to 6): first child, next. */
	uint32_t sh_child, sh_next;
};

/* A thread at the top level (steps 2 to 5). */
struct troot {
	uint32_t node;
	uint32_t parent_root; /* 5.B: the root it goes under, or NIL */
	bool dummy, reply, ignore;
};

struct build {
	const struct imap_thread_set *set;
	struct tnode *t;
	size_t nt, tcap;
	struct troot *roots;
	size_t nroots, rcap;
	uint32_t *tmp; /* scratch indices */
	size_t tmp_cap;
};

static uint32_t
node_new(struct build *b, uint32_t msg)
{
	if (b->nt == b->tcap) {
		b->tcap = b->tcap ? b->tcap * 2 : 64;
		b->t = mp_xrealloc(b->t, b->tcap * sizeof(*b->t));
	}
	b->t[b->nt] = (struct tnode){msg, NIL, NIL, NIL, NIL, NIL, NIL};
	return (uint32_t)b->nt++;
}

static void
tmp_reserve(struct build *b, size_t n)
{
	if (n > b->tmp_cap) {
		b->tmp_cap = n < 64 ? 64 : n * 2;
		b->tmp = mp_xrealloc(b->tmp, b->tmp_cap * sizeof(*b->tmp));
	}
}

static void
node_link(struct build *b, uint32_t parent, uint32_t child)
{
	struct tnode *t = b->t;

	t[child].parent = parent;
	t[child].prev = NIL;
	t[child].next = t[parent].child;
	if (t[parent].child != NIL)
		t[t[parent].child].prev = child;
	t[parent].child = child;
}

static void
node_unlink(struct build *b, uint32_t x)
{
	struct tnode *t = b->t;

	if (t[x].prev != NIL)
		t[t[x].prev].next = t[x].next;
	else
		t[t[x].parent].child = t[x].next;
	if (t[x].next != NIL)
		t[t[x].next].prev = t[x].prev;
	t[x].parent = t[x].next = t[x].prev = NIL;
}

/* True when making parent the parent of child would close a loop:
 * parent is child or one of its descendants. */
static bool
would_loop(const struct build *b, uint32_t parent, uint32_t child)
{
	unsigned steps = 0;

	if (parent == child)
		return true;
	if (b->t[child].child == NIL) /* nothing below it to meet */
		return false;
	for (uint32_t x = b->t[parent].parent; x != NIL; x = b->t[x].parent) {
		if (x == child || ++steps > IMAP_THREAD_CLIMB_MAX)
			return true;
	}
	return false;
}

/* Step (1): a node per Message-ID (nodes 0 .. nids - 1: dummies until a
 * message claims theirs), linked as the references say. */
static void
link_messages(struct build *b)
{
	const struct imap_thread_set *set = b->set;

	for (uint32_t i = 0; i < set->nids; i++)
		node_new(b, NIL);
	for (uint32_t i = 0; i < set->n; i++) {
		const struct tmsg *m = &set->v[i];
		const uint32_t *refs =
			m->nrefs > 0 ? set->refs + m->ref_first : NULL;
		uint32_t self, prev = NIL;

		/* A second message with an ID gets a node of its own. */
		if (m->id != NIL && b->t[m->id].msg == NIL) {
			self = m->id;
			b->t[self].msg = i;
		} else {
			self = node_new(b, i);
		}
		for (uint32_t j = 0; j < m->nrefs; j++) { /* (1)(A) */
			if (prev != NIL && b->t[refs[j]].parent == NIL &&
			    !would_loop(b, prev, refs[j]))
				node_link(b, prev, refs[j]);
			prev = refs[j];
		}
		if (b->t[self].parent != NIL) /* (1)(B) */
			node_unlink(b, self);
		if (prev != NIL && !would_loop(b, prev, self))
			node_link(b, prev, self);
	}
}

static void
sh_add(struct build *b, uint32_t parent, uint32_t child)
{
	b->t[child].sh_next = b->t[parent].sh_child;
	b->t[parent].sh_child = child;
}

static void
root_add(struct build *b, uint32_t node, bool dummy)
{
	if (b->nroots == b->rcap) {
		b->rcap = b->rcap ? b->rcap * 2 : 64;
		b->roots = mp_xrealloc(b->roots, b->rcap * sizeof(*b->roots));
	}
	b->roots[b->nroots++] = (struct troot){node, NIL, dummy, false, false};
}

/* The nearest message above dummy d, or the topmost dummy when there is
 * none; memo keeps what each dummy walked through found. */
static uint32_t
dummy_target(struct build *b, uint32_t d, uint32_t *memo)
{
	uint32_t x = d, r;
	size_t n = 0;

	while (memo[x] == NIL && b->t[x].msg == NIL && b->t[x].parent != NIL) {
		tmp_reserve(b, n + 1);
		b->tmp[n++] = x;
		x = b->t[x].parent;
	}
	if (b->t[x].msg != NIL)
		r = x;
	else if (memo[x] != NIL)
		r = memo[x];
	else
		r = memo[x] = x;
	while (n > 0)
		memo[b->tmp[--n]] = r;
	return r;
}

/* Steps (2) and (3), as Dovecot does them: each message goes under its
 * nearest message ancestor, or under the topmost dummy when it has none;
 * dummies below the top disappear, their children promoted. */
static void
flatten(struct build *b)
{
	uint32_t *memo = mp_xmalloc((b->nt + 1) * sizeof(*memo));

	for (size_t i = 0; i < b->nt; i++)
		memo[i] = NIL;
	for (uint32_t x = 0; x < b->nt; x++) {
		uint32_t p = b->t[x].parent;

		if (p == NIL) {
			if (b->t[x].msg != NIL || b->t[x].child != NIL)
				root_add(b, x, b->t[x].msg == NIL);
		} else if (b->t[x].msg != NIL) {
			sh_add(b,
			       b->t[p].msg != NIL ? p
						  : dummy_target(b, p, memo),
			       x);
		}
	}
	free(memo);
}

/* The message a node sorts by: its own, or a dummy's first child's. */
static uint32_t
node_msg(const struct build *b, uint32_t x)
{
	if (b->t[x].msg == NIL && b->t[x].sh_child != NIL)
		x = b->t[x].sh_child;
	return b->t[x].msg;
}

/* Sent date, then sequence order (RFC 5256 2.2); nodes without any
 * message last. */
static int
cmp_nodes(const void *ctx, uint32_t x, uint32_t y)
{
	const struct build *b = ctx;
	uint32_t a = node_msg(b, x), c = node_msg(b, y);
	int64_t sa, sc;

	if (a == NIL || c == NIL)
		return a == c ? (x < y ? -1 : x > y) : (a == NIL ? 1 : -1);
	sa = b->set->v[a].sent;
	sc = b->set->v[c].sent;
	if (sa != sc)
		return sa < sc ? -1 : 1;
	return a < c ? -1 : a > c ? 1 : 0;
}

/* Sorts the children of x (step 6: one sibling set). */
static void
sort_children(struct build *b, uint32_t x)
{
	size_t n = 0;
	uint32_t c;

	for (c = b->t[x].sh_child; c != NIL; c = b->t[c].sh_next) {
		tmp_reserve(b, n + 1);
		b->tmp[n++] = c;
	}
	if (n < 2)
		return;
	imap_sort_indices(b->tmp, n, cmp_nodes, b);
	b->t[x].sh_child = b->tmp[0];
	for (size_t i = 0; i < n; i++)
		b->t[b->tmp[i]].sh_next = i + 1 < n ? b->tmp[i + 1] : NIL;
}

static int
cmp_roots(const void *ctx, uint32_t i, uint32_t j)
{
	const struct build *b = ctx;

	return cmp_nodes(b, b->roots[i].node, b->roots[j].node);
}

/* A root dummy without children goes; one with a single child gives
 * way to it (Dovecot's deferred step 3); the others sort their children,
 * since they sort by the first. */
static void
settle_dummy(struct build *b, struct troot *r)
{
	uint32_t only;

	sort_children(b, r->node);
	only = b->t[r->node].sh_child;
	if (only == NIL) {
		r->ignore = true;
	} else if (b->t[only].sh_next == NIL) {
		/* The dummy lets go of it, so that it is in one sibling
		 * list only. */
		b->t[r->node].sh_child = NIL;
		r->node = only;
		r->dummy = false;
	}
}

/* Step (4), and again after (5): the roots by sent date, those ignored
 * dropped. */
static void
sort_roots(struct build *b)
{
	struct troot *sorted;
	size_t n = 0;

	for (size_t i = 0; i < b->nroots; i++) {
		if (!b->roots[i].ignore && b->roots[i].dummy)
			settle_dummy(b, &b->roots[i]);
	}
	for (size_t i = 0; i < b->nroots; i++) {
		if (b->roots[i].ignore)
			continue;
		tmp_reserve(b, n + 1);
		b->tmp[n++] = (uint32_t)i;
	}
	imap_sort_indices(b->tmp, n, cmp_roots, b);
	sorted = mp_xcalloc(n + 1, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = b->roots[b->tmp[i]];
	free(b->roots);
	b->roots = sorted;
	b->nroots = n;
	b->rcap = n + 1;
}

/* Step (5)(B): the subject table; a root whose subject is taken points
 * at the root it is to be merged with. */
static void
gather_subjects(struct build *b)
{
	const struct imap_thread_set *set = b->set;
	struct imap_thread_map subjects = {0};

	for (uint32_t i = 0; i < b->nroots; i++) {
		struct troot *r = &b->roots[i];
		const struct tmsg *m = &set->v[node_msg(b, r->node)];
		const char *key = set->pool.data + m->subj_off;
		struct imap_thread_slot *sl;
		struct troot *h;

		if (m->subj_len == 0)
			continue;
		r->reply = m->reply;
		sl = imap_thread_map_get(&subjects, set->pool.data, key,
					 m->subj_len);
		if (sl->val == NIL) {
			*sl = (struct imap_thread_slot){m->subj_off,
							m->subj_len, i};
			subjects.used++;
			continue;
		}
		h = &b->roots[sl->val];
		if (!h->dummy && (r->dummy || (h->reply && !r->reply))) {
			h->parent_root = i;
			sl->val = i;
		} else {
			r->parent_root = sl->val;
		}
	}
	imap_thread_map_free(&subjects);
}

/* Step (5)(C) for the root cur. */
static void
merge_root(struct build *b, uint32_t cur)
{
	uint32_t top = cur, dummy;
	size_t steps = 0;

	/* The chain ends at the subject table's root: a few steps. */
	while (b->roots[top].parent_root != NIL && steps++ <= b->nroots)
		top = b->roots[top].parent_root;
	if (b->roots[top].parent_root != NIL || top == cur)
		return;
	if (b->roots[cur].dummy) {
		uint32_t c = b->t[b->roots[cur].node].sh_child, next;

		for (; c != NIL; c = next) {
			next = b->t[c].sh_next;
			sh_add(b, b->roots[top].node, c);
		}
		b->t[b->roots[cur].node].sh_child = NIL;
	} else if (b->roots[top].dummy ||
		   (b->roots[cur].reply && !b->roots[top].reply)) {
		sh_add(b, b->roots[top].node, b->roots[cur].node);
	} else {
		dummy = node_new(b, NIL);
		sh_add(b, dummy, b->roots[top].node);
		sh_add(b, dummy, b->roots[cur].node);
		b->roots[top].ignore = true;
		b->roots[top].parent_root = (uint32_t)b->nroots;
		root_add(b, dummy, true);
	}
	b->roots[cur].ignore = true;
}

static void
build_references(struct build *b)
{
	size_t n;

	link_messages(b);
	flatten(b);
	sort_roots(b);
	gather_subjects(b);
	n = b->nroots;
	for (uint32_t i = 0; i < n; i++) {
		if (b->roots[i].parent_root != NIL && !b->roots[i].ignore)
			merge_root(b, i);
	}
	for (uint32_t x = 0; x < b->nt; x++) /* (6) */
		sort_children(b, x);
	sort_roots(b);
}

/* --- the answer ----------------------------------------------------------- */

static void
put_num(struct mp_buf *out, const struct build *b, uint32_t x)
{
	mp_buf_printf(out, "%u", b->set->v[b->t[x].msg].num);
}

/* Writes the sibling list that starts at first as RFC 5256 4 wants it: a
 * lone child follows its parent after a space, several children each
 * get parentheses. The stack holds, for each open parenthesis, the
 * sibling to go on with once it is closed. */
static void
write_list(struct build *b, uint32_t first, struct mp_buf *out)
{
	enum { START, SINGLE, MULTI } mode = MULTI;
	uint32_t x = first;
	size_t sp = 0;

	for (;;) {
		if (x == NIL) {
			if (sp == 0)
				break;
			x = b->tmp[--sp];
			mp_buf_append(out, ")", 1);
			mode = MULTI;
			continue;
		}
		if (mode == START)
			mode = b->t[x].sh_next == NIL ? SINGLE : MULTI;
		if (mode == SINGLE) {
			if (b->t[x].msg != NIL)
				put_num(out, b, x);
			if (b->t[x].sh_child == NIL) {
				x = NIL;
				continue;
			}
			if (b->t[x].msg != NIL)
				mp_buf_append(out, " ", 1);
			x = b->t[x].sh_child;
			mode = START;
			continue;
		}
		mp_buf_append(out, "(", 1);
		if (b->t[x].sh_child == NIL) {
			put_num(out, b, x);
			mp_buf_append(out, ")", 1);
			x = b->t[x].sh_next;
			continue;
		}
		if (b->t[x].msg != NIL) {
			put_num(out, b, x);
			mp_buf_append(out, " ", 1);
		}
		tmp_reserve(b, sp + 1);
		b->tmp[sp++] = b->t[x].sh_next;
		x = b->t[x].sh_child;
		mode = START;
	}
}

void
imap_thread_references(const struct imap_thread_set *set, struct mp_buf *out)
{
	struct build b = {.set = set};
	uint32_t top;

	build_references(&b);
	/* The roots, in order, as the children of one more dummy. */
	top = node_new(&b, NIL);
	for (size_t i = b.nroots; i-- > 0;)
		sh_add(&b, top, b.roots[i].node);
	write_list(&b, b.t[top].sh_child, out);
	free(b.t);
	free(b.roots);
	free(b.tmp);
}
