/* ms-error.c - filling struct ms_error. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ms-private.h"

enum ms_result
ms_fail(struct ms_error *err, enum ms_result code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return code;
}

enum ms_result
ms_fail_errno(struct ms_error *err, const char *what, const char *path)
{
	int e = errno;

	if (e == EDQUOT)
		return ms_fail(err, MS_ERR_OVER_QUOTA, "%s %s: %s", what, path,
			       strerror(e));
	return ms_fail(err, MS_ERR_TEMP, "%s %s: %s", what, path, strerror(e));
}

const char *
ms_result_name(enum ms_result r)
{
	static const char *const names[] = {
		"ok",       "not found",   "exists",
		"bad name", "not allowed", "over quota",
		"limit",    "modified",    "temporary failure",
	};

	return (size_t)r < MP_NELEMS(names) ? names[r] : "unknown";
}
