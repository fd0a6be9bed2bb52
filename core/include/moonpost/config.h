/* config.h - the configuration: a Lua file of declarative tables.
 *
 * A config file is Lua evaluated in a sandbox. Plain settings are global
 * assignments (`hostname = "mail.example.org"`); sections and repeatable
 * records are calls with a table (`smtp { max_recipients = 50 }`,
 * `listen { protocol = "imap", address = "[::]:993", tls = "implicit" }`),
 * so that every error can name the file and line it comes from.
 *
 * Each section is described by a schema (struct mp_cfg_section) that maps
 * keys to fields of a C struct. The core validates every section, a plugin's
 * section included, and fills the struct; code then reads plain typed fields.
 * A loaded config is immutable and reference-counted: SIGHUP builds a new one
 * and connections keep the generation they started with. */
#ifndef MOONPOST_CONFIG_H
#define MOONPOST_CONFIG_H

#include <moonpost/common.h>
#include <moonpost/log.h>

enum mp_cfg_type {
	MP_CFG_BOOL,     /* bool */
	MP_CFG_INT,      /* int64_t, within [min, max] */
	MP_CFG_SIZE,     /* uint64_t bytes; 1048576 or "1M" ("K", "M", "G") */
	MP_CFG_DURATION, /* uint64_t milliseconds; 30 (seconds) or "30s", "5m",
			    "2h", "1d", "250ms" */
	MP_CFG_STRING,   /* char *, owned by the config */
	MP_CFG_PATH,     /* char *, relative paths resolved against the
			    config file's directory */
	MP_CFG_ENUM,     /* int, index into choices */
	MP_CFG_STRLIST,  /* struct mp_strlist; a single string is a list of one
			  */
};

/* One key of a section. */
struct mp_cfg_field {
	const char *key;
	enum mp_cfg_type type;
	size_t offset;              /* of the field in the section's struct */
	int64_t min, max;           /* INT, SIZE, DURATION; max 0 = no limit */
	const char *const *choices; /* ENUM: NULL-terminated names */
	bool required;
	const char *help; /* one line, shown by check-config errors */
};

/* A section: `name { key = value, ... }`. */
struct mp_cfg_section {
	const char *name;
	const struct mp_cfg_field *fields;
	size_t n_fields;
	size_t struct_size;
	/* Fills a zeroed struct with the defaults (strings must be
	 * mp_xstrdup()ed: the config frees them). NULL: all zero. */
	void (*set_defaults)(void *section);
	/* Checks rules that span several keys; NULL when there are none.
	 * Returns false and sets *error_r (static or owned by the section) to
	 * reject the section. */
	bool (*check)(const void *section, const char **error_r);
	/* A record that may appear many times (listen, tls). Core records only:
	 * a plugin section is always given at most once. */
	bool repeatable;
};

enum mp_tls_mode {
	MP_TLS_NONE = 0, /* plaintext only */
	MP_TLS_STARTTLS, /* plaintext, upgraded in place on request */
	MP_TLS_IMPLICIT, /* TLS from the first byte */
};

/* `listen { ... }`: one listener, possibly on several addresses. */
struct mp_cfg_listener {
	char *name;                /* defaults to protocol/role */
	char *protocol;            /* plugin name: smtp, imap, pop3 */
	char *role;                /* mx, submission, ...; plugin-specific */
	struct mp_strlist address; /* "127.0.0.1:25", "[::]:25" */
	int tls;                   /* enum mp_tls_mode */
	int line;                  /* where it was declared */
};

/* `tls { ... }`: a certificate. The first without names is the default;
 * others are chosen by SNI when the client asks for one of their names. */
struct mp_cfg_tls {
	char *cert;
	char *key;
	struct mp_strlist names;
	int line;
};

struct mp_cfg_limits {
	int64_t connections;        /* whole server */
	int64_t connections_per_ip; /* per IPv4 address or IPv6 /64 */
	uint64_t shutdown_grace;    /* ms given to sessions on SIGTERM */
};

struct mp_cfg_lua {
	struct mp_strlist scripts; /* loaded in order at start and SIGHUP */
	uint64_t memory;           /* bytes a single hook call may hold */
	uint64_t memory_total;     /* bytes the whole Lua state may hold */
	int64_t instructions;      /* VM instructions per hook call */
	uint64_t timeout;          /* ms a hook call may take, waits included */
};

struct mp_cfg_log {
	int level; /* enum mp_log_level */
};

/* `auth { ... }`: failed-login throttling. A limit of 0 turns it off. */
struct mp_cfg_auth {
	int64_t max_failures_per_ip;      /* per IPv4 address or IPv6 /64 */
	int64_t max_failures_per_account; /* from addresses not known good */
	uint64_t window;     /* ms over which the allowance refills */
	uint64_t known_good; /* ms an address stays known good for an
				account after a successful login there */
	uint64_t cache_ttl;  /* ms a verified password is remembered; 0: no
				cache */
};

/* `quota { ... }`: what one account may store. 0 means no limit. */
struct mp_cfg_quota {
	uint64_t storage; /* bytes of messages, as IMAP RFC822.SIZE counts */
	int64_t messages;
};

/* `dns { ... }`: the resolver (c-ares). */
struct mp_cfg_dns {
	struct mp_strlist servers; /* "IP:port", "[IPv6]:port"; none: the
				      nameservers of /etc/resolv.conf */
	uint64_t timeout;          /* ms for the first try of a query */
	int64_t tries;             /* sends per server before giving up */
	int64_t max_queries;       /* queries in flight at once */
};

struct mp_config;

/* Reads, evaluates and validates a config file. Sections that belong to
 * plugins are checked against the schemas in plugin_sections (NULL-ended).
 * Returns NULL and sets *error_r ("file:line: message", caller frees) on
 * failure. The caller owns the result (mp_config_unref). */
MP_API struct mp_config *
mp_config_load(const char *path,
	       const struct mp_cfg_section *const *plugin_sections,
	       char **error_r);
/* Same as mp_config_load() for Lua source text; `name` is used in errors
 * and relative paths resolve against base_dir. */
MP_API struct mp_config *mp_config_load_string(
	const char *name, const char *source, const char *base_dir,
	const struct mp_cfg_section *const *plugin_sections, char **error_r);
/* Adds a reference and returns cfg, which the caller may now keep (and must
 * mp_config_unref). Takes a const pointer so a borrowed generation, such as
 * mp_conn_config()'s, can be kept. */
MP_API struct mp_config *mp_config_ref(const struct mp_config *cfg);
/* Drops a reference, freeing the config with the last one; sets *cfg NULL. */
MP_API void mp_config_unref(struct mp_config **cfg);

/* The file the config came from ("<dev>" for the built-in dev config). */
MP_API const char *mp_config_file(const struct mp_config *cfg);
/* hostname: the name the server gives itself in greetings. */
MP_API const char *mp_config_hostname(const struct mp_config *cfg);
/* data_dir: where mail, accounts and state live (absolute path). */
MP_API const char *mp_config_data_dir(const struct mp_config *cfg);
/* user: the account to switch to after binding, or NULL. */
MP_API const char *mp_config_user(const struct mp_config *cfg);
/* plugin_dir from the file, or NULL for the built-in default. */
MP_API const char *mp_config_plugin_dir(const struct mp_config *cfg);
/* passwd: the account file (absolute path). */
MP_API const char *mp_config_passwd_file(const struct mp_config *cfg);
/* aliases: the alias file (absolute path); a missing file means none. */
MP_API const char *mp_config_aliases_file(const struct mp_config *cfg);
/* recipient_delimiter: characters that start an address's detail
 * ("+" for alice+tag@...); "" when subaddressing is off. */
MP_API const char *mp_config_recipient_delimiter(const struct mp_config *cfg);
/* domains: the mail domains this server is final destination for. */
MP_API const struct mp_strlist *mp_config_domains(const struct mp_config *cfg);
/* True when domain (any case) is one of the local domains. */
MP_API bool mp_config_is_local_domain(const struct mp_config *cfg,
				      const char *domain);
/* threads: size of the blocking-work thread pool. */
MP_API int mp_config_threads(const struct mp_config *cfg);
/* The limits section. */
MP_API const struct mp_cfg_limits *
mp_config_limits(const struct mp_config *cfg);
/* The lua section. */
MP_API const struct mp_cfg_lua *mp_config_lua(const struct mp_config *cfg);
/* The log section. */
MP_API const struct mp_cfg_log *mp_config_log(const struct mp_config *cfg);
/* The auth section. */
MP_API const struct mp_cfg_auth *mp_config_auth(const struct mp_config *cfg);
/* The quota section. */
MP_API const struct mp_cfg_quota *mp_config_quota(const struct mp_config *cfg);
/* The dns section. */
MP_API const struct mp_cfg_dns *mp_config_dns(const struct mp_config *cfg);
/* Number of `listen` records. */
MP_API size_t mp_config_listener_count(const struct mp_config *cfg);
/* The i-th `listen` record, in file order. */
MP_API const struct mp_cfg_listener *
mp_config_listener(const struct mp_config *cfg, size_t i);
/* Number of `tls` records. */
MP_API size_t mp_config_tls_count(const struct mp_config *cfg);
/* The i-th `tls` record, in file order. */
MP_API const struct mp_cfg_tls *mp_config_tls(const struct mp_config *cfg,
					      size_t i);
/* The filled struct of a plugin section (defaults when the file has none),
 * or NULL when no schema of that name was given to mp_config_load(). */
MP_API const void *mp_config_section(const struct mp_config *cfg,
				     const char *name);
/* Line where a plugin section was written, 0 when defaults are used. */
MP_API int mp_config_section_line(const struct mp_config *cfg,
				  const char *name);

/* Parses "10M"-style sizes; false on junk or overflow. */
MP_API bool mp_cfg_parse_size(const char *s, uint64_t *bytes_r);
/* Parses "30s"-style durations into ms; a bare number is seconds. */
MP_API bool mp_cfg_parse_duration(const char *s, uint64_t *ms_r);

#endif
