/*
 * search.h - STAC API item search (POST /search, or GET where a server has
 * only that), following "next" links of both kinds.
 */
#ifndef MEM_SEARCH_H
#define MEM_SEARCH_H

#include <jansson.h>

#include "http.h"
#include "stac.h"

struct mem_search_opts {
	const char *url;	/* the API root or its /search endpoint */
	int use_get;		/* GET with a query string instead of POST */
	json_t *body;		/* the search parameters (borrowed) */
	long max_items;		/* 0: no limit */
	long max_pages;		/* 0: no limit */
	struct mem_http_opts http;
};

/* URLs of the named sources, or NULL for an unknown name. */
const char *mem_search_named_url(const char *name);
/* The collection a named source searches when none is given (sentinel-2-l2a). */
const char *mem_search_named_collection(const char *name);

/*
 * Finds the search endpoint of an API: a URL ending in /search is taken as
 * it is; otherwise the landing page is read for its rel=search link.
 * Returns a new string.
 */
char *mem_search_endpoint(const char *url, const struct mem_http_opts *o, struct mem_err *err);

/*
 * Runs the search and calls fn with each item of each page, hrefs resolved
 * against the page's URL.  Pages are followed through rel=next links: a GET
 * link as it is, a POST link with its body (merged into the previous body
 * when it says "merge": true).  Stops after max_items items.
 * Returns the number of items, or -1 (network errors MEM_ETEMP, a 4xx or a
 * response that is not an item collection MEM_EUSAGE).
 */
long mem_search_run(const struct mem_search_opts *o, mem_stac_item_fn fn, void *ctx,
    struct mem_err *err);

/* Encodes body as a GET query string (bbox, datetime, collections, ...); a new string. */
char *mem_search_query_string(const json_t *body);

#endif
