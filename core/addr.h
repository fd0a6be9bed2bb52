/* addr.h - socket addresses: parsing, printing, classifying. */
#ifndef MOONPOST_ADDR_H
#define MOONPOST_ADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

#include <moonpost/common.h>

/* Room for any address printed by mp_addr_ntop(). */
#define MP_ADDR_TEXT_MAX INET6_ADDRSTRLEN

/* Parses "192.0.2.1:25" or "[2001:db8::1]:25" (IP literals only: a
 * listener must not depend on DNS at start). Port 0 is refused unless
 * allow_zero. False on anything else. */
MP_API bool mp_addr_parse(const char *text, bool allow_zero,
			  struct sockaddr_storage *ss, socklen_t *len_r);
/* Prints the IP of sa into ip (MP_ADDR_TEXT_MAX bytes) and returns its
 * port. IPv4-mapped IPv6 addresses print as IPv4. */
MP_API int mp_addr_ntop(const struct sockaddr *sa, char *ip, size_t size);
/* True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
MP_API bool mp_addr_is_loopback(const struct sockaddr *sa);
/* The key connection limits count by: the IPv4 address, or the /64 of an
 * IPv6 one (one host usually holds a whole /64). */
MP_API void mp_addr_limit_key(const struct sockaddr *sa, uint8_t key[16]);

#endif
