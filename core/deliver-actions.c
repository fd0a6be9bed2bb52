/* deliver-actions.c - what `deliver` handlers may ask for, and checks. */
#include "config.h"

#include <string.h>

#include "deliver-private.h"

/* A header value longer than this is refused: one line of a sane size,
 * not a way to inflate every copy of a message. */
#define HEADER_VALUE_MAX 998

void
mp_deliver_actions_clear(struct mp_deliver_actions *a)
{
	mp_strlist_free(&a->fileinto);
	mp_strlist_free(&a->fileinto_create);
	mp_strlist_free(&a->redirect);
	mp_strlist_free(&a->keywords);
	mp_strlist_free(&a->add_headers);
	mp_strlist_free(&a->remove_headers);
	memset(a, 0, sizeof(*a));
}

size_t
mp_deliver_actions_count(const struct mp_deliver_actions *a)
{
	return a->fileinto.n + a->redirect.n + a->keywords.n +
	       a->add_headers.n + a->remove_headers.n;
}

bool
mp_deliver_header_valid(const char *name, const char *value,
			const char **error_r)
{
	size_t n = strlen(name);

	if (n == 0 || n > 76) {
		*error_r = "header name must be 1 to 76 characters";
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		/* RFC 5322 2.2: printable US-ASCII except colon. */
		if (c < 33 || c > 126 || c == ':') {
			*error_r = "invalid character in header name";
			return false;
		}
	}
	if (value == NULL)
		return true;
	if (strlen(value) > HEADER_VALUE_MAX) {
		*error_r = "header value too long";
		return false;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		*error_r = "header value must be one line";
		return false;
	}
	return true;
}
