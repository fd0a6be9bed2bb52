/* log.c - key=value log lines.
 *
 * Each line is built in a stack buffer and written with one write(2), so
 * lines from several threads never interleave. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <moonpost/log.h>

/* Longest line written; longer ones are cut and end in "...". */
#define LOG_LINE_MAX 4096
/* Longest quoted value mp_q() produces, before quotes and escapes. */
#define LOG_VALUE_MAX 200
#define LOG_RING      8

static enum mp_log_level log_level = MP_LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
mp_log_set_level(enum mp_log_level level)
{
	log_level = level;
}

bool
mp_log_enabled(enum mp_log_level level)
{
	return level >= log_level;
}

void
mp_log_set_fd(int fd)
{
	log_fd = fd;
}

bool
mp_log_level_parse(const char *name, enum mp_log_level *level_r)
{
	for (size_t i = 0; i < MP_NELEMS(level_names); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*level_r = (enum mp_log_level)i;
			return true;
		}
	}
	return false;
}

static size_t
format_time(char *out, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(out + n, size - n, ".%03dZ",
			      (int)(tv.tv_usec / 1000));
	return n;
}

void
mp_logv(enum mp_log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n;
	int m;

	if (!mp_log_enabled(level))
		return;
	n = format_time(line, sizeof(line));
	n += (size_t)snprintf(line + n, sizeof(line) - n, " level=%s ",
			      level_names[level]);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= sizeof(line) - n - 1) {
		n = sizeof(line) - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)m;
	}
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}

void
mp_log(enum mp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mp_logv(level, fmt, ap);
	va_end(ap);
}

static bool
is_plain(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\')
			return false;
	}
	return true;
}

static size_t
escape_byte(char *out, unsigned char c)
{
	switch (c) {
	case '"':
	case '\\':
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		memcpy(out, "\\t", 2);
		return 2;
	default:
		if (c < ' ' || c == 0x7f) {
			snprintf(out, 5, "\\x%02x", c);
			return 4;
		}
		out[0] = (char)c;
		return 1;
	}
}

const char *
mp_qn(const char *s, size_t len)
{
	/* Worst case: every byte becomes \xNN, plus quotes, "..." and NUL. */
	static __thread char ring[LOG_RING][LOG_VALUE_MAX * 4 + 8];
	static __thread unsigned next;
	char *out = ring[next++ % LOG_RING];
	size_t n = 0;
	bool cut = len > LOG_VALUE_MAX;

	if (s == NULL)
		return "-";
	if (cut)
		len = LOG_VALUE_MAX;
	if (!cut && is_plain(s, len)) {
		memcpy(out, s, len);
		out[len] = '\0';
		return out;
	}
	out[n++] = '"';
	for (size_t i = 0; i < len; i++)
		n += escape_byte(out + n, (unsigned char)s[i]);
	if (cut) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

const char *
mp_q(const char *s)
{
	return s == NULL ? "-" : mp_qn(s, strlen(s));
}
