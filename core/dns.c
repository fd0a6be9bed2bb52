/* dns.c - the resolver: c-ares channels driven by the event loop.
 *
 * c-ares tells us which sockets it wants watched (the socket state
 * callback); each gets an ev_io that hands readiness back through
 * ares_process_fd(), and one ev_timer per channel wakes c-ares when its
 * next query times out. Nothing here blocks: c-ares only reads
 * /etc/resolv.conf, when a channel is made.
 *
 * A channel's servers, timeout and tries are fixed when it is made, so a
 * reload makes a new channel for new queries and lets the old one finish
 * what it has in flight ("draining") before it is destroyed.
 *
 * c-ares has no way to cancel one query. A cancelled request stays until
 * its queries end (answer, timeout or mp_dns_free), with its callback
 * gone; the cap on queries in flight counts it meanwhile, since c-ares
 * still waits for it. */
#include "config.h"

#include <arpa/nameser.h>
#include <ares.h>
#include <assert.h>
#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "dns-private.h"

struct dns_channel;

/* A socket c-ares asked us to watch. */
struct dns_sock {
	ev_io io;
	struct dns_channel *ch;
	struct dns_sock *next;
};

struct dns_channel {
	struct mp_dns *dns;
	ares_channel ares;
	struct dns_channel *next; /* on the draining list */
	struct dns_sock *socks;
	ev_timer timer;
	unsigned queries; /* in flight on this channel */
	int busy;         /* c-ares calls of this channel on the stack */
	bool draining;
};

/* One query in flight: what its answer belongs to. */
struct dns_sub {
	struct mp_dns_req *req;
	struct dns_channel *ch;
	int qtype;
	int tag;
};

struct mp_dns {
	struct ev_loop *loop;
	struct dns_channel *current; /* new queries go here */
	struct dns_channel *draining;
	size_t inflight;
	size_t max_queries;
	struct mp_dns_req *due; /* requests to deliver, and their timer */
	struct mp_dns_req *due_tail;
	ev_timer due_timer;
	unsigned due_round; /* requests pushed now wait for the next round */
	bool closing;
};

/* ---- the c-ares library ------------------------------------------------ */

/* ares_library_init() is not thread-safe and must be balanced by
 * ares_library_cleanup(); resolvers may be made on any thread. */
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned lib_users;

static bool
lib_acquire(char **error_r)
{
	int rc = ARES_SUCCESS;

	pthread_mutex_lock(&lib_lock);
	if (lib_users == 0)
		rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc == ARES_SUCCESS)
		lib_users++;
	pthread_mutex_unlock(&lib_lock);
	if (rc != ARES_SUCCESS)
		*error_r = mp_xasprintf("dns: cannot initialise c-ares: %s",
					ares_strerror(rc));
	return rc == ARES_SUCCESS;
}

static void
lib_release(void)
{
	pthread_mutex_lock(&lib_lock);
	assert(lib_users > 0);
	if (--lib_users == 0)
		ares_library_cleanup();
	pthread_mutex_unlock(&lib_lock);
}

/* ---- sockets and the timer --------------------------------------------- */

static void channel_destroy(struct dns_channel *ch);

static void
channel_arm_timer(struct dns_channel *ch)
{
	struct ev_loop *loop = ch->dns->loop;
	struct timeval tv;
	struct timeval *next = ares_timeout(ch->ares, NULL, &tv);

	ev_timer_stop(loop, &ch->timer);
	if (next == NULL)
		return;
	ev_timer_set(&ch->timer,
		     (double)next->tv_sec + (double)next->tv_usec / 1e6, 0.0);
	ev_timer_start(loop, &ch->timer);
}

static void
draining_unlink(struct mp_dns *dns, struct dns_channel *ch)
{
	struct dns_channel **p = &dns->draining;

	while (*p != ch)
		p = &(*p)->next;
	*p = ch->next;
}

/* After c-ares ran: a draining channel with nothing left goes, any other
 * waits for its next timeout. */
static void
channel_settle(struct dns_channel *ch)
{
	if (ch->busy > 0)
		return;
	if (ch->draining && ch->queries == 0) {
		draining_unlink(ch->dns, ch);
		channel_destroy(ch);
		return;
	}
	channel_arm_timer(ch);
}

/* Lets c-ares read, write or time out; the watcher that called may be
 * gone afterwards. */
static void
channel_process(struct dns_channel *ch, ares_socket_t rfd, ares_socket_t wfd)
{
	ch->busy++;
	ares_process_fd(ch->ares, rfd, wfd);
	ch->busy--;
	channel_settle(ch);
}

static void
sock_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_sock *s = w->data;
	ares_socket_t fd = w->fd;

	channel_process(s->ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
			(revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	channel_process(w->data, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static struct dns_sock **
sock_find(struct dns_channel *ch, ares_socket_t fd)
{
	struct dns_sock **p = &ch->socks;

	while (*p != NULL && (*p)->io.fd != fd)
		p = &(*p)->next;
	return p;
}

static void
sock_remove(struct dns_channel *ch, struct dns_sock **p)
{
	struct dns_sock *s = *p;

	ev_io_stop(ch->dns->loop, &s->io);
	*p = s->next;
	free(s);
}

/* c-ares opens, closes or changes interest in a socket. */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_channel *ch = data;
	struct dns_sock **p = sock_find(ch, fd);
	struct dns_sock *s = *p;
	int events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	if (events == 0) {
		if (s != NULL)
			sock_remove(ch, p);
		return;
	}
	if (s == NULL) {
		s = mp_xcalloc(1, sizeof(*s));
		s->ch = ch;
		s->next = ch->socks;
		ch->socks = s;
		ev_io_init(&s->io, sock_cb, fd, events);
		s->io.data = s;
	} else {
		ev_io_stop(ch->dns->loop, &s->io);
		ev_io_set(&s->io, fd, events);
	}
	ev_io_start(ch->dns->loop, &s->io);
}

/* ---- channels ---------------------------------------------------------- */

static bool
server_node(const char *text, struct ares_addr_port_node *node)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const struct sockaddr_in *sin = (const void *)&ss;
	const struct sockaddr_in6 *sin6 = (const void *)&ss;

	if (!mp_addr_parse(text, false, &ss, &len))
		return false;
	node->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		node->addr.addr4 = sin->sin_addr;
		node->udp_port = ntohs(sin->sin_port);
	} else {
		memcpy(&node->addr.addr6, &sin6->sin6_addr, 16);
		node->udp_port = ntohs(sin6->sin6_port);
	}
	node->tcp_port = node->udp_port;
	return true;
}

static bool
channel_set_servers(struct dns_channel *ch, const struct mp_strlist *servers,
		    char **error_r)
{
	struct ares_addr_port_node *nodes;
	int rc;

	if (servers->n == 0)
		return true;
	nodes = mp_xcalloc(servers->n, sizeof(*nodes));
	for (size_t i = 0; i < servers->n; i++) {
		if (!server_node(servers->v[i], &nodes[i])) {
			*error_r = mp_xasprintf("dns: server '%s' is not "
						"IP:port or [IPv6]:port",
						servers->v[i]);
			free(nodes);
			return false;
		}
		nodes[i].next = i + 1 < servers->n ? &nodes[i + 1] : NULL;
	}
	rc = ares_set_servers_ports(ch->ares, nodes);
	free(nodes);
	if (rc != ARES_SUCCESS)
		*error_r = mp_xasprintf("dns: cannot set the servers: %s",
					ares_strerror(rc));
	return rc == ARES_SUCCESS;
}

static struct dns_channel *
channel_new(struct mp_dns *dns, const struct mp_cfg_dns *cfg, char **error_r)
{
	struct dns_channel *ch = mp_xcalloc(1, sizeof(*ch));
	struct ares_options o;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		   ARES_OPT_SOCK_STATE_CB;
	int rc;

	/* No EDNS: c-ares 1.18 turns it off for the whole channel (XOR, so
	 * the next SERVFAIL turns it on again) whenever a server answers
	 * SERVFAIL, which DNSBLs do routinely. Answers too big for 512 bytes
	 * of UDP come truncated, and c-ares asks again over TCP. */
	memset(&o, 0, sizeof(o));
	o.flags = 0;
	o.timeout = (int)cfg->timeout;
	o.tries = (int)cfg->tries;
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = ch;
	ch->dns = dns;
	ev_init(&ch->timer, timer_cb);
	ch->timer.data = ch;
	rc = ares_init_options(&ch->ares, &o, mask);
	if (rc != ARES_SUCCESS) {
		*error_r = mp_xasprintf("dns: cannot start the resolver: %s",
					ares_strerror(rc));
		free(ch);
		return NULL;
	}
	if (!channel_set_servers(ch, &cfg->servers, error_r)) {
		ares_destroy(ch->ares);
		free(ch);
		return NULL;
	}
	return ch;
}

/* Ends every query of the channel (their requests see
 * ARES_EDESTRUCTION) and frees it. */
static void
channel_destroy(struct dns_channel *ch)
{
	struct ev_loop *loop = ch->dns->loop;

	ch->busy++;
	ares_destroy(ch->ares);
	while (ch->socks != NULL)
		sock_remove(ch, &ch->socks);
	ev_timer_stop(loop, &ch->timer);
	free(ch);
}

/* ---- requests ---------------------------------------------------------- */

static void
req_free(struct mp_dns_req *req)
{
	mp_dns_result_clear(req);
	free(req);
}

/* The last query of req ended. */
static void
req_end(struct mp_dns_req *req)
{
	if (!req->cancelled && !req->dns->closing)
		mp_dns_deliver(req);
	req_free(req);
}

/* Delivers the requests due. Each is taken off the list before its
 * callback runs, which may cancel others still on it; those that
 * callbacks add wait for the next round, so a callback that keeps
 * starting bad lookups cannot hold the loop here. */
static void
due_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp_dns *dns = w->data;
	unsigned round = dns->due_round++;
	struct mp_dns_req *req;

	while ((req = dns->due) != NULL && req->due_round == round) {
		dns->due = req->due_next;
		if (dns->due == NULL)
			dns->due_tail = NULL;
		req_end(req);
	}
}

static void
due_push(struct mp_dns_req *req)
{
	struct mp_dns *dns = req->dns;

	req->due_next = NULL;
	req->due_round = dns->due_round;
	if (dns->due_tail != NULL)
		dns->due_tail->due_next = req;
	else
		dns->due = req;
	dns->due_tail = req;
	if (!ev_is_active(&dns->due_timer)) {
		ev_timer_set(&dns->due_timer, 0.0, 0.0);
		ev_timer_start(dns->loop, &dns->due_timer);
	}
}

static void
due_remove(struct mp_dns_req *req)
{
	struct mp_dns *dns = req->dns;
	struct mp_dns_req **p = &dns->due;
	struct mp_dns_req *prev = NULL;

	while (*p != req) {
		prev = *p;
		p = &(*p)->due_next;
	}
	*p = req->due_next;
	if (dns->due_tail == req)
		dns->due_tail = prev;
}

struct mp_dns_req *
mp_dns_req_new(struct mp_dns *dns, enum dns_kind kind, mp_dns_done_fn *cb,
	       void *ctx)
{
	struct mp_dns_req *req = mp_xcalloc(1, sizeof(*req));

	assert(!dns->closing && cb != NULL);
	req->dns = dns;
	req->kind = kind;
	req->cb = cb;
	req->ctx = ctx;
	req->starting = true;
	req->confirmed = SIZE_MAX;
	return req;
}

struct mp_dns_req *
mp_dns_req_started(struct mp_dns_req *req)
{
	req->starting = false;
	if (req->subs == 0)
		due_push(req);
	return req;
}

void
mp_dns_cancel(struct mp_dns_req **reqp)
{
	struct mp_dns_req *req = *reqp;

	*reqp = NULL;
	if (req == NULL)
		return;
	assert(!req->cancelled && !req->starting);
	req->cancelled = true;
	req->cb = NULL;
	req->ctx = NULL;
	if (req->subs > 0)
		return; /* freed when its last query ends */
	due_remove(req);
	req_free(req);
}

/* ---- queries ----------------------------------------------------------- */

static void
sub_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_sub *sub = arg;
	struct mp_dns_req *req = sub->req;
	struct mp_dns *dns = req->dns;
	int qtype = sub->qtype;
	int tag = sub->tag;

	sub->ch->queries--;
	dns->inflight--;
	free(sub);
	if (!req->cancelled && !dns->closing)
		mp_dns_answer(req, qtype, tag, status,
			      status == ARES_SUCCESS ? abuf : NULL, alen);
	if (--req->subs == 0 && !req->starting)
		req_end(req);
}

bool
mp_dns_room(const struct mp_dns *dns, unsigned n)
{
	return !dns->closing && dns->inflight + n <= dns->max_queries;
}

bool
mp_dns_send(struct mp_dns_req *req, const char *name, int qtype, int tag)
{
	struct mp_dns *dns = req->dns;
	struct dns_channel *ch = dns->current;
	struct dns_sub *sub;

	if (!mp_dns_room(dns, 1))
		return false;
	sub = mp_xmalloc(sizeof(*sub));
	sub->req = req;
	sub->ch = ch;
	sub->qtype = qtype;
	sub->tag = tag;
	req->subs++;
	ch->queries++;
	dns->inflight++;
	/* c-ares may answer at once (no server, a name it cannot encode):
	 * sub_cb runs inside this call. */
	ch->busy++;
	ares_query(ch->ares, name, ns_c_in, qtype, sub_cb, sub);
	ch->busy--;
	channel_settle(ch);
	return true;
}

/* ---- the resolver ------------------------------------------------------ */

struct mp_dns *
mp_dns_new(struct ev_loop *loop, const struct mp_cfg_dns *cfg, char **error_r)
{
	struct mp_dns *dns;

	if (!lib_acquire(error_r))
		return NULL;
	dns = mp_xcalloc(1, sizeof(*dns));
	dns->loop = loop;
	dns->max_queries = (size_t)cfg->max_queries;
	ev_init(&dns->due_timer, due_cb);
	dns->due_timer.data = dns;
	dns->current = channel_new(dns, cfg, error_r);
	if (dns->current == NULL) {
		free(dns);
		lib_release();
		return NULL;
	}
	return dns;
}

bool
mp_dns_reconfigure(struct mp_dns *dns, const struct mp_cfg_dns *cfg,
		   char **error_r)
{
	struct dns_channel *ch = channel_new(dns, cfg, error_r);
	struct dns_channel *old = dns->current;

	if (ch == NULL)
		return false;
	dns->current = ch;
	dns->max_queries = (size_t)cfg->max_queries;
	old->draining = true;
	old->next = dns->draining;
	dns->draining = old;
	channel_settle(old);
	return true;
}

void
mp_dns_free(struct mp_dns **dnsp)
{
	struct mp_dns *dns = *dnsp;
	struct mp_dns_req *req;

	*dnsp = NULL;
	if (dns == NULL)
		return;
	assert(dns->current->busy == 0);
	dns->closing = true;
	ev_timer_stop(dns->loop, &dns->due_timer);
	while ((req = dns->due) != NULL) {
		dns->due = req->due_next;
		req_free(req);
	}
	channel_destroy(dns->current);
	while (dns->draining != NULL) {
		struct dns_channel *ch = dns->draining;

		dns->draining = ch->next;
		channel_destroy(ch);
	}
	assert(dns->inflight == 0);
	free(dns);
	lib_release();
}

size_t
mp_dns_pending(const struct mp_dns *dns)
{
	return dns->inflight;
}
