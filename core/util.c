/* util.c - allocation, buffers, string lists, clocks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/common.h>

static MP_NORETURN void
out_of_memory(size_t size)
{
	/* No allocation here: stdio may be what ran out. */
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "level=error event=oom bytes=%zu\n",
			 size);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
	abort();
}

void *
mp_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *
mp_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		out_of_memory(n * size);
	return p;
}

void *
mp_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (q == NULL)
		out_of_memory(size);
	return q;
}

char *
mp_xstrdup(const char *s)
{
	return s == NULL ? NULL : mp_xstrndup(s, strlen(s));
}

char *
mp_xstrndup(const char *s, size_t len)
{
	char *p = mp_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
mp_xasprintf(const char *fmt, ...)
{
	struct mp_buf buf = {0};
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(&buf, fmt, ap);
	va_end(ap);
	return mp_buf_steal(&buf);
}

static void
buf_reserve(struct mp_buf *buf, size_t extra)
{
	size_t need = buf->len + extra + 1;
	size_t cap;

	if (need <= buf->cap)
		return;
	if (need < extra)
		out_of_memory(SIZE_MAX);
	cap = buf->cap ? buf->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	buf->data = mp_xrealloc(buf->data, cap);
	buf->cap = cap;
}

void
mp_buf_append(struct mp_buf *buf, const void *data, size_t len)
{
	buf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
mp_buf_puts(struct mp_buf *buf, const char *s)
{
	mp_buf_append(buf, s, strlen(s));
}

void
mp_buf_vprintf(struct mp_buf *buf, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	buf_reserve(buf, 64);
	n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if ((size_t)n >= buf->cap - buf->len) {
		buf_reserve(buf, (size_t)n);
		vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
	}
	buf->len += (size_t)n;
}

void
mp_buf_printf(struct mp_buf *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mp_buf_vprintf(buf, fmt, ap);
	va_end(ap);
}

void
mp_buf_consume(struct mp_buf *buf, size_t n)
{
	if (n >= buf->len) {
		mp_buf_reset(buf);
		return;
	}
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
	buf->data[buf->len] = '\0';
}

void
mp_buf_reset(struct mp_buf *buf)
{
	buf->len = 0;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

void
mp_buf_free(struct mp_buf *buf)
{
	MP_FREE(buf->data);
	buf->len = 0;
	buf->cap = 0;
}

char *
mp_buf_steal(struct mp_buf *buf)
{
	char *p = buf->data != NULL ? buf->data : mp_xstrdup("");

	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	return p;
}

void
mp_strlist_add(struct mp_strlist *list, const char *s)
{
	list->v = mp_xrealloc(list->v, (list->n + 2) * sizeof(*list->v));
	list->v[list->n++] = mp_xstrdup(s);
	list->v[list->n] = NULL;
}

bool
mp_strlist_contains(const struct mp_strlist *list, const char *s)
{
	for (size_t i = 0; i < list->n; i++) {
		if (strcmp(list->v[i], s) == 0)
			return true;
	}
	return false;
}

bool
mp_strlist_contains_icase(const struct mp_strlist *list, const char *s)
{
	for (size_t i = 0; i < list->n; i++) {
		if (strcasecmp(list->v[i], s) == 0)
			return true;
	}
	return false;
}

void
mp_strlist_free(struct mp_strlist *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->v[i]);
	MP_FREE(list->v);
	list->n = 0;
}

uint64_t
mp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
