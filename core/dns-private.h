/* dns-private.h - what the resolver's two files share.
 *
 *   dns.c        c-ares channels on the loop, the in-flight cap, and the
 *                life of a request (deferred delivery, cancel, free);
 *   dns-query.c  the lookups: names, answers, forward-confirmed rDNS.
 *
 * A request sends one or more queries ("subs"), each answered through
 * mp_dns_answer(), which may send more; when none is left in flight the
 * request is delivered (mp_dns_deliver) and freed. */
#ifndef MOONPOST_DNS_PRIVATE_H
#define MOONPOST_DNS_PRIVATE_H

#include <moonpost/dns.h>

enum dns_kind {
	DNS_KIND_A,
	DNS_KIND_TXT,
	DNS_KIND_MX,
	DNS_KIND_PTR,
	DNS_KIND_RDNS,
};

struct mp_dns_req {
	struct mp_dns *dns;
	enum dns_kind kind;
	mp_dns_done_fn *cb;
	void *ctx;
	unsigned subs;  /* queries sent and not answered yet */
	bool starting;  /* the lookup function has not returned */
	bool cancelled; /* freed when the last query ends, never delivered */
	struct mp_dns_req *due_next; /* on the list to deliver */
	unsigned due_round;

	/* The result being built. n counts the array of the kind. */
	bool failed; /* fail_status holds the worst failure so far */
	enum mp_dns_status fail_status;
	const char *fail_error;
	size_t n;
	struct mp_dns_ip *ips;
	struct mp_str *txt;
	struct mp_dns_mx *mx;
	char **names;

	/* rdns */
	struct mp_dns_ip target;
	size_t confirmed; /* index in names, or SIZE_MAX */
	bool forward_failed;
};

/* dns.c */

/* A new request; the lookup function starts its queries, then hands it
 * to mp_dns_req_started(). */
struct mp_dns_req *mp_dns_req_new(struct mp_dns *dns, enum dns_kind kind,
				  mp_dns_done_fn *cb, void *ctx);
/* True when n more queries fit under the in-flight cap. */
bool mp_dns_room(const struct mp_dns *dns, unsigned n);
/* Sends a query of qtype for name on behalf of req; its answer comes to
 * mp_dns_answer() with tag. False (nothing sent) when the resolver is full
 * or closing. */
bool mp_dns_send(struct mp_dns_req *req, const char *name, int qtype, int tag);
/* The lookup function is done starting req: a request with nothing in
 * flight is delivered on the next loop iteration, others when their last
 * answer comes. Returns req. */
struct mp_dns_req *mp_dns_req_started(struct mp_dns_req *req);

/* dns-query.c */

/* One answer for req (abuf is NULL unless status is ARES_SUCCESS). May
 * send more queries. */
void mp_dns_answer(struct mp_dns_req *req, int qtype, int tag, int status,
		   const unsigned char *abuf, int alen);
/* Completes the result of req and calls its callback. */
void mp_dns_deliver(struct mp_dns_req *req);
/* Frees what the result of req holds (not req itself). */
void mp_dns_result_clear(struct mp_dns_req *req);

#endif
