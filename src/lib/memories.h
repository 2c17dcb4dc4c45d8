/*
 * memories.h - the public face of libmemories.
 *
 * Everything the four programs share: status codes and the error record,
 * small allocation helpers, and the headers of each library module.  The
 * library never prints and never exits; it returns 0 or -1 (or a count) and
 * fills a caller-owned struct mem_err, so it is safe to use from threads.
 */
#ifndef MEMORIES_H
#define MEMORIES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Status of a failed call.  The values are the programs' exit codes, so a
 * main maps a status to its exit status by casting it.
 */
enum mem_status {
	MEM_OK = 0,	/* all done */
	MEM_EITEM = 1,	/* this item failed; the others go on */
	MEM_EUSAGE = 2,	/* usage error or bad input (a broken line, a missing file) */
	MEM_ETEMP = 75	/* temporary failure worth retrying (network, 5xx, 429) */
};

#define MEM_ERR_MSG 512

/* An error record owned by the caller; one per thread. */
struct mem_err {
	enum mem_status status;
	char msg[MEM_ERR_MSG];
};

/* Clears an error record. */
void mem_err_clear(struct mem_err *err);
/* Fills err (when not NULL) and returns -1, so that `return mem_err_set(...)` reads well. */
int mem_err_set(struct mem_err *err, enum mem_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Puts "prefix: " before the message already in err; returns -1. */
int mem_err_prefix(struct mem_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Allocations that abort with a message on failure (small ones only). */
void *mem_xmalloc(size_t n);
void *mem_xcalloc(size_t n, size_t size);
void *mem_xrealloc(void *p, size_t n);
char *mem_xstrdup(const char *s);
/* Returns a new string the caller frees. */
char *mem_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The package version ("0.1.0" or a git describe string). */
const char *mem_version(void);

#endif
