/* addr.c - socket addresses: parsing, printing, classifying. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static bool
parse_port(const char *s, bool allow_zero, in_port_t *port_r)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return false;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v > 65535 || (v == 0 && !allow_zero))
		return false;
	*port_r = htons((in_port_t)v);
	return true;
}

static bool
parse_v6(const char *text, bool allow_zero, struct sockaddr_storage *ss,
	 socklen_t *len_r)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *close = strchr(text, ']');
	char host[INET6_ADDRSTRLEN];
	size_t n;

	if (close == NULL || close[1] != ':')
		return false;
	n = (size_t)(close - text - 1);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, text + 1, n);
	host[n] = '\0';
	sin6->sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
	    !parse_port(close + 2, allow_zero, &sin6->sin6_port))
		return false;
	*len_r = sizeof(*sin6);
	return true;
}

static bool
parse_v4(const char *text, bool allow_zero, struct sockaddr_storage *ss,
	 socklen_t *len_r)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	const char *colon = strrchr(text, ':');
	char host[INET_ADDRSTRLEN];
	size_t n;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - text);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, text, n);
	host[n] = '\0';
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 ||
	    !parse_port(colon + 1, allow_zero, &sin->sin_port))
		return false;
	*len_r = sizeof(*sin);
	return true;
}

bool
mp_addr_parse(const char *text, bool allow_zero, struct sockaddr_storage *ss,
	      socklen_t *len_r)
{
	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[')
		return parse_v6(text, allow_zero, ss, len_r);
	return parse_v4(text, allow_zero, ss, len_r);
}

static const uint8_t *
mapped_v4(const struct sockaddr_in6 *sin6)
{
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
		       ? sin6->sin6_addr.s6_addr + 12
		       : NULL;
}

int
mp_addr_ntop(const struct sockaddr *sa, char *ip, size_t size)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)size);
		return ntohs(sin->sin_port);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		const uint8_t *v4 = mapped_v4(sin6);
		if (v4 != NULL)
			inet_ntop(AF_INET, v4, ip, (socklen_t)size);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip,
				  (socklen_t)size);
		return ntohs(sin6->sin6_port);
	}
	snprintf(ip, size, "unknown");
	return 0;
}

bool
mp_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		const uint8_t *v4 = mapped_v4(sin6);
		if (v4 != NULL)
			return v4[0] == 127;
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return false;
}

void
mp_addr_limit_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		memcpy(key + 12, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		const uint8_t *v4 = mapped_v4(sin6);
		if (v4 != NULL)
			memcpy(key + 12, v4, 4);
		else
			memcpy(key, sin6->sin6_addr.s6_addr, 8);
	}
}
