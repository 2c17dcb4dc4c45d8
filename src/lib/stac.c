/*
 * stac.c - reading STAC documents.
 *
 * Maxar Open Data publishes events as nested static catalogs with relative
 * links; APIs answer FeatureCollections; the stream between our tools is one
 * item per line.  All three end up as calls of one item callback, with
 * hrefs made absolute against the document they were read from, so that a
 * later stage never needs to know where an item came from.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "item.h"
#include "manifest.h"
#include "stac.h"

json_t *
mem_stac_load(const char *href, const struct mem_http_opts *o, struct mem_err *err)
{
	json_error_t jerr;
	char *body;
	size_t len;
	json_t *v;

	if (mem_href_is_url(href) && strncmp(href, "file://", 7) != 0) {
		if (mem_http_get(href, o, &body, &len, err) < 0)
			return NULL;
	} else {
		body = mem_read_file(strncmp(href, "file://", 7) == 0 ? href + 7 : href, &len, err);
		if (body == NULL)
			return NULL;
	}
	v = json_loadb(body, len, 0, &jerr);
	if (v == NULL && jerr.position > 0 && strstr(jerr.text, "end of file expected")) {
		/* one item per line: gather them in a FeatureCollection */
		FILE *fp = fmemopen(body, len, "r");
		struct mem_manifest_reader r;
		json_t *item, *fc = json_object(), *feats = json_array();
		int rc;

		json_object_set_new(fc, "type", json_string("FeatureCollection"));
		json_object_set_new(fc, "features", feats);
		mem_manifest_reader_init(&r, fp, href, 0);
		while ((rc = mem_manifest_read(&r, &item, err)) == 1)
			json_array_append_new(feats, item);
		mem_manifest_reader_release(&r);
		fclose(fp);
		free(body);
		if (rc < 0) {
			json_decref(fc);
			err->status = MEM_EUSAGE;
			return NULL;
		}
		return fc;
	}
	free(body);
	if (v == NULL)
		mem_err_set(err, MEM_EUSAGE, "'%s': not JSON (line %d, column %d: %s)", href, jerr.line,
		    jerr.column, jerr.text);
	else if (!json_is_object(v)) {
		json_decref(v);
		v = NULL;
		mem_err_set(err, MEM_EUSAGE, "'%s': not a STAC document (not a JSON object)", href);
	}
	return v;
}

static void
resolve_member(json_t *obj, const char *base)
{
	const char *h = json_string_value(json_object_get(obj, "href"));

	if (h) {
		char *abs = mem_href_resolve(base, h);

		if (!mem_href_is_url(abs) && abs[0] != '/') {
			char *p = mem_path_absolute(abs);

			free(abs);
			abs = p;
		}
		json_object_set_new(obj, "href", json_string(abs));
		free(abs);
	}
}

void
mem_stac_resolve_item(json_t *item, const char *base)
{
	json_t *assets = json_object_get(item, "assets"), *a, *links = json_object_get(item, "links");
	const char *key;
	size_t i;

	json_object_foreach(assets, key, a)
		if (json_is_object(a))
			resolve_member(a, base);
	json_array_foreach(links, i, a)
		if (json_is_object(a))
			resolve_member(a, base);
}

struct walk {
	const struct mem_http_opts *o;
	mem_stac_item_fn fn;
	void *ctx;
	void (*warn)(const struct mem_err *, void *);
	char **seen;
	size_t nseen;
	int max_depth;
};

static int
seen(struct walk *w, const char *href)
{
	size_t i;

	for (i = 0; i < w->nseen; i++)
		if (strcmp(w->seen[i], href) == 0)
			return 1;
	w->seen = mem_xrealloc(w->seen, (w->nseen + 1) * sizeof *w->seen);
	w->seen[w->nseen++] = mem_xstrdup(href);
	return 0;
}

static int walk_doc(struct walk *w, json_t *doc, const char *base, int depth, struct mem_err *err);

static int
walk_href(struct walk *w, const char *href, int depth, int top, struct mem_err *err)
{
	json_t *doc;
	int rc;

	if (seen(w, href))
		return 0;
	doc = mem_stac_load(href, w->o, err);
	if (doc == NULL) {
		if (top) {
			/* the source itself missing (404 too) is bad input, not a failed item */
			if (err != NULL && err->status == MEM_EITEM)
				err->status = MEM_EUSAGE;
			return -1;
		}
		if (w->warn)
			w->warn(err, w->ctx);
		return 0;
	}
	rc = walk_doc(w, doc, href, depth, err);
	json_decref(doc);
	return rc;
}

static int
walk_item(struct walk *w, json_t *item, const char *base, struct mem_err *err)
{
	if (mem_manifest_check_item(item, err) < 0) {
		mem_err_prefix(err, "'%s'", base);
		if (w->warn)
			w->warn(err, w->ctx);
		return 0;
	}
	mem_stac_resolve_item(item, base);
	return w->fn(item, w->ctx, err);
}

static int
walk_doc(struct walk *w, json_t *doc, const char *base, int depth, struct mem_err *err)
{
	const char *type = json_string_value(json_object_get(doc, "type"));
	json_t *v, *links;
	size_t i;
	int rc;

	if (type && strcmp(type, "Feature") == 0)
		return walk_item(w, doc, base, err);
	if (type && strcmp(type, "FeatureCollection") == 0) {
		json_array_foreach(json_object_get(doc, "features"), i, v)
			if ((rc = walk_item(w, v, base, err)) != 0)
				return rc;
		return 0;
	}
	links = json_object_get(doc, "links");
	if (!(type && (strcmp(type, "Catalog") == 0 || strcmp(type, "Collection") == 0)) &&
	    !(json_is_array(links) && json_object_get(doc, "stac_version")))
		return mem_err_set(err, MEM_EUSAGE,
		    "'%s': not a STAC catalog, collection, item or item collection", base);
	if (depth >= w->max_depth)
		return 0;
	/* items first, then children: a collection's own items come before its sub-catalogs */
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(links, i, v) {
			const char *rel = json_string_value(json_object_get(v, "rel"));
			const char *href = json_string_value(json_object_get(v, "href"));
			char *abs;

			if (rel == NULL || href == NULL)
				continue;
			if (strcmp(rel, pass == 0 ? "item" : "child") != 0)
				continue;
			abs = mem_href_resolve(base, href);
			rc = walk_href(w, abs, depth + 1, 0, err);
			free(abs);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int
mem_stac_walk(const char *source, int max_depth, const struct mem_http_opts *o,
    mem_stac_item_fn fn, void *ctx, void (*warn)(const struct mem_err *, void *),
    struct mem_err *err)
{
	struct walk w = { o, fn, ctx, warn, NULL, 0, max_depth > 0 ? max_depth : 8 };
	char *src = mem_xstrdup(strncmp(source, "file://", 7) == 0 ? source + 7 : source);
	int rc;
	size_t i;

	rc = walk_href(&w, src, 0, 1, err);
	for (i = 0; i < w.nseen; i++)
		free(w.seen[i]);
	free(w.seen);
	free(src);
	return rc < 0 ? -1 : 0;
}
