/* ms-keywords.c - keyword sets stored as sorted, space-separated text. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ms-private.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
split(const char *stored, struct mp_strlist *out)
{
	char *copy = mp_xstrdup(stored), *save = NULL;

	for (char *w = strtok_r(copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save))
		mp_strlist_add(out, w);
	free(copy);
}

static void
remove_word(struct mp_strlist *set, const char *w)
{
	for (size_t i = 0; i < set->n; i++) {
		if (strcmp(set->v[i], w) != 0)
			continue;
		free(set->v[i]);
		memmove(&set->v[i], &set->v[i + 1],
			(set->n - i) * sizeof(*set->v));
		set->n--;
		return;
	}
}

char *
ms_keywords_apply(const char *stored, enum ms_flag_mode mode,
		  const struct mp_strlist *kws, struct ms_error *err)
{
	struct mp_strlist set = {0};
	struct mp_buf out = {0};

	if (mode != MS_FLAGS_REPLACE)
		split(stored, &set);
	for (size_t i = 0; kws != NULL && i < kws->n; i++) {
		if (!ms_keyword_valid(kws->v[i])) {
			mp_strlist_free(&set);
			ms_fail(err, MS_ERR_BAD_NAME, "invalid keyword");
			return NULL;
		}
		if (mode == MS_FLAGS_REMOVE)
			remove_word(&set, kws->v[i]);
		else if (!mp_strlist_contains(&set, kws->v[i]))
			mp_strlist_add(&set, kws->v[i]);
	}
	if (set.n > MS_KEYWORDS_MAX) {
		mp_strlist_free(&set);
		ms_fail(err, MS_ERR_LIMIT, "at most %d keywords per message",
			MS_KEYWORDS_MAX);
		return NULL;
	}
	if (set.n > 0)
		qsort(set.v, set.n, sizeof(*set.v), cmp_str);
	for (size_t i = 0; i < set.n; i++)
		mp_buf_printf(&out, "%s%s", i > 0 ? " " : "", set.v[i]);
	mp_strlist_free(&set);
	return mp_buf_steal(&out);
}
