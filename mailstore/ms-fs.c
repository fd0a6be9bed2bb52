/* ms-fs.c - files and directories of a Maildir++ tree. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "ms-private.h"

static bool
make_dir(const char *path, struct ms_error *err)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return true;
	ms_fail_errno(err, "mkdir", path);
	return false;
}

bool
ms_fs_make_maildir(const char *dir, struct ms_error *err)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	char path[4096];

	if (!make_dir(dir, err))
		return false;
	for (size_t i = 0; i < MP_NELEMS(subs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if (!make_dir(path, err))
			return false;
	}
	/* The new folder's entry must survive a crash too. */
	return ms_fs_sync_dir(dir, err);
}

bool
ms_fs_sync_dir(const char *dir, struct ms_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0) {
		ms_fail_errno(err, "fsync", dir);
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

char *
ms_fs_unique_name(struct ms_store *store)
{
	struct timeval tv;
	uint32_t n;

	gettimeofday(&tv, NULL);
	pthread_mutex_lock(&store->lock);
	n = ++store->counter;
	pthread_mutex_unlock(&store->lock);
	/* time.M<usec>P<pid>Q<counter>.host: unique per host as the Maildir
	 * specification asks, across processes and restarts. */
	return mp_xasprintf("%lld.M%ldP%dQ%u.%s", (long long)tv.tv_sec,
			    (long)tv.tv_usec, (int)getpid(), n, store->host);
}

static void
remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[4096];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		remove_tree(sub);
	}
	closedir(d);
	rmdir(path);
}

void
ms_fs_remove(const char *path)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return;
	if (errno == EISDIR || errno == EPERM)
		remove_tree(path);
}

int64_t
ms_fs_mtime_ns(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

size_t
ms_crlf(const char *in, size_t n, char *out, bool *last_cr)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n' && !*last_cr)
			out[o++] = '\r';
		out[o++] = in[i];
		*last_cr = in[i] == '\r';
	}
	return o;
}
