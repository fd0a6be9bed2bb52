/* config-core.c - the core's settings and sections, and the checks that
 * span several records. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config-private.h"

#define K ((int64_t)1024)

#define FIELD(st, k, t, ...)                                                   \
	{                                                                      \
		.key = #k, .type = t, .offset = offsetof(st, k), __VA_ARGS__   \
	}

/* ---- top-level settings ---- */

#define SETTING(k, t, ...) FIELD(struct mp_cfg_settings, k, t, __VA_ARGS__)

static const struct mp_cfg_field settings_fields[] = {
	SETTING(hostname, MP_CFG_STRING, .help = "name used in greetings"),
	SETTING(data_dir, MP_CFG_PATH, .help = "where mail and state live"),
	SETTING(user, MP_CFG_STRING, .help = "account to run as after bind"),
	SETTING(plugin_dir, MP_CFG_PATH,
		.help = "where plugins are loaded from"),
	SETTING(passwd, MP_CFG_PATH, .help = "the account file"),
	SETTING(aliases, MP_CFG_PATH,
		.help = "the alias file (address: target, ...)"),
	SETTING(recipient_delimiter, MP_CFG_STRING,
		.help = "characters that start an address's detail, or \"\""),
	SETTING(domains, MP_CFG_STRLIST, .help = "mail domains handled here"),
	SETTING(threads, MP_CFG_INT, .min = 1, .max = 256,
		.help = "threads for blocking work"),
};

_Static_assert(MP_NELEMS(settings_fields) <=
		       MP_NELEMS(((struct mp_config *)0)->setting_lines),
	       "setting_lines too small");

static int
default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	/* Two keep one slow hash from blocking fsyncs; past sixteen the
	 * disk, not the CPU, is the limit. */
	return n < 2 ? 2 : n > 16 ? 16 : (int)n;
}

static void
settings_defaults(void *p)
{
	struct mp_cfg_settings *s = p;
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	s->hostname = mp_xstrdup(host);
	s->data_dir = mp_xstrdup("/var/lib/moonpost");
	s->recipient_delimiter = mp_xstrdup("+");
	s->threads = default_threads();
}

const struct mp_cfg_section mp_cfg_settings_schema = {
	.name = "settings",
	.fields = settings_fields,
	.n_fields = MP_NELEMS(settings_fields),
	.struct_size = sizeof(struct mp_cfg_settings),
	.set_defaults = settings_defaults,
};

/* ---- limits, lua, log, auth ---- */

#define LIMIT(k, t, ...) FIELD(struct mp_cfg_limits, k, t, __VA_ARGS__)

static const struct mp_cfg_field limits_fields[] = {
	LIMIT(connections, MP_CFG_INT, .min = 1, .max = 1000000,
	      .help = "connections the whole server accepts"),
	LIMIT(connections_per_ip, MP_CFG_INT, .min = 1, .max = 100000,
	      .help = "connections per IPv4 address or IPv6 /64"),
	LIMIT(shutdown_grace, MP_CFG_DURATION,
	      .help = "time sessions get to finish on SIGTERM"),
};

static void
limits_defaults(void *p)
{
	struct mp_cfg_limits *l = p;

	l->connections = 1000;
	l->connections_per_ip = 20;
	l->shutdown_grace = 10 * 1000;
}

const struct mp_cfg_section mp_cfg_limits_schema = {
	.name = "limits",
	.fields = limits_fields,
	.n_fields = MP_NELEMS(limits_fields),
	.struct_size = sizeof(struct mp_cfg_limits),
	.set_defaults = limits_defaults,
};

#define LUA(k, t, ...) FIELD(struct mp_cfg_lua, k, t, __VA_ARGS__)

static const struct mp_cfg_field lua_fields[] = {
	LUA(scripts, MP_CFG_STRLIST, .help = "scripts loaded in order"),
	LUA(memory, MP_CFG_SIZE, .min = 64 * K,
	    .help = "memory one hook call may hold"),
	LUA(memory_total, MP_CFG_SIZE, .min = 64 * K,
	    .help = "memory all scripts together may hold"),
	LUA(instructions, MP_CFG_INT, .min = 1000, .max = 10000000000,
	    .help = "instructions per hook call"),
	LUA(timeout, MP_CFG_DURATION, .min = 10,
	    .help = "time a hook call may take, waits included"),
};

static void
lua_defaults(void *p)
{
	struct mp_cfg_lua *l = p;

	l->memory = 8 * K * K;
	l->memory_total = 64 * K * K;
	l->instructions = 1000000;
	l->timeout = 5 * 1000;
}

static bool
lua_check(const void *p, const char **error_r)
{
	const struct mp_cfg_lua *l = p;

	if (l->memory_total < l->memory) {
		*error_r = "memory_total must be at least memory";
		return false;
	}
	return true;
}

const struct mp_cfg_section mp_cfg_lua_schema = {
	.name = "lua",
	.fields = lua_fields,
	.n_fields = MP_NELEMS(lua_fields),
	.struct_size = sizeof(struct mp_cfg_lua),
	.set_defaults = lua_defaults,
	.check = lua_check,
};

static const char *const log_levels[] = {"debug", "info", "warn", "error",
					 NULL};

static const struct mp_cfg_field log_fields[] = {
	FIELD(struct mp_cfg_log, level, MP_CFG_ENUM, .choices = log_levels,
	      .help = "lowest level logged"),
};

static void
log_defaults(void *p)
{
	((struct mp_cfg_log *)p)->level = MP_LOG_INFO;
}

const struct mp_cfg_section mp_cfg_log_schema = {
	.name = "log",
	.fields = log_fields,
	.n_fields = MP_NELEMS(log_fields),
	.struct_size = sizeof(struct mp_cfg_log),
	.set_defaults = log_defaults,
};

#define AUTH(k, t, ...) FIELD(struct mp_cfg_auth, k, t, __VA_ARGS__)

static const struct mp_cfg_field auth_fields[] = {
	AUTH(max_failures_per_ip, MP_CFG_INT, .min = 0, .max = 1000000,
	     .help = "failed logins per address and window; 0: no limit"),
	AUTH(max_failures_per_account, MP_CFG_INT, .min = 0, .max = 1000000,
	     .help = "failed logins per account and window; 0: no limit"),
	AUTH(window, MP_CFG_DURATION, .min = 1000,
	     .help = "time in which the allowance refills"),
	AUTH(known_good, MP_CFG_DURATION,
	     .help = "how long a successful login exempts an address"),
	AUTH(cache_ttl, MP_CFG_DURATION, .max = 24ULL * 3600 * 1000,
	     .help = "how long a verified password is remembered; 0: "
		     "hash every login"),
};

/* Ten guesses per address and five per account in a quarter of an hour
 * stop online guessing (a few hundred guesses a day at most) while a user
 * who mistypes a few times is not locked out; the account limit spares
 * addresses the user logged in from in the last month. */
static void
auth_defaults(void *p)
{
	struct mp_cfg_auth *a = p;

	a->max_failures_per_ip = 10;
	a->max_failures_per_account = 5;
	a->window = 15 * 60 * 1000;
	a->known_good = 30ULL * 24 * 3600 * 1000;
	/* Dovecot's auth_cache_ttl: an hour. */
	a->cache_ttl = 3600 * 1000;
}

const struct mp_cfg_section mp_cfg_auth_schema = {
	.name = "auth",
	.fields = auth_fields,
	.n_fields = MP_NELEMS(auth_fields),
	.struct_size = sizeof(struct mp_cfg_auth),
	.set_defaults = auth_defaults,
};

static const struct mp_cfg_field quota_fields[] = {
	FIELD(struct mp_cfg_quota, storage, MP_CFG_SIZE,
	      .help = "bytes one account may store; 0: no limit"),
	FIELD(struct mp_cfg_quota, messages, MP_CFG_INT, .min = 0,
	      .max = 1000000000, .help = "messages per account; 0: no limit"),
};

/* No limit unless the operator sets one: a default quota would bounce
 * mail for a site that never asked for one. */
const struct mp_cfg_section mp_cfg_quota_schema = {
	.name = "quota",
	.fields = quota_fields,
	.n_fields = MP_NELEMS(quota_fields),
	.struct_size = sizeof(struct mp_cfg_quota),
};

#define DNS(k, t, ...) FIELD(struct mp_cfg_dns, k, t, __VA_ARGS__)

static const struct mp_cfg_field dns_fields[] = {
	DNS(servers, MP_CFG_STRLIST,
	    .help = "IP, IP:port or [IPv6]:port; none: /etc/resolv.conf"),
	DNS(timeout, MP_CFG_DURATION, .min = 100, .max = 60 * 1000,
	    .help = "wait for the first try; each round doubles it"),
	DNS(tries, MP_CFG_INT, .min = 1, .max = 10,
	    .help = "sends of a query to each server"),
	DNS(max_queries, MP_CFG_INT, .min = 1, .max = 100000,
	    .help = "queries in flight at once; more fail as temporary"),
};

/* Five seconds and two tries give up after 15 s (5, then 10), inside
 * the time an SMTP client waits for a greeting; a thousand queries in
 * flight is far above what a small site needs, and bounds what a flood
 * of connections can make the server send. */
static void
dns_defaults(void *p)
{
	struct mp_cfg_dns *d = p;

	d->timeout = 5 * 1000;
	d->tries = 2;
	d->max_queries = 1000;
}

const struct mp_cfg_section mp_cfg_dns_schema = {
	.name = "dns",
	.fields = dns_fields,
	.n_fields = MP_NELEMS(dns_fields),
	.struct_size = sizeof(struct mp_cfg_dns),
	.set_defaults = dns_defaults,
};

/* ---- records: listen, tls ---- */

static const char *const tls_modes[] = {"none", "starttls", "implicit", NULL};

#define LISTEN(k, t, ...) FIELD(struct mp_cfg_listener, k, t, __VA_ARGS__)

static const struct mp_cfg_field listen_fields[] = {
	LISTEN(name, MP_CFG_STRING, .help = "unique name, for logs"),
	LISTEN(protocol, MP_CFG_STRING, .required = true,
	       .help = "plugin that serves it: smtp, imap, pop3"),
	LISTEN(role, MP_CFG_STRING, .help = "plugin-specific: mx, submission"),
	LISTEN(address, MP_CFG_STRLIST, .required = true,
	       .help = "IP:port or [IPv6]:port, one or a list"),
	LISTEN(tls, MP_CFG_ENUM, .choices = tls_modes,
	       .help = "none, starttls or implicit"),
};

const struct mp_cfg_section mp_cfg_listen_schema = {
	.name = "listen",
	.fields = listen_fields,
	.n_fields = MP_NELEMS(listen_fields),
	.struct_size = sizeof(struct mp_cfg_listener),
	.repeatable = true,
};

#define TLS(k, t, ...) FIELD(struct mp_cfg_tls, k, t, __VA_ARGS__)

static const struct mp_cfg_field tls_fields[] = {
	TLS(cert, MP_CFG_PATH, .required = true,
	    .help = "PEM certificate chain"),
	TLS(key, MP_CFG_PATH, .required = true, .help = "PEM private key"),
	TLS(names, MP_CFG_STRLIST, .help = "SNI names; none: the default"),
};

const struct mp_cfg_section mp_cfg_tls_schema = {
	.name = "tls",
	.fields = tls_fields,
	.n_fields = MP_NELEMS(tls_fields),
	.struct_size = sizeof(struct mp_cfg_tls),
	.repeatable = true,
};

bool
mp_cfg_listener_finish(struct mp_cfg_listener *l, char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (l->protocol[0] == '\0') {
		*error_r = mp_xstrdup("listen.protocol: must not be empty");
		return false;
	}
	for (size_t i = 0; i < l->address.n; i++) {
		/* IP literals only: binding must not wait on DNS. */
		if (!mp_addr_parse(l->address.v[i], false, &ss, &len)) {
			*error_r = mp_xasprintf(
				"listen.address: '%s' is not IP:port (write "
				"192.0.2.1:25 or [2001:db8::1]:25; host names "
				"are not allowed, ports are 1-65535)",
				l->address.v[i]);
			return false;
		}
	}
	if (l->name == NULL)
		l->name = l->role != NULL
				  ? mp_xasprintf("%s/%s", l->protocol, l->role)
				  : mp_xstrdup(l->protocol);
	return true;
}

/* ---- after the whole file ---- */

/* A bare IP in dns.servers, as resolv.conf writes them, gets port 53;
 * anything else is left for check_dns() to judge. */
static void
dns_server_finish(char **server)
{
	struct in6_addr a;
	char *full = NULL;

	if (inet_pton(AF_INET, *server, &a) == 1)
		full = mp_xasprintf("%s:53", *server);
	else if (inet_pton(AF_INET6, *server, &a) == 1)
		full = mp_xasprintf("[%s]:53", *server);
	if (full == NULL)
		return;
	free(*server);
	*server = full;
}

void
mp_cfg_core_finish(struct mp_config *cfg)
{
	struct mp_cfg_settings *s = cfg->settings;
	struct mp_cfg_lua *lua = cfg->slots[MP_CFG_SLOT_LUA].data;
	struct mp_cfg_dns *dns = cfg->slots[MP_CFG_SLOT_DNS].data;

	if (s->passwd == NULL)
		s->passwd = mp_cfg_path_resolve(s->data_dir, "passwd");
	if (s->aliases == NULL)
		s->aliases = mp_cfg_path_resolve(s->data_dir, "aliases");
	/* Domains compare without case (RFC 5321 2.4). */
	for (size_t i = 0; i < s->domains.n; i++) {
		for (char *p = s->domains.v[i]; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	for (size_t i = 0; i < lua->scripts.n; i++) {
		char *path =
			mp_cfg_path_resolve(cfg->base_dir, lua->scripts.v[i]);
		free(lua->scripts.v[i]);
		lua->scripts.v[i] = path;
	}
	for (size_t i = 0; i < dns->servers.n; i++)
		dns_server_finish(&dns->servers.v[i]);
}

/* "ip/port" after parsing, so [::0]:25 and [::]:25 compare equal. */
static void
address_key(const char *text, char *key, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char ip[MP_ADDR_TEXT_MAX];
	int port;

	if (!mp_addr_parse(text, false, &ss, &len)) {
		snprintf(key, size, "%s", text);
		return;
	}
	port = mp_addr_ntop((const struct sockaddr *)&ss, ip, sizeof(ip));
	snprintf(key, size, "%s/%d", ip, port);
}

static bool
address_used(const struct mp_cfg_listener *l, size_t upto, const char *key)
{
	char other[MP_ADDR_TEXT_MAX + 8];

	for (size_t i = 0; i < upto; i++) {
		address_key(l->address.v[i], other, sizeof(other));
		if (strcmp(other, key) == 0)
			return true;
	}
	return false;
}

/* Finds an earlier use of address i of listener n. */
static bool
check_address(const struct mp_config *cfg, size_t n, size_t i, char **error_r)
{
	const struct mp_cfg_listener *l = mp_cfg_record(&cfg->listeners, n);
	const char *text = l->address.v[i];
	char key[MP_ADDR_TEXT_MAX + 8];

	address_key(text, key, sizeof(key));
	if (address_used(l, i, key)) {
		*error_r = mp_cfg_error_at(cfg->file, l->line,
					   "listen: address '%s' is given "
					   "twice",
					   text);
		return false;
	}
	for (size_t j = 0; j < n; j++) {
		const struct mp_cfg_listener *o =
			mp_cfg_record(&cfg->listeners, j);
		if (address_used(o, o->address.n, key)) {
			*error_r = mp_cfg_error_at(
				cfg->file, l->line,
				"listen: address '%s' is also used by the "
				"listener at line %d",
				text, o->line);
			return false;
		}
	}
	return true;
}

static bool
check_listener(const struct mp_config *cfg, size_t n, char **error_r)
{
	const struct mp_cfg_listener *l = mp_cfg_record(&cfg->listeners, n);

	for (size_t i = 0; i < l->address.n; i++) {
		if (!check_address(cfg, n, i, error_r))
			return false;
	}
	for (size_t j = 0; j < n; j++) {
		const struct mp_cfg_listener *o =
			mp_cfg_record(&cfg->listeners, j);
		if (strcmp(o->name, l->name) == 0) {
			*error_r =
				mp_cfg_error_at(cfg->file, l->line,
						"listen: name '%s' is also "
						"used by the listener "
						"at line %d; give each a name",
						l->name, o->line);
			return false;
		}
	}
	if (l->tls != MP_TLS_NONE && cfg->tls.n == 0) {
		*error_r = mp_cfg_error_at(cfg->file, l->line,
					   "listen: tls = \"%s\" needs a "
					   "certificate: add tls { cert = ..., "
					   "key = ... }",
					   tls_modes[l->tls]);
		return false;
	}
	return true;
}

/* One certificate without names is the default; a second is ambiguous. */
static bool
check_tls(const struct mp_config *cfg, char **error_r)
{
	const struct mp_cfg_tls *first = NULL;

	for (size_t i = 0; i < cfg->tls.n; i++) {
		const struct mp_cfg_tls *t = mp_cfg_record(&cfg->tls, i);
		if (t->names.n > 0)
			continue;
		if (first != NULL) {
			*error_r = mp_cfg_error_at(
				cfg->file, t->line,
				"tls: only one certificate may go without "
				"names (the default is at line %d)",
				first->line);
			return false;
		}
		first = t;
	}
	return true;
}

/* The delimiter splits a local part, so it must be a character a local
 * part may hold, and not the '@' that ends it. */
static bool
check_delimiter(const struct mp_config *cfg, char **error_r)
{
	const char *d = cfg->settings->recipient_delimiter;
	const struct mp_cfg_field *f = mp_cfg_field_find(
		&mp_cfg_settings_schema, "recipient_delimiter");

	for (const char *p = d; *p != '\0'; p++) {
		if (*p > ' ' && *p < 0x7f && *p != '@' && *p != '"' &&
		    *p != '\\')
			continue;
		*error_r = mp_cfg_error_at(
			cfg->file, cfg->setting_lines[f - settings_fields],
			"recipient_delimiter: '%s' may hold only printable "
			"ASCII characters other than @, \" and \\",
			d);
		return false;
	}
	return true;
}

/* Name servers are IP literals: the resolver cannot look itself up. */
static bool
check_dns(const struct mp_config *cfg, char **error_r)
{
	const struct mp_cfg_slot *slot = &cfg->slots[MP_CFG_SLOT_DNS];
	const struct mp_cfg_dns *dns = slot->data;
	struct sockaddr_storage ss;
	socklen_t len;

	for (size_t i = 0; i < dns->servers.n; i++) {
		if (mp_addr_parse(dns->servers.v[i], false, &ss, &len))
			continue;
		*error_r = mp_cfg_error_at(
			cfg->file, slot->line,
			"dns.servers: '%s' is not an IP address (write "
			"192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53; "
			"host names are not allowed)",
			dns->servers.v[i]);
		return false;
	}
	return true;
}

bool
mp_cfg_core_check(const struct mp_config *cfg, char **error_r)
{
	if (!check_delimiter(cfg, error_r) || !check_dns(cfg, error_r))
		return false;
	for (size_t n = 0; n < cfg->listeners.n; n++) {
		if (!check_listener(cfg, n, error_r))
			return false;
	}
	return check_tls(cfg, error_r);
}
