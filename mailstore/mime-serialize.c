/* mime-serialize.c - the parsed structure: its memory (one arena), walking
 * it, and its compact blob for the index with a strict reader.
 *
 * Layout (version 1): "MPM" 0x01, then LEB128 varints: message flags,
 * message size, part count, and the parts in pre-order. A part is: parent
 * index + 1 (0 for the root), flags, header offset, header size, body size,
 * body lines, nine strings (type, subtype, encoding, id, description, md5,
 * location, disposition, boundary), parameters, disposition parameters,
 * languages, and an envelope when its header is a message header (root, or
 * child of a message part). A string is length + 1 then its bytes, 0 for
 * NIL; a list is its count then its items. Sender and Reply-To are a count
 * + 1, 0 meaning "the same as From".
 *
 * The reader trusts nothing: a row may be corrupt or written by another
 * version, and FETCH must answer an error, not crash. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mime-private.h"

#define MIME_BLOB_MAGIC   "MPM"
#define MIME_BLOB_VERSION 1
/* Largest first arena chunk when reading a blob. */
#define MIME_FIRST_CHUNK_MAX (1024 * 1024)
#define MIME_MSG_FLAGS                                                         \
	(MP_MIME_TRUNCATED | MP_MIME_BROKEN | MP_MIME_BARE_LF |                \
	 MP_MIME_HAS_NUL | MP_MIME_8BIT)
#define MIME_PART_FLAGS                                                        \
	(MP_MIME_PART_MULTIPART | MP_MIME_PART_MESSAGE | MP_MIME_PART_NO_END | \
	 MP_MIME_PART_BODY_8BIT | MP_MIME_PART_BODY_NUL)

/* --- walking the tree ----------------------------------------------------- */

const struct mp_mime_part *
mp_mime_part_next(const struct mp_mime_part *part)
{
	if (part->children != NULL)
		return part->children;
	while (part != NULL && part->next == NULL)
		part = part->parent;
	return part != NULL ? part->next : NULL;
}

/* Reads a section number: no zero, no leading zero (RFC 3501 nz-number). */
static bool
section_number(const char **s, uint32_t *n_r)
{
	const char *p = *s;
	uint64_t n = 0;

	if (*p < '1' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9' && n <= UINT32_MAX)
		n = n * 10 + (uint64_t)(*p++ - '0');
	if (n > UINT32_MAX || (*p != '\0' && *p != '.') ||
	    (*p == '.' && p[1] == '\0'))
		return false;
	*s = *p == '.' ? p + 1 : p;
	*n_r = (uint32_t)n;
	return true;
}

bool
mp_mime_part_find(const struct mp_mime_part *root, const char *section,
		  const struct mp_mime_part **part_r)
{
	const struct mp_mime_part *part = root;
	/* At a message's head (the root, or inside a message/rfc822 part)
	 * a non-multipart body is part 1; elsewhere a leaf has no parts. */
	bool head = true;
	uint32_t n;

	while (*section != '\0') {
		if (!section_number(&section, &n))
			return false;
		if (part->flags & MP_MIME_PART_MULTIPART) {
			for (part = part->children; part != NULL && n > 1; n--)
				part = part->next;
			if (part == NULL)
				return false;
		} else if (!head || n != 1) {
			return false;
		}
		head = false;
		if (*section != '\0' && (part->flags & MP_MIME_PART_MESSAGE)) {
			part = part->children;
			head = true;
		}
	}
	*part_r = part;
	return true;
}

/* --- the arena ---------------------------------------------------------- */

struct mime_chunk {
	struct mime_chunk *prev;
	size_t size, used;
	max_align_t data[];
};

struct mp_mime_arena *
mime_arena_new(size_t budget, size_t first_size)
{
	struct mp_mime_arena *a = mp_xcalloc(1, sizeof(*a));

	a->budget = budget;
	a->next_size = first_size > 0 ? first_size : 4096;
	return a;
}

void
mime_arena_free(struct mp_mime_arena *a)
{
	while (a->chunk != NULL) {
		struct mime_chunk *c = a->chunk;

		a->chunk = c->prev;
		free(c);
	}
	free(a);
}

void *
mime_arena_alloc(struct mp_mime_arena *a, size_t size)
{
	struct mime_chunk *c = a->chunk;
	void *mem;

	size = (size + 7) & ~(size_t)7;
	if (c == NULL || c->size - c->used < size) {
		size_t csize = a->next_size > size ? a->next_size : size;

		c = mp_xmalloc(sizeof(*c) + csize);
		c->prev = a->chunk;
		c->size = csize;
		c->used = 0;
		a->chunk = c;
		a->next_size = csize < SIZE_MAX / 4 ? csize * 2 : csize;
	}
	mem = (char *)c->data + c->used;
	c->used += size;
	memset(mem, 0, size);
	return mem;
}

void *
mime_arena_take(struct mp_mime_arena *a, size_t size)
{
	if (a->budget != 0 &&
	    (size > a->budget || a->used > a->budget - size)) {
		a->over = true;
		return NULL;
	}
	a->used += size;
	return mime_arena_alloc(a, size);
}

char *
mime_arena_str(struct mp_mime_arena *a, const void *p, size_t len,
	       struct mp_str *str_r)
{
	char *s = len < SIZE_MAX ? mime_arena_take(a, len + 1) : NULL;

	if (s == NULL) {
		*str_r = (struct mp_str){NULL, 0};
		return NULL;
	}
	if (len > 0)
		memcpy(s, p, len);
	*str_r = (struct mp_str){s, len};
	return s;
}

void
mp_mime_message_free(struct mp_mime_message **msg)
{
	if (*msg == NULL)
		return;
	mime_arena_free((*msg)->arena);
	*msg = NULL;
}

/* --- writing ------------------------------------------------------------ */

static void
put_varint(struct mp_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	mp_buf_append(b, tmp, n);
}

static void
put_str(struct mp_buf *b, struct mp_str s)
{
	if (s.p == NULL) {
		put_varint(b, 0);
		return;
	}
	put_varint(b, (uint64_t)s.len + 1);
	mp_buf_append(b, s.p, s.len);
}

static void
put_params(struct mp_buf *b, const struct mp_mime_param *v, uint32_t n)
{
	put_varint(b, n);
	for (uint32_t i = 0; i < n; i++) {
		put_str(b, v[i].name);
		put_str(b, v[i].value);
	}
}

static void
put_addrs(struct mp_buf *b, const struct mp_mime_addrlist *l)
{
	for (uint32_t i = 0; i < l->n; i++) {
		put_varint(b, l->v[i].kind);
		put_str(b, l->v[i].name);
		put_str(b, l->v[i].adl);
		put_str(b, l->v[i].mailbox);
		put_str(b, l->v[i].host);
	}
}

static void
put_list(struct mp_buf *b, const struct mp_mime_addrlist *l)
{
	put_varint(b, l->n);
	put_addrs(b, l);
}

/* Sender and Reply-To: 0 when they are From's list. */
static void
put_list_or_from(struct mp_buf *b, const struct mp_mime_addrlist *l,
		 const struct mp_mime_addrlist *from)
{
	if (l->v == from->v && l->n == from->n) {
		put_varint(b, 0);
		return;
	}
	put_varint(b, (uint64_t)l->n + 1);
	put_addrs(b, l);
}

static void
put_envelope(struct mp_buf *b, const struct mp_mime_envelope *env)
{
	static const struct mp_mime_envelope empty;

	if (env == NULL)
		env = &empty;
	put_str(b, env->date);
	put_str(b, env->subject);
	put_str(b, env->message_id);
	put_str(b, env->in_reply_to);
	put_list(b, &env->from);
	put_list_or_from(b, &env->sender, &env->from);
	put_list_or_from(b, &env->reply_to, &env->from);
	put_list(b, &env->to);
	put_list(b, &env->cc);
	put_list(b, &env->bcc);
}

static bool
is_message_header(const struct mp_mime_part *part)
{
	return part->parent == NULL ||
	       (part->parent->flags & MP_MIME_PART_MESSAGE);
}

static void
put_part(struct mp_buf *b, const struct mp_mime_part *part)
{
	put_varint(b, part->parent != NULL ? part->parent->index + 1ull : 0);
	put_varint(b, part->flags);
	put_varint(b, part->header_offset);
	put_varint(b, part->header_size);
	put_varint(b, part->body_size);
	put_varint(b, part->body_lines);
	put_str(b, part->type);
	put_str(b, part->subtype);
	put_str(b, part->encoding);
	put_str(b, part->id);
	put_str(b, part->description);
	put_str(b, part->md5);
	put_str(b, part->location);
	put_str(b, part->disposition);
	put_str(b, part->boundary);
	put_params(b, part->params, part->n_params);
	put_params(b, part->disposition_params, part->n_disposition_params);
	put_varint(b, part->n_language);
	for (uint32_t i = 0; i < part->n_language; i++)
		put_str(b, part->language[i]);
	if (is_message_header(part))
		put_envelope(b, part->envelope);
}

void
mp_mime_serialize(const struct mp_mime_message *msg, struct mp_buf *out)
{
	mp_buf_append(out, MIME_BLOB_MAGIC, 3);
	put_varint(out, MIME_BLOB_VERSION);
	put_varint(out, msg->flags);
	put_varint(out, msg->size);
	put_varint(out, msg->n_parts);
	for (const struct mp_mime_part *p = msg->root; p != NULL;
	     p = mp_mime_part_next(p))
		put_part(out, p);
}

/* --- reading ------------------------------------------------------------ */

struct reader {
	const uint8_t *p, *end;
	struct mp_mime_arena *arena;
	uint64_t size; /* of the message the blob describes */
	const char *error;
};

static bool
fail(struct reader *r, const char *error)
{
	if (r->error == NULL)
		r->error = error;
	return false;
}

static size_t
left(const struct reader *r)
{
	return (size_t)(r->end - r->p);
}

static bool
get_varint(struct reader *r, uint64_t *v_r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t byte;

		if (r->p >= r->end)
			return fail(r, "truncated");
		byte = *r->p++;
		/* Only the shortest form: a blob that reads is exactly the
		 * blob the writer makes, so nothing hides in padding. */
		if ((shift == 63 && byte > 1) || (shift > 0 && byte == 0))
			break;
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*v_r = v;
			return true;
		}
	}
	return fail(r, "bad varint");
}

static bool
get_u32(struct reader *r, uint32_t *v_r)
{
	uint64_t v;

	if (!get_varint(r, &v))
		return false;
	if (v > UINT32_MAX)
		return fail(r, "number out of range");
	*v_r = (uint32_t)v;
	return true;
}

/* A count of items that each take at least min_bytes of what is left, so
 * a corrupt count cannot make a huge allocation. */
static bool
get_count(struct reader *r, size_t min_bytes, uint32_t *n_r)
{
	if (!get_u32(r, n_r))
		return false;
	if (*n_r > left(r) / min_bytes)
		return fail(r, "count larger than the blob");
	return true;
}

static bool
get_str(struct reader *r, struct mp_str *s_r)
{
	uint64_t n;

	if (!get_varint(r, &n))
		return false;
	if (n == 0) {
		*s_r = (struct mp_str){NULL, 0};
		return true;
	}
	if (n - 1 > left(r))
		return fail(r, "string past the end");
	mime_arena_str(r->arena, r->p, (size_t)(n - 1), s_r);
	r->p += n - 1;
	return true;
}

static bool
get_params(struct reader *r, const struct mp_mime_param **v_r, uint32_t *n_r)
{
	struct mp_mime_param *v;

	if (!get_count(r, 2, n_r))
		return false;
	if (*n_r == 0)
		return true;
	v = mime_arena_alloc(r->arena, *n_r * sizeof(*v));
	*v_r = v;
	for (uint32_t i = 0; i < *n_r; i++) {
		if (!get_str(r, &v[i].name) || !get_str(r, &v[i].value))
			return false;
	}
	return true;
}

static bool
get_languages(struct reader *r, struct mp_mime_part *part)
{
	struct mp_str *v;

	if (!get_count(r, 1, &part->n_language))
		return false;
	if (part->n_language == 0)
		return true;
	v = mime_arena_alloc(r->arena, part->n_language * sizeof(*v));
	part->language = v;
	for (uint32_t i = 0; i < part->n_language; i++) {
		if (!get_str(r, &v[i]))
			return false;
	}
	return true;
}

static bool
get_addrs(struct reader *r, uint32_t n, struct mp_mime_addrlist *l)
{
	struct mp_mime_address *v;

	if (n > left(r) / 5)
		return fail(r, "count larger than the blob");
	l->n = n;
	if (n == 0)
		return true;
	v = mime_arena_alloc(r->arena, n * sizeof(*v));
	l->v = v;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t kind;

		if (!get_varint(r, &kind))
			return false;
		if (kind > MP_MIME_ADDR_GROUP_END)
			return fail(r, "bad address kind");
		v[i].kind = (enum mp_mime_addr_kind)kind;
		if (!get_str(r, &v[i].name) || !get_str(r, &v[i].adl) ||
		    !get_str(r, &v[i].mailbox) || !get_str(r, &v[i].host))
			return false;
	}
	return true;
}

static bool
get_list(struct reader *r, struct mp_mime_addrlist *l)
{
	uint32_t n;

	return get_u32(r, &n) && get_addrs(r, n, l);
}

static bool
get_list_or_from(struct reader *r, struct mp_mime_addrlist *l,
		 const struct mp_mime_addrlist *from)
{
	uint32_t n;

	if (!get_u32(r, &n))
		return false;
	if (n == 0) {
		*l = *from;
		return true;
	}
	/* The writer gives an empty list as From's (RFC 3501 defaults). */
	if (n == 1)
		return fail(r, "empty sender or reply-to");
	return get_addrs(r, n - 1, l);
}

static bool
get_envelope(struct reader *r, struct mp_mime_part *part)
{
	struct mp_mime_envelope *env = mime_arena_alloc(r->arena, sizeof(*env));

	part->envelope = env;
	return get_str(r, &env->date) && get_str(r, &env->subject) &&
	       get_str(r, &env->message_id) && get_str(r, &env->in_reply_to) &&
	       get_list(r, &env->from) &&
	       get_list_or_from(r, &env->sender, &env->from) &&
	       get_list_or_from(r, &env->reply_to, &env->from) &&
	       get_list(r, &env->to) && get_list(r, &env->cc) &&
	       get_list(r, &env->bcc);
}

static bool
get_strings(struct reader *r, struct mp_mime_part *part)
{
	return get_str(r, &part->type) && get_str(r, &part->subtype) &&
	       get_str(r, &part->encoding) && get_str(r, &part->id) &&
	       get_str(r, &part->description) && get_str(r, &part->md5) &&
	       get_str(r, &part->location) && get_str(r, &part->disposition) &&
	       get_str(r, &part->boundary);
}

/* Offsets and sizes fit the message: header then body, in that order. */
static bool
get_ranges(struct reader *r, struct mp_mime_part *part)
{
	if (!get_varint(r, &part->header_offset) ||
	    !get_varint(r, &part->header_size) ||
	    !get_varint(r, &part->body_size) ||
	    !get_varint(r, &part->body_lines))
		return false;
	if (part->header_offset > r->size ||
	    part->header_size > r->size - part->header_offset)
		return fail(r, "header past the end of the message");
	part->body_offset = part->header_offset + part->header_size;
	if (part->body_size > r->size - part->body_offset)
		return fail(r, "body past the end of the message");
	if (part->body_lines > part->body_size)
		return fail(r, "more lines than bytes");
	return true;
}

static uint64_t
part_end(const struct mp_mime_part *part)
{
	return part->body_offset + part->body_size;
}

/* The part lies inside its parent's body, after its older siblings. */
static bool
check_place(struct reader *r, const struct mp_mime_part *part,
	    const struct mp_mime_part *parent, const struct mp_mime_part *prev)
{
	if (parent == NULL) {
		if (part->header_offset != 0 || part_end(part) != r->size)
			return fail(r, "root does not cover the message");
		return true;
	}
	if (parent->flags & MP_MIME_PART_MESSAGE) {
		if (prev != NULL ||
		    part->header_offset != parent->body_offset ||
		    part_end(part) != part_end(parent))
			return fail(r, "bad encapsulated message");
		return true;
	}
	if (!(parent->flags & MP_MIME_PART_MULTIPART))
		return fail(r, "child of a leaf part");
	if (part->header_offset < parent->body_offset ||
	    part_end(part) > part_end(parent) ||
	    (prev != NULL && part->header_offset < part_end(prev)))
		return fail(r, "part outside its parent");
	return true;
}

static bool
check_part(struct reader *r, const struct mp_mime_part *part)
{
	if (part->flags & ~(uint32_t)MIME_PART_FLAGS)
		return fail(r, "unknown part flags");
	if ((part->flags & MP_MIME_PART_MULTIPART) &&
	    (part->flags & MP_MIME_PART_MESSAGE))
		return fail(r, "part both multipart and message");
	if (part->type.p == NULL || part->subtype.p == NULL ||
	    part->encoding.p == NULL)
		return fail(r, "part without a type");
	if ((part->flags & MP_MIME_PART_MULTIPART) &&
	    (part->boundary.len == 0 ||
	     part->boundary.len > MP_MIME_BOUNDARY_CAP))
		return fail(r, "multipart without a boundary");
	return true;
}

/* The parts from the root to the one being read: a part's parent must be
 * on it, which is what pre-order means, and its height bounds the depth. */
struct chain {
	struct {
		struct mp_mime_part *part;
		struct mp_mime_part *last_child;
	} v[MP_MIME_DEPTH_CAP + 1];
	int top;
};

static bool
chain_parent(struct reader *r, struct chain *c, uint64_t parent)
{
	while (c->top >= 0 && c->v[c->top].part->index + 1ull != parent)
		c->top--;
	if (c->top < 0)
		return fail(r, "parts not in pre-order");
	if (c->top == MP_MIME_DEPTH_CAP)
		return fail(r, "parts nested too deep");
	return true;
}

static bool
get_part_fields(struct reader *r, struct mp_mime_part *part)
{
	return get_u32(r, &part->flags) && get_ranges(r, part) &&
	       get_strings(r, part) &&
	       get_params(r, &part->params, &part->n_params) &&
	       get_params(r, &part->disposition_params,
			  &part->n_disposition_params) &&
	       get_languages(r, part) && check_part(r, part);
}

static bool
get_part(struct reader *r, struct chain *c, uint32_t index,
	 struct mp_mime_part **part_r)
{
	struct mp_mime_part *part = mime_arena_alloc(r->arena, sizeof(*part));
	struct mp_mime_part *parent = NULL, *prev = NULL;
	uint64_t parent_index;

	if (!get_varint(r, &parent_index))
		return false;
	if ((index == 0) != (parent_index == 0))
		return fail(r, "not one root");
	if (index > 0) {
		if (!chain_parent(r, c, parent_index))
			return false;
		parent = c->v[c->top].part;
		prev = c->v[c->top].last_child;
	}
	part->index = index;
	part->parent = parent;
	if (!get_part_fields(r, part) || !check_place(r, part, parent, prev))
		return false;
	if (is_message_header(part) && !get_envelope(r, part))
		return false;
	if (parent != NULL) {
		if (prev != NULL)
			prev->next = part;
		else
			parent->children = part;
		parent->n_children++;
		c->v[c->top].last_child = part;
	}
	c->top++;
	c->v[c->top].part = part;
	c->v[c->top].last_child = NULL;
	*part_r = part;
	return true;
}

static bool
get_message(struct reader *r, struct mp_mime_message *msg)
{
	struct chain c = {.top = -1};
	struct mp_mime_part *part;
	uint64_t version, size;

	if (left(r) < 3 || memcmp(r->p, MIME_BLOB_MAGIC, 3) != 0)
		return fail(r, "not a MIME structure blob");
	r->p += 3;
	if (!get_varint(r, &version) || version != MIME_BLOB_VERSION)
		return fail(r, "unknown blob version");
	if (!get_u32(r, &msg->flags) || !get_varint(r, &size) ||
	    !get_u32(r, &msg->n_parts))
		return false;
	if (msg->flags & ~(uint32_t)MIME_MSG_FLAGS)
		return fail(r, "unknown message flags");
	if (size != r->size)
		return fail(r, "blob is for a message of another size");
	if (msg->n_parts == 0)
		return fail(r, "no parts");
	msg->size = size;
	for (uint32_t i = 0; i < msg->n_parts; i++) {
		if (!get_part(r, &c, i, &part))
			return false;
		if (i == 0)
			msg->root = part;
	}
	if (r->p != r->end)
		return fail(r, "bytes after the last part");
	for (const struct mp_mime_part *p = msg->root; p != NULL;
	     p = mp_mime_part_next(p)) {
		if ((p->flags & MP_MIME_PART_MESSAGE) && p->n_children != 1)
			return fail(r, "message part without its message");
	}
	return true;
}

struct mp_mime_message *
mp_mime_deserialize(const void *blob, size_t len, uint64_t message_size,
		    const char **error_r)
{
	struct reader r;
	struct mp_mime_message *msg;
	size_t guess;

	/* sqlite3_column_blob() gives NULL for an empty BLOB. */
	if (blob == NULL) {
		blob = "";
		len = 0;
	}
	/* In memory a part or string takes a few times its blob size: one
	 * chunk of that estimate usually holds it all. Capped, as a corrupt
	 * blob may be large; the arena grows if it must. */
	guess = len < MIME_FIRST_CHUNK_MAX / 4 ? len * 4 + 1024
					       : MIME_FIRST_CHUNK_MAX;
	r = (struct reader){
		.p = blob,
		.end = (const uint8_t *)blob + len,
		.arena = mime_arena_new(0, guess),
		.size = message_size,
	};
	msg = mime_arena_alloc(r.arena, sizeof(*msg));
	msg->arena = r.arena;
	if (!get_message(&r, msg)) {
		*error_r = r.error != NULL ? r.error : "corrupt blob";
		mime_arena_free(r.arena);
		return NULL;
	}
	return msg;
}
