/*
 * tar.c - ustar archives: a writer that copies byte ranges into a new
 * archive, a reader that lists where each member's bytes are, and range
 * checksums and extraction for the members.
 *
 * Headers carry fixed owner, mode and time, so that the same members make
 * the same bytes: an archive's name can then be derived from its members
 * and a rerun finds it already written.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "files.h"
#include "sha256.h"
#include "tar.h"

#define BLOCK 512

struct mem_tar {
	char *path, *tmp;
	int fd;
	off_t off;
};

static off_t
octal(const char *p, size_t n)
{
	off_t v = 0;

	while (n > 0 && (*p == ' ' || *p == '\0')) {
		p++;
		n--;
	}
	for (; n > 0 && *p >= '0' && *p <= '7'; p++, n--)
		v = v * 8 + (*p - '0');
	return v;
}

static int
checksum_ok(const unsigned char *h)
{
	unsigned sum = 0;

	for (int i = 0; i < BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return (off_t)sum == octal((const char *)h + 148, 8);
}

static int
all_zero(const unsigned char *h)
{
	for (int i = 0; i < BLOCK; i++)
		if (h[i])
			return 0;
	return 1;
}

ssize_t
mem_tar_list(const char *path, struct mem_tar_member **out, struct mem_err *err)
{
	unsigned char h[BLOCK];
	struct mem_tar_member *m = NULL;
	size_t n = 0;
	off_t off = 0;
	int fd = open(path, O_RDONLY);

	*out = NULL;
	if (fd < 0)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		ssize_t r = pread(fd, h, BLOCK, off);
		off_t size;
		char name[257];

		if (r == 0 && n > 0)
			break;		/* no end blocks: still every member whole */
		if (r != BLOCK || (!all_zero(h) && !checksum_ok(h))) {
			close(fd);
			mem_tar_members_free(m, n);
			return mem_err_set(err, MEM_EITEM, "'%s': not a tar archive (at byte %lld)",
			    path, (long long)off);
		}
		if (all_zero(h))
			break;
		size = octal((char *)h + 124, 12);
		if (memcmp(h + 257, "ustar", 5) == 0 && h[345])
			snprintf(name, sizeof name, "%.155s/%.100s", (char *)h + 345, (char *)h);
		else
			snprintf(name, sizeof name, "%.100s", (char *)h);
		if (h[156] == '0' || h[156] == '\0') {
			m = mem_xrealloc(m, (n + 1) * sizeof *m);
			m[n].name = mem_xstrdup(name);
			m[n].start = off + BLOCK;
			m[n].size = size;
			n++;
		}
		off += BLOCK + (size + BLOCK - 1) / BLOCK * BLOCK;
	}
	close(fd);
	*out = m;
	return (ssize_t)n;
}

void
mem_tar_members_free(struct mem_tar_member *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].name);
	free(m);
}

struct mem_tar *
mem_tar_create(const char *path, struct mem_err *err)
{
	struct mem_tar *t = mem_xcalloc(1, sizeof *t);

	t->path = mem_xstrdup(path);
	t->tmp = mem_tmp_name(path);
	t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (t->fd < 0) {
		mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", path, strerror(errno));
		free(t->path);
		free(t->tmp);
		free(t);
		return NULL;
	}
	return t;
}

static int
write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
header(unsigned char h[BLOCK], const char *name, off_t size)
{
	size_t n = strlen(name);
	unsigned sum = 0;

	memset(h, 0, BLOCK);
	if (n <= 100)
		memcpy(h, name, n);
	else {
		/* ustar: a prefix of up to 155 bytes, split at a slash */
		const char *s = name + n - 101;

		while (*s && *s != '/')
			s++;
		if (*s != '/' || (size_t)(s - name) > 155 || s[1] == '\0')
			return -1;
		memcpy(h + 345, name, (size_t)(s - name));
		memcpy(h, s + 1, strlen(s + 1));
	}
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 0);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return 0;
}

int
mem_tar_add(struct mem_tar *t, const char *name, const char *src, off_t from, off_t size,
    off_t *start, struct mem_err *err)
{
	unsigned char h[BLOCK], *buf;
	off_t left = size;
	int fd;

	if (size > 077777777777LL)
		return mem_err_set(err, MEM_EITEM, "'%s': too large for a ustar archive", src);
	if (header(h, name, size) < 0)
		return mem_err_set(err, MEM_EITEM, "'%s': name too long for a ustar archive", name);
	if ((fd = open(src, O_RDONLY)) < 0)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", src, strerror(errno));
	if (write_all(t->fd, h, BLOCK) < 0)
		goto wfail;
	*start = t->off + BLOCK;
	buf = mem_xmalloc(1 << 20);
	while (left > 0) {
		ssize_t r = pread(fd, buf, left < (1 << 20) ? (size_t)left : (1 << 20), from);

		if (r <= 0) {
			free(buf);
			close(fd);
			return mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", src,
			    r < 0 ? strerror(errno) : "shorter than expected");
		}
		if (write_all(t->fd, buf, (size_t)r) < 0) {
			free(buf);
			goto wfail;
		}
		from += r;
		left -= r;
	}
	free(buf);
	close(fd);
	memset(h, 0, BLOCK);
	if (size % BLOCK && write_all(t->fd, h, (size_t)(BLOCK - size % BLOCK)) < 0)
		return mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", t->path, strerror(errno));
	t->off += BLOCK + (size + BLOCK - 1) / BLOCK * BLOCK;
	return 0;
wfail:
	close(fd);
	return mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", t->path, strerror(errno));
}

static void
tar_free(struct mem_tar *t)
{
	free(t->path);
	free(t->tmp);
	free(t);
}

int
mem_tar_commit(struct mem_tar *t, struct mem_err *err)
{
	unsigned char z[2 * BLOCK];
	int rc;

	memset(z, 0, sizeof z);
	if (write_all(t->fd, z, sizeof z) < 0) {
		rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", t->path, strerror(errno));
		close(t->fd);
		unlink(t->tmp);
		tar_free(t);
		return rc;
	}
	if (close(t->fd) < 0) {
		rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", t->path, strerror(errno));
		unlink(t->tmp);
		tar_free(t);
		return rc;
	}
	rc = mem_commit_file(t->tmp, t->path, err);
	tar_free(t);
	return rc;
}

void
mem_tar_abort(struct mem_tar *t)
{
	if (t == NULL)
		return;
	close(t->fd);
	unlink(t->tmp);
	tar_free(t);
}

/* Reads size bytes of fd at start through the checksum, and into out when out >= 0. */
static int
range_pass(int fd, off_t start, off_t size, int out, char sum[69], const char *what,
    struct mem_err *err)
{
	struct mem_sha256 s;
	unsigned char dig[32], *buf = mem_xmalloc(1 << 20);

	mem_sha256_init(&s);
	while (size > 0) {
		ssize_t r = pread(fd, buf, size < (1 << 20) ? (size_t)size : (1 << 20), start);

		if (r <= 0) {
			free(buf);
			return mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", what,
			    r < 0 ? strerror(errno) : "shorter than its member");
		}
		mem_sha256_update(&s, buf, (size_t)r);
		if (out >= 0 && write_all(out, buf, (size_t)r) < 0) {
			free(buf);
			return mem_err_set(err, MEM_EITEM, "cannot write: %s", strerror(errno));
		}
		start += r;
		size -= r;
	}
	free(buf);
	mem_sha256_final(&s, dig);
	memcpy(sum, "1220", 4);
	mem_hex(dig, 32, sum + 4);
	return 0;
}

int
mem_tar_checksum(const char *path, off_t start, off_t size, char out[69], struct mem_err *err)
{
	int fd = open(path, O_RDONLY), rc;

	if (fd < 0)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", path, strerror(errno));
	rc = range_pass(fd, start, size, -1, out, path, err);
	close(fd);
	return rc;
}

int
mem_tar_extract(const char *path, off_t start, off_t size, const char *want, const char *dst,
    struct mem_err *err)
{
	char *tmp, sum[69];
	int in, out, rc;

	if ((in = open(path, O_RDONLY)) < 0)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", path, strerror(errno));
	tmp = mem_tmp_name(dst);
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		rc = mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", dst, strerror(errno));
		close(in);
		free(tmp);
		return rc;
	}
	rc = range_pass(in, start, size, out, sum, path, err);
	close(in);
	if (close(out) < 0 && rc == 0)
		rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", dst, strerror(errno));
	if (rc == 0 && want && strcasecmp(want, sum) != 0)
		rc = mem_err_set(err, MEM_EITEM, "'%s': member at byte %lld has checksum %s, not %s",
		    path, (long long)start, sum, want);
	if (rc == 0)
		rc = mem_commit_file(tmp, dst, err);
	else
		unlink(tmp);
	free(tmp);
	return rc;
}
