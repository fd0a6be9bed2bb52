/* test-dns.c - unit tests of the resolver, the dns config section and the
 * Lua `moonpost.dns` module, against a tiny authoritative DNS server that
 * runs on the same loop (UDP on 127.0.0.1, an ephemeral port): no test
 * leaves the machine. */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ev.h>
#include <glib.h>
#include <lauxlib.h>
#include <lua.h>

#include <moonpost/config.h>
#include <moonpost/dns.h>
#include <moonpost/log.h>
#include <moonpost/lua.h>

/* Only turns a hang into a failure; no test measures time with it. */
#define GUARD_SECONDS 30.0

/* ---- the responder ---------------------------------------------------- */

/* Kinds of table entries beyond record types: the whole name answers so. */
enum {
	T_SERVFAIL = -1,
	T_REFUSED = -2,
	T_SILENT = -3, /* never answers */
	T_MANY = -4,   /* 70 A records, more than a lookup keeps */
};

struct rr {
	const char *name;
	int type;
	const char *data; /* address, name, or TXT strings split by '|' */
	int pref;         /* MX */
};

static const struct rr zone_main[] = {
	{"host.test", ns_t_a, "192.0.2.1"},
	{"host.test", ns_t_aaaa, "2001:db8::1"},
	{"v4only.test", ns_t_a, "192.0.2.7"},
	{"txtonly.test", ns_t_txt, "just text"},
	{"txt.test", ns_t_txt, "v=spf1 -all"},
	{"txt.test", ns_t_txt, "hello |world"},
	{"mx.test", ns_t_mx, "b.mx.test", 20},
	{"mx.test", ns_t_mx, "a.mx.test", 10},
	{"mx.test", ns_t_mx, "c.mx.test", 20},
	{"nullmx.test", ns_t_mx, "", 0},
	{"many.test", T_MANY},
	{"servfail.test", T_SERVFAIL},
	{"refused.test", T_REFUSED},
	{"silent.test", T_SILENT},
	{"which.test", ns_t_txt, "one"},
	/* rDNS: 192.0.2.1 -> host.test, confirmed by its A record */
	{"1.2.0.192.in-addr.arpa", ns_t_ptr, "host.test"},
	/* 192.0.2.2 -> liar.test, whose A record is another address */
	{"2.2.0.192.in-addr.arpa", ns_t_ptr, "liar.test"},
	{"liar.test", ns_t_a, "192.0.2.200"},
	/* 192.0.2.4 -> two names; the second confirms */
	{"4.2.0.192.in-addr.arpa", ns_t_ptr, "liar.test"},
	{"4.2.0.192.in-addr.arpa", ns_t_ptr, "four.test"},
	{"four.test", ns_t_a, "192.0.2.99"},
	{"four.test", ns_t_a, "192.0.2.4"},
	/* 192.0.2.5 -> a name whose server never answers */
	{"5.2.0.192.in-addr.arpa", ns_t_ptr, "silent.test"},
	/* 192.0.2.6 -> a name that cannot be asked for */
	{"6.2.0.192.in-addr.arpa", ns_t_ptr, "bad_name\\032here.test"},
	/* 192.0.2.3: no PTR (NXDOMAIN) */
	{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	 "ip6.arpa",
	 ns_t_ptr, "host.test"},
	/* blocklist entries for the dnsbl.lua example */
	{"99.2.0.192.bl.test", ns_t_a, "127.0.0.2"},
	{"99.2.0.192.bl.test", ns_t_txt, "listed"},
	{"97.2.0.192.bl.test", T_SERVFAIL},
	{"96.2.0.192.bl.test", ns_t_a, "127.255.255.254"},
	{"9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	 "bl.test",
	 ns_t_a, "127.0.0.4"},
};

static const struct rr zone_other[] = {
	{"which.test", ns_t_txt, "two"},
};

struct tcp_client;

struct responder {
	struct ev_loop *loop;
	int fd;
	int tcp_fd;
	int port;
	ev_io io;
	ev_io tcp_io;
	struct tcp_client *clients;
	const struct rr *table;
	size_t n;
	GString *seen; /* "name/type\n" per query received */
	int queries;
};

static void
put16(GByteArray *b, unsigned v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	g_byte_array_append(b, x, 2);
}

static void
put_name(GByteArray *b, const char *name)
{
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t len = dot != NULL ? (size_t)(dot - name) : strlen(name);
		uint8_t l = (uint8_t)len;

		g_byte_array_append(b, &l, 1);
		g_byte_array_append(b, (const uint8_t *)name, (guint)len);
		name += len + (dot != NULL);
	}
	g_byte_array_append(b, (const uint8_t *)"", 1);
}

static void
put_txt(GByteArray *b, const char *data)
{
	gchar **parts = g_strsplit(data, "|", -1);

	for (size_t i = 0; parts[i] != NULL; i++) {
		uint8_t l = (uint8_t)strlen(parts[i]);

		g_byte_array_append(b, &l, 1);
		g_byte_array_append(b, (const uint8_t *)parts[i], l);
	}
	g_strfreev(parts);
}

static void
put_rdata(GByteArray *b, int type, const char *data, int pref)
{
	uint8_t addr[16];

	if (type == ns_t_a || type == ns_t_aaaa) {
		g_assert_cmpint(inet_pton(type == ns_t_a ? AF_INET : AF_INET6,
					  data, addr),
				==, 1);
		g_byte_array_append(b, addr, type == ns_t_a ? 4 : 16);
	} else if (type == ns_t_txt) {
		put_txt(b, data);
	} else {
		if (type == ns_t_mx)
			put16(b, (unsigned)pref);
		put_name(b, data);
	}
}

/* One answer record for the question (a pointer to its name). */
static void
put_rr(GByteArray *b, int type, const char *data, int pref)
{
	GByteArray *rd = g_byte_array_new();

	put_rdata(rd, type, data, pref);
	put16(b, 0xc00c);
	put16(b, (unsigned)type);
	put16(b, ns_c_in);
	put16(b, 0);
	put16(b, 300);
	put16(b, rd->len);
	g_byte_array_append(b, rd->data, rd->len);
	g_byte_array_unref(rd);
}

/* Reads the question; false on junk. */
static bool
parse_question(const uint8_t *q, size_t len, char *name, size_t size,
	       int *qtype, size_t *qend)
{
	size_t p = 12, n = 0;

	while (p < len && q[p] != 0) {
		size_t l = q[p++];

		if (l > 63 || p + l > len || n + l + 2 > size)
			return false;
		if (n > 0)
			name[n++] = '.';
		for (size_t i = 0; i < l; i++)
			name[n++] = g_ascii_tolower((char)q[p + i]);
		p += l;
	}
	if (p + 5 > len)
		return false;
	name[n] = '\0';
	p++;
	*qtype = q[p] << 8 | q[p + 1];
	*qend = p + 4;
	return true;
}

/* The answers for name/qtype into b; returns the rcode, or -1 to stay
 * silent. */
static int
lookup(struct responder *r, const char *name, int qtype, GByteArray *b,
       unsigned *count)
{
	bool exists = false;

	for (size_t i = 0; i < r->n; i++) {
		const struct rr *e = &r->table[i];

		if (strcasecmp(e->name, name) != 0)
			continue;
		exists = true;
		if (e->type == T_SERVFAIL)
			return ns_r_servfail;
		if (e->type == T_REFUSED)
			return ns_r_refused;
		if (e->type == T_SILENT)
			return -1;
		for (int k = 1; e->type == T_MANY && qtype == ns_t_a && k <= 70;
		     k++) {
			char ip[32];

			snprintf(ip, sizeof(ip), "10.0.0.%d", k);
			put_rr(b, ns_t_a, ip, 0);
			(*count)++;
		}
		if (e->type == qtype) {
			put_rr(b, qtype, e->data, e->pref);
			(*count)++;
		}
	}
	return exists ? ns_r_noerror : ns_r_nxdomain;
}

/* The reply to the query q, or NULL to stay silent. Over UDP a reply
 * longer than 512 bytes is cut to its question with TC set, as a server
 * without EDNS does; the client asks again over TCP. */
static GByteArray *
reply_to(struct responder *r, const uint8_t *q, size_t len, bool tcp)
{
	char name[256];
	int qtype, rcode;
	size_t qend;
	unsigned count = 0;
	GByteArray *answers = g_byte_array_new();
	GByteArray *out = NULL;
	bool tc;

	r->queries++;
	if (len < 12 ||
	    !parse_question(q, len, name, sizeof(name), &qtype, &qend))
		goto done;
	g_string_append_printf(r->seen, "%s/%d%s\n", name, qtype,
			       tcp ? "/tcp" : "");
	rcode = lookup(r, name, qtype, answers, &count);
	if (rcode < 0)
		goto done;
	tc = !tcp && qend + answers->len > 512;
	out = g_byte_array_new();
	g_byte_array_append(out, q, 2);
	put16(out, 0x8000 | 0x0400 | (tc ? 0x0200 : 0) | (q[2] & 1) << 8 |
			   0x80 | (unsigned)rcode);
	put16(out, 1);
	put16(out, tc ? 0 : count);
	put16(out, 0);
	put16(out, 0);
	g_byte_array_append(out, q + 12, (guint)(qend - 12));
	if (!tc)
		g_byte_array_append(out, answers->data, answers->len);
done:
	g_byte_array_unref(answers);
	return out;
}

static void
udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct responder *r = w->data;
	uint8_t buf[4096];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	while ((n = recvfrom(r->fd, buf, sizeof(buf), 0,
			     (struct sockaddr *)&from, &fromlen)) >= 0) {
		GByteArray *out = reply_to(r, buf, (size_t)n, false);

		if (out != NULL) {
			sendto(r->fd, out->data, out->len, 0,
			       (struct sockaddr *)&from, fromlen);
			g_byte_array_unref(out);
		}
		fromlen = sizeof(from);
	}
	g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* A TCP client of the responder: length-prefixed queries in, replies
 * out (small enough for the socket buffer on loopback). */
struct tcp_client {
	struct responder *r;
	ev_io io;
	GByteArray *in;
	struct tcp_client *next;
};

static void
tcp_close(struct tcp_client *c)
{
	struct tcp_client **p = &c->r->clients;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	ev_ref(c->r->loop);
	ev_io_stop(c->r->loop, &c->io);
	close(c->io.fd);
	g_byte_array_unref(c->in);
	g_free(c);
}

static void
tcp_answer(struct tcp_client *c)
{
	while (c->in->len >= 2) {
		size_t len = (size_t)c->in->data[0] << 8 | c->in->data[1];
		GByteArray *out;

		if (c->in->len < 2 + len)
			return;
		out = reply_to(c->r, c->in->data + 2, len, true);
		if (out != NULL) {
			uint8_t pre[2] = {(uint8_t)(out->len >> 8),
					  (uint8_t)out->len};

			g_byte_array_prepend(out, pre, 2);
			g_assert_cmpint(send(c->io.fd, out->data, out->len,
					     MSG_NOSIGNAL),
					==, (ssize_t)out->len);
			g_byte_array_unref(out);
		}
		g_byte_array_remove_range(c->in, 0, (guint)(2 + len));
	}
}

static void
tcp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_client *c = w->data;
	uint8_t buf[4096];
	ssize_t n = recv(w->fd, buf, sizeof(buf), 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		tcp_close(c);
		return;
	}
	g_byte_array_append(c->in, buf, (guint)n);
	tcp_answer(c);
}

static void
tcp_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct responder *r = w->data;
	int fd = accept4(r->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct tcp_client *c;

	if (fd < 0)
		return;
	c = g_new0(struct tcp_client, 1);
	c->r = r;
	c->in = g_byte_array_new();
	c->next = r->clients;
	r->clients = c;
	ev_io_init(&c->io, tcp_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	ev_unref(loop);
}

/* Binds UDP and TCP sockets to one free port on 127.0.0.1. */
static void
responder_bind(struct responder *r)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t len = sizeof(sin);

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		r->tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		g_assert_cmpint(r->fd, >=, 0);
		g_assert_cmpint(r->tcp_fd, >=, 0);
		g_assert_cmpint(
			bind(r->fd, (struct sockaddr *)&sin, sizeof(sin)), ==,
			0);
		g_assert_cmpint(
			getsockname(r->fd, (struct sockaddr *)&sin, &len), ==,
			0);
		if (bind(r->tcp_fd, (struct sockaddr *)&sin, sizeof(sin)) ==
			    0 &&
		    listen(r->tcp_fd, 16) == 0) {
			r->port = ntohs(sin.sin_port);
			return;
		}
		close(r->fd);
		close(r->tcp_fd);
	}
	g_error("no free port for the responder");
}

static void
responder_start(struct responder *r, struct ev_loop *loop,
		const struct rr *table, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->table = table;
	r->n = n;
	r->seen = g_string_new(NULL);
	responder_bind(r);
	ev_io_init(&r->io, udp_cb, r->fd, EV_READ);
	r->io.data = r;
	ev_io_start(loop, &r->io);
	ev_io_init(&r->tcp_io, tcp_accept_cb, r->tcp_fd, EV_READ);
	r->tcp_io.data = r;
	ev_io_start(loop, &r->tcp_io);
	/* Only lookups keep the loop running. */
	ev_unref(loop);
	ev_unref(loop);
}

static void
responder_stop(struct responder *r)
{
	if (r->seen == NULL)
		return;
	while (r->clients != NULL)
		tcp_close(r->clients);
	ev_ref(r->loop);
	ev_ref(r->loop);
	ev_io_stop(r->loop, &r->io);
	ev_io_stop(r->loop, &r->tcp_io);
	close(r->fd);
	close(r->tcp_fd);
	g_string_free(r->seen, TRUE);
	r->seen = NULL;
}

/* How many queries for name/qtype the responder saw. */
static int
seen_count(const struct responder *r, const char *name, int qtype)
{
	char *needle = g_strdup_printf("%s/%d\n", name, qtype);
	int n = 0;

	for (const char *p = r->seen->str; (p = strstr(p, needle)) != NULL;
	     p += strlen(needle))
		n++;
	g_free(needle);
	return n;
}

/* ---- fixture ---------------------------------------------------------- */

struct fx {
	char *dir;
	char *log_path;
	int log_fd;
	struct ev_loop *loop;
	struct responder main;
	struct responder other;
	struct mp_cfg_dns cfg;
	struct mp_dns *dns;
	struct mp_cfg_lua lua_cfg;
	struct mp_lua *lua;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
set_server(struct fx *fx, int port)
{
	char *server = g_strdup_printf("127.0.0.1:%d", port);

	mp_strlist_free(&fx->cfg.servers);
	mp_strlist_add(&fx->cfg.servers, server);
	g_free(server);
}

static struct mp_dns *
dns_new(struct fx *fx)
{
	char *error = NULL;
	struct mp_dns *dns = mp_dns_new(fx->loop, &fx->cfg, &error);

	if (dns == NULL)
		g_error("mp_dns_new: %s", error);
	return dns;
}

static void
fx_setup(struct fx *fx, gconstpointer data)
{
	GError *error = NULL;

	memset(fx, 0, sizeof(*fx));
	fx->dir = g_dir_make_tmp("mp-dns-XXXXXX", &error);
	g_assert_no_error(error);
	fx->log_path = g_build_filename(fx->dir, "log", NULL);
	fx->log_fd = open(fx->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	g_assert_cmpint(fx->log_fd, >=, 0);
	mp_log_set_fd(fx->log_fd);
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	responder_start(&fx->main, fx->loop, zone_main, MP_NELEMS(zone_main));
	set_server(fx, fx->main.port);
	fx->cfg.timeout = 300;
	fx->cfg.tries = 1;
	fx->cfg.max_queries = 1000;
	fx->dns = dns_new(fx);
	fx->lua_cfg.memory = 8u << 20;
	fx->lua_cfg.memory_total = 64u << 20;
	fx->lua_cfg.instructions = 1000000;
	fx->lua_cfg.timeout = 20000;
}

static void
fx_teardown(struct fx *fx, gconstpointer data)
{
	mp_lua_unref(&fx->lua);
	mp_dns_free(&fx->dns);
	responder_stop(&fx->main);
	responder_stop(&fx->other);
	/* Nothing may be left on the loop: a watcher still active here is a
	 * leak that would fire into freed memory. */
	ev_run(fx->loop, 0);
	ev_loop_destroy(fx->loop);
	mp_strlist_free(&fx->cfg.servers);
	mp_strlist_free(&fx->lua_cfg.scripts);
	mp_log_set_fd(STDERR_FILENO);
	close(fx->log_fd);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_free(fx->log_path);
	g_free(fx->dir);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(bool *)w->data = true;
}

/* Runs the loop until *done (an int) reaches want. */
static void
run_until(struct fx *fx, const int *done, int want)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0.0);
	guard.data = &expired;
	ev_timer_start(fx->loop, &guard);
	while (*done < want && !expired)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
	g_assert_false(expired);
	g_assert_cmpint(*done, ==, want);
}

/* Runs the loop until no query is in flight. */
static void
run_until_idle(struct fx *fx)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, GUARD_SECONDS, 0.0);
	guard.data = &expired;
	ev_timer_start(fx->loop, &guard);
	while (mp_dns_pending(fx->dns) > 0 && !expired)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
	g_assert_false(expired);
	/* One more turn delivers what finished last. */
	ev_run(fx->loop, EVRUN_NOWAIT);
}

/* ---- results ---------------------------------------------------------- */

struct got {
	int calls;
	enum mp_dns_status status;
	char *error;
	char *text; /* the answers, joined by ',' */
	char *name; /* rdns */
	/* A lookup to start from the callback (re-entrancy). */
	struct mp_dns *chain_dns;
	struct got *chained;
	/* A request to cancel from the callback. */
	struct mp_dns_req **cancel;
};

static void
got_clear(struct got *g)
{
	g_free(g->error);
	g_free(g->text);
	g_free(g->name);
	memset(g, 0, sizeof(*g));
}

static void
append_item(GString *s, const struct mp_dns_result *res, size_t i)
{
	char ip[INET6_ADDRSTRLEN];

	if (s->len > 0)
		g_string_append_c(s, ',');
	if (res->ips != NULL) {
		inet_ntop(res->ips[i].family, &res->ips[i].u, ip, sizeof(ip));
		g_string_append(s, ip);
	} else if (res->txt != NULL) {
		g_string_append_len(s, res->txt[i].p, (gssize)res->txt[i].len);
	} else if (res->mx != NULL) {
		g_string_append_printf(s, "%d %s", res->mx[i].preference,
				       res->mx[i].host);
	} else {
		g_string_append(s, res->names[i]);
	}
}

static void on_result(const struct mp_dns_result *res, void *ctx);

static void
on_result(const struct mp_dns_result *res, void *ctx)
{
	struct got *g = ctx;
	GString *s = g_string_new(NULL);

	g->calls++;
	g->status = res->status;
	g_free(g->error);
	g->error = g_strdup(res->error);
	g_assert_true((res->status == MP_DNS_OK) == (res->error == NULL));
	for (size_t i = 0; i < res->n; i++)
		append_item(s, res, i);
	g_free(g->text);
	g->text = g_string_free(s, FALSE);
	g->name = g_strdup(res->name);
	if (g->chain_dns != NULL)
		mp_dns_lookup_a(g->chain_dns, "host.test", AF_INET, on_result,
				g->chained);
	if (g->cancel != NULL)
		mp_dns_cancel(g->cancel);
}

/* Waits for g's one answer and checks it. */
static void
expect(struct fx *fx, struct got *g, enum mp_dns_status status,
       const char *text)
{
	run_until(fx, &g->calls, 1);
	g_assert_cmpstr(mp_dns_status_name(g->status), ==,
			mp_dns_status_name(status));
	if (text != NULL)
		g_assert_cmpstr(g->text, ==, text);
}

static void
check_a(struct fx *fx, const char *name, int family, enum mp_dns_status status,
	const char *text)
{
	struct got g = {0};

	g_assert_nonnull(mp_dns_lookup_a(fx->dns, name, family, on_result, &g));
	/* Never before the lookup returns. */
	g_assert_cmpint(g.calls, ==, 0);
	expect(fx, &g, status, text);
	got_clear(&g);
}

/* ---- lookups ---------------------------------------------------------- */

static void
test_a(struct fx *fx, gconstpointer data)
{
	check_a(fx, "host.test", AF_UNSPEC, MP_DNS_OK, "192.0.2.1,2001:db8::1");
	check_a(fx, "HOST.test.", AF_UNSPEC, MP_DNS_OK,
		"192.0.2.1,2001:db8::1");
	check_a(fx, "host.test", AF_INET, MP_DNS_OK, "192.0.2.1");
	check_a(fx, "host.test", AF_INET6, MP_DNS_OK, "2001:db8::1");
	/* One family answering is enough. */
	check_a(fx, "v4only.test", AF_UNSPEC, MP_DNS_OK, "192.0.2.7");
	check_a(fx, "v4only.test", AF_INET6, MP_DNS_NODATA, "");
	g_assert_cmpint(seen_count(&fx->main, "v4only.test", ns_t_aaaa), ==, 2);
	g_assert_cmpint(seen_count(&fx->main, "v4only.test", ns_t_a), ==, 1);
}

static void
test_a_many(struct fx *fx, gconstpointer data)
{
	struct got g = {0};

	mp_dns_lookup_a(fx->dns, "many.test", AF_INET, on_result, &g);
	expect(fx, &g, MP_DNS_OK, NULL);
	g_assert_true(g_str_has_prefix(g.text, "10.0.0.1,10.0.0.2,"));
	g_assert_true(g_str_has_suffix(g.text, ",10.0.0.64"));
	/* Too big for UDP: asked again over TCP. */
	g_assert_cmpint(seen_count(&fx->main, "many.test", ns_t_a), ==, 1);
	g_assert_nonnull(strstr(fx->main.seen->str, "many.test/1/tcp\n"));
	got_clear(&g);
}

static void
test_nxdomain_nodata(struct fx *fx, gconstpointer data)
{
	struct got g = {0};

	check_a(fx, "nope.test", AF_UNSPEC, MP_DNS_NXDOMAIN, "");
	check_a(fx, "txtonly.test", AF_UNSPEC, MP_DNS_NODATA, "");
	mp_dns_lookup_mx(fx->dns, "nope.test", on_result, &g);
	expect(fx, &g, MP_DNS_NXDOMAIN, "");
	g_assert_nonnull(strstr(g.error, "NXDOMAIN"));
	got_clear(&g);
}

static void
test_bad_names(struct fx *fx, gconstpointer data)
{
	static const char *const bad[] = {
		"",
		".",
		"a..b",
		".a",
		"bad name.test",
		"back\\slash.test",
		"caf\xc3\xa9.test",
		"a.test..",
	};
	char *long_label = g_strnfill(64, 'a');
	char *long_name =
		g_strdup_printf("%s.%s.%s.%s.test", long_label + 1,
				long_label + 1, long_label + 1, long_label + 1);

	for (size_t i = 0; i < MP_NELEMS(bad); i++)
		check_a(fx, bad[i], AF_UNSPEC, MP_DNS_ERROR, "");
	check_a(fx, long_label, AF_INET, MP_DNS_ERROR, "");
	g_assert_cmpuint(strlen(long_name), >, MP_DNS_NAME_MAX);
	check_a(fx, long_name, AF_INET, MP_DNS_ERROR, "");
	/* None of them reached the network. */
	g_assert_cmpint(fx->main.queries, ==, 0);
	check_a(fx, "_under-score.test", AF_INET, MP_DNS_NXDOMAIN, "");
	g_free(long_label);
	g_free(long_name);
}

static void
test_txt(struct fx *fx, gconstpointer data)
{
	struct got g = {0};

	mp_dns_lookup_txt(fx->dns, "txt.test", on_result, &g);
	/* The strings of one record are joined. */
	expect(fx, &g, MP_DNS_OK, "v=spf1 -all,hello world");
	got_clear(&g);
	mp_dns_lookup_txt(fx->dns, "host.test", on_result, &g);
	expect(fx, &g, MP_DNS_NODATA, "");
	got_clear(&g);
}

static void
test_mx(struct fx *fx, gconstpointer data)
{
	struct got g = {0};

	mp_dns_lookup_mx(fx->dns, "mx.test", on_result, &g);
	expect(fx, &g, MP_DNS_OK, "10 a.mx.test,20 b.mx.test,20 c.mx.test");
	got_clear(&g);
	mp_dns_lookup_mx(fx->dns, "nullmx.test", on_result, &g);
	expect(fx, &g, MP_DNS_OK, "0 ");
	got_clear(&g);
}

static void
sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
		return;
	}
	g_assert_cmpint(inet_pton(AF_INET6, ip, &sin6->sin6_addr), ==, 1);
	sin6->sin6_family = AF_INET6;
}

static void
check_ptr(struct fx *fx, const char *ip, enum mp_dns_status status,
	  const char *text)
{
	struct sockaddr_storage ss;
	struct got g = {0};

	sockaddr_of(ip, &ss);
	mp_dns_lookup_ptr(fx->dns, (struct sockaddr *)&ss, on_result, &g);
	expect(fx, &g, status, text);
	got_clear(&g);
}

static void
test_ptr(struct fx *fx, gconstpointer data)
{
	struct sockaddr_un_like {
		sa_family_t family;
	} other = {AF_UNIX};
	struct got g = {0};

	check_ptr(fx, "192.0.2.1", MP_DNS_OK, "host.test");
	check_ptr(fx, "::ffff:192.0.2.1", MP_DNS_OK, "host.test");
	check_ptr(fx, "192.0.2.4", MP_DNS_OK, "liar.test,four.test");
	check_ptr(fx, "2001:db8::1", MP_DNS_OK, "host.test");
	check_ptr(fx, "192.0.2.3", MP_DNS_NXDOMAIN, "");
	mp_dns_lookup_ptr(fx->dns, (struct sockaddr *)&other, on_result, &g);
	expect(fx, &g, MP_DNS_ERROR, "");
	got_clear(&g);
}

static void
check_rdns(struct fx *fx, const char *ip, enum mp_dns_status status,
	   const char *name, const char *names)
{
	struct sockaddr_storage ss;
	struct got g = {0};

	sockaddr_of(ip, &ss);
	mp_dns_rdns(fx->dns, (struct sockaddr *)&ss, on_result, &g);
	expect(fx, &g, status, names);
	g_assert_cmpstr(g.name, ==, name);
	got_clear(&g);
}

static void
test_rdns(struct fx *fx, gconstpointer data)
{
	/* confirmed */
	check_rdns(fx, "192.0.2.1", MP_DNS_OK, "host.test", "host.test");
	check_rdns(fx, "::ffff:192.0.2.1", MP_DNS_OK, "host.test", "host.test");
	check_rdns(fx, "2001:db8::1", MP_DNS_OK, "host.test", "host.test");
	g_assert_cmpint(seen_count(&fx->main, "host.test", ns_t_aaaa), ==, 1);
	/* the second name confirms */
	check_rdns(fx, "192.0.2.4", MP_DNS_OK, "four.test",
		   "liar.test,four.test");
	/* mismatch: the name leads elsewhere */
	check_rdns(fx, "192.0.2.2", MP_DNS_NODATA, NULL, "liar.test");
	/* unconfirmed: no PTR at all */
	check_rdns(fx, "192.0.2.3", MP_DNS_NXDOMAIN, NULL, "");
	/* a PTR name that cannot be looked up is not used */
	check_rdns(fx, "192.0.2.6", MP_DNS_NODATA, NULL, "");
	g_assert_cmpint(fx->main.queries, ==, 13);
	/* the forward lookup times out: unknown, not "no" */
	check_rdns(fx, "192.0.2.5", MP_DNS_TEMPFAIL, NULL, "silent.test");
}

static void
test_tempfail(struct fx *fx, gconstpointer data)
{
	struct got g = {0};

	check_a(fx, "servfail.test", AF_INET, MP_DNS_TEMPFAIL, "");
	check_a(fx, "refused.test", AF_INET, MP_DNS_TEMPFAIL, "");
	/* A failure outranks the other family's NODATA. */
	check_a(fx, "servfail.test", AF_UNSPEC, MP_DNS_TEMPFAIL, "");
	mp_dns_lookup_txt(fx->dns, "servfail.test", on_result, &g);
	expect(fx, &g, MP_DNS_TEMPFAIL, "");
	g_assert_true(g_str_has_prefix(g.error, "server failure"));
	got_clear(&g);
	mp_dns_lookup_txt(fx->dns, "silent.test", on_result, &g);
	expect(fx, &g, MP_DNS_TEMPFAIL, "");
	g_assert_cmpstr(g.error, ==, "timed out");
	got_clear(&g);
	g_assert_cmpuint(mp_dns_pending(fx->dns), ==, 0);
}

static void
test_tries(struct fx *fx, gconstpointer data)
{
	struct got g = {0};

	mp_dns_free(&fx->dns);
	fx->cfg.timeout = 100;
	fx->cfg.tries = 3;
	fx->dns = dns_new(fx);
	mp_dns_lookup_txt(fx->dns, "silent.test", on_result, &g);
	expect(fx, &g, MP_DNS_TEMPFAIL, "");
	g_assert_cmpint(seen_count(&fx->main, "silent.test", ns_t_txt), ==, 3);
	got_clear(&g);
}

/* ---- cancel, cap, lifetime ------------------------------------------- */

static void
test_cancel(struct fx *fx, gconstpointer data)
{
	struct got g = {0};
	struct mp_dns_req *req;

	/* before an answer that would come */
	req = mp_dns_lookup_a(fx->dns, "host.test", AF_UNSPEC, on_result, &g);
	mp_dns_cancel(&req);
	g_assert_null(req);
	/* before a timeout */
	req = mp_dns_lookup_txt(fx->dns, "silent.test", on_result, &g);
	mp_dns_cancel(&req);
	/* before the delivery of an immediate failure */
	req = mp_dns_lookup_txt(fx->dns, "bad name", on_result, &g);
	mp_dns_cancel(&req);
	/* in the middle of rDNS */
	{
		struct sockaddr_storage ss;

		sockaddr_of("192.0.2.4", &ss);
		req = mp_dns_rdns(fx->dns, (struct sockaddr *)&ss, on_result,
				  &g);
		mp_dns_cancel(&req);
	}
	mp_dns_cancel(&req); /* NULL is fine */
	g_assert_cmpuint(mp_dns_pending(fx->dns), ==, 4);
	run_until_idle(fx);
	g_assert_cmpint(g.calls, ==, 0);
	/* from the callback of a request delivered in the same round */
	{
		struct got first = {.cancel = &req};
		struct got last = {0};

		mp_dns_lookup_txt(fx->dns, "", on_result, &first);
		req = mp_dns_lookup_txt(fx->dns, "", on_result, &g);
		mp_dns_lookup_txt(fx->dns, "", on_result, &last);
		expect(fx, &last, MP_DNS_ERROR, "");
		g_assert_cmpint(first.calls, ==, 1);
		g_assert_null(req);
		got_clear(&first);
		got_clear(&last);
	}
	g_assert_cmpint(g.calls, ==, 0);
	/* the resolver still works */
	check_a(fx, "host.test", AF_INET, MP_DNS_OK, "192.0.2.1");
}

static void
test_cap(struct fx *fx, gconstpointer data)
{
	struct got silent[3] = {{0}};
	struct got over = {0}, pair = {0}, later = {0};

	mp_dns_free(&fx->dns);
	fx->cfg.max_queries = 3;
	fx->dns = dns_new(fx);
	for (int i = 0; i < 3; i++)
		mp_dns_lookup_txt(fx->dns, "silent.test", on_result,
				  &silent[i]);
	g_assert_cmpuint(mp_dns_pending(fx->dns), ==, 3);
	mp_dns_lookup_txt(fx->dns, "host.test", on_result, &over);
	g_assert_cmpint(over.calls, ==, 0);
	/* Fails at once, but only on the next loop iteration. */
	ev_run(fx->loop, EVRUN_NOWAIT);
	g_assert_cmpint(over.calls, ==, 1);
	g_assert_cmpint(over.status, ==, MP_DNS_TEMPFAIL);
	g_assert_nonnull(strstr(over.error, "too many"));
	g_assert_cmpint(seen_count(&fx->main, "host.test", ns_t_txt), ==, 0);
	for (int i = 0; i < 3; i++) {
		run_until(fx, &silent[i].calls, 1);
		got_clear(&silent[i]);
	}
	/* Room for one query: an A+AAAA lookup is refused whole. */
	mp_dns_lookup_txt(fx->dns, "silent.test", on_result, &silent[0]);
	mp_dns_lookup_txt(fx->dns, "silent.test", on_result, &silent[1]);
	mp_dns_lookup_a(fx->dns, "host.test", AF_UNSPEC, on_result, &pair);
	expect(fx, &pair, MP_DNS_TEMPFAIL, "");
	run_until_idle(fx);
	mp_dns_lookup_a(fx->dns, "host.test", AF_UNSPEC, on_result, &later);
	expect(fx, &later, MP_DNS_OK, "192.0.2.1,2001:db8::1");
	for (int i = 0; i < 3; i++)
		got_clear(&silent[i]);
	got_clear(&over);
	got_clear(&pair);
	got_clear(&later);
}

static void
test_free_pending(struct fx *fx, gconstpointer data)
{
	struct got answered = {0}, failed = {0}, waiting = {0}, due = {0};
	struct sockaddr_storage ss;

	sockaddr_of("192.0.2.5", &ss);
	mp_dns_lookup_a(fx->dns, "host.test", AF_UNSPEC, on_result, &answered);
	mp_dns_lookup_txt(fx->dns, "", on_result, &failed);
	mp_dns_lookup_txt(fx->dns, "silent.test", on_result, &waiting);
	mp_dns_rdns(fx->dns, (struct sockaddr *)&ss, on_result, &waiting);
	/* Let the rDNS get to its forward lookup. */
	while (seen_count(&fx->main, "silent.test", ns_t_a) == 0)
		ev_run(fx->loop, EVRUN_ONCE);
	g_assert_cmpint(answered.calls + failed.calls, ==, 2);
	mp_dns_lookup_txt(fx->dns, "", on_result, &due);
	mp_dns_free(&fx->dns);
	g_assert_null(fx->dns);
	g_assert_cmpint(waiting.calls + due.calls, ==, 0);
	got_clear(&answered);
	got_clear(&failed);
}

static void
test_chain(struct fx *fx, gconstpointer data)
{
	struct got second = {0};
	struct got first = {.chain_dns = fx->dns, .chained = &second};

	mp_dns_lookup_a(fx->dns, "host.test", AF_INET6, on_result, &first);
	expect(fx, &first, MP_DNS_OK, "2001:db8::1");
	expect(fx, &second, MP_DNS_OK, "192.0.2.1");
	got_clear(&first);
	got_clear(&second);
}

static void
test_reconfigure(struct fx *fx, gconstpointer data)
{
	struct got old = {0}, new = {0};
	char *error = NULL;

	responder_start(&fx->other, fx->loop, zone_other,
			MP_NELEMS(zone_other));
	mp_dns_lookup_txt(fx->dns, "which.test", on_result, &old);
	set_server(fx, fx->other.port);
	g_assert_true(mp_dns_reconfigure(fx->dns, &fx->cfg, &error));
	mp_dns_lookup_txt(fx->dns, "which.test", on_result, &new);
	expect(fx, &old, MP_DNS_OK, "one");
	expect(fx, &new, MP_DNS_OK, "two");
	/* Reconfiguring an idle resolver, and a bad server, kept out. */
	mp_strlist_free(&fx->cfg.servers);
	mp_strlist_add(&fx->cfg.servers, "ns.example.test:53");
	g_assert_false(mp_dns_reconfigure(fx->dns, &fx->cfg, &error));
	g_assert_nonnull(strstr(error, "ns.example.test"));
	free(error);
	got_clear(&old);
	mp_dns_lookup_txt(fx->dns, "which.test", on_result, &old);
	expect(fx, &old, MP_DNS_OK, "two");
	got_clear(&old);
	got_clear(&new);
}

static void
test_new_errors(struct fx *fx, gconstpointer data)
{
	static const char *const bad[] = {"192.0.2.1", "ns.example.test:53",
					  "[::1]", "127.0.0.1:0"};
	char *error = NULL;

	for (size_t i = 0; i < MP_NELEMS(bad); i++) {
		mp_strlist_free(&fx->cfg.servers);
		mp_strlist_add(&fx->cfg.servers, bad[i]);
		g_assert_null(mp_dns_new(fx->loop, &fx->cfg, &error));
		g_assert_nonnull(strstr(error, bad[i]));
		MP_FREE(error);
	}
	/* Two servers, IPv6 with a port: the first one answers. */
	mp_strlist_free(&fx->cfg.servers);
	set_server(fx, fx->main.port);
	mp_strlist_add(&fx->cfg.servers, "[::1]:9");
	mp_dns_free(&fx->dns);
	fx->dns = dns_new(fx);
	check_a(fx, "host.test", AF_INET, MP_DNS_OK, "192.0.2.1");
}

static void
test_reverse(void)
{
	static const struct {
		const char *ip, *want;
	} cases[] = {
		{"1.2.3.4", "4.3.2.1"},
		{"::ffff:10.0.0.1", "1.0.0.10"},
		{"2001:db8::1",
		 "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		 "8.b.d.0.1.0.0.2"},
	};
	struct sockaddr_storage ss;
	char buf[MP_DNS_REVERSE_MAX];

	for (size_t i = 0; i < MP_NELEMS(cases); i++) {
		sockaddr_of(cases[i].ip, &ss);
		g_assert_true(mp_dns_reverse((struct sockaddr *)&ss, buf,
					     sizeof(buf)));
		g_assert_cmpstr(buf, ==, cases[i].want);
	}
	g_assert_false(mp_dns_reverse((struct sockaddr *)&ss, buf, 10));
	ss.ss_family = AF_UNIX;
	g_assert_false(
		mp_dns_reverse((struct sockaddr *)&ss, buf, sizeof(buf)));
	g_assert_cmpstr(mp_dns_status_name(MP_DNS_TEMPFAIL), ==, "tempfail");
}

/* ---- the config section ----------------------------------------------- */

static struct mp_config *
config_of(const char *source, char **error_r)
{
	return mp_config_load_string("test.conf", source, "/tmp", NULL,
				     error_r);
}

static void
test_config(void)
{
	char *error = NULL;
	struct mp_config *cfg = config_of("hostname = 'x'\n", &error);
	const struct mp_cfg_dns *d = mp_config_dns(cfg);

	g_assert_cmpuint(d->servers.n, ==, 0);
	g_assert_cmpuint(d->timeout, ==, 5000);
	g_assert_cmpint(d->tries, ==, 2);
	g_assert_cmpint(d->max_queries, ==, 1000);
	mp_config_unref(&cfg);
	cfg = config_of("dns { servers = { '127.0.0.1', '[::1]:5353', "
			"'2001:db8::53', '192.0.2.1:53' },\n"
			"  timeout = '1500ms', tries = 3, max_queries = 50 }\n",
			&error);
	g_assert_null(error);
	d = mp_config_dns(cfg);
	g_assert_cmpuint(d->servers.n, ==, 4);
	g_assert_cmpstr(d->servers.v[0], ==, "127.0.0.1:53");
	g_assert_cmpstr(d->servers.v[1], ==, "[::1]:5353");
	g_assert_cmpstr(d->servers.v[2], ==, "[2001:db8::53]:53");
	g_assert_cmpstr(d->servers.v[3], ==, "192.0.2.1:53");
	g_assert_cmpuint(d->timeout, ==, 1500);
	g_assert_cmpint(d->tries, ==, 3);
	g_assert_cmpint(d->max_queries, ==, 50);
	mp_config_unref(&cfg);
}

static void
test_config_errors(void)
{
	static const struct {
		const char *source, *needle;
	} cases[] = {
		{"\n\ndns { servers = 'ns1.example.org' }",
		 "test.conf:3: dns.servers: 'ns1.example.org' is not"},
		{"dns { servers = { '127.0.0.1:0' } }", "'127.0.0.1:0'"},
		{"dns { tries = 0 }", "dns.tries"},
		{"dns { timeout = '10ms' }", "dns.timeout"},
		{"dns { max_queries = 0 }", "dns.max_queries"},
		{"dns { server = '127.0.0.1' }", "server"},
	};

	for (size_t i = 0; i < MP_NELEMS(cases); i++) {
		char *error = NULL;

		g_assert_null(config_of(cases[i].source, &error));
		if (strstr(error, cases[i].needle) == NULL)
			g_error("%s: %s", cases[i].source, error);
		free(error);
	}
}

/* ---- Lua ------------------------------------------------------------- */

static const char *const hook_names[] = {"smtp.connect", "test", NULL};

struct call {
	int calls;
	struct mp_verdict v;
	const char *ip; /* smtp.connect: tx.ip */
};

static int
push_tx(lua_State *L, void *ctx)
{
	struct call *c = ctx;

	if (c->ip == NULL)
		return 0;
	lua_createtable(L, 0, 1);
	lua_pushstring(L, c->ip);
	lua_setfield(L, -2, "ip");
	return 1;
}

static void
on_verdict(const struct mp_verdict *v, void *ctx)
{
	struct call *c = ctx;

	c->calls++;
	c->v = *v;
}

static void
add_script(struct fx *fx, const char *name, const char *source)
{
	char *path = g_build_filename(fx->dir, name, NULL);
	GError *error = NULL;

	g_file_set_contents(path, source, -1, &error);
	g_assert_no_error(error);
	mp_strlist_add(&fx->lua_cfg.scripts, path);
	g_free(path);
}

static void
runtime_load(struct fx *fx, bool with_dns)
{
	char *error = NULL;

	mp_lua_unref(&fx->lua);
	fx->lua = mp_lua_new(fx->loop, &fx->lua_cfg, hook_names, &error);
	if (fx->lua == NULL)
		g_error("mp_lua_new: %s", error);
	if (with_dns)
		mp_lua_set_dns(fx->lua, fx->dns);
}

/* Loads body as the handler of "test". */
static void
load_handler(struct fx *fx, const char *body)
{
	char *src = g_strdup_printf("moonpost.hook('test', function()\n%s\n"
				    "end)\n",
				    body);

	mp_strlist_free(&fx->lua_cfg.scripts);
	add_script(fx, "case.lua", src);
	g_free(src);
	runtime_load(fx, true);
}

/* Calls hook and waits for its verdict. */
static void
call_hook(struct fx *fx, const char *hook, struct call *c)
{
	mp_lua_call_hook(fx->lua, hook, "S1", push_tx, on_verdict, c);
	run_until(fx, &c->calls, 1);
}

/* Runs body as the "test" handler; it returns a reject whose text is
 * compared with want. */
static void
expect_text(struct fx *fx, const char *body, const char *want)
{
	struct call c = {0};

	load_handler(fx, body);
	call_hook(fx, "test", &c);
	if (c.v.kind != MP_VERDICT_REJECT)
		g_error("%s: got %s (%s)", body, mp_verdict_name(c.v.kind),
			c.v.text);
	g_assert_cmpstr(c.v.text, ==, want);
}

/* Lua that turns the result of `expr` into the reject text: the answers
 * joined by ',', or "nil:" and the message. */
#define SHOW(expr)                                                             \
	"local r, err = " expr "\n"                                            \
	"if r == nil then return moonpost.reject(550, 'nil:' .. err) end\n"    \
	"for i, v in ipairs(r) do\n"                                           \
	"  if type(v) == 'table' then\n"                                       \
	"    r[i] = v.preference .. ' ' .. v.host end end\n"                   \
	"return moonpost.reject(550, '#' .. #r .. ' ' .. table.concat(r, "     \
	"','))"

static void
test_lua_lookups(struct fx *fx, gconstpointer data)
{
	expect_text(fx, SHOW("moonpost.dns.a('host.test')"),
		    "#2 192.0.2.1,2001:db8::1");
	expect_text(fx, SHOW("moonpost.dns.a('host.test', 'ipv4')"),
		    "#1 192.0.2.1");
	expect_text(fx, SHOW("moonpost.dns.a('host.test', 'ipv6')"),
		    "#1 2001:db8::1");
	expect_text(fx, SHOW("moonpost.dns.txt('txt.test')"),
		    "#2 v=spf1 -all,hello world");
	expect_text(fx, SHOW("moonpost.dns.mx('mx.test')"),
		    "#3 10 a.mx.test,20 b.mx.test,20 c.mx.test");
	expect_text(fx, SHOW("moonpost.dns.ptr('192.0.2.4')"),
		    "#2 liar.test,four.test");
	expect_text(fx, SHOW("moonpost.dns.ptr('2001:db8::1')"),
		    "#1 host.test");
	/* a wait inside pcall */
	expect_text(fx,
		    "local ok, r = pcall(moonpost.dns.a, 'host.test', 'ipv4')\n"
		    "return moonpost.reject(550, tostring(ok) .. ' ' .. r[1])",
		    "true 192.0.2.1");
	/* several waits in one handler */
	expect_text(fx,
		    "local a = moonpost.dns.a('host.test', 'ipv4')\n"
		    "local b = moonpost.dns.txt('txtonly.test')\n"
		    "return moonpost.reject(550, a[1] .. '/' .. b[1])",
		    "192.0.2.1/just text");
}

static void
test_lua_failures(struct fx *fx, gconstpointer data)
{
	/* "not there" is an empty table ... */
	expect_text(fx, SHOW("moonpost.dns.a('nope.test')"), "#0 ");
	expect_text(fx, SHOW("moonpost.dns.mx('host.test')"), "#0 ");
	expect_text(fx, SHOW("moonpost.dns.ptr('192.0.2.3')"), "#0 ");
	/* ... "could not check" is nil and why */
	expect_text(fx,
		    "local r, err = moonpost.dns.txt('servfail.test')\n"
		    "return moonpost.reject(550, tostring(r) .. ':' .. "
		    "err:sub(1, 14))",
		    "nil:server failure");
	expect_text(fx, SHOW("moonpost.dns.a('silent.test', 'ipv4')"),
		    "nil:timed out");
	expect_text(fx, SHOW("moonpost.dns.a('bad name')"),
		    "nil:character not allowed in a domain name");
	expect_text(fx, SHOW("moonpost.dns.ptr('not-an-ip')"),
		    "nil:not an IP address");
	expect_text(fx,
		    "local ok, err = pcall(moonpost.dns.a, 'x.test', 'ipv5')\n"
		    "return moonpost.reject(550, tostring(ok))",
		    "false");
}

static void
test_lua_reverse_ip(struct fx *fx, gconstpointer data)
{
	expect_text(
		fx,
		"return moonpost.reject(550, "
		"moonpost.dns.reverse_ip('192.0.2.1') .. ' ' .. "
		"moonpost.dns.reverse_ip('2001:db8::1'):sub(1, 9) .. ' ' .. "
		"tostring(pcall(moonpost.dns.reverse_ip, 'x')))",
		"1.2.0.192 1.0.0.0.0 false");
	/* Pure: it works at a script's top level. */
	mp_strlist_free(&fx->lua_cfg.scripts);
	add_script(fx, "top.lua",
		   "assert(moonpost.dns.reverse_ip('1.2.3.4') == '4.3.2.1')\n");
	runtime_load(fx, true);
}

static void
test_lua_top_level(struct fx *fx, gconstpointer data)
{
	char *error = NULL;

	add_script(fx, "top.lua", "moonpost.dns.a('host.test')\n");
	g_assert_null(mp_lua_new(fx->loop, &fx->lua_cfg, hook_names, &error));
	g_assert_nonnull(
		strstr(error, "top.lua:1: moonpost.dns: only inside a hook"));
	free(error);
	mp_strlist_free(&fx->lua_cfg.scripts);
	add_script(fx, "frozen.lua", "moonpost.dns.a = nil\n");
	g_assert_null(mp_lua_new(fx->loop, &fx->lua_cfg, hook_names, &error));
	g_assert_nonnull(strstr(error, "read-only"));
	free(error);
	g_assert_cmpint(fx->main.queries, ==, 0);
}

static void
test_lua_no_resolver(struct fx *fx, gconstpointer data)
{
	struct call c = {0};

	mp_strlist_free(&fx->lua_cfg.scripts);
	add_script(fx, "case.lua",
		   "moonpost.hook('test', function()\n" SHOW(
			   "moonpost.dns.a('host.test')") "\nend)\n");
	runtime_load(fx, false);
	call_hook(fx, "test", &c);
	g_assert_cmpstr(c.v.text, ==, "nil:no resolver in this program");
}

static void
test_lua_cancel(struct fx *fx, gconstpointer data)
{
	struct call c = {0};
	struct mp_lua_call *call;

	load_handler(fx, "moonpost.dns.txt('silent.test')\n"
			 "return moonpost.accept()");
	call = mp_lua_call_hook(fx->lua, "test", "S1", push_tx, on_verdict, &c);
	g_assert_nonnull(call);
	g_assert_cmpuint(mp_dns_pending(fx->dns), ==, 1);
	mp_lua_call_cancel(&call);
	/* The query ends (timeout) with nobody to tell. */
	run_until_idle(fx);
	g_assert_cmpint(c.calls, ==, 0);
	g_assert_cmpuint(mp_lua_calls_pending(fx->lua), ==, 0);
}

static void
test_lua_timeout(struct fx *fx, gconstpointer data)
{
	struct call c = {0};
	char *log = NULL;

	mp_dns_free(&fx->dns);
	fx->cfg.timeout = 1000;
	fx->dns = dns_new(fx);
	fx->lua_cfg.timeout = 100;
	load_handler(fx, "moonpost.dns.txt('silent.test')\n"
			 "return moonpost.accept()");
	call_hook(fx, "test", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_TEMPFAIL);
	g_assert_cmpuint(mp_dns_pending(fx->dns), ==, 1);
	run_until_idle(fx);
	g_assert_cmpint(c.calls, ==, 1);
	g_assert_true(g_file_get_contents(fx->log_path, &log, NULL, NULL));
	g_assert_nonnull(strstr(log, "waiting on moonpost.dns.txt"));
	g_free(log);
}

/* ---- the dnsbl.lua example -------------------------------------------- */

static void
load_dnsbl(struct fx *fx)
{
	const char *srcdir = g_getenv("MOONPOST_SRCDIR");
	char *path = g_strdup_printf("%s/scripts/examples/dnsbl.lua",
				     srcdir != NULL ? srcdir : ".");
	char *text = NULL;
	GError *error = NULL;
	GString *s;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	s = g_string_new(text);
	g_assert_cmpuint(
		g_string_replace(s, "\"zen.spamhaus.org\",", "\"bl.test\",", 0),
		==, 1);
	add_script(fx, "dnsbl.lua", s->str);
	runtime_load(fx, true);
	g_string_free(s, TRUE);
	g_free(text);
	g_free(path);
}

static void
connect_from(struct fx *fx, const char *ip, struct call *c)
{
	memset(c, 0, sizeof(*c));
	c->ip = ip;
	call_hook(fx, "smtp.connect", c);
}

static void
test_dnsbl_example(struct fx *fx, gconstpointer data)
{
	struct call c;
	char *log = NULL;

	load_dnsbl(fx);
	connect_from(fx, "192.0.2.99", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_REJECT);
	g_assert_cmpint(c.v.code, ==, 554);
	g_assert_cmpstr(c.v.enhanced, ==, "5.7.1");
	g_assert_cmpstr(c.v.text, ==, "192.0.2.99 is listed in bl.test");
	connect_from(fx, "2001:db8::99", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_REJECT);
	/* not listed, a failed lookup (fail open), an error answer */
	connect_from(fx, "192.0.2.98", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_CONTINUE);
	connect_from(fx, "192.0.2.97", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_CONTINUE);
	connect_from(fx, "192.0.2.96", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_CONTINUE);
	g_assert_cmpint(fx->main.queries, ==, 5);
	/* A records only: DNSBLs publish no AAAA. */
	g_assert_cmpint(seen_count(&fx->main, "99.2.0.192.bl.test", ns_t_aaaa),
			==, 0);
	/* local and private clients are not looked up */
	connect_from(fx, "127.0.0.1", &c);
	connect_from(fx, "10.1.2.3", &c);
	connect_from(fx, "172.20.0.1", &c);
	connect_from(fx, "192.168.1.1", &c);
	connect_from(fx, "::1", &c);
	connect_from(fx, "fd00:1234::1", &c);
	connect_from(fx, "fe80::1", &c);
	g_assert_cmpint(c.v.kind, ==, MP_VERDICT_CONTINUE);
	g_assert_cmpint(fx->main.queries, ==, 5);
	g_assert_true(g_file_get_contents(fx->log_path, &log, NULL, NULL));
	g_assert_nonnull(strstr(log, "dnsbl bl.test lists 192.0.2.99"));
	g_assert_nonnull(strstr(log, "192.0.2.97 failed (server failure"));
	g_assert_nonnull(strstr(log, "unexpected answer 127.255.255.254"));
	g_free(log);
}

#define TEST(path, fn)                                                         \
	g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	TEST("/dns/lookup/a", test_a);
	TEST("/dns/lookup/a-many", test_a_many);
	TEST("/dns/lookup/nxdomain-nodata", test_nxdomain_nodata);
	TEST("/dns/lookup/bad-names", test_bad_names);
	TEST("/dns/lookup/txt", test_txt);
	TEST("/dns/lookup/mx", test_mx);
	TEST("/dns/lookup/ptr", test_ptr);
	TEST("/dns/rdns", test_rdns);
	TEST("/dns/tempfail/servfail-refused-timeout", test_tempfail);
	TEST("/dns/tempfail/tries", test_tries);
	TEST("/dns/cancel", test_cancel);
	TEST("/dns/cap", test_cap);
	TEST("/dns/free-pending", test_free_pending);
	TEST("/dns/callback-starts-lookup", test_chain);
	TEST("/dns/reconfigure", test_reconfigure);
	TEST("/dns/new/errors", test_new_errors);
	g_test_add_func("/dns/reverse", test_reverse);
	g_test_add_func("/dns/config/section", test_config);
	g_test_add_func("/dns/config/errors", test_config_errors);
	TEST("/dns/lua/lookups", test_lua_lookups);
	TEST("/dns/lua/failures", test_lua_failures);
	TEST("/dns/lua/reverse-ip", test_lua_reverse_ip);
	TEST("/dns/lua/top-level", test_lua_top_level);
	TEST("/dns/lua/no-resolver", test_lua_no_resolver);
	TEST("/dns/lua/cancel", test_lua_cancel);
	TEST("/dns/lua/timeout", test_lua_timeout);
	TEST("/dns/lua/dnsbl-example", test_dnsbl_example);
	return g_test_run();
}
