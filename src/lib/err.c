/*
 * err.c - the error record and the aborting allocators.
 *
 * Errors are values in a caller-owned struct, never global state, so that
 * threads each keep their own.  Small allocations abort on failure, as
 * tmux's xmalloc does: there is no useful recovery from running out of
 * memory for a path name.  Raster-sized buffers are checked by their callers.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memories.h"

void
mem_err_clear(struct mem_err *err)
{
	if (err == NULL)
		return;
	err->status = MEM_OK;
	err->msg[0] = '\0';
}

int
mem_err_set(struct mem_err *err, enum mem_status status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int
mem_err_prefix(struct mem_err *err, const char *fmt, ...)
{
	char buf[2 * MEM_ERR_MSG + 2];
	va_list ap;
	int n;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf, MEM_ERR_MSG, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n >= MEM_ERR_MSG)
		n = MEM_ERR_MSG - 1;
	buf[n] = ':';
	buf[n + 1] = ' ';
	memcpy(buf + n + 2, err->msg, MEM_ERR_MSG);
	buf[sizeof buf - 1] = '\0';
	memcpy(err->msg, buf, MEM_ERR_MSG - 1);
	err->msg[MEM_ERR_MSG - 1] = '\0';
	if (err->status == MEM_OK)
		err->status = MEM_EITEM;
	return -1;
}

static void
die_oom(size_t n)
{
	fprintf(stderr, "memories: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
mem_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die_oom(n);
	return p;
}

void *
mem_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		die_oom(n * size);
	return p;
}

void *
mem_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		die_oom(n);
	return q;
}

char *
mem_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(mem_xmalloc(n), s, n);
}

char *
mem_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die_oom(strlen(fmt));
	return s;
}

const char *
mem_version(void)
{
	return PACKAGE_VERSION;
}
