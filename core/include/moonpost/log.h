/* log.h - one line per event, key=value, to stderr.
 *
 * A line looks like
 *   2026-11-29T11:20:03.114Z level=info session=B7Q2XK4M event=connect ...
 * Values that come from the network go through mp_q() so that a hostile
 * HELO name cannot forge a key or a second line. Passwords and SASL payloads
 * are never logged. */
#ifndef MOONPOST_LOG_H
#define MOONPOST_LOG_H

#include <moonpost/common.h>

enum mp_log_level {
	MP_LOG_DEBUG = 0,
	MP_LOG_INFO,
	MP_LOG_WARN,
	MP_LOG_ERROR,
};

/* Writes one log line at level; fmt is the key=value part. */
MP_API void mp_log(enum mp_log_level level, const char *fmt, ...)
	MP_PRINTF(2, 3);
/* Same as mp_log() with a va_list. */
MP_API void mp_logv(enum mp_log_level level, const char *fmt, va_list ap)
	MP_PRINTF(2, 0);
/* True when a line at level would be written (skip costly formatting). */
MP_API bool mp_log_enabled(enum mp_log_level level);
/* Sets the lowest level that is written. */
MP_API void mp_log_set_level(enum mp_log_level level);
/* Parses "debug", "info", "warn" or "error"; false when unknown. */
MP_API bool mp_log_level_parse(const char *name, enum mp_log_level *level_r);
/* Sends log lines to fd instead of stderr (the fd stays the caller's). */
MP_API void mp_log_set_fd(int fd);

/* Quotes s for use as a log value: bare when it is a plain token, otherwise
 * in double quotes with \" \\ \n \r \t and \xNN escapes, cut at 200 bytes.
 * The result lives in a small per-thread ring of buffers and stays valid for
 * the next seven calls on this thread: use it inside one mp_log() call. */
MP_API const char *mp_q(const char *s);
/* mp_q() for len bytes that need not be NUL-terminated. */
MP_API const char *mp_qn(const char *s, size_t len);

#endif
