/* dns.h - an asynchronous DNS resolver on the event loop (c-ares).
 *
 * Nothing on the loop thread may wait for the network, so every lookup
 * returns at once and calls back later, on the loop thread:
 *
 *   req = mp_dns_lookup_mx(dns, "example.org", mx_done, session);
 *   ...
 *   static void mx_done(const struct mp_dns_result *res, void *ctx)
 *   {
 *       session->mx_req = NULL;       the handle dies with the callback
 *       if (res->status == MP_DNS_OK) use res->mx[0 .. res->n)
 *   }
 *
 * The callback is called exactly once, never before the lookup function
 * has returned (a lookup that fails at once, such as a bad name or a full
 * resolver, is answered on the next loop iteration), unless the request is
 * cancelled first. What a result points to belongs to the resolver and is
 * valid only during the callback: copy what you keep.
 *
 * A lookup queries DNS only: /etc/hosts is not read and no search domain
 * is appended, so names are taken as absolute. */
#ifndef MOONPOST_DNS_H
#define MOONPOST_DNS_H

#include <netinet/in.h>
#include <sys/socket.h>

#include <moonpost/common.h>
#include <moonpost/config.h>

struct ev_loop;
struct mp_dns;
struct mp_dns_req;

/* Answers kept per lookup; the rest are dropped. A hostile zone can send
 * thousands of records (over TCP) to make every user of it copy them. */
#define MP_DNS_ANSWERS_MAX 64
/* Longest name in text form without the final dot: 255 octets on the
 * wire (RFC 1035 2.3.4). */
#define MP_DNS_NAME_MAX 253
/* PTR names mp_dns_rdns() looks up forward. Whoever holds the reverse
 * zone of an address chooses them: without a bound one connection could
 * make the server send a query for each of dozens of names. */
#define MP_DNS_RDNS_NAMES_MAX 10
/* Room for mp_dns_reverse(): 32 IPv6 nibbles with their dots. */
#define MP_DNS_REVERSE_MAX 64

enum mp_dns_status {
	MP_DNS_OK = 0,   /* at least one answer */
	MP_DNS_NXDOMAIN, /* the name does not exist: a definitive no */
	MP_DNS_NODATA,   /* the name exists, without records of that type */
	/* No answer to rely on: a timeout, SERVFAIL, REFUSED, a bad reply,
	 * a full resolver. A DNSBL check must read it as "unknown", never as
	 * "listed" or "not listed". */
	MP_DNS_TEMPFAIL,
	MP_DNS_ERROR, /* the question itself is wrong (a bad name) */
};

/* An address. */
struct mp_dns_ip {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

/* A mail exchanger. A host of "" is a null MX (RFC 7505): the domain
 * accepts no mail. */
struct mp_dns_mx {
	int preference;
	const char *host;
};

/* What a lookup found. Only the array of the lookup's type is set. */
struct mp_dns_result {
	enum mp_dns_status status;
	const char *error; /* why, for anything but OK; static text */
	size_t n;          /* entries in that array */
	/* mp_dns_lookup_a(): IPv4 first, then IPv6. */
	const struct mp_dns_ip *ips;
	/* mp_dns_lookup_txt(): one per record, its strings joined (as SPF
	 * and DKIM read them); may hold NULs, always NUL-terminated. */
	const struct mp_str *txt;
	/* mp_dns_lookup_mx(): by preference, lowest first, in the order of
	 * the answer within one preference (RFC 5321 5.1: the client shuffles
	 * equal ones). */
	const struct mp_dns_mx *mx;
	/* mp_dns_lookup_ptr(): the PTR names; mp_dns_rdns(): those it
	 * checked (well-formed, at most MP_DNS_RDNS_NAMES_MAX). */
	const char *const *names;
	/* mp_dns_rdns(): the confirmed name, or NULL. */
	const char *name;
};

/* Receives the result of a lookup; see the top of this file. */
typedef void mp_dns_done_fn(const struct mp_dns_result *res, void *ctx);

/* Starts a resolver on loop with the settings of cfg (servers given as
 * "IP:port" or "[IPv6]:port"; none: those of /etc/resolv.conf, read now).
 * Returns NULL with *error_r (caller frees) when c-ares cannot start or a
 * server is not an IP:port. The caller owns the result (mp_dns_free). */
MP_API struct mp_dns *mp_dns_new(struct ev_loop *loop,
				 const struct mp_cfg_dns *cfg, char **error_r);
/* Applies new settings (and re-reads /etc/resolv.conf) for lookups started
 * from now on; those in flight finish with the old ones. False with
 * *error_r (caller frees) leaves the settings as they were. */
MP_API bool mp_dns_reconfigure(struct mp_dns *dns, const struct mp_cfg_dns *cfg,
			       char **error_r);
/* Stops every query and frees the resolver; callbacks of requests still
 * running are not called (their handles die). Not from a callback. Sets
 * *dns NULL. */
MP_API void mp_dns_free(struct mp_dns **dns);
/* Queries in flight, cancelled ones included until their answer or
 * timeout; the max_queries cap counts these. */
MP_API size_t mp_dns_pending(const struct mp_dns *dns);

/* Addresses of name: A records when family is AF_INET, AAAA for AF_INET6,
 * both for AF_UNSPEC (OK when either has one). Returns the request handle,
 * valid until the callback or mp_dns_cancel(). */
MP_API struct mp_dns_req *mp_dns_lookup_a(struct mp_dns *dns, const char *name,
					  int family, mp_dns_done_fn *cb,
					  void *ctx);
/* TXT records of name. Returns the handle, as mp_dns_lookup_a(). */
MP_API struct mp_dns_req *mp_dns_lookup_txt(struct mp_dns *dns,
					    const char *name,
					    mp_dns_done_fn *cb, void *ctx);
/* MX records of name, sorted. Returns the handle, as mp_dns_lookup_a(). */
MP_API struct mp_dns_req *mp_dns_lookup_mx(struct mp_dns *dns, const char *name,
					   mp_dns_done_fn *cb, void *ctx);
/* PTR names of the address in sa (IPv4-mapped IPv6 is read as IPv4; the
 * port is ignored). Returns the handle, as mp_dns_lookup_a(). */
MP_API struct mp_dns_req *mp_dns_lookup_ptr(struct mp_dns *dns,
					    const struct sockaddr *sa,
					    mp_dns_done_fn *cb, void *ctx);
/* Forward-confirmed reverse DNS of sa: its PTR names, of which the first
 * whose A (or AAAA) records hold the address is res->name. OK: confirmed.
 * NXDOMAIN or NODATA: no PTR, or (res->n > 0) no name leads back. TEMPFAIL:
 * a lookup failed and nothing was confirmed. Returns the handle. */
MP_API struct mp_dns_req *mp_dns_rdns(struct mp_dns *dns,
				      const struct sockaddr *sa,
				      mp_dns_done_fn *cb, void *ctx);
/* Abandons a request: its callback will not be called. Sets *req NULL;
 * NULL is fine. Never from the request's own callback. */
MP_API void mp_dns_cancel(struct mp_dns_req **req);

/* "ok", "nxdomain", "nodata", "tempfail" or "error"; static. */
MP_API const char *mp_dns_status_name(enum mp_dns_status status);
/* Writes the reversed form of sa's address, as PTR and DNSBL names start:
 * "4.3.2.1" for 1.2.3.4, 32 dotted nibbles for IPv6 (IPv4-mapped IPv6 is
 * read as IPv4). False when sa is neither or size is too small. */
MP_API bool mp_dns_reverse(const struct sockaddr *sa, char *buf, size_t size);

#endif
