/*
 * files.c - paths, directories and atomic writes.
 *
 * Temporary names carry the pid and a counter so that concurrent writers
 * (threads, or several nodes on a shared filesystem) never share one.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "sha256.h"

int
mem_path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

int
mem_mkdir_p(const char *dir, struct mem_err *err)
{
	char *p, *s;

	if (dir == NULL || *dir == '\0')
		return 0;
	s = mem_xstrdup(dir);
	for (p = s + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(s, 0777) < 0 && errno != EEXIST) {
				int e = errno;

				mem_err_set(err, e == EACCES || e == ENOENT || e == ENOTDIR || e == EROFS ? MEM_EUSAGE : MEM_EITEM,
				    "cannot create directory '%s': %s", s, strerror(e));
				free(s);
				return -1;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	free(s);
	if (access(dir, W_OK) < 0)
		return mem_err_set(err, MEM_EUSAGE, "cannot write to directory '%s': %s", dir,
		    strerror(errno));
	return 0;
}

static const char *
host_name(void)
{
	static char host[256];

	if (host[0] == '\0' && gethostname(host, sizeof host - 1) < 0)
		strcpy(host, "localhost");
	return host;
}

char *
mem_tmp_name(const char *path)
{
	static atomic_ulong counter;
	char *dir = mem_path_dirname(path);
	/* pid, counter and host: unique on a shared filesystem, and sweepable */
	char *t = mem_xasprintf("%s/.%s.tmp-%ld-%lu-%s", dir, mem_path_basename(path),
	    (long)getpid(), (unsigned long)atomic_fetch_add(&counter, 1), host_name());

	free(dir);
	return t;
}

/*
 * 1 when the process that wrote a temporary file of age mtime is gone: no
 * such pid, a zombie (killed, not yet reaped: in a container whose init
 * does not reap, it stays one), or a pid since reused by a process that
 * started after the file was last written.
 */
static int
writer_gone(long pid, time_t mtime)
{
	char path[64], buf[1024], *p;
	FILE *fp;
	size_t n;

	if (pid <= 0)
		return 0;
	if (kill((pid_t)pid, 0) < 0)
		return errno == ESRCH;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;	/* no /proc: trust kill() */
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* "pid (comm) S ppid ...": the state follows the last ')' */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return 0;
	if (p[2] == 'Z' || p[2] == 'X')
		return 1;
	{
		/* field 22, the start time in clock ticks after boot */
		unsigned long long start = 0;
		long ticks = sysconf(_SC_CLK_TCK);
		char *f = p + 2;
		FILE *st;
		unsigned long long btime = 0;

		for (int i = 3; i < 22 && f; i++) {
			f = strchr(f, ' ');
			if (f)
				f++;
		}
		if (f == NULL || sscanf(f, "%llu", &start) != 1 || ticks <= 0)
			return 0;
		if ((st = fopen("/proc/stat", "r")) == NULL)
			return 0;
		while (fgets(buf, sizeof buf, st))
			if (sscanf(buf, "btime %llu", &btime) == 1)
				break;
		fclose(st);
		/* started after the file was last written: not its writer */
		return btime > 0 && (time_t)(btime + start / (unsigned long long)ticks) > mtime + 1;
	}
}

int
mem_sweep_tmp(const char *dir)
{
	const char *host = host_name();
	size_t hl = strlen(host);
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		const char *t = e->d_name[0] == '.' ? strstr(e->d_name, ".tmp-") : NULL;
		char *end, *p;
		long pid;

		if (t == NULL)
			continue;
		pid = strtol(t + 5, &end, 10);
		if (end == t + 5 || *end != '-')
			continue;
		strtoul(end + 1, &p, 10);
		if (p == end + 1 || *p != '-' || strncmp(p + 1, host, hl) != 0 ||
		    (p[1 + hl] != '\0' && p[1 + hl] != '-'))
			continue;	/* another host's, or not ours */
		/* left by a process of this host that is gone (killed): never whole */
		{
			char *f = mem_path_join(dir, e->d_name);
			struct stat st;

			if (lstat(f, &st) == 0 && writer_gone(pid, st.st_mtime) && unlink(f) == 0)
				n++;
			free(f);
		}
	}
	closedir(d);
	return n;
}

int
mem_fs_full(const char *path)
{
	char *dir = mem_path_dirname(path);
	struct statvfs st;
	int full = statvfs(dir, &st) == 0 && (double)st.f_bavail * st.f_frsize < 65536.0;

	free(dir);
	return full;
}

int
mem_workdir(const char *dir, struct mem_err *err)
{
	if (mem_mkdir_p(dir, err) < 0)
		return -1;
	mem_sweep_tmp(dir);
	return 0;
}

static void
fsync_dir(const char *path)
{
	char *dir = mem_path_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

static int
commit(const char *tmp, const char *path, int sync, struct mem_err *err)
{
	int fd = sync ? open(tmp, O_RDONLY) : -2;

	if (sync && (fd < 0 || fsync(fd) < 0)) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return mem_err_set(err, MEM_EITEM, "cannot sync '%s': %s", tmp, strerror(e));
	}
	if (sync)
		close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return mem_err_set(err, MEM_EITEM, "cannot rename '%s' to '%s': %s", tmp, path,
		    strerror(e));
	}
	if (sync)
		fsync_dir(path);
	return 0;
}

int
mem_commit_file(const char *tmp, const char *path, struct mem_err *err)
{
	return commit(tmp, path, 1, err);
}

int
mem_rename_file(const char *tmp, const char *path, struct mem_err *err)
{
	return commit(tmp, path, 0, err);
}

int
mem_sync_fs(const char *dir, struct mem_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY), rc = 0;

	if (fd < 0 || syncfs(fd) < 0)
		rc = mem_err_set(err, MEM_EITEM, "cannot sync the file system of '%s': %s", dir,
		    strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int
write_file(const char *path, const void *data, size_t len, int sync, struct mem_err *err)
{
	char *tmp = mem_tmp_name(path);
	const char *p = data;
	int fd, rc;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
	if (fd < 0) {
		rc = mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", path, strerror(errno));
			close(fd);
			unlink(tmp);
			free(tmp);
			return rc;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0) {
		rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return rc;
	}
	rc = commit(tmp, path, sync, err);
	free(tmp);
	return rc;
}

int
mem_write_file_atomic(const char *path, const void *data, size_t len, struct mem_err *err)
{
	return write_file(path, data, len, 1, err);
}

int
mem_write_file_renamed(const char *path, const void *data, size_t len, struct mem_err *err)
{
	return write_file(path, data, len, 0, err);
}

char *
mem_read_file(const char *path, size_t *len, struct mem_err *err)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (fp == NULL) {
		mem_err_set(err, MEM_EUSAGE, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t k;

		if (n + 65536 + 1 > cap) {
			cap = cap ? cap * 2 : 65536 * 2;
			buf = mem_xrealloc(buf, cap);
		}
		k = fread(buf + n, 1, cap - n - 1, fp);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(fp)) {
		mem_err_set(err, MEM_EUSAGE, "cannot read '%s': %s", path, strerror(errno));
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int
mem_copy_file(const char *src, const char *dst, struct mem_err *err)
{
	char *tmp, buf[1 << 16];
	FILE *in, *out;
	size_t n;
	int rc = 0;

	in = fopen(src, "rb");
	if (in == NULL)
		return mem_err_set(err, MEM_EUSAGE, "cannot open '%s': %s", src, strerror(errno));
	tmp = mem_tmp_name(dst);
	out = fopen(tmp, "wb");
	if (out == NULL) {
		rc = mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", tmp, strerror(errno));
		fclose(in);
		free(tmp);
		return rc;
	}
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", dst, strerror(errno));
			break;
		}
	if (rc == 0 && ferror(in))
		rc = mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", src, strerror(errno));
	fclose(in);
	if (fclose(out) != 0 && rc == 0)
		rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", dst, strerror(errno));
	if (rc == 0)
		rc = mem_commit_file(tmp, dst, err);
	else
		unlink(tmp);
	free(tmp);
	return rc;
}

int
mem_file_checksum(const char *path, char out[69], off_t *size, struct mem_err *err)
{
	struct mem_sha256 s;
	unsigned char dig[32], *buf;
	off_t total = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", path, strerror(errno));
	buf = mem_xmalloc(1 << 20);
	mem_sha256_init(&s);
	while ((n = read(fd, buf, 1 << 20)) > 0) {
		mem_sha256_update(&s, buf, (size_t)n);
		total += n;
	}
	free(buf);
	close(fd);
	if (n < 0)
		return mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", path, strerror(errno));
	mem_sha256_final(&s, dig);
	memcpy(out, "1220", 4);
	mem_hex(dig, 32, out + 4);
	if (size)
		*size = total;
	return 0;
}

char *
mem_path_join(const char *dir, const char *name)
{
	size_t n;

	if (name[0] == '/' || dir == NULL || dir[0] == '\0')
		return mem_xstrdup(name);
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return mem_xasprintf("%.*s/%s", (int)n, dir, name);
}

char *
mem_path_dirname(const char *path)
{
	const char *s = strrchr(path, '/');

	if (s == NULL)
		return mem_xstrdup(".");
	if (s == path)
		return mem_xstrdup("/");
	return mem_xasprintf("%.*s", (int)(s - path), path);
}

const char *
mem_path_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

char *
mem_path_absolute(const char *path)
{
	char cwd[PATH_MAX], *joined, *out, *tok, *save;
	char **parts;
	size_t n = 0, i, len;

	if (path[0] == '/')
		joined = mem_xstrdup(path);
	else {
		if (getcwd(cwd, sizeof cwd) == NULL)
			strcpy(cwd, ".");
		joined = mem_path_join(cwd, path);
	}
	parts = mem_xcalloc(strlen(joined) + 1, sizeof *parts);
	for (tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (n > 0)
				n--;
			continue;
		}
		parts[n++] = tok;
	}
	for (len = 2, i = 0; i < n; i++)
		len += strlen(parts[i]) + 1;
	out = mem_xmalloc(len);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		strcat(out, "/");
		strcat(out, parts[i]);
	}
	if (n == 0)
		strcpy(out, "/");
	free(parts);
	free(joined);
	return out;
}

char *
mem_path_relative(const char *from_dir, const char *path)
{
	char *a = mem_path_absolute(from_dir), *b = mem_path_absolute(path);
	size_t i = 0, common = 0, ups = 0;
	char *out, *p;

	/* the longest common prefix that ends at a path separator */
	while (a[i] && b[i] && a[i] == b[i]) {
		if (a[i] == '/')
			common = i;
		i++;
	}
	if (a[i] == '\0' && (b[i] == '/' || b[i] == '\0'))
		common = i;
	else if (b[i] == '\0' && a[i] == '/')
		common = i;
	for (p = a + common; *p; p++)
		if (*p == '/' && p[1] != '\0')
			ups++;
	if (strcmp(a, "/") == 0)
		ups = 0;
	out = mem_xmalloc(ups * 3 + strlen(b) + 2);
	out[0] = '\0';
	for (i = 0; i < ups; i++)
		strcat(out, "../");
	p = b + common;
	if (*p == '/')
		p++;
	strcat(out, *p ? p : (ups ? "" : "."));
	if (out[0] != '\0' && out[strlen(out) - 1] == '/' && strlen(out) > 1)
		out[strlen(out) - 1] = '\0';
	free(a);
	free(b);
	return out;
}

char *
mem_path_safe_name(const char *s)
{
	char *out = mem_xstrdup(s), *p;

	for (p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			*p = '_';
	if (out[0] == '.')
		out[0] = '_';
	return out;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
mem_list_dir(const char *dir, int want_dirs, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	*out = NULL;
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char *p;

		if (de->d_name[0] == '.')
			continue;
		p = mem_path_join(dir, de->d_name);
		if (stat(p, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))) {
			names = mem_xrealloc(names, (n + 1) * sizeof *names);
			names[n++] = mem_xstrdup(de->d_name);
		}
		free(p);
	}
	closedir(d);
	if (n > 1)	/* qsort(NULL, 0) is undefined */
		qsort(names, n, sizeof *names, cmp_name);
	*out = names;
	return n;
}

void
mem_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
