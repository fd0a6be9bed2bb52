/* test-plugin.c - the plugin loader: ABI checks and clear refusals. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include <moonpost/plugin.h>

#include "plugin-loader.h"

#define TEST_PLUGINS BUILD_DIR "/tests/plugins/.libs"

static char *
load_error(const char *file)
{
	struct mp_plugin_set *set = mp_plugin_set_new();
	char *path = g_strdup_printf("%s/%s", TEST_PLUGINS, file);
	char *error = NULL;
	const struct mp_plugin *p = mp_plugin_load_file(set, path, &error);

	g_assert_null(p);
	g_assert_nonnull(error);
	g_assert_cmpuint(mp_plugin_count(set), ==, 0);
	mp_plugin_set_free(&set);
	g_free(path);
	return error;
}

static void
assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL)
		g_error("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void
test_major(void)
{
	char *error = load_error("bad-major.so");

	assert_contains(error, "bad-major.so");
	assert_contains(error, "incompatible");
	assert_contains(error, "rebuild the plugin");
	free(error);
}

static void
test_minor(void)
{
	char *error = load_error("bad-minor.so");

	assert_contains(error, "bad-minor.so");
	assert_contains(error, "upgrade moonpost");
	free(error);
}

static void
test_size(void)
{
	char *error = load_error("bad-size.so");

	assert_contains(error, "bad-size.so");
	assert_contains(error, "other headers");
	free(error);
}

static void
test_no_symbol(void)
{
	char *error = load_error("bad-no-symbol.so");

	assert_contains(error, "not a moonpost plugin");
	assert_contains(error, MP_PLUGIN_SYMBOL);
	free(error);
}

static void
test_missing_core_symbol(void)
{
	char *error = load_error("bad-core-symbol.so");

	assert_contains(error, "bad-core-symbol.so");
	assert_contains(error, "mp_core_function_from_the_future");
	free(error);
}

static void
test_not_a_file(void)
{
	char *error = load_error("no-such-plugin.so");

	assert_contains(error, "no-such-plugin.so");
	free(error);
}

static void
test_good_and_twice(void)
{
	struct mp_plugin_set *set = mp_plugin_set_new();
	char *error = NULL;
	const struct mp_plugin *p, *again;

	p = mp_plugin_load(set, TEST_PLUGINS, "echo", &error);
	g_assert_null(error);
	g_assert_nonnull(p);
	g_assert_cmpstr(p->name, ==, "echo");
	g_assert_true(mp_plugin_find(set, "echo") == p);
	/* Loading by name again gives the loaded one. */
	again = mp_plugin_load(set, TEST_PLUGINS, "echo", &error);
	g_assert_true(again == p);
	/* Loading the same descriptor as a file again is refused. */
	again = mp_plugin_load_file(set, TEST_PLUGINS "/echo.so", &error);
	g_assert_null(again);
	assert_contains(error, "already loaded");
	free(error);
	g_assert_cmpuint(mp_plugin_count(set), ==, 1);
	g_assert_nonnull(mp_plugin_sections(set)[0]);
	g_assert_null(mp_plugin_sections(set)[1]);
	mp_plugin_set_free(&set);
}

static void
test_by_name_errors(void)
{
	struct mp_plugin_set *set = mp_plugin_set_new();
	char *error = NULL;

	g_assert_null(mp_plugin_load(set, TEST_PLUGINS, "imap4", &error));
	assert_contains(error, "no plugin 'imap4' in " TEST_PLUGINS);
	free(error);
	error = NULL;
	g_assert_null(mp_plugin_load(set, TEST_PLUGINS, "../echo", &error));
	assert_contains(error, "bad plugin name");
	free(error);
	error = NULL;
	/* bad-major.so exists, but its ABI check comes first. */
	g_assert_null(mp_plugin_load(set, TEST_PLUGINS, "bad-major", &error));
	assert_contains(error, "incompatible");
	free(error);
	mp_plugin_set_free(&set);
}

static enum mp_status
dummy_open(struct mp_conn *conn)
{
	return MP_OK;
}

static void
test_check_descriptor(void)
{
	struct mp_plugin p = {
		.abi_major = MP_PLUGIN_ABI_MAJOR,
		.abi_minor = MP_PLUGIN_ABI_MINOR,
		.struct_size = sizeof(struct mp_plugin),
		.name = "x",
		.on_open = dummy_open,
	};
	char *error = NULL;

	g_assert_false(mp_plugin_check(&p, "test", &error));
	assert_contains(error, "lacks on_open or on_line");
	free(error);
	error = NULL;
	p.name = "";
	g_assert_false(mp_plugin_check(&p, "test", &error));
	assert_contains(error, "no name");
	free(error);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/core/plugin/abi/major", test_major);
	g_test_add_func("/core/plugin/abi/minor-newer", test_minor);
	g_test_add_func("/core/plugin/abi/struct-size", test_size);
	g_test_add_func("/core/plugin/no-descriptor", test_no_symbol);
	g_test_add_func("/core/plugin/missing-core-symbol",
			test_missing_core_symbol);
	g_test_add_func("/core/plugin/no-file", test_not_a_file);
	g_test_add_func("/core/plugin/load-once", test_good_and_twice);
	g_test_add_func("/core/plugin/by-name-errors", test_by_name_errors);
	g_test_add_func("/core/plugin/check-descriptor", test_check_descriptor);
	return g_test_run();
}
