/* test-config.c - unit tests of the config loader. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <moonpost/config.h>

/* Every test writes its config to CONF in a fresh temp directory. */
static char *tmpdir;
static char *conf_path;

/* ---- a plugin section, as smtp would declare it ---- */

struct test_smtp {
	int64_t max_recipients;
	uint64_t max_size;
	uint64_t timeout;
	bool pipelining;
	char *banner;
	char *spool;
	int mode;
	struct mp_strlist relays;
};

static const char *const smtp_modes[] = {"strict", "relaxed", NULL};

#define SMTP(k, t, ...)                                                        \
	{                                                                      \
		.key = #k, .type = t, .offset = offsetof(struct test_smtp, k), \
		__VA_ARGS__                                                    \
	}

static const struct mp_cfg_field smtp_fields[] = {
	SMTP(max_recipients, MP_CFG_INT, .min = 1, .max = 1000),
	SMTP(max_size, MP_CFG_SIZE),
	SMTP(timeout, MP_CFG_DURATION),
	SMTP(pipelining, MP_CFG_BOOL),
	SMTP(banner, MP_CFG_STRING),
	SMTP(spool, MP_CFG_PATH),
	SMTP(mode, MP_CFG_ENUM, .choices = smtp_modes),
	SMTP(relays, MP_CFG_STRLIST),
};

static void
smtp_defaults(void *p)
{
	struct test_smtp *s = p;

	s->max_recipients = 100;
	s->max_size = 10 * 1024 * 1024;
	s->timeout = 300000;
	s->pipelining = true;
	s->banner = mp_xstrdup("hello"); /* the config frees it */
}

static bool
smtp_check(const void *p, const char **error_r)
{
	const struct test_smtp *s = p;

	if (s->max_recipients == 13) {
		*error_r = "13 recipients is unlucky";
		return false;
	}
	return true;
}

static const struct mp_cfg_section smtp_schema = {
	.name = "smtp",
	.fields = smtp_fields,
	.n_fields = G_N_ELEMENTS(smtp_fields),
	.struct_size = sizeof(struct test_smtp),
	.set_defaults = smtp_defaults,
	.check = smtp_check,
};

static const struct mp_cfg_section *const plugins[] = {&smtp_schema, NULL};

/* ---- helpers ---- */

static struct mp_config *
load_with(const char *text, const struct mp_cfg_section *const *sections,
	  char **error_r)
{
	GError *gerr = NULL;

	*error_r = NULL;
	g_assert_true(g_file_set_contents(conf_path, text, -1, &gerr));
	g_assert_no_error(gerr);
	return mp_config_load(conf_path, sections, error_r);
}

static struct mp_config *
load_ok(const char *text)
{
	char *error = NULL;
	struct mp_config *cfg = load_with(text, plugins, &error);

	g_assert_cmpstr(error, ==, NULL);
	g_assert_nonnull(cfg);
	return cfg;
}

/* Loading text fails with exactly "CONF:line: msg" ("CONF: msg" for 0). */
static void
check_error(const char *text, int line, const char *msg)
{
	char *error = NULL;
	struct mp_config *cfg = load_with(text, plugins, &error);
	char *want =
		line > 0 ? g_strdup_printf("%s:%d: %s", conf_path, line, msg)
			 : g_strdup_printf("%s: %s", conf_path, msg);

	g_assert_null(cfg);
	g_assert_cmpstr(error, ==, want);
	g_free(want);
	free(error);
}

/* Same, where only the start of the message is fixed (Lua's wording). */
static void
check_error_prefix(const char *text, int line, const char *msg)
{
	char *error = NULL;
	struct mp_config *cfg = load_with(text, plugins, &error);
	char *want = g_strdup_printf("%s:%d: %s", conf_path, line, msg);

	g_assert_null(cfg);
	g_assert_nonnull(error);
	if (!g_str_has_prefix(error, want))
		g_error("got \"%s\", want a prefix \"%s\"", error, want);
	g_free(want);
	free(error);
}

static char *
in_tmp(const char *name)
{
	return g_build_filename(tmpdir, name, NULL);
}

/* ---- whole configs ---- */

/* Lines checked below: tls at 7 and 8, listen at 10 and 12, smtp at 19. */
/* clang-format off */
static const char full_config[] =
	"hostname = \"mail.example.org\"\n"
	"data_dir = \"data\"\n"
	"user     = \"moonpost\"\n"
	"plugin_dir = \"/usr/lib/moonpost\"\n"
	"domains  = { \"Example.ORG\", \"example.net\" }\n"
	"threads  = 4\n"
	"tls { cert = \"/etc/moonpost/cert.pem\", key = \"key.pem\" }\n"
	"tls { names = { \"mail.example.net\" }, cert = \"net.pem\",\n"
	"      key = \"net.key\" }\n"
	"listen { name = \"mx\", protocol = \"smtp\", role = \"mx\",\n"
	"         address = { \"0.0.0.0:25\", \"[::]:25\" }, tls = \"starttls\" }\n"
	"listen { protocol = \"imap\", address = \"[::]:993\", tls = \"implicit\" }\n"
	"\n"
	"limits { connections = 2000, connections_per_ip = 20,\n"
	"         shutdown_grace = \"15s\" }\n"
	"lua { scripts = { \"rules.lua\", \"/opt/x.lua\" }, memory = \"8M\",\n"
	"      memory_total = 67108864, instructions = 1e6, timeout = \"5s\" }\n"
	"log { level = \"warn\" }\n"
	"smtp { max_recipients = 50, max_size = \"20M\", timeout = \"2m\",\n"
	"       pipelining = false, banner = \"hi\", spool = \"spool\",\n"
	"       mode = \"relaxed\", relays = \"10.0.0.1\" }\n";
/* clang-format on */

static void
check_full_records(const struct mp_config *cfg)
{
	const struct mp_cfg_listener *l;
	const struct mp_cfg_tls *t;
	char *p;

	g_assert_cmpuint(mp_config_tls_count(cfg), ==, 2);
	t = mp_config_tls(cfg, 0);
	g_assert_cmpstr(t->cert, ==, "/etc/moonpost/cert.pem");
	p = in_tmp("key.pem");
	g_assert_cmpstr(t->key, ==, p);
	g_free(p);
	g_assert_cmpuint(t->names.n, ==, 0);
	g_assert_cmpint(t->line, ==, 7);
	t = mp_config_tls(cfg, 1);
	g_assert_cmpuint(t->names.n, ==, 1);
	g_assert_cmpstr(t->names.v[0], ==, "mail.example.net");
	g_assert_cmpint(t->line, ==, 8);
	g_assert_null(mp_config_tls(cfg, 2));

	g_assert_cmpuint(mp_config_listener_count(cfg), ==, 2);
	l = mp_config_listener(cfg, 0);
	g_assert_cmpstr(l->name, ==, "mx");
	g_assert_cmpstr(l->protocol, ==, "smtp");
	g_assert_cmpstr(l->role, ==, "mx");
	g_assert_cmpuint(l->address.n, ==, 2);
	g_assert_cmpstr(l->address.v[0], ==, "0.0.0.0:25");
	g_assert_cmpstr(l->address.v[1], ==, "[::]:25");
	g_assert_cmpint(l->tls, ==, MP_TLS_STARTTLS);
	g_assert_cmpint(l->line, ==, 10);
	l = mp_config_listener(cfg, 1);
	g_assert_cmpstr(l->name, ==, "imap");
	g_assert_null(l->role);
	g_assert_cmpint(l->tls, ==, MP_TLS_IMPLICIT);
	g_assert_cmpint(l->line, ==, 12);
	g_assert_null(mp_config_listener(cfg, 2));
}

static void
check_full_sections(const struct mp_config *cfg)
{
	const struct mp_cfg_limits *lim = mp_config_limits(cfg);
	const struct mp_cfg_lua *lua = mp_config_lua(cfg);
	const struct test_smtp *smtp = mp_config_section(cfg, "smtp");
	char *p;

	g_assert_cmpint(lim->connections, ==, 2000);
	g_assert_cmpint(lim->connections_per_ip, ==, 20);
	g_assert_cmpuint(lim->shutdown_grace, ==, 15000);
	g_assert_cmpuint(lua->scripts.n, ==, 2);
	p = in_tmp("rules.lua");
	g_assert_cmpstr(lua->scripts.v[0], ==, p);
	g_free(p);
	g_assert_cmpstr(lua->scripts.v[1], ==, "/opt/x.lua");
	g_assert_cmpuint(lua->memory, ==, 8 * 1024 * 1024);
	g_assert_cmpuint(lua->memory_total, ==, 64 * 1024 * 1024);
	g_assert_cmpint(lua->instructions, ==, 1000000);
	g_assert_cmpuint(lua->timeout, ==, 5000);
	g_assert_cmpint(mp_config_log(cfg)->level, ==, MP_LOG_WARN);

	g_assert_nonnull(smtp);
	g_assert_cmpint(mp_config_section_line(cfg, "smtp"), ==, 19);
	g_assert_cmpint(smtp->max_recipients, ==, 50);
	g_assert_cmpuint(smtp->max_size, ==, 20 * 1024 * 1024);
	g_assert_cmpuint(smtp->timeout, ==, 120000);
	g_assert_false(smtp->pipelining);
	g_assert_cmpstr(smtp->banner, ==, "hi");
	p = in_tmp("spool");
	g_assert_cmpstr(smtp->spool, ==, p);
	g_free(p);
	g_assert_cmpint(smtp->mode, ==, 1);
	g_assert_cmpuint(smtp->relays.n, ==, 1);
	g_assert_cmpstr(smtp->relays.v[0], ==, "10.0.0.1");
	g_assert_null(mp_config_section(cfg, "imap"));
	g_assert_cmpint(mp_config_section_line(cfg, "imap"), ==, 0);
}

static void
test_full(void)
{
	struct mp_config *cfg = load_ok(full_config);
	const struct mp_strlist *domains = mp_config_domains(cfg);
	char *p;

	g_assert_cmpstr(mp_config_file(cfg), ==, conf_path);
	g_assert_cmpstr(mp_config_hostname(cfg), ==, "mail.example.org");
	p = in_tmp("data");
	g_assert_cmpstr(mp_config_data_dir(cfg), ==, p);
	g_free(p);
	p = in_tmp("data/passwd");
	g_assert_cmpstr(mp_config_passwd_file(cfg), ==, p);
	g_free(p);
	g_assert_cmpstr(mp_config_user(cfg), ==, "moonpost");
	g_assert_cmpstr(mp_config_plugin_dir(cfg), ==, "/usr/lib/moonpost");
	g_assert_cmpuint(domains->n, ==, 2);
	g_assert_cmpstr(domains->v[0], ==, "example.org");
	g_assert_cmpstr(domains->v[1], ==, "example.net");
	g_assert_true(mp_config_is_local_domain(cfg, "EXAMPLE.net"));
	g_assert_false(mp_config_is_local_domain(cfg, "example.com"));
	g_assert_cmpint(mp_config_threads(cfg), ==, 4);
	check_full_records(cfg);
	check_full_sections(cfg);
	mp_config_unref(&cfg);
	g_assert_null(cfg);
}

static void
test_defaults(void)
{
	struct mp_config *cfg = load_ok("-- nothing\n");
	const struct test_smtp *smtp = mp_config_section(cfg, "smtp");
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	g_assert_cmpstr(mp_config_hostname(cfg), ==, host);
	g_assert_cmpstr(mp_config_data_dir(cfg), ==, "/var/lib/moonpost");
	g_assert_cmpstr(mp_config_passwd_file(cfg), ==,
			"/var/lib/moonpost/passwd");
	g_assert_null(mp_config_user(cfg));
	g_assert_null(mp_config_plugin_dir(cfg));
	g_assert_cmpuint(mp_config_domains(cfg)->n, ==, 0);
	g_assert_cmpint(mp_config_threads(cfg), >=, 2);
	g_assert_cmpint(mp_config_threads(cfg), <=, 16);
	g_assert_cmpint(mp_config_limits(cfg)->connections, ==, 1000);
	g_assert_cmpint(mp_config_limits(cfg)->connections_per_ip, ==, 20);
	g_assert_cmpuint(mp_config_limits(cfg)->shutdown_grace, ==, 10000);
	g_assert_cmpuint(mp_config_lua(cfg)->memory, ==, 8 << 20);
	g_assert_cmpuint(mp_config_lua(cfg)->memory_total, ==, 64 << 20);
	g_assert_cmpint(mp_config_lua(cfg)->instructions, ==, 1000000);
	g_assert_cmpuint(mp_config_lua(cfg)->timeout, ==, 5000);
	g_assert_cmpuint(mp_config_lua(cfg)->scripts.n, ==, 0);
	g_assert_cmpint(mp_config_log(cfg)->level, ==, MP_LOG_INFO);
	g_assert_cmpuint(mp_config_listener_count(cfg), ==, 0);
	g_assert_cmpuint(mp_config_tls_count(cfg), ==, 0);
	/* A plugin section the file does not write holds its defaults. */
	g_assert_nonnull(smtp);
	g_assert_cmpint(mp_config_section_line(cfg, "smtp"), ==, 0);
	g_assert_cmpint(smtp->max_recipients, ==, 100);
	g_assert_cmpstr(smtp->banner, ==, "hello");
	g_assert_true(smtp->pipelining);
	mp_config_unref(&cfg);
}

/* Settings can be read back, and code can build values. */
static void
test_read_back(void)
{
	struct mp_config *cfg =
		load_ok("data_dir = \"/srv/mail\"\n"
			"passwd = data_dir .. \"/users\"\n"
			"local ds = {}\n"
			"for _, d in ipairs { \"a.test\", \"b.test\" } do\n"
			"  ds[#ds + 1] = d\n"
			"end\n"
			"domains = ds\n"
			"for i, port in ipairs { 25, 587 } do\n"
			"  listen { protocol = \"smtp\", name = \"s\" .. i,\n"
			"           address = \"127.0.0.1:\" .. port }\n"
			"end\n");

	g_assert_cmpstr(mp_config_passwd_file(cfg), ==, "/srv/mail/users");
	g_assert_cmpuint(mp_config_domains(cfg)->n, ==, 2);
	g_assert_cmpuint(mp_config_listener_count(cfg), ==, 2);
	g_assert_cmpstr(mp_config_listener(cfg, 1)->address.v[0], ==,
			"127.0.0.1:587");
	g_assert_cmpint(mp_config_listener(cfg, 1)->line, ==, 9);
	mp_config_unref(&cfg);
}

static void
test_refcount(void)
{
	struct mp_config *cfg = load_ok("hostname = \"a\"\n");
	struct mp_config *other = mp_config_ref(cfg);

	g_assert_true(other == cfg);
	mp_config_unref(&cfg);
	g_assert_null(cfg);
	/* Still alive through the second reference. */
	g_assert_cmpstr(mp_config_hostname(other), ==, "a");
	mp_config_unref(&other);
	g_assert_null(other);
	mp_config_unref(&other); /* harmless */
	g_assert_null(mp_config_ref(NULL));
}

static void
test_load_string(void)
{
	char *error = NULL;
	struct mp_config *cfg = mp_config_load_string(
		"<dev>", "data_dir = \"d\"\n", "/srv", plugins, &error);

	g_assert_cmpstr(error, ==, NULL);
	g_assert_cmpstr(mp_config_file(cfg), ==, "<dev>");
	g_assert_cmpstr(mp_config_data_dir(cfg), ==, "/srv/d");
	mp_config_unref(&cfg);

	cfg = mp_config_load_string("<dev>", "hostname = 1\n\nx = =\n", "/srv",
				    plugins, &error);
	g_assert_null(cfg);
	g_assert_true(g_str_has_prefix(error, "<dev>:3: "));
	free(error);
}

static void
test_missing_file(void)
{
	char *error = NULL;
	char *path = in_tmp("nope.conf");
	char *want = g_strdup_printf("%s: cannot open: %s", path,
				     g_strerror(ENOENT));

	g_assert_null(mp_config_load(path, plugins, &error));
	g_assert_cmpstr(error, ==, want);
	free(error);
	g_free(want);
	g_free(path);
}

/* Lua shortens long chunk names; errors must still give the full path. */
static void
test_long_path(void)
{
	char *dir = in_tmp("a-directory-name-long-enough-to-be-cut-by-lua-"
			   "in-its-messages");
	char *path = g_build_filename(dir, "moonpost.conf", NULL);
	char *error = NULL;
	char *want = g_strdup_printf("%s:2: ", path);

	g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
	g_assert_true(g_file_set_contents(path, "\nx = = 1\n", -1, NULL));
	g_assert_null(mp_config_load(path, plugins, &error));
	if (!g_str_has_prefix(error, want))
		g_error("got \"%s\"", error);
	free(error);
	g_assert_true(g_file_set_contents(path, "\nerror('boom')\n", -1, NULL));
	g_assert_null(mp_config_load(path, plugins, &error));
	g_assert_true(g_str_has_prefix(error, want));
	free(error);
	g_unlink(path);
	g_rmdir(dir);
	g_free(want);
	g_free(path);
	g_free(dir);
}

/* ---- Lua errors ---- */

static void
test_syntax_error(void)
{
	check_error_prefix("hostname = \"a\"\n\nfoo = = 3\n", 3,
			   "unexpected symbol near '='");
}

static void
test_runtime_error(void)
{
	check_error_prefix("local t = nil\n\nlocal y = t.field\n", 3,
			   "attempt to index a nil value (local 't')");
	check_error("\nerror('boom')\n", 2, "boom");
	/* Without a position from Lua, the line still comes through. */
	check_error("\n\nerror('plain', 0)\n", 3, "plain");
	check_error("\nerror({})\n", 2, "error object is a table value");
	check_error_prefix("hostname = hostnam .. \"x\"\n", 1,
			   "attempt to concatenate a nil value "
			   "(global 'hostnam')");
}

static void
test_call_nil(void)
{
	struct mp_config *cfg;

	check_error("local f\n\nf()\n", 3,
		    "attempt to call a nil value (local 'f')");
	check_error("\nfoo(1)\n", 2,
		    "attempt to call a nil value (global 'foo')");
	/* pcall catches it like any runtime error. */
	cfg = load_ok("assert(not pcall(foo, 1))\n");
	mp_config_unref(&cfg);
}

/* ---- settings ---- */

static void
test_setting_unknown(void)
{
	check_error("\nhostnme = \"x\"\n", 2,
		    "unknown setting 'hostnme'; did you mean 'hostname'?");
	check_error("frobnicate = 1\n", 1, "unknown setting 'frobnicate'");
	check_error("function helper() end\n", 1, "unknown setting 'helper'");
	check_error("_ENV[1] = 2\n", 1, "only named settings can be assigned");
}

static void
test_setting_twice(void)
{
	check_error("hostname = \"a\"\nuser = \"u\"\nhostname = \"b\"\n", 3,
		    "hostname: set twice (first at line 1)");
}

/* A multi-line assignment is reported where Lua stores it: its last line
 * (calls, by contrast, report the line they start on). */
static void
test_setting_multiline(void)
{
	check_error("domains = {\n  \"a\",\n  5,\n}\n", 4,
		    "domains[2]: expected a string, got 5");
}

static void
test_setting_types(void)
{
	check_error("hostname = 5\n", 1, "hostname: expected a string, got 5");
	check_error("data_dir = false\n", 1,
		    "data_dir: expected a path, got boolean");
	check_error("data_dir = \"\"\n", 1,
		    "data_dir: expected a path, got ''");
	check_error("threads = \"4\"\n", 1,
		    "threads: expected an integer, got '4'");
	check_error("threads = 0\n", 1,
		    "threads: must be between 1 and 256, got 0");
	check_error("threads = 257\n", 1,
		    "threads: must be between 1 and 256, got 257");
	check_error("domains = { \"a\", true }\n", 1,
		    "domains[2]: expected a string, got boolean");
	check_error("user = nil\n", 1, "user: expected a string, got nil");
}

/* ---- sections ---- */

static void
test_section_twice(void)
{
	check_error(
		"limits { connections = 5 }\n\nlimits { connections = 6 }\n", 3,
		"limits: given twice (first at line 1)");
	check_error("smtp { }\nsmtp { }\n", 2,
		    "smtp: given twice (first at line 1)");
}

static void
test_section_assigned(void)
{
	check_error("\nsmtp = { max_recipients = 5 }\n", 2,
		    "smtp is a section: write smtp { ... }");
	check_error("limits = 5\n", 1,
		    "limits is a section: write limits { ... }");
}

static void
test_section_unknown(void)
{
	check_error("\nsmtpp { max_recipients = 5 }\n", 2,
		    "unknown section 'smtpp'; did you mean 'smtp'?");
	check_error("imap { }\n", 1, "unknown section 'imap'");
}

static void
test_section_not_table(void)
{
	check_error("limits \"x\"\n", 1,
		    "limits: expected one table, as in limits { ... }");
	check_error("listen({}, {})\n", 1,
		    "listen: expected one table, as in listen { ... }");
	check_error("log { \"debug\" }\n", 1,
		    "log: unexpected value without a key (write key = value)");
	check_error("log { [true] = 1 }\n", 1,
		    "log: keys must be names, got boolean");
}

static void
test_section_unknown_key(void)
{
	check_error("\n\nsmtp { max_recipent = 5 }\n", 3,
		    "smtp: unknown key 'max_recipent'; did you mean "
		    "'max_recipients'?");
	check_error("limits { conections = 5 }\n", 1,
		    "limits: unknown key 'conections'; did you mean "
		    "'connections'?");
	check_error("limits { zzz = 5 }\n", 1, "limits: unknown key 'zzz'");
	check_error("listen { protocol = \"smtp\", adress = \"[::]:25\" }\n", 1,
		    "listen: unknown key 'adress'; did you mean 'address'?");
}

/* One wrong value per type, through the plugin section. */
static void
test_section_types(void)
{
	static const struct {
		const char *value, *message;
	} cases[] = {
		{"pipelining = \"yes\"",
		 "smtp.pipelining: expected true or false, got 'yes'"},
		{"pipelining = function() end",
		 "smtp.pipelining: expected true or false, got function"},
		{"max_recipients = \"5\"",
		 "smtp.max_recipients: expected an integer, got '5'"},
		{"max_recipients = 1.5",
		 "smtp.max_recipients: expected an integer, got 1.5"},
		{"max_recipients = 0",
		 "smtp.max_recipients: must be between 1 and 1000, got 0"},
		{"max_size = true",
		 "smtp.max_size: expected a size like 10M, got boolean"},
		{"max_size = \"10X\"",
		 "smtp.max_size: expected a size like 10M, got '10X'"},
		{"max_size = -1",
		 "smtp.max_size: expected a size like 10M, got -1"},
		{"max_size = \"99999999999999999999G\"",
		 "smtp.max_size: expected a size like 10M, "
		 "got '99999999999999999999G'"},
		{"max_size = \"9000000000G\"",
		 "smtp.max_size: expected a size like 10M, got '9000000000G'"},
		{"timeout = \"1.5s\"",
		 "smtp.timeout: expected a duration like 30s, got '1.5s'"},
		{"timeout = 0.5",
		 "smtp.timeout: expected a duration like 30s, got 0.5"},
		{"timeout = {}",
		 "smtp.timeout: expected a duration like 30s, got table"},
		{"banner = 5", "smtp.banner: expected a string, got 5"},
		{"banner = \"a\\0b\"", "smtp.banner: contains a NUL byte"},
		{"spool = {}", "smtp.spool: expected a path, got table"},
		{"mode = \"fast\"",
		 "smtp.mode: expected one of strict, relaxed; got 'fast'"},
		{"mode = 1",
		 "smtp.mode: expected one of strict, relaxed; got 1"},
		{"relays = 5",
		 "smtp.relays: expected a string or a list of strings, got 5"},
		{"relays = { \"a\", 5 }",
		 "smtp.relays[2]: expected a string, got 5"},
		{"relays = { \"a\", nil, \"c\" }",
		 "smtp.relays[2] is nil: a list cannot have holes"},
		{"relays = { x = \"a\" }",
		 "smtp.relays: expected a list of strings, got key 'x'"},
		{"relays = { { \"a\" } }",
		 "smtp.relays[1]: expected a string, got table"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *text = g_strdup_printf("\nsmtp { %s }\n", cases[i].value);
		check_error(text, 2, cases[i].message);
		g_free(text);
	}
}

static void
test_section_range(void)
{
	check_error("lua { memory = \"1K\" }\n", 1,
		    "lua.memory: must be at least 64K, got 1K");
	check_error("lua { timeout = \"5ms\" }\n", 1,
		    "lua.timeout: must be at least 10ms, got 5ms");
	check_error("lua { instructions = 999 }\n", 1,
		    "lua.instructions: must be between 1000 and 10000000000, "
		    "got 999");
	check_error("limits { connections = 1e7 }\n", 1,
		    "limits.connections: must be between 1 and 1000000, got "
		    "10000000");
	check_error("limits { connections_per_ip = -5 }\n", 1,
		    "limits.connections_per_ip: must be between 1 and 100000, "
		    "got -5");
	check_error("log { level = \"verbose\" }\n", 1,
		    "log.level: expected one of debug, info, warn, error; got "
		    "'verbose'");
	/* A check across keys, at the section's line. */
	check_error("\nlua { memory = \"16M\", memory_total = \"8M\" }\n", 2,
		    "lua: memory_total must be at least memory");
}

/* ---- sizes and durations ---- */

static void
test_parse_size(void)
{
	static const struct {
		const char *s;
		bool ok;
		uint64_t bytes;
	} cases[] = {
		{"0", true, 0},
		{"100", true, 100},
		{"10K", true, 10240},
		{"512k", true, 512 * 1024},
		{"1M", true, 1 << 20},
		{"3G", true, 3ULL << 30},
		{"17179869183G", true, 17179869183ULL << 30},
		{"18446744073709551615", true, UINT64_MAX},
		{"18446744073709551616", false, 0},
		{"17179869184G", false, 0},
		{"99999999999999999999G", false, 0},
		{"1T", false, 0}, /* nothing here needs terabytes */
		{"10X", false, 0},
		{"10MB", false, 0},
		{"1.5M", false, 0},
		{"-1", false, 0},
		{"+1", false, 0},
		{" 1", false, 0},
		{"1 M", false, 0},
		{"M", false, 0},
		{"", false, 0},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		uint64_t bytes = 12345;
		bool ok = mp_cfg_parse_size(cases[i].s, &bytes);
		if (ok != cases[i].ok)
			g_error("\"%s\": %d", cases[i].s, ok);
		if (ok)
			g_assert_cmpuint(bytes, ==, cases[i].bytes);
	}
}

static void
test_parse_duration(void)
{
	static const struct {
		const char *s;
		bool ok;
		uint64_t ms;
	} cases[] = {
		{"0", true, 0},
		{"30", true, 30000},
		{"30s", true, 30000},
		{"250ms", true, 250},
		{"5m", true, 300000},
		{"2h", true, 7200000},
		{"1d", true, 86400000},
		{"1.5s", false, 0}, /* write 1500ms */
		{"5M", false, 0},   /* months or minutes? */
		{"1w", false, 0},
		{"10sec", false, 0},
		{"-1s", false, 0},
		{"s", false, 0},
		{"", false, 0},
		{"99999999999999999999d", false, 0},
		{"213503982334601d", false, 0}, /* overflows in ms */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		uint64_t ms = 12345;
		bool ok = mp_cfg_parse_duration(cases[i].s, &ms);
		if (ok != cases[i].ok)
			g_error("\"%s\": %d", cases[i].s, ok);
		if (ok)
			g_assert_cmpuint(ms, ==, cases[i].ms);
	}
}

/* ---- listen and tls ---- */

static void
test_listen_missing(void)
{
	check_error("\nlisten { address = \"[::]:25\" }\n", 2,
		    "listen: missing required key 'protocol'");
	check_error("listen { protocol = \"smtp\" }\n", 1,
		    "listen: missing required key 'address'");
	check_error("listen { protocol = \"smtp\", address = {} }\n", 1,
		    "listen.address: must not be empty");
	check_error("listen { protocol = \"\", address = \"[::]:25\" }\n", 1,
		    "listen.protocol: must not be empty");
}

static void
test_listen_bad_address(void)
{
	static const char *const bad[] = {
		"1.2.3.4",       "1.2.3.4:0",
		"1.2.3.4:70000", "[::1]25",
		"host:25",       "[::1]:",
		":25",           "1.2.3.4:25x",
		"1.2.3.4:-25",   "[1.2.3.4]:25",
		"::1:25",        "[::1:25",
		"1.2.3.256:25",  "",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *text = g_strdup_printf(
			"\nlisten { protocol = \"smtp\", address = { "
			"\"127.0.0.1:25\", \"%s\" } }\n",
			bad[i]);
		char *msg = g_strdup_printf(
			"listen.address: '%s' is not IP:port (write "
			"192.0.2.1:25 or [2001:db8::1]:25; host names are not "
			"allowed, ports are 1-65535)",
			bad[i]);
		check_error(text, 2, msg);
		g_free(text);
		g_free(msg);
	}
}

static void
test_listen_duplicate_address(void)
{
	struct mp_config *cfg;

	check_error("listen { protocol = \"smtp\", address = \"[::]:25\" }\n"
		    "\n"
		    "listen { protocol = \"imap\", address = { \"[::]:143\", "
		    "\"[::0]:25\" } }\n",
		    3,
		    "listen: address '[::0]:25' is also used by the listener "
		    "at line 1");
	check_error("listen { protocol = \"smtp\",\n"
		    "         address = { \"1.2.3.4:25\", \"1.2.3.4:25\" } }\n",
		    1, "listen: address '1.2.3.4:25' is given twice");
	/* Same port on different addresses is fine. */
	cfg = load_ok(
		"listen { protocol = \"smtp\", address = \"127.0.0.1:25\" }\n"
		"listen { protocol = \"smtp\", role = \"sub\", "
		"address = { \"127.0.0.2:25\", \"[::1]:25\" } }\n");
	g_assert_cmpstr(mp_config_listener(cfg, 0)->name, ==, "smtp");
	g_assert_cmpstr(mp_config_listener(cfg, 1)->name, ==, "smtp/sub");
	mp_config_unref(&cfg);
}

static void
test_listen_duplicate_name(void)
{
	check_error("listen { protocol = \"smtp\", address = \"[::]:25\" }\n"
		    "listen { protocol = \"smtp\", address = \"[::]:26\" }\n",
		    2,
		    "listen: name 'smtp' is also used by the listener at line "
		    "1; give each a name");
}

static void
test_listen_tls_without_cert(void)
{
	check_error("\nlisten { protocol = \"imap\", address = \"[::]:993\",\n"
		    "         tls = \"implicit\" }\n",
		    2,
		    "listen: tls = \"implicit\" needs a certificate: add tls { "
		    "cert = ..., key = ... }");
	check_error("listen { protocol = \"imap\", address = \"[::]:993\", "
		    "tls = \"yes\" }\n",
		    1,
		    "listen.tls: expected one of none, starttls, implicit; got "
		    "'yes'");
}

static void
test_tls_records(void)
{
	check_error("tls { cert = \"a.pem\" }\n", 1,
		    "tls: missing required key 'key'");
	check_error("tls { cert = \"a.pem\", key = \"a.key\" }\n"
		    "tls { cert = \"b.pem\", key = \"b.key\", names = {} }\n",
		    2,
		    "tls: only one certificate may go without names (the "
		    "default is at line 1)");
}

/* ---- plugin sections ---- */

static void
test_plugin_check(void)
{
	check_error("\nsmtp { max_recipients = 13 }\n", 2,
		    "smtp: 13 recipients is unlucky");
}

static void
test_plugin_null_ignores(void)
{
	char *error = NULL;
	struct mp_config *cfg =
		load_with("smtp { max_recipients = 5, whatever = true }\n"
			  "imap { anything = 1 }\n"
			  "limits { connections = 7 }\n",
			  NULL, &error);

	g_assert_cmpstr(error, ==, NULL);
	g_assert_null(mp_config_section(cfg, "smtp"));
	g_assert_cmpint(mp_config_limits(cfg)->connections, ==, 7);
	mp_config_unref(&cfg);
	/* Core sections and settings are still checked. */
	g_assert_null(load_with("limits { conections = 7 }\n", NULL, &error));
	g_assert_nonnull(strstr(error, ":1: limits: unknown key"));
	free(error);
	g_assert_null(load_with("hostnme = \"x\"\n", NULL, &error));
	g_assert_nonnull(strstr(error, ":1: unknown setting 'hostnme'"));
	free(error);
}

static void
test_plugin_clash(void)
{
	static const struct mp_cfg_section clash = {
		.name = "limits",
		.struct_size = 8,
	};
	static const struct mp_cfg_section *const list[] = {&smtp_schema,
							    &clash, NULL};
	char *error = NULL;

	g_assert_null(load_with("\n", list, &error));
	g_assert_nonnull(strstr(error, "section 'limits' clashes"));
	free(error);
}

/* ---- the sandbox ---- */

static void
test_sandbox_libs(void)
{
	struct mp_config *cfg = load_ok(
		"assert(io == nil and os == nil and debug == nil)\n"
		"assert(package == nil and require == nil)\n"
		"assert(dofile == nil and loadfile == nil and load == nil)\n"
		"assert(print == nil and collectgarbage == nil)\n"
		"assert(string.rep('ab', 2) == 'abab')\n"
		"assert(table.concat({1, 2}, ',') == '1,2')\n"
		"assert(math.max(1, 2) == 2 and utf8.char(65) == 'A')\n"
		"assert(_G == _ENV and getmetatable(_ENV) == false)\n");

	mp_config_unref(&cfg);
	/* The asserts above can fail. */
	check_error("\nassert(io ~= nil, \"no io\")\n", 2, "no io");
}

static void
test_sandbox_protected(void)
{
	struct mp_config *cfg;

	check_error_prefix("setmetatable({}, { __gc = function() end })\n", 1,
			   "__gc metamethods are not allowed");
	check_error_prefix("setmetatable(_ENV, nil)\n", 1,
			   "cannot change a protected metatable");
	/* setmetatable itself still works. */
	cfg = load_ok("local t = setmetatable({}, { __index = function() "
		      "return 1 end })\nassert(t.x == 1)\n");
	mp_config_unref(&cfg);
}

static void
test_sandbox_binary(void)
{
	char *error = NULL;

	g_assert_null(mp_config_load_string("<b>", "\x1bLua\x54", "/", plugins,
					    &error));
	g_assert_nonnull(strstr(error, "binary"));
	free(error);
}

static void
test_sandbox_loop(void)
{
	check_error("hostname = \"x\"\nwhile true do end\n", 2,
		    "config evaluation took too long");
	/* pcall cannot catch the budget. */
	check_error("local function spin() while true do end end\n"
		    "while true do pcall(spin) end\n",
		    1, "config evaluation took too long");
	/* A budget error after our own error keeps ours. */
	check_error("pcall(function() hostnme = 1 end)\nwhile true do end\n", 1,
		    "unknown setting 'hostnme'; did you mean 'hostname'?");
}

static void
test_sandbox_memory(void)
{
	struct mp_config *cfg;

	check_error("\nlocal s = string.rep(\"x\", 1e9)\n", 2,
		    "config evaluation ran out of memory (limit 16M)");
	check_error("local s = \"x\"\nfor i = 1, 40 do s = s .. s end\n", 2,
		    "config evaluation ran out of memory (limit 16M)");
	/* Caught by pcall, the memory is freed and life goes on. */
	cfg = load_ok("assert(not pcall(string.rep, \"x\", 1e9))\n"
		      "hostname = \"ok\"\n");
	mp_config_unref(&cfg);
}

static void
test_sandbox_big_values(void)
{
	/* A cycle is only followed as deep as a config needs. */
	check_error("local t = {}\nt[1] = t\nsmtp { relays = t }\n", 3,
		    "smtp.relays[1]: expected a string, got table");
	/* One table referenced many times must not blow up the copy. */
	check_error("local t = {}\n"
		    "for i = 1, 1000 do t[i] = 'a' end\n"
		    "local s = {}\n"
		    "for i = 1, 1000 do s['k' .. i] = t end\n"
		    "smtp(s)\n",
		    5, "smtp: too many values to copy");
	check_error("local big = string.rep('x', 1e6)\n"
		    "local t = {}\n"
		    "for i = 1, 100 do t[i] = big end\n"
		    "smtp { relays = t }\n",
		    4, "smtp: too much text to copy");
}

int
main(int argc, char **argv)
{
	GError *gerr = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("test-config-XXXXXX", &gerr);
	g_assert_no_error(gerr);
	conf_path = g_build_filename(tmpdir, "moonpost.conf", NULL);

	g_test_add_func("/config/full", test_full);
	g_test_add_func("/config/defaults", test_defaults);
	g_test_add_func("/config/read-back", test_read_back);
	g_test_add_func("/config/refcount", test_refcount);
	g_test_add_func("/config/load-string", test_load_string);
	g_test_add_func("/config/missing-file", test_missing_file);
	g_test_add_func("/config/long-path", test_long_path);
	g_test_add_func("/config/lua/syntax-error", test_syntax_error);
	g_test_add_func("/config/lua/runtime-error", test_runtime_error);
	g_test_add_func("/config/lua/call-nil", test_call_nil);
	g_test_add_func("/config/setting/unknown", test_setting_unknown);
	g_test_add_func("/config/setting/twice", test_setting_twice);
	g_test_add_func("/config/setting/multiline", test_setting_multiline);
	g_test_add_func("/config/setting/types", test_setting_types);
	g_test_add_func("/config/section/twice", test_section_twice);
	g_test_add_func("/config/section/assigned", test_section_assigned);
	g_test_add_func("/config/section/unknown", test_section_unknown);
	g_test_add_func("/config/section/not-table", test_section_not_table);
	g_test_add_func("/config/section/unknown-key",
			test_section_unknown_key);
	g_test_add_func("/config/section/types", test_section_types);
	g_test_add_func("/config/section/range", test_section_range);
	g_test_add_func("/config/parse/size", test_parse_size);
	g_test_add_func("/config/parse/duration", test_parse_duration);
	g_test_add_func("/config/listen/missing", test_listen_missing);
	g_test_add_func("/config/listen/bad-address", test_listen_bad_address);
	g_test_add_func("/config/listen/duplicate-address",
			test_listen_duplicate_address);
	g_test_add_func("/config/listen/duplicate-name",
			test_listen_duplicate_name);
	g_test_add_func("/config/listen/tls-without-cert",
			test_listen_tls_without_cert);
	g_test_add_func("/config/tls/records", test_tls_records);
	g_test_add_func("/config/plugin/check", test_plugin_check);
	g_test_add_func("/config/plugin/null-ignores",
			test_plugin_null_ignores);
	g_test_add_func("/config/plugin/clash", test_plugin_clash);
	g_test_add_func("/config/sandbox/libs", test_sandbox_libs);
	g_test_add_func("/config/sandbox/protected", test_sandbox_protected);
	g_test_add_func("/config/sandbox/binary", test_sandbox_binary);
	g_test_add_func("/config/sandbox/loop", test_sandbox_loop);
	g_test_add_func("/config/sandbox/memory", test_sandbox_memory);
	g_test_add_func("/config/sandbox/big-values", test_sandbox_big_values);
	rc = g_test_run();

	g_unlink(conf_path);
	g_rmdir(tmpdir);
	g_free(conf_path);
	g_free(tmpdir);
	return rc;
}
