/*
 * http.h - HTTP(S) transfers through libcurl.
 *
 * Retries with exponential backoff and jitter on timeouts, connection
 * failures, 429 and 5xx, honouring Retry-After.  TLS verification stays on;
 * a CA file may be added.  Credentials come from the environment or
 * ~/.netrc and are never printed.
 */
#ifndef MEM_HTTP_H
#define MEM_HTTP_H

#include <stddef.h>

#include "memories.h"

struct mem_http_opts {
	long timeout;		/* seconds for a whole transfer; 0 = 60 */
	int retries;		/* extra tries after the first; <0 = 3 */
	const char *cafile;	/* extra CA bundle, or NULL */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL;
				       never shown in messages (they may hold keys) */
};

/* Initialises libcurl once per process (call before threads start). */
void mem_http_global_init(void);
void mem_http_global_done(void);

/*
 * GETs url into a new NUL-terminated buffer (*body, length *len).
 * Errors: MEM_ETEMP for network failures, timeouts, 429 and 5xx after the
 * last try; MEM_EITEM for other HTTP errors (404 and the like).
 */
int mem_http_get(const char *url, const struct mem_http_opts *o, char **body, size_t *len,
    struct mem_err *err);

/* POSTs the JSON text post to url (a GET when post is NULL); as mem_http_get. */
int mem_http_post(const char *url, const char *post, const struct mem_http_opts *o, char **body,
    size_t *len, struct mem_err *err);

/* POSTs post with Content-Type ctype (JSON when NULL); a GET when post is NULL. */
int mem_http_request(const char *url, const char *post, const char *ctype,
    const struct mem_http_opts *o, char **body, size_t *len, struct mem_err *err);

/* GETs url into the file dest atomically (dest never holds a partial body). */
int mem_http_download(const char *url, const char *dest, const struct mem_http_opts *o,
    struct mem_err *err);

#endif
