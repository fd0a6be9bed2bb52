/* ms-name.c - mailbox names, their Maildir++ folders, keywords. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ms-private.h"

bool
ms_name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* Length of the UTF-8 sequence at s, or 0 when it is not valid UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF refused). */
static size_t
utf8_seq(const unsigned char *s)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool
name_chars_valid(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;

	while (*s != '\0') {
		size_t n = utf8_seq(s);

		/* Control characters and the IMAP wildcards never belong
		 * in a name (RFC 3501 5.1). */
		if (n == 0 || *s < 0x20 || *s == 0x7f || *s == '%' || *s == '*')
			return false;
		s += n;
	}
	return true;
}

bool
ms_name_valid(const char *name, struct ms_error *err)
{
	size_t len = strlen(name);
	int depth = 1;

	if (len == 0 || len > MS_MAILBOX_NAME_MAX) {
		ms_fail(err, len == 0 ? MS_ERR_BAD_NAME : MS_ERR_LIMIT,
			"mailbox name must be 1 to %d bytes",
			MS_MAILBOX_NAME_MAX);
		return false;
	}
	if (!name_chars_valid(name)) {
		ms_fail(err, MS_ERR_BAD_NAME,
			"mailbox name has invalid characters");
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '/')
			continue;
		/* No empty levels: "a//b", "/a", "a/". */
		if (i == 0 || i == len - 1 || name[i + 1] == '/') {
			ms_fail(err, MS_ERR_BAD_NAME,
				"mailbox name has an empty level");
			return false;
		}
		depth++;
	}
	if (depth > MS_MAILBOX_DEPTH_MAX) {
		ms_fail(err, MS_ERR_LIMIT, "mailbox names nest at most %d deep",
			MS_MAILBOX_DEPTH_MAX);
		return false;
	}
	return true;
}

static bool
dir_char_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr(" -_+,=@!()&'#$", c) != NULL;
}

char *
ms_name_to_dir(const char *name)
{
	struct mp_buf buf = {0};

	if (ms_name_is_inbox(name))
		return mp_xstrdup("");
	mp_buf_puts(&buf, ".");
	for (const unsigned char *s = (const unsigned char *)name; *s != '\0';
	     s++) {
		if (*s == '/')
			mp_buf_puts(&buf, ".");
		else if (dir_char_safe(*s))
			mp_buf_append(&buf, s, 1);
		else
			mp_buf_printf(&buf, "~%02X", *s);
	}
	return mp_buf_steal(&buf);
}

bool
ms_keyword_valid(const char *kw)
{
	size_t len = strlen(kw);

	if (len == 0 || len > MS_KEYWORD_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)kw[i];

		/* An IMAP atom (RFC 3501 9: atom-specials excluded), and no
		 * backslash: keywords are not system flags. */
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}
