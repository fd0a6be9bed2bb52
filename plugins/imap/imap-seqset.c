/* imap-seqset.c - IMAP sequence sets: parsing, resolving '*', formatting. */
#include "config.h"

#include <stdlib.h>

#include "imap-seqset.h"

/* '*' while parsing; resolved once the element is read. */
#define STAR 0

static void
push(struct imap_seqset *set, uint32_t lo, uint32_t hi)
{
	if (set->count == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 8;
		set->ranges = mp_xrealloc(set->ranges,
					  set->cap * sizeof(*set->ranges));
	}
	set->ranges[set->count].lo = lo < hi ? lo : hi;
	set->ranges[set->count].hi = lo < hi ? hi : lo;
	set->count++;
}

void
imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi)
{
	push(set, lo, hi);
}

void
imap_seqset_free(struct imap_seqset *set)
{
	MP_FREE(set->ranges);
	set->count = set->cap = 0;
	set->saved = false;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void
imap_seqset_normalize(struct imap_seqset *set)
{
	size_t i, out = 0;

	if (set->count < 2)
		return;
	qsort(set->ranges, set->count, sizeof(*set->ranges), cmp_range);
	for (i = 1; i < set->count; i++) {
		struct imap_range *last = &set->ranges[out];
		const struct imap_range *r = &set->ranges[i];

		if (r->lo <= last->hi || r->lo - 1 == last->hi) {
			if (r->hi > last->hi)
				last->hi = r->hi;
		} else {
			set->ranges[++out] = *r;
		}
	}
	set->count = out + 1;
}

/* seq-number = nz-number / "*"; nz-number: 1 to 4294967295, no leading
 * zero (RFC 9051 9). */
static bool
parse_number(const char *s, size_t len, size_t *pos, uint32_t *r)
{
	uint64_t n = 0;
	size_t start = *pos;

	if (*pos < len && s[*pos] == '*') {
		(*pos)++;
		*r = STAR;
		return true;
	}
	if (*pos >= len || s[*pos] < '1' || s[*pos] > '9')
		return false;
	while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
		n = n * 10 + (uint64_t)(s[(*pos)++] - '0');
		if (n > UINT32_MAX || *pos - start > 10)
			return false;
	}
	*r = (uint32_t)n;
	return true;
}

static enum imap_seqset_status
fail(struct imap_seqset *set, enum imap_seqset_status st, const char **error_r,
     const char *text)
{
	set->count = 0;
	set->saved = false;
	*error_r = text;
	return st;
}

/* Resolves '*' in lo:hi and adds the range. */
static enum imap_seqset_status
add_element(struct imap_seqset *set, uint32_t lo, uint32_t hi, uint32_t max,
	    enum imap_seqset_kind kind, const char **error_r)
{
	if ((lo == STAR || hi == STAR) && max == 0)
		return fail(set, IMAP_SEQSET_RANGE, error_r,
			    "'*' used in an empty mailbox");
	lo = lo == STAR ? max : lo;
	hi = hi == STAR ? max : hi;
	if (kind == IMAP_SEQSET_SEQ && (lo > max || hi > max))
		return fail(set, IMAP_SEQSET_RANGE, error_r,
			    "Invalid message sequence number");
	push(set, lo, hi);
	return IMAP_SEQSET_OK;
}

enum imap_seqset_status
imap_seqset_parse(struct imap_seqset *set, const char *s, size_t len,
		  uint32_t max, enum imap_seqset_kind kind, size_t max_ranges,
		  const char **error_r)
{
	size_t pos = 0, n = 0;

	set->count = 0;
	set->saved = false;
	if (len == 1 && s[0] == '$') {
		set->saved = true;
		return IMAP_SEQSET_OK;
	}
	for (;;) {
		enum imap_seqset_status st;
		uint32_t lo, hi;

		if (!parse_number(s, len, &pos, &lo))
			return fail(set, IMAP_SEQSET_SYNTAX, error_r,
				    "Invalid sequence set");
		hi = lo;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (!parse_number(s, len, &pos, &hi))
				return fail(set, IMAP_SEQSET_SYNTAX, error_r,
					    "Invalid sequence set");
		}
		if (max_ranges > 0 && ++n > max_ranges)
			return fail(set, IMAP_SEQSET_LIMIT, error_r,
				    "Too many ranges in sequence set");
		st = add_element(set, lo, hi, max, kind, error_r);
		if (st != IMAP_SEQSET_OK)
			return st;
		if (pos == len)
			break;
		if (s[pos++] != ',')
			return fail(set, IMAP_SEQSET_SYNTAX, error_r,
				    "Invalid sequence set");
	}
	imap_seqset_normalize(set);
	return IMAP_SEQSET_OK;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t
imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < set->count; i++)
		total += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return total;
}

static void
format_range(struct mp_buf *out, uint32_t lo, uint32_t hi, bool first)
{
	if (lo == hi)
		mp_buf_printf(out, "%s%u", first ? "" : ",", lo);
	else
		mp_buf_printf(out, "%s%u:%u", first ? "" : ",", lo, hi);
}

void
imap_seqset_format(struct mp_buf *out, const struct imap_range *ranges,
		   size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		format_range(out, ranges[i].lo, ranges[i].hi, i == 0);
}

void
imap_seqset_format_numbers(struct mp_buf *out, const uint32_t *nums, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j + 1 < n && nums[j] != UINT32_MAX &&
		       nums[j + 1] == nums[j] + 1)
			j++;
		format_range(out, nums[i], nums[j], i == 0);
		i = j + 1;
	}
}
