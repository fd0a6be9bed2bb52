/* dns-query.c - the lookups: checking names, reading answers, building
 * results, and forward-confirmed reverse DNS. */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-private.h"

/* ---- names and addresses ----------------------------------------------- */

/* Why name cannot be asked for, or NULL when it can. Host names, DNSBL
 * and DKIM names use letters, digits, '-' and '_'; anything else (spaces,
 * backslashes that c-ares would read as escapes, raw UTF-8 instead of the
 * xn-- form) is a caller's mistake or an attack. */
static const char *
name_problem(const char *name)
{
	size_t len = strlen(name);
	size_t label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty domain name";
	if (len > MP_DNS_NAME_MAX)
		return "domain name longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			if (label == 0)
				return "empty label in domain name";
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return "character not allowed in a domain name";
		if (++label > 63)
			return "label longer than 63 characters in domain "
			       "name";
	}
	return label == 0 ? "empty label in domain name" : NULL;
}

/* The address of sa, IPv4-mapped IPv6 as IPv4. */
static bool
ip_from_sockaddr(const struct sockaddr *sa, struct mp_dns_ip *ip)
{
	const struct sockaddr_in *sin = (const void *)sa;
	const struct sockaddr_in6 *sin6 = (const void *)sa;

	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		ip->u.v4 = sin->sin_addr;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		ip->family = AF_INET;
		memcpy(&ip->u.v4, sin6->sin6_addr.s6_addr + 12, 4);
		return true;
	}
	ip->family = AF_INET6;
	ip->u.v6 = sin6->sin6_addr;
	return true;
}

static bool
ip_equal(const struct mp_dns_ip *a, const struct mp_dns_ip *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_INET)
		return a->u.v4.s_addr == b->u.v4.s_addr;
	return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

static bool
ip_reverse(const struct mp_dns_ip *ip, char *buf, size_t size)
{
	const uint8_t *b = (const uint8_t *)&ip->u;
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (ip->family == AF_INET)
		return (size_t)snprintf(buf, size, "%u.%u.%u.%u", b[3], b[2],
					b[1], b[0]) < size;
	if (size < MP_DNS_REVERSE_MAX)
		return false;
	for (int i = 15; i >= 0; i--) {
		buf[n++] = hex[b[i] & 0xf];
		buf[n++] = '.';
		buf[n++] = hex[b[i] >> 4];
		buf[n++] = i > 0 ? '.' : '\0';
	}
	return true;
}

bool
mp_dns_reverse(const struct sockaddr *sa, char *buf, size_t size)
{
	struct mp_dns_ip ip;

	return ip_from_sockaddr(sa, &ip) && ip_reverse(&ip, buf, size);
}

/* "4.3.2.1.in-addr.arpa" or the ip6.arpa name of ip. */
static void
ptr_name(const struct mp_dns_ip *ip, char *buf, size_t size)
{
	char rev[MP_DNS_REVERSE_MAX];

	ip_reverse(ip, rev, sizeof(rev));
	snprintf(buf, size, "%s.%s", rev,
		 ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
}

const char *
mp_dns_status_name(enum mp_dns_status status)
{
	static const char *const names[] = {
		"ok", "nxdomain", "nodata", "tempfail", "error",
	};

	if ((size_t)status < MP_NELEMS(names))
		return names[status];
	return "unknown";
}

/* ---- failures ---------------------------------------------------------- */

static enum mp_dns_status
status_from_ares(int rc)
{
	switch (rc) {
	case ARES_SUCCESS:
		return MP_DNS_OK;
	case ARES_ENOTFOUND:
		return MP_DNS_NXDOMAIN;
	case ARES_ENODATA:
		return MP_DNS_NODATA;
	case ARES_EBADNAME:
		return MP_DNS_ERROR;
	default:
		return MP_DNS_TEMPFAIL;
	}
}

static const char *
error_from_ares(int rc)
{
	switch (rc) {
	case ARES_ENOTFOUND:
		return "no such domain (NXDOMAIN)";
	case ARES_ENODATA:
		return "no records of that type";
	case ARES_ETIMEOUT:
		return "timed out";
	case ARES_ESERVFAIL:
		return "server failure (SERVFAIL)";
	case ARES_EREFUSED:
		return "query refused (REFUSED)";
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 reports SERVFAIL and REFUSED answers so too. */
		return "server failure, refusal, or no server reachable";
	case ARES_EBADRESP:
		return "malformed reply";
	default:
		return ares_strerror(rc);
	}
}

/* How bad a failure is: the result of a lookup of several queries that
 * found nothing tells the worst. An unanswered query leaves the question
 * open, so it outranks the others. */
static int
fail_rank(enum mp_dns_status s)
{
	switch (s) {
	case MP_DNS_TEMPFAIL:
		return 4;
	case MP_DNS_ERROR:
		return 3;
	case MP_DNS_NODATA:
		return 2; /* the name exists: more than NXDOMAIN says */
	default:
		return 1;
	}
}

static void
req_fail(struct mp_dns_req *req, enum mp_dns_status s, const char *why)
{
	if (s == MP_DNS_OK)
		return;
	if (req->failed && fail_rank(s) <= fail_rank(req->fail_status))
		return;
	req->failed = true;
	req->fail_status = s;
	req->fail_error = why;
}

static void
req_fail_ares(struct mp_dns_req *req, int rc)
{
	req_fail(req, status_from_ares(rc), error_from_ares(rc));
}

/* Checks name and room for n queries; false (and the failure noted)
 * when the lookup cannot go on. */
static bool
req_can_send(struct mp_dns_req *req, const char *name, unsigned n)
{
	const char *why = name_problem(name);

	if (why != NULL)
		req_fail(req, MP_DNS_ERROR, why);
	else if (!mp_dns_room(req->dns, n))
		req_fail(req, MP_DNS_TEMPFAIL,
			 "too many DNS queries in flight");
	return why == NULL && !req->failed;
}

static void
req_send(struct mp_dns_req *req, const char *name, int qtype, int tag)
{
	if (!mp_dns_send(req, name, qtype, tag))
		req_fail(req, MP_DNS_TEMPFAIL,
			 "too many DNS queries in flight");
}

/* ---- reading answers --------------------------------------------------- */

/* Addresses of an A or AAAA answer into out (room entries); returns how
 * many, or minus an ares status. */
static int
parse_addrs(const unsigned char *abuf, int alen, int qtype,
	    struct mp_dns_ip *out, size_t room)
{
	struct ares_addrttl a4[MP_DNS_ANSWERS_MAX];
	struct ares_addr6ttl a6[MP_DNS_ANSWERS_MAX];
	int n = (int)(room < MP_DNS_ANSWERS_MAX ? room : MP_DNS_ANSWERS_MAX);
	int rc;

	if (n == 0)
		return 0;
	if (qtype == ns_t_a)
		rc = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
	else
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	if (rc != ARES_SUCCESS)
		return -rc;
	for (int i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].family = qtype == ns_t_a ? AF_INET : AF_INET6;
		if (qtype == ns_t_a)
			out[i].u.v4 = a4[i].ipaddr;
		else
			memcpy(&out[i].u.v6, &a6[i].ip6addr, 16);
	}
	return n;
}

static int
answer_addrs(struct mp_dns_req *req, int qtype, const unsigned char *abuf,
	     int alen)
{
	int n;

	if (req->ips == NULL)
		req->ips = mp_xcalloc(MP_DNS_ANSWERS_MAX, sizeof(*req->ips));
	n = parse_addrs(abuf, alen, qtype, req->ips + req->n,
			MP_DNS_ANSWERS_MAX - req->n);
	if (n < 0)
		return -n;
	req->n += (size_t)n;
	return ARES_SUCCESS;
}

/* Joins the strings of one TXT record that starts at t; returns the
 * record after it. */
static const struct ares_txt_ext *
txt_record(const struct ares_txt_ext *t, struct mp_str *out)
{
	struct mp_buf buf = {0};

	do {
		mp_buf_append(&buf, t->txt, t->length);
		t = t->next;
	} while (t != NULL && !t->record_start);
	out->len = buf.len;
	out->p = buf.data != NULL ? mp_buf_steal(&buf) : mp_xstrdup("");
	return t;
}

static int
answer_txt(struct mp_dns_req *req, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *list = NULL;
	const struct ares_txt_ext *t;
	int rc = ares_parse_txt_reply_ext(abuf, alen, &list);

	if (rc != ARES_SUCCESS)
		return rc;
	req->txt = mp_xcalloc(MP_DNS_ANSWERS_MAX, sizeof(*req->txt));
	for (t = list; t != NULL && req->n < MP_DNS_ANSWERS_MAX;)
		t = txt_record(t, &req->txt[req->n++]);
	ares_free_data(list);
	return req->n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

static int
answer_mx(struct mp_dns_req *req, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *list = NULL;
	int rc = ares_parse_mx_reply(abuf, alen, &list);

	if (rc != ARES_SUCCESS)
		return rc;
	req->mx = mp_xcalloc(MP_DNS_ANSWERS_MAX, sizeof(*req->mx));
	for (struct ares_mx_reply *m = list;
	     m != NULL && req->n < MP_DNS_ANSWERS_MAX; m = m->next) {
		req->mx[req->n].preference = m->priority;
		req->mx[req->n++].host = mp_xstrdup(m->host);
	}
	ares_free_data(list);
	return req->n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

/* Length of the encoded name at p, or -1 when it runs off the reply. */
static long
skip_name(const unsigned char *p, const unsigned char *abuf, int alen)
{
	char *name = NULL;
	long len = 0;

	if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
		return -1;
	ares_free_string(name);
	return len;
}

/* Keeps the PTR name at rdata; rDNS keeps only names it can look up. */
static void
ptr_take(struct mp_dns_req *req, const unsigned char *rdata,
	 const unsigned char *abuf, int alen)
{
	char *name = NULL;
	long len = 0;
	size_t max = req->kind == DNS_KIND_RDNS ? MP_DNS_RDNS_NAMES_MAX
						: MP_DNS_ANSWERS_MAX;

	if (req->n >= max ||
	    ares_expand_name(rdata, abuf, alen, &name, &len) != ARES_SUCCESS)
		return;
	if (req->kind != DNS_KIND_RDNS || name_problem(name) == NULL) {
		if (req->names == NULL)
			req->names = mp_xcalloc(max + 1, sizeof(*req->names));
		req->names[req->n++] = mp_xstrdup(name);
	}
	ares_free_string(name);
}

/* Reads the PTR records of the answer section. c-ares's own parser would
 * want a hostent; walking the records keeps every name, in order. */
static int
answer_ptr(struct mp_dns_req *req, const unsigned char *abuf, int alen)
{
	const unsigned char *p = abuf + HFIXEDSZ, *end = abuf + alen;
	unsigned qd, an;
	long len;

	if (alen < HFIXEDSZ)
		return ARES_EBADRESP;
	qd = (unsigned)abuf[4] << 8 | abuf[5];
	an = (unsigned)abuf[6] << 8 | abuf[7];
	for (unsigned i = 0; i < qd; i++) {
		if ((len = skip_name(p, abuf, alen)) < 0 ||
		    end - (p + len) < QFIXEDSZ)
			return ARES_EBADRESP;
		p += len + QFIXEDSZ;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, rdlen;

		if ((len = skip_name(p, abuf, alen)) < 0 ||
		    end - (p + len) < RRFIXEDSZ)
			return ARES_EBADRESP;
		p += len;
		type = (unsigned)p[0] << 8 | p[1];
		rdlen = (unsigned)p[8] << 8 | p[9];
		p += RRFIXEDSZ;
		if (end - p < (long)rdlen)
			return ARES_EBADRESP;
		if (type == ns_t_ptr)
			ptr_take(req, p, abuf, alen);
		p += rdlen;
	}
	return req->n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

/* ---- forward-confirmed reverse DNS -------------------------------------- */

/* The PTR answer came: look each name up forward. */
static void
rdns_ptr_done(struct mp_dns_req *req, int rc)
{
	int qtype = req->target.family == AF_INET ? ns_t_a : ns_t_aaaa;

	if (rc != ARES_SUCCESS) {
		req_fail_ares(req, rc);
		return;
	}
	for (size_t i = 0; i < req->n; i++) {
		if (!mp_dns_send(req, req->names[i], qtype, (int)i + 1))
			req->forward_failed = true;
	}
}

/* The addresses of PTR name number tag came. */
static void
rdns_forward_done(struct mp_dns_req *req, int qtype, int tag, int rc,
		  const unsigned char *abuf, int alen)
{
	struct mp_dns_ip ips[MP_DNS_ANSWERS_MAX];
	size_t i = (size_t)tag - 1;
	int n = 0;

	if (rc == ARES_SUCCESS)
		n = parse_addrs(abuf, alen, qtype, ips, MP_DNS_ANSWERS_MAX);
	if (n < 0)
		rc = -n;
	if (status_from_ares(rc) == MP_DNS_TEMPFAIL)
		req->forward_failed = true;
	for (int k = 0; k < n; k++) {
		if (ip_equal(&ips[k], &req->target) && i < req->confirmed)
			req->confirmed = i;
	}
}

/* ---- answers and results ----------------------------------------------- */

static int
answer_parse(struct mp_dns_req *req, int qtype, const unsigned char *abuf,
	     int alen)
{
	switch (req->kind) {
	case DNS_KIND_A:
		return answer_addrs(req, qtype, abuf, alen);
	case DNS_KIND_TXT:
		return answer_txt(req, abuf, alen);
	case DNS_KIND_MX:
		return answer_mx(req, abuf, alen);
	default:
		return answer_ptr(req, abuf, alen);
	}
}

void
mp_dns_answer(struct mp_dns_req *req, int qtype, int tag, int status,
	      const unsigned char *abuf, int alen)
{
	if (req->kind == DNS_KIND_RDNS && tag > 0) {
		rdns_forward_done(req, qtype, tag, status, abuf, alen);
		return;
	}
	if (status == ARES_SUCCESS)
		status = answer_parse(req, qtype, abuf, alen);
	if (req->kind == DNS_KIND_RDNS)
		rdns_ptr_done(req, status);
	else if (status != ARES_SUCCESS)
		req_fail_ares(req, status);
}

/* By preference, stable: insertion sort over at most 64. */
static void
mx_sort(struct mp_dns_mx *mx, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct mp_dns_mx m = mx[i];
		size_t j = i;

		for (; j > 0 && mx[j - 1].preference > m.preference; j--)
			mx[j] = mx[j - 1];
		mx[j] = m;
	}
}

/* IPv4 before IPv6, each in answer order, whichever came first. */
static void
ips_sort(struct mp_dns_ip *ips, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct mp_dns_ip ip = ips[i];
		size_t j = i;

		for (; j > 0 && ips[j - 1].family > ip.family; j--)
			ips[j] = ips[j - 1];
		ips[j] = ip;
	}
}

static void
rdns_result(struct mp_dns_req *req, struct mp_dns_result *res)
{
	if (req->confirmed != SIZE_MAX) {
		res->status = MP_DNS_OK;
		res->name = req->names[req->confirmed];
	} else if (req->failed) {
		res->status = req->fail_status;
		res->error = req->fail_error;
	} else if (req->forward_failed) {
		res->status = MP_DNS_TEMPFAIL;
		res->error = "a forward lookup of a PTR name failed";
	} else {
		res->status = MP_DNS_NODATA;
		res->error = req->n > 0 ? "no PTR name resolves back to the "
					  "address"
					: "no usable PTR name";
	}
}

void
mp_dns_deliver(struct mp_dns_req *req)
{
	struct mp_dns_result res = {
		.n = req->n,
		.ips = req->ips,
		.txt = req->txt,
		.mx = req->mx,
		.names = (const char *const *)req->names,
	};

	if (req->kind == DNS_KIND_RDNS) {
		rdns_result(req, &res);
	} else if (req->n == 0) {
		res.status = req->failed ? req->fail_status : MP_DNS_NODATA;
		res.error = req->failed ? req->fail_error
					: "no records of that type";
	}
	if (req->kind == DNS_KIND_MX)
		mx_sort(req->mx, req->n);
	if (req->kind == DNS_KIND_A)
		ips_sort(req->ips, req->n);
	req->cb(&res, req->ctx);
}

void
mp_dns_result_clear(struct mp_dns_req *req)
{
	for (size_t i = 0; req->txt != NULL && i < req->n; i++)
		free((char *)req->txt[i].p);
	for (size_t i = 0; req->mx != NULL && i < req->n; i++)
		free((char *)req->mx[i].host);
	for (size_t i = 0; req->names != NULL && i < req->n; i++)
		free(req->names[i]);
	MP_FREE(req->ips);
	MP_FREE(req->txt);
	MP_FREE(req->mx);
	MP_FREE(req->names);
	req->n = 0;
}

/* ---- lookups ----------------------------------------------------------- */

struct mp_dns_req *
mp_dns_lookup_a(struct mp_dns *dns, const char *name, int family,
		mp_dns_done_fn *cb, void *ctx)
{
	struct mp_dns_req *req = mp_dns_req_new(dns, DNS_KIND_A, cb, ctx);

	assert(family == AF_UNSPEC || family == AF_INET || family == AF_INET6);
	if (!req_can_send(req, name, family == AF_UNSPEC ? 2 : 1))
		return mp_dns_req_started(req);
	if (family != AF_INET6)
		req_send(req, name, ns_t_a, 0);
	if (family != AF_INET)
		req_send(req, name, ns_t_aaaa, 0);
	return mp_dns_req_started(req);
}

static struct mp_dns_req *
lookup_one(struct mp_dns *dns, enum dns_kind kind, const char *name, int qtype,
	   mp_dns_done_fn *cb, void *ctx)
{
	struct mp_dns_req *req = mp_dns_req_new(dns, kind, cb, ctx);

	if (req_can_send(req, name, 1))
		req_send(req, name, qtype, 0);
	return mp_dns_req_started(req);
}

struct mp_dns_req *
mp_dns_lookup_txt(struct mp_dns *dns, const char *name, mp_dns_done_fn *cb,
		  void *ctx)
{
	return lookup_one(dns, DNS_KIND_TXT, name, ns_t_txt, cb, ctx);
}

struct mp_dns_req *
mp_dns_lookup_mx(struct mp_dns *dns, const char *name, mp_dns_done_fn *cb,
		 void *ctx)
{
	return lookup_one(dns, DNS_KIND_MX, name, ns_t_mx, cb, ctx);
}

/* A PTR query for the address of sa on behalf of a request of kind. */
static struct mp_dns_req *
lookup_reverse(struct mp_dns *dns, enum dns_kind kind,
	       const struct sockaddr *sa, mp_dns_done_fn *cb, void *ctx)
{
	struct mp_dns_req *req = mp_dns_req_new(dns, kind, cb, ctx);
	char name[MP_DNS_REVERSE_MAX + 16];

	if (!ip_from_sockaddr(sa, &req->target)) {
		req_fail(req, MP_DNS_ERROR, "not an IPv4 or IPv6 address");
		return mp_dns_req_started(req);
	}
	ptr_name(&req->target, name, sizeof(name));
	if (req_can_send(req, name, 1))
		req_send(req, name, ns_t_ptr, 0);
	return mp_dns_req_started(req);
}

struct mp_dns_req *
mp_dns_lookup_ptr(struct mp_dns *dns, const struct sockaddr *sa,
		  mp_dns_done_fn *cb, void *ctx)
{
	return lookup_reverse(dns, DNS_KIND_PTR, sa, cb, ctx);
}

struct mp_dns_req *
mp_dns_rdns(struct mp_dns *dns, const struct sockaddr *sa, mp_dns_done_fn *cb,
	    void *ctx)
{
	return lookup_reverse(dns, DNS_KIND_RDNS, sa, cb, ctx);
}
