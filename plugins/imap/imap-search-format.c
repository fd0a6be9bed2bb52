/* imap-search-format.c - "* SEARCH" and "* ESEARCH" (RFC 4731 3.1,
 * RFC 7162 3.1.5), and what SAVE keeps (RFC 5182 2.1). */
#include "config.h"

#include "imap-search-private.h"

#define RET_MINMAX   (IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX)
#define RET_ALLCOUNT (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT)

static uint64_t
highest(const uint64_t *modseqs, size_t from, size_t to)
{
	uint64_t max = 0;

	for (size_t i = from; i < to; i++) {
		if (modseqs[i] > max)
			max = modseqs[i];
	}
	return max;
}

void
imap_search_format_search(struct mp_buf *out,
			  const struct imap_search_program *prog,
			  const uint32_t *nums, const uint64_t *modseqs,
			  size_t count)
{
	imap_search_format_numbers(out, "SEARCH", prog, nums, modseqs, count);
}

void
imap_search_format_numbers(struct mp_buf *out, const char *name,
			   const struct imap_search_program *prog,
			   const uint32_t *nums, const uint64_t *modseqs,
			   size_t count)
{
	mp_buf_printf(out, "* %s", name);
	for (size_t i = 0; i < count; i++)
		mp_buf_printf(out, " %u", nums[i]);
	if (prog->modseq && count > 0 && modseqs != NULL)
		mp_buf_printf(out, " (MODSEQ %llu)",
			      (unsigned long long)highest(modseqs, 0, count));
}

/* The MODSEQ of an ESEARCH: of the messages it names (RFC 4731 3.2). */
static uint64_t
esearch_modseq(unsigned ret, const uint64_t *modseqs, size_t count)
{
	uint64_t a = 0, b = 0;

	if ((ret & RET_ALLCOUNT) != 0 || (ret & RET_MINMAX) == 0)
		return highest(modseqs, 0, count);
	if (ret & IMAP_SEARCH_RETURN_MIN)
		a = modseqs[0];
	if (ret & IMAP_SEARCH_RETURN_MAX)
		b = modseqs[count - 1];
	return a > b ? a : b;
}

static void
write_tag(struct mp_buf *out, struct mp_str tag)
{
	mp_buf_puts(out, " (TAG \"");
	for (size_t i = 0; i < tag.len; i++) {
		if (tag.p[i] == '"' || tag.p[i] == '\\')
			mp_buf_append(out, "\\", 1);
		mp_buf_append(out, &tag.p[i], 1);
	}
	mp_buf_puts(out, "\")");
}

bool
imap_search_format_esearch(struct mp_buf *out,
			   const struct imap_search_program *prog,
			   struct mp_str tag, bool uid, const uint32_t *nums,
			   const uint64_t *modseqs, size_t count)
{
	unsigned ret = prog->ret;

	if ((ret & ~(unsigned)IMAP_SEARCH_RETURN_SAVE) == 0)
		return false;
	mp_buf_puts(out, "* ESEARCH");
	if (tag.p != NULL)
		write_tag(out, tag);
	if (uid)
		mp_buf_puts(out, " UID");
	if (count > 0 && (ret & IMAP_SEARCH_RETURN_MIN))
		mp_buf_printf(out, " MIN %u", nums[0]);
	if (count > 0 && (ret & IMAP_SEARCH_RETURN_MAX))
		mp_buf_printf(out, " MAX %u", nums[count - 1]);
	if (count > 0 && (ret & IMAP_SEARCH_RETURN_ALL)) {
		mp_buf_puts(out, " ALL ");
		imap_seqset_format_numbers(out, nums, count);
	}
	if (ret & IMAP_SEARCH_RETURN_COUNT)
		mp_buf_printf(out, " COUNT %zu", count);
	if (prog->modseq && count > 0 && modseqs != NULL)
		mp_buf_printf(out, " MODSEQ %llu",
			      (unsigned long long)esearch_modseq(ret, modseqs,
								 count));
	return true;
}

void
imap_search_saved_result(const struct imap_search_program *prog,
			 const uint32_t *uids, size_t count,
			 struct imap_seqset *saved)
{
	unsigned ret = prog->ret;

	saved->count = 0;
	saved->saved = false;
	if (count == 0)
		return;
	if ((ret & RET_ALLCOUNT) == 0 && (ret & RET_MINMAX) != 0) {
		if (ret & IMAP_SEARCH_RETURN_MIN)
			imap_seqset_add(saved, uids[0], uids[0]);
		if (ret & IMAP_SEARCH_RETURN_MAX)
			imap_seqset_add(saved, uids[count - 1],
					uids[count - 1]);
	} else {
		for (size_t i = 0; i < count; i++)
			imap_seqset_add(saved, uids[i], uids[i]);
	}
	imap_seqset_normalize(saved);
}
