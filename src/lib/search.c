/*
 * search.c - STAC API item search.
 *
 * Servers page in two ways: Earth Search answers a POST with a rel=next
 * link that carries the method and a body holding a "next" token;
 * Planetary Computer and others give a plain GET URL with a token in the
 * query.  Both are followed here, page after page, with each page's items
 * handed on before the next page is asked for, so a pipe starts working on
 * the first item while the search goes on.
 */
#include "config.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "files.h"
#include "item.h"
#include "manifest.h"
#include "search.h"

static const struct {
	const char *name, *url, *collection;
} named[] = {
	{ "earth-search", "https://earth-search.aws.element84.com/v1", "sentinel-2-l2a" },
	{ "planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1",
	    "sentinel-2-l2a" },
	{ NULL, NULL, NULL }
};

static int
named_index(const char *name)
{
	for (int i = 0; named[i].name; i++)
		if (strcmp(named[i].name, name) == 0)
			return i;
	return -1;
}

const char *
mem_search_named_url(const char *name)
{
	int i = named_index(name);

	return i < 0 ? NULL : named[i].url;
}

const char *
mem_search_named_collection(const char *name)
{
	int i = named_index(name);

	return i < 0 ? NULL : named[i].collection;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

char *
mem_search_endpoint(const char *url, const struct mem_http_opts *o, struct mem_err *err)
{
	json_t *landing, *l;
	size_t i;
	char *found = NULL;

	if (ends_with(url, "/search") || ends_with(url, "/search/"))
		return mem_xstrdup(url);
	landing = mem_stac_load(url, o, err);
	if (landing == NULL)
		return NULL;
	json_array_foreach(json_object_get(landing, "links"), i, l) {
		const char *rel = json_string_value(json_object_get(l, "rel"));
		const char *href = json_string_value(json_object_get(l, "href"));

		if (rel && href && strcmp(rel, "search") == 0) {
			const char *type = json_string_value(json_object_get(l, "type"));

			/* the GeoJSON one, not an HTML search page */
			if (type && strstr(type, "html"))
				continue;
			found = mem_href_resolve(url, href);
			break;
		}
	}
	json_decref(landing);
	if (found == NULL)
		mem_err_set(err, MEM_EUSAGE, "'%s' is not a STAC API: its landing page has no search link",
		    url);
	return found;
}

static void
append_param(char **qs, const char *key, const char *val)
{
	char *enc = curl_easy_escape(NULL, val, 0);
	char *n = mem_xasprintf("%s%s%s=%s", *qs ? *qs : "", *qs ? "&" : "", key, enc);

	curl_free(enc);
	free(*qs);
	*qs = n;
}

char *
mem_search_query_string(const json_t *body)
{
	const char *key;
	json_t *v;
	char *qs = NULL;

	json_object_foreach((json_t *)body, key, v) {
		char *s;

		if (json_is_array(v) && (strcmp(key, "bbox") == 0 || strcmp(key, "collections") == 0 ||
		    strcmp(key, "ids") == 0)) {
			/* comma-separated lists */
			size_t i, n = 0;
			json_t *e;
			char *list = mem_xstrdup("");

			json_array_foreach(v, i, e) {
				char *item = json_is_string(e) ? mem_xstrdup(json_string_value(e)) :
				    json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
				char *nl = mem_xasprintf("%s%s%s", list, n++ ? "," : "", item);

				free(item);
				free(list);
				list = nl;
			}
			append_param(&qs, key, list);
			free(list);
			continue;
		}
		if (strcmp(key, "sortby") == 0 && json_is_array(v)) {
			size_t i;
			json_t *e;
			char *list = mem_xstrdup("");

			json_array_foreach(v, i, e) {
				const char *f = json_string_value(json_object_get(e, "field"));
				const char *d = json_string_value(json_object_get(e, "direction"));
				char *nl = mem_xasprintf("%s%s%s%s", list, i ? "," : "",
				    d && strcmp(d, "desc") == 0 ? "-" : "", f ? f : "");

				free(list);
				list = nl;
			}
			append_param(&qs, key, list);
			free(list);
			continue;
		}
		s = json_is_string(v) ? mem_xstrdup(json_string_value(v)) :
		    json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
		append_param(&qs, key, s);
		free(s);
	}
	return qs ? qs : mem_xstrdup("");
}

/* The rel=next link of a page, or NULL. */
static json_t *
next_link(json_t *page)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(page, "links"), i, l) {
		const char *rel = json_string_value(json_object_get(l, "rel"));

		if (rel && strcmp(rel, "next") == 0 && json_is_string(json_object_get(l, "href")))
			return l;
	}
	return NULL;
}

long
mem_search_run(const struct mem_search_opts *o, mem_stac_item_fn fn, void *ctx,
    struct mem_err *err)
{
	char *url = mem_search_endpoint(o->url, &o->http, err);
	json_t *body = json_deep_copy(o->body);
	int post = !o->use_get;
	long n = 0, pages = 0;

	if (url == NULL) {
		json_decref(body);
		return -1;
	}
	if (!post) {
		char *qs = mem_search_query_string(body), *full;

		full = mem_xasprintf("%s%s%s", url, *qs ? (strchr(url, '?') ? "&" : "?") : "", qs);
		free(qs);
		free(url);
		url = full;
	}
	for (;;) {
		char *text = NULL;
		/* 15 digits: 40.1672 goes out as 40.1672, as the user wrote it */
		char *req = post ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
		json_error_t jerr;
		json_t *page, *feats, *f, *next;
		size_t len, i;
		int rc;

		rc = mem_http_post(url, req, &o->http, &text, &len, err);
		free(req);
		if (rc < 0) {
			if (err && err->status == MEM_EITEM)
				err->status = MEM_EUSAGE;	/* the server refused our search */
			goto fail;
		}
		page = json_loadb(text, len, 0, &jerr);
		free(text);
		feats = json_object_get(page, "features");
		if (page == NULL || !json_is_array(feats)) {
			mem_err_set(err, MEM_EUSAGE, "'%s': the search answer is not an item collection%s%s",
			    url, page ? "" : ": ", page ? "" : jerr.text);
			json_decref(page);
			goto fail;
		}
		pages++;
		json_array_foreach(feats, i, f) {
			if (o->max_items > 0 && n >= o->max_items)
				break;
			if (mem_manifest_check_item(f, err) < 0) {
				mem_err_prefix(err, "'%s' item %zu", url, i + 1);
				json_decref(page);
				goto fail;
			}
			mem_stac_resolve_item(f, url);
			n++;
			rc = fn(f, ctx, err);
			if (rc != 0) {
				json_decref(page);
				if (rc < 0)
					goto fail;
				goto done;
			}
		}
		next = next_link(page);
		if (next == NULL || json_array_size(feats) == 0 ||
		    (o->max_items > 0 && n >= o->max_items) || (o->max_pages > 0 && pages >= o->max_pages)) {
			json_decref(page);
			break;
		}
		{
			const char *method = json_string_value(json_object_get(next, "method"));
			json_t *nb = json_object_get(next, "body");
			char *nurl = mem_href_resolve(url, json_string_value(json_object_get(next, "href")));

			post = method ? strcasecmp(method, "POST") == 0 : 0;
			if (post) {
				if (json_is_true(json_object_get(next, "merge")) && json_is_object(nb))
					json_object_update(body, nb);
				else if (json_is_object(nb)) {
					json_decref(body);
					body = json_deep_copy(nb);
				}
			}
			free(url);
			url = nurl;
		}
		json_decref(page);
	}
done:
	free(url);
	json_decref(body);
	return n;
fail:
	free(url);
	json_decref(body);
	return -1;
}
