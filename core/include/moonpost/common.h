/* common.h - definitions shared by the core, the mailstore and every plugin. */
#ifndef MOONPOST_COMMON_H
#define MOONPOST_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marks a function as part of the public API. The core is built with hidden
 * visibility; only these symbols can be reached from a plugin or a test. */
#define MP_API __attribute__((visibility("default")))

#define MP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define MP_NORETURN          __attribute__((noreturn))
#define MP_NELEMS(a)         (sizeof(a) / sizeof((a)[0]))

/* Frees *p and sets it to NULL, so a second free is harmless. */
#define MP_FREE(p)                                                             \
	do {                                                                   \
		free(p);                                                       \
		(p) = NULL;                                                    \
	} while (0)

/* The result of protocol and I/O calls. Library calls that can fail for a
 * reason worth telling return bool and fill `const char **error_r`. */
enum mp_status {
	MP_OK = 0,   /* done; go on */
	MP_AGAIN,    /* not finished: call again later (more input, async) */
	MP_DECLINED, /* refused, cleanly; the caller decides what that means */
	MP_ERROR,    /* failed; the caller tears down what it was doing */
};

/* A view of bytes that may hold anything, NUL included. */
struct mp_str {
	const char *p;
	size_t len;
};

/* Allocators that abort the process with a log line when memory runs out:
 * a mail server that cannot allocate 100 bytes cannot do anything useful, and
 * every caller checking for it would hide the paths that matter. Sizes that
 * come from the network must be bounded before they reach these. */

/* malloc() that never returns NULL; the caller owns the result. */
MP_API void *mp_xmalloc(size_t size);
/* calloc() that never returns NULL; the caller owns the result. */
MP_API void *mp_xcalloc(size_t n, size_t size);
/* realloc() that never returns NULL; the caller owns the result. */
MP_API void *mp_xrealloc(void *p, size_t size);
/* strdup() that never returns NULL (NULL in gives NULL out); caller owns. */
MP_API char *mp_xstrdup(const char *s);
/* Copies len bytes and adds a NUL; the caller owns the result. */
MP_API char *mp_xstrndup(const char *s, size_t len);
/* Allocating sprintf; the caller owns the result. */
MP_API char *mp_xasprintf(const char *fmt, ...) MP_PRINTF(1, 2);

/* A growable byte buffer. The buffer owns `data`; len bytes are valid, and
 * data[len] is always a NUL so text can be printed directly. */
struct mp_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Appends len bytes to buf, growing it as needed. */
MP_API void mp_buf_append(struct mp_buf *buf, const void *data, size_t len);
/* Appends a NUL-terminated string. */
MP_API void mp_buf_puts(struct mp_buf *buf, const char *s);
/* Appends formatted text. */
MP_API void mp_buf_printf(struct mp_buf *buf, const char *fmt, ...)
	MP_PRINTF(2, 3);
/* Appends formatted text from a va_list. */
MP_API void mp_buf_vprintf(struct mp_buf *buf, const char *fmt, va_list ap)
	MP_PRINTF(2, 0);
/* Drops the first n bytes, keeping the rest. */
MP_API void mp_buf_consume(struct mp_buf *buf, size_t n);
/* Empties the buffer but keeps its memory. */
MP_API void mp_buf_reset(struct mp_buf *buf);
/* Releases the memory; the buffer is empty and reusable afterwards. */
MP_API void mp_buf_free(struct mp_buf *buf);
/* Hands the contents to the caller (who frees them) and empties buf. */
MP_API char *mp_buf_steal(struct mp_buf *buf);

/* A list of strings owned by the list. */
struct mp_strlist {
	char **v;
	size_t n;
};

/* Appends a copy of s. */
MP_API void mp_strlist_add(struct mp_strlist *list, const char *s);
/* True when the list holds s (exact, case-sensitive). */
MP_API bool mp_strlist_contains(const struct mp_strlist *list, const char *s);
/* True when the list holds s, compared without regard to ASCII case. */
MP_API bool mp_strlist_contains_icase(const struct mp_strlist *list,
				      const char *s);
/* Frees every string and the array; the list is empty afterwards. */
MP_API void mp_strlist_free(struct mp_strlist *list);

/* Monotonic time in milliseconds, for durations only. */
MP_API uint64_t mp_now_ms(void);

#endif
