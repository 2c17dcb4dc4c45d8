/*
 * store.c - durable outputs.
 *
 * The item JSON is written last: its presence means every file it names is
 * whole, which is what a rerun checks.  The catalog and collections are
 * derived from the item files on disk rather than kept in memory, so a
 * killed run, a rerun and a second run into the same directory all end with
 * a catalog that describes exactly what is there.  --mosaic stores one item
 * per collection and date instead, each raster asset one COG over its tiles.
 */
#include "config.h"

#include <dirent.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cpl_string.h>
#include <cpl_vsi.h>

#include "files.h"
#include "item.h"
#include "objstore.h"
#include "raster.h"
#include "sha256.h"
#include "store.h"
#include "tier.h"
#include "vector.h"

static int
is_raster(const json_t *asset)
{
	const char *type = json_string_value(json_object_get(asset, "type"));
	const char *href = mem_asset_href(asset);
	size_t n = href ? strlen(href) : 0;

	if (type && (strstr(type, "image/tiff") || strstr(type, "image/jp2")))
		return 1;
	return n > 4 && (!strcasecmp(href + n - 4, ".tif") || !strcasecmp(href + n - 4, ".jp2") ||
	    (n > 5 && !strcasecmp(href + n - 5, ".tiff")));
}

/*
 * A raster of classes (a classification, a mask, a quality band): its
 * roles say "classification", a band has classification:classes or
 * :bitfields, or it is Sentinel-2's SCL or Landsat's QA_PIXEL, whose
 * items say neither (Earth Search, Planetary Computer).  Its overviews
 * must hold its own values, not a cubic blend of them.
 */
static int
is_categorical(const char *key, const json_t *asset)
{
	const json_t *roles = json_object_get(asset, "roles"), *b, *r;
	size_t i;

	if (key && (strcasecmp(key, "scl") == 0 || strcasecmp(key, "qa_pixel") == 0))
		return 1;
	json_array_foreach(roles, i, r)
		if (json_is_string(r) && strcmp(json_string_value(r), "classification") == 0)
			return 1;
	json_array_foreach(json_object_get(asset, "raster:bands"), i, b)
		if (json_object_get(b, "classification:classes") ||
		    json_object_get(b, "classification:bitfields"))
			return 1;
	return 0;
}

/*
 * The COG options for an asset: the user's --co, and for a raster of
 * classes RESAMPLING=NEAREST unless they set one (the COG driver's
 * default, CUBIC, would make overview values no class has).
 */
static char **
cog_options(const char *key, const json_t *asset, char **co)
{
	char **out = CSLDuplicate(co);

	if (is_categorical(key, asset) && CSLFetchNameValue(out, "RESAMPLING") == NULL)
		out = CSLSetNameValue(out, "RESAMPLING", "NEAREST");
	return out;
}

static int
is_geopackage(const json_t *asset)
{
	const char *type = json_string_value(json_object_get(asset, "type"));
	const char *href = mem_asset_href(asset);
	size_t n = href ? strlen(href) : 0;

	if (type && strstr(type, "geopackage"))
		return 1;
	return n > 5 && !strcasecmp(href + n - 5, ".gpkg");
}

static const char *
collection_of(const json_t *item)
{
	const char *c = json_string_value(json_object_get(item, "collection"));

	return c && *c ? c : "items";
}

static int
write_json(const char *path, const json_t *v, struct mem_err *err)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int rc;

	if (s == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot serialise '%s'", path);
	{
		size_t n = strlen(s);

		s = mem_xrealloc(s, n + 2);
		s[n] = '\n';
		s[n + 1] = '\0';
	}
	rc = mem_write_file_atomic(path, s, strlen(s), err);
	free(s);
	return rc;
}

static json_t *
mklink(const char *rel, const char *href, const char *type, const char *title)
{
	json_t *l = json_object();

	json_object_set_new(l, "rel", json_string(rel));
	json_object_set_new(l, "href", json_string(href));
	if (type)
		json_object_set_new(l, "type", json_string(type));
	if (title)
		json_object_set_new(l, "title", json_string(title));
	return l;
}

/*
 * Turns a stored item (relative hrefs) into the emitted one: absolute
 * paths under dir, or URLs under remote (the item's folder in the bucket).
 */
static json_t *
absolute_copy(const json_t *stored, const char *dir, const char *remote)
{
	json_t *out = json_deep_copy(stored), *a;
	const char *key;

	json_object_foreach(json_object_get(out, "assets"), key, a) {
		const char *h = mem_asset_href(a);

		if (h && remote && !mem_href_is_url(h) && h[0] != '/') {
			json_object_set_new(a, "href", json_pack("s++", remote, "/", h));
		} else if (h && !mem_href_is_url(h) && h[0] != '/') {
			char *j = mem_path_join(dir, h), *abs = mem_path_absolute(j);

			json_object_set_new(a, "href", json_string(abs));
			free(j);
			free(abs);
		}
	}
	{
		json_t *links = json_object_get(out, "links");
		size_t i;

		/* relative catalog links make sense only beside the file */
		for (i = json_array_size(links); i-- > 0;) {
			const char *rel = json_string_value(json_object_get(json_array_get(links, i), "rel"));

			if (rel && (!strcmp(rel, "root") || !strcmp(rel, "parent") ||
			    !strcmp(rel, "collection")))
				json_array_remove(links, i);
		}
	}
	return out;
}

/*
 * With a remote target: the item already in the bucket is fetched into the
 * staging copy (and then skipped like a local one); a staging copy the
 * bucket lacks is dropped, so the item is stored again.
 */
static void
remote_check(const struct mem_store_opts *o, const char *rel, const char *jpath)
{
	char *r, *v;

	if (o->remote == NULL)
		return;
	r = mem_xasprintf("%s/%s", rel, mem_path_basename(jpath));
	v = mem_objstore_path(o->remote, r);
	if (mem_objstore_exists(v)) {
		char *dir = mem_path_dirname(jpath);

		if (!mem_path_exists(jpath) && mem_mkdir_p(dir, NULL) == 0)
			mem_objstore_get(v, jpath, NULL);
		free(dir);
	} else
		unlink(jpath);
	free(r);
	free(v);
}

/* Uploads the stored item's local assets, then its JSON; drops the local assets. */
static int
remote_publish(const struct mem_store_opts *o, const json_t *stored, const char *dir,
    const char *rel, const char *jpath, struct mem_err *err)
{
	const char *key;
	json_t *a;
	char *r, *v, *u;
	int rc = 0;

	json_object_foreach(json_object_get((json_t *)stored, "assets"), key, a) {
		const char *h = mem_asset_href(a);
		char *local;

		if (h == NULL || mem_href_is_url(h) || h[0] == '/')
			continue;
		local = mem_path_join(dir, h);
		r = mem_xasprintf("%s/%s", rel, h);
		v = mem_objstore_path(o->remote, r);
		u = mem_xasprintf("%s/%s", o->remote, r);
		rc = mem_objstore_put(local, v, u, err);
		free(local);
		free(r);
		free(v);
		free(u);
		if (rc < 0)
			break;
	}
	if (rc == 0) {
		r = mem_xasprintf("%s/%s", rel, mem_path_basename(jpath));
		v = mem_objstore_path(o->remote, r);
		u = mem_xasprintf("%s/%s", o->remote, r);
		rc = mem_objstore_put(jpath, v, u, err);
		free(r);
		free(v);
		free(u);
	}
	if (rc < 0) {
		unlink(jpath);	/* not in the bucket: stored again next run */
		return -1;
	}
	json_object_foreach(json_object_get((json_t *)stored, "assets"), key, a) {
		const char *h = mem_asset_href(a);

		if (h && !mem_href_is_url(h) && h[0] != '/') {
			char *local = mem_path_join(dir, h);

			unlink(local);
			free(local);
		}
	}
	return 0;
}

json_t *
mem_store_item(const json_t *item, const struct mem_store_opts *o, int *skipped,
    struct mem_err *err)
{
	const char *coll = collection_of(item), *key;
	char *scoll = mem_path_safe_name(coll), *sid = mem_path_safe_name(mem_item_id(item));
	char *cdir = mem_path_join(o->outdir, scoll);
	char *dir = mem_path_join(cdir, sid), *jname = mem_xasprintf("%s.json", sid);
	char *jpath = mem_path_join(dir, jname);
	char *rel = mem_xasprintf("%s/%s", scoll, sid);
	char *rbase = o->remote ? mem_xasprintf("%s/%s", o->remote, rel) : NULL;
	json_t *stored = NULL, *out = NULL, *a, *links, *keep;
	size_t i;

	*skipped = 0;
	remote_check(o, rel, jpath);
	if (mem_path_exists(jpath)) {
		json_error_t jerr;

		stored = json_load_file(jpath, 0, &jerr);
		if (stored != NULL) {
			*skipped = 1;
			out = absolute_copy(stored, dir, rbase);
			goto done;
		}
		/* an unreadable item file is rewritten below */
	}
	if (mem_workdir(dir, err) < 0)
		goto done;
	stored = json_deep_copy(item);
	json_object_set_new(stored, "collection", json_string(coll));
	json_object_foreach(json_object_get(stored, "assets"), key, a) {
		const char *href = mem_asset_href(a);
		char *skey, *fname, *path;
		char sum[69];
		off_t size;

		if (href == NULL || mem_href_is_url(href))
			continue;	/* remote assets stay where they are */
		skey = mem_path_safe_name(key);
		if (is_raster(a)) {
			GDALDatasetH src = mem_raster_open(href, err), ds;
			char **co = cog_options(key, a, o->co);
			int wrc;

			fname = mem_xasprintf("%s.tif", skey);
			path = mem_path_join(dir, fname);
			wrc = src == NULL ? -1 : mem_raster_write_cog(src, path, co, err);
			CSLDestroy(co);
			if (wrc < 0) {
				if (src)
					GDALClose(src);
				mem_err_prefix(err, "item '%s' asset '%s'", mem_item_id(item), key);
				free(skey);
				free(fname);
				free(path);
				goto fail;
			}
			GDALClose(src);
			ds = mem_raster_open(path, NULL);
			if (ds) {
				mem_raster_proj_fields(ds, a);
				GDALClose(ds);
			}
			json_object_set_new(a, "type",
			    json_string("image/tiff; application=geotiff; profile=cloud-optimized"));
		} else if (is_geopackage(a)) {
			/*
			 * one table per product: a single layer is named after the
			 * asset, or after the layer mem-fetch --vector cut it from
			 */
			const char *layer = mem_item_prop_string(item, "mem:layer");
			char *table = mem_path_safe_name(layer && *layer ? layer : key);
			json_t *tables;
			long nf;

			fname = mem_xasprintf("%s.gpkg", skey);
			path = mem_path_join(dir, fname);
			nf = mem_vector_store_gpkg(href, path, table,
			    json_string_value(json_object_get(json_object_get(item, "properties"),
			    "datetime")), &tables, err);
			free(table);
			if (nf < 0) {
				mem_err_prefix(err, "item '%s' asset '%s'", mem_item_id(item), key);
				free(skey);
				free(fname);
				free(path);
				goto fail;
			}
			json_object_set_new(a, "type", json_string("application/geopackage+sqlite3"));
			json_object_set_new(a, "mem:tables", tables);
			json_object_set_new(a, "mem:feature_count", json_integer((json_int_t)nf));
		} else {
			const char *base = mem_path_basename(href);

			fname = mem_xasprintf("%s-%s", skey, base);
			path = mem_path_join(dir, fname);
			if (mem_copy_file(href, path, err) < 0) {
				free(skey);
				free(fname);
				free(path);
				goto fail;
			}
		}
		if (mem_file_checksum(path, sum, &size, err) < 0) {
			free(skey);
			free(fname);
			free(path);
			goto fail;
		}
		json_object_set_new(a, "href", json_string(fname));
		json_object_set_new(a, "file:size", json_integer((json_int_t)size));
		json_object_set_new(a, "file:checksum", json_string(sum));
		json_object_del(a, "mem:source_href");
		if (o->tier)
			json_object_set_new(a, "storage:tier", json_string("hot"));
		free(skey);
		free(fname);
		free(path);
	}
	/* catalog links: keep the item's own (derived_from, license, ...), set ours */
	links = json_object_get(stored, "links");
	keep = json_array();
	json_array_foreach(links, i, a) {
		const char *rel = json_string_value(json_object_get(a, "rel"));

		if (rel && (!strcmp(rel, "self") || !strcmp(rel, "root") || !strcmp(rel, "parent") ||
		    !strcmp(rel, "collection")))
			continue;
		json_array_append(keep, a);
	}
	json_array_append_new(keep, mklink("root", "../../catalog.json", "application/json", NULL));
	json_array_append_new(keep, mklink("parent", "../collection.json", "application/json", NULL));
	json_array_append_new(keep, mklink("collection", "../collection.json", "application/json",
	    NULL));
	json_object_set_new(stored, "links", keep);
	mem_item_add_extension(stored, MEM_EXT_FILE);
	if (o->tier)
		mem_item_add_extension(stored, MEM_EXT_STORAGE);
	if (write_json(jpath, stored, err) < 0)
		goto fail;
	if (o->remote && remote_publish(o, stored, dir, rel, jpath, err) < 0)
		goto fail;
	out = absolute_copy(stored, dir, rbase);
	goto done;
fail:
	out = NULL;
done:
	json_decref(stored);
	free(rel);
	free(rbase);
	free(scoll);
	free(sid);
	free(cdir);
	free(dir);
	free(jname);
	free(jpath);
	return out;
}

json_t *
mem_store_load(const char *outdir, const char *collection, const char *id, struct mem_err *err)
{
	char *scoll = mem_path_safe_name(collection), *sid = mem_path_safe_name(id);
	char *dir = mem_xasprintf("%s/%s/%s", outdir, scoll, sid);
	char *jpath = mem_xasprintf("%s/%s.json", dir, sid);
	json_error_t jerr;
	json_t *stored = json_load_file(jpath, 0, &jerr), *out = NULL;

	if (stored == NULL)
		mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", jpath, jerr.text);
	else
		out = absolute_copy(stored, dir, NULL);
	json_decref(stored);
	free(scoll);
	free(sid);
	free(dir);
	free(jpath);
	return out;
}




/* Writes COLLECTION/collection.json from its item files; returns items counted. */
static int
write_collection(const struct mem_store_opts *o, const char *name, int *count,
    struct mem_err *err)
{
	char *cdir = mem_path_join(o->outdir, name), **items;
	size_t n = mem_list_dir(cdir, 1, &items), i;
	double bb[4] = { INFINITY, INFINITY, -INFINITY, -INFINITY };
	double t0 = INFINITY, t1 = -INFINITY;
	json_t *c = json_object(), *links = json_array(), *ext, *sp, *tm, *iv, *bba;
	char buf[40], *path;
	int rc;

	*count = 0;
	mem_sweep_tmp(cdir);
	for (i = 0; i < n; i++) {
		char *f = mem_xasprintf("%s/%s/%s.json", cdir, items[i], items[i]);
		json_t *it = json_load_file(f, 0, NULL);
		double b[4];
		struct mem_interval tv;

		free(f);
		if (it == NULL)
			continue;
		if (mem_item_bbox(it, b, NULL) == 0) {
			bb[0] = fmin(bb[0], b[0]);
			bb[1] = fmin(bb[1], b[1]);
			bb[2] = fmax(bb[2], b[2]);
			bb[3] = fmax(bb[3], b[3]);
		}
		if (mem_item_time(it, &tv, NULL) == 0) {
			t0 = fmin(t0, tv.start);
			t1 = fmax(t1, tv.end);
		}
		f = mem_xasprintf("./%s/%s.json", items[i], items[i]);
		json_array_append_new(links, mklink("item", f, "application/geo+json",
		    mem_item_id(it)));
		free(f);
		json_decref(it);
		(*count)++;
	}
	mem_free_names(items, n);
	json_object_set_new(c, "type", json_string("Collection"));
	json_object_set_new(c, "stac_version", json_string(MEM_STAC_VERSION));
	json_object_set_new(c, "id", json_string(name));
	json_object_set_new(c, "description", json_string("Items written by mem-store"));
	json_object_set_new(c, "license", json_string("other"));
	ext = json_object();
	sp = json_object();
	bba = json_array();
	if (!(bb[0] <= bb[2])) {
		bb[0] = -180; bb[1] = -90; bb[2] = 180; bb[3] = 90;
	}
	for (i = 0; i < 4; i++)
		json_array_append_new(bba, json_real(bb[i]));
	json_object_set_new(sp, "bbox", json_pack("[o]", bba));
	tm = json_object();
	iv = json_array();
	if (isfinite(t0)) {
		mem_time_format(t0, buf, sizeof buf);
		json_array_append_new(iv, json_string(buf));
		mem_time_format(t1, buf, sizeof buf);
		json_array_append_new(iv, json_string(buf));
	} else {
		json_array_append_new(iv, json_null());
		json_array_append_new(iv, json_null());
	}
	json_object_set_new(tm, "interval", json_pack("[o]", iv));
	json_object_set_new(ext, "spatial", sp);
	json_object_set_new(ext, "temporal", tm);
	json_object_set_new(c, "extent", ext);
	json_array_insert_new(links, 0, mklink("root", "../catalog.json", "application/json", NULL));
	json_array_insert_new(links, 1, mklink("parent", "../catalog.json", "application/json", NULL));
	json_object_set_new(c, "links", links);
	path = mem_xasprintf("%s/collection.json", cdir);
	rc = write_json(path, c, err);
	free(path);
	free(cdir);
	json_decref(c);
	return rc;
}

/* Fetches into the staging copy the item files of the bucket it lacks. */
static int
remote_fetch_items(const struct mem_store_opts *o, struct mem_err *err)
{
	char *root = mem_objstore_path(o->remote, NULL), **keys = mem_objstore_list(root);
	int rc = 0;

	for (char **k = keys; k && *k && rc == 0; k++) {
		/* COLLECTION/ID/ID.json */
		const char *s1 = strchr(*k, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
		size_t idlen = s2 ? (size_t)(s2 - s1 - 1) : 0;
		char *local, *v;

		if (s2 == NULL || strchr(s2 + 1, '/') || strlen(s2 + 1) != idlen + 5 ||
		    strncmp(s2 + 1, s1 + 1, idlen) || strcmp(s2 + 1 + idlen, ".json"))
			continue;
		local = mem_path_join(o->outdir, *k);
		if (!mem_path_exists(local)) {
			char *d = mem_path_dirname(local);

			v = mem_objstore_path(o->remote, *k);
			rc = mem_mkdir_p(d, err);
			if (rc == 0)
				rc = mem_objstore_get(v, local, err);
			free(v);
			free(d);
		}
		free(local);
	}
	CSLDestroy(keys);
	free(root);
	return rc;
}

/* Uploads each COLLECTION/collection.json, then catalog.json. */
static int
remote_publish_catalog(const struct mem_store_opts *o, struct mem_err *err)
{
	char **colls, *local, *v, *u;
	size_t n = mem_list_dir(o->outdir, 1, &colls), i;
	int rc = 0;

	for (i = 0; i <= n && rc == 0; i++) {
		char *rel = i < n ? mem_xasprintf("%s/collection.json", colls[i]) :
		    mem_xstrdup("catalog.json");

		local = mem_path_join(o->outdir, rel);
		if (mem_path_exists(local)) {
			v = mem_objstore_path(o->remote, rel);
			u = mem_xasprintf("%s/%s", o->remote, rel);
			rc = mem_objstore_put(local, v, u, err);
			free(v);
			free(u);
		}
		free(local);
		free(rel);
	}
	mem_free_names(colls, n);
	return rc;
}

int
mem_store_finish(const struct mem_store_opts *o, struct mem_err *err)
{
	char **colls, *path;
	size_t n, i;
	json_t *cat = json_object(), *links = json_array();
	int rc = 0;

	if (mem_workdir(o->outdir, err) < 0)
		return -1;
	if (o->remote && remote_fetch_items(o, err) < 0)
		return -1;
	n = mem_list_dir(o->outdir, 1, &colls);
	json_array_append_new(links, mklink("root", "./catalog.json", "application/json", NULL));
	for (i = 0; i < n && rc == 0; i++) {
		int count;
		char *href;

		rc = write_collection(o, colls[i], &count, err);
		if (rc < 0 || count == 0)
			continue;
		href = mem_xasprintf("./%s/collection.json", colls[i]);
		json_array_append_new(links, mklink("child", href, "application/json", colls[i]));
		free(href);
	}
	mem_free_names(colls, n);
	json_object_set_new(cat, "type", json_string("Catalog"));
	json_object_set_new(cat, "stac_version", json_string(MEM_STAC_VERSION));
	json_object_set_new(cat, "id", json_string(o->catalog_id ? o->catalog_id : "memories"));
	if (o->title)
		json_object_set_new(cat, "title", json_string(o->title));
	json_object_set_new(cat, "description", json_string("Outputs of memories (mem-store)"));
	json_object_set_new(cat, "links", links);
	path = mem_path_join(o->outdir, "catalog.json");
	if (rc == 0)
		rc = write_json(path, cat, err);
	free(path);
	json_decref(cat);
	if (rc == 0 && o->remote)
		rc = remote_publish_catalog(o, err);
	return rc;
}

/*
 * verify reads through GDAL's VSI layer, so that the same walk checks a
 * catalog on disk and one in an object store (/vsis3/...).
 */

/* path for messages: relative when the catalog was named relatively, s3:// for the bucket */
static char *
shown(const char *abs, int relative)
{
	if (strncmp(abs, "/vsis3/", 7) == 0)
		return mem_xasprintf("s3://%s", abs + 7);
	return relative ? mem_path_relative(".", abs) : mem_xstrdup(abs);
}

static void
problem(mem_store_problem_fn fn, void *ctx, struct mem_store_verified *n, const char *abs,
    int relative, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
problem(mem_store_problem_fn fn, void *ctx, struct mem_store_verified *n, const char *abs,
    int relative, const char *fmt, ...)
{
	char msg[MEM_ERR_MSG], *p = shown(abs, relative);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	n->problems++;
	if (fn)
		fn(ctx, p, msg);
	free(p);
}

static int
is_catalog_rel(const char *rel)
{
	return rel && (!strcmp(rel, "child") || !strcmp(rel, "item") || !strcmp(rel, "parent") ||
	    !strcmp(rel, "root") || !strcmp(rel, "collection"));
}

static int
vsi_exists(const char *path)
{
	VSIStatBufL st;

	return VSIStatExL(path, &st, VSI_STAT_EXISTS_FLAG) == 0;
}

/* Reads a JSON document through VSI; NULL with a reason in why. */
static json_t *
vsi_load_json(const char *path, char *why, size_t nwhy)
{
	GByte *buf = NULL;
	vsi_l_offset len = 0;
	json_error_t jerr;
	json_t *d;

	if (!VSIIngestFile(NULL, path, &buf, &len, 64 << 20)) {
		snprintf(why, nwhy, "cannot read it");
		return NULL;
	}
	d = json_loadb((const char *)buf, (size_t)len, 0, &jerr);
	VSIFree(buf);
	if (d == NULL)
		snprintf(why, nwhy, "not JSON: %s (line %d)", jerr.text, jerr.line);
	return d;
}

/* The file:checksum of size bytes at start of path (size < 0: to the end); *got the bytes read. */
static int
vsi_checksum(const char *path, vsi_l_offset start, long long size, char out[69], long long *got)
{
	VSILFILE *f = VSIFOpenL(path, "rb");
	struct mem_sha256 s;
	unsigned char dig[32], *buf;
	size_t r;

	*got = 0;
	if (f == NULL || VSIFSeekL(f, start, SEEK_SET) != 0) {
		if (f)
			VSIFCloseL(f);
		return -1;
	}
	buf = mem_xmalloc(1 << 20);
	mem_sha256_init(&s);
	for (;;) {
		size_t want = 1 << 20;

		if (size >= 0 && (long long)want > size - *got)
			want = (size_t)(size - *got);
		if (want == 0 || (r = VSIFReadL(buf, 1, want, f)) == 0)
			break;
		mem_sha256_update(&s, buf, r);
		*got += (long long)r;
	}
	free(buf);
	VSIFCloseL(f);
	mem_sha256_final(&s, dig);
	memcpy(out, "1220", 4);
	mem_hex(dig, 32, out + 4);
	return 0;
}

/* The name of the ustar member whose data starts at start, or "" when there is none. */
static void
tar_member_name(const char *path, vsi_l_offset start, char name[257])
{
	unsigned char h[512];
	VSILFILE *f;

	name[0] = '\0';
	if (start < 512 || (f = VSIFOpenL(path, "rb")) == NULL)
		return;
	if (VSIFSeekL(f, start - 512, SEEK_SET) == 0 && VSIFReadL(h, 1, 512, f) == 512 &&
	    memcmp(h + 257, "ustar", 5) == 0) {
		if (h[345])
			snprintf(name, 257, "%.155s/%.100s", (char *)h + 345, (char *)h);
		else
			snprintf(name, 257, "%.100s", (char *)h);
	}
	VSIFCloseL(f);
}

/*
 * Checks a local asset of the document in dir against its file:size and
 * file:checksum; an asset in an archive (archive:href) is the member at
 * archive:start, which must carry that name.
 */
static void
verify_asset(const char *dir, const char *key, const json_t *a, int objects,
    mem_store_problem_fn fn, void *ctx, struct mem_store_verified *n, int relative)
{
	const char *href = mem_asset_href(a);
	const char *want = json_string_value(json_object_get(a, "file:checksum"));
	const char *member = json_string_value(json_object_get(a, "archive:href"));
	json_t *size = json_object_get(a, "file:size"), *jst = json_object_get(a, "archive:start");
	char *j, *abs, sum[69];
	vsi_l_offset start = 0;
	long long got, len = -1;

	if (href == NULL)
		return;
	if (objects && mem_objstore_is_url(href))
		abs = mem_objstore_path(href, NULL);	/* moved to the object store tier */
	else if (mem_href_is_url(href))
		return;		/* other remote assets are another store's to keep */
	else {
		j = mem_path_join(dir, href);
		abs = mem_path_absolute(j);
		free(j);
	}
	n->files++;
	if (!vsi_exists(abs)) {
		problem(fn, ctx, n, abs, relative, "asset '%s' is missing", key);
		goto out;
	}
	if (json_object_get(a, "warm:checksum")) {
		/* a time slice of a cube: its values' checksum, read through GDAL */
		struct mem_err e2;
		const char *ws = json_string_value(json_object_get(a, "warm:checksum"));

		mem_err_clear(&e2);
		if (mem_tier_warm_slice(abs, a, sum, &e2) < 0)
			problem(fn, ctx, n, abs, relative, "asset '%s': %s", key, e2.msg);
		else if (ws == NULL || strcasecmp(ws, sum) != 0)
			problem(fn, ctx, n, abs, relative,
			    "asset '%s': slice checksum mismatch: %s, the item says %s", key, sum,
			    ws ? ws : "?");
		goto out;
	}
	if (member) {
		char name[257];

		if (!json_is_integer(jst) || !json_is_integer(size) || json_integer_value(jst) < 512) {
			problem(fn, ctx, n, abs, relative,
			    "asset '%s': archive:href without archive:start and file:size", key);
			goto out;
		}
		start = (vsi_l_offset)json_integer_value(jst);
		len = json_integer_value(size);
		tar_member_name(abs, start, name);
		if (strcmp(name, member) != 0) {
			problem(fn, ctx, n, abs, relative,
			    "asset '%s': no member '%s' at byte %lld of the archive", key, member,
			    (long long)start);
			goto out;
		}
	}
	if (want == NULL && !json_is_integer(size))
		goto out;
	if (vsi_checksum(abs, start, len, sum, &got) < 0) {
		problem(fn, ctx, n, abs, relative, "asset '%s': cannot read it", key);
		goto out;
	}
	if (json_is_integer(size) && json_integer_value(size) != (json_int_t)got)
		problem(fn, ctx, n, abs, relative, "size mismatch: %lld bytes, the item says %lld",
		    got, (long long)json_integer_value(size));
	if (want && (strlen(want) != 68 || strncmp(want, "1220", 4) != 0))
		problem(fn, ctx, n, abs, relative,
		    "checksum '%.20s...' is not a SHA-256 multihash (1220...)", want);
	else if (want && strcasecmp(want, sum) != 0)
		problem(fn, ctx, n, abs, relative, "checksum mismatch: %s, the item says %s", sum, want);
out:
	free(abs);
}

int
mem_store_verify(const char *dir, int objects, mem_store_problem_fn fn, void *ctx,
    struct mem_store_verified *n, struct mem_err *err)
{
	int remote = mem_objstore_is_url(dir);
	char *root = remote ? mem_objstore_path(dir, "catalog.json") :
	    mem_path_join(dir, "catalog.json");
	char *abs = mem_path_absolute(root);
	json_t *seen = json_object(), *todo = json_array();
	int relative = !remote && dir[0] != '/';

	memset(n, 0, sizeof *n);
	free(root);
	if (remote)
		VSICurlClearCache();	/* what another writer changed since */
	if (!vsi_exists(abs)) {
		mem_err_set(err, remote ? MEM_EITEM : MEM_EUSAGE,
		    "verify: no catalog in '%s': no catalog.json", dir);
		free(abs);
		json_decref(seen);
		json_decref(todo);
		return -1;
	}
	json_array_append_new(todo, json_string(abs));
	json_object_set_new(seen, abs, json_true());
	free(abs);
	/* a walk over the links, each document once (links go up as well as down) */
	while (json_array_size(todo) > 0) {
		char *doc = mem_xstrdup(json_string_value(json_array_get(todo, 0))), *ddir;
		char why[300];
		json_t *d, *l, *a;
		const char *key;
		size_t i;

		json_array_remove(todo, 0);
		d = vsi_load_json(doc, why, sizeof why);
		if (d == NULL) {
			problem(fn, ctx, n, doc, relative, "%s", why);
			free(doc);
			continue;
		}
		n->documents++;
		ddir = mem_path_dirname(doc);
		json_array_foreach(json_object_get(d, "links"), i, l) {
			const char *rel = json_string_value(json_object_get(l, "rel"));
			const char *href = json_string_value(json_object_get(l, "href"));
			char *j, *target;

			if (!is_catalog_rel(rel) || href == NULL || mem_href_is_url(href))
				continue;
			j = mem_path_join(ddir, href);
			target = mem_path_absolute(j);
			free(j);
			if (json_object_get(seen, target) != NULL)
				;
			else if (!vsi_exists(target))
				problem(fn, ctx, n, doc, relative, "broken link: rel=%s href '%s'", rel, href);
			else {
				json_object_set_new(seen, target, json_true());
				json_array_append_new(todo, json_string(target));
			}
			free(target);
		}
		json_object_foreach(json_object_get(d, "assets"), key, a)
			verify_asset(ddir, key, a, objects, fn, ctx, n, relative);
		json_decref(d);
		free(ddir);
		free(doc);
	}
	json_decref(seen);
	json_decref(todo);
	return 0;
}

/*
 * --mosaic: the items of one collection and date are kept until the end of
 * the run, then each raster asset key becomes one COG over all of them.
 * Only hrefs are kept per item, not pixels; GDAL reads the tiles through a
 * VRT block by block while the COG driver writes.
 */
struct mem_mosaic {
	json_t *groups;		/* "COLLECTION\tDATE" -> [items] */
};

struct mem_mosaic *
mem_mosaic_new(void)
{
	struct mem_mosaic *m = mem_xcalloc(1, sizeof *m);

	m->groups = json_object();
	return m;
}

void
mem_mosaic_free(struct mem_mosaic *m)
{
	if (m == NULL)
		return;
	json_decref(m->groups);
	free(m);
}

int
mem_mosaic_wants(const json_t *item)
{
	const char *key;
	json_t *a;

	json_object_foreach(json_object_get((json_t *)item, "assets"), key, a) {
		if (is_raster(a) && mem_asset_href(a))
			return 1;
	}
	return 0;
}

int
mem_mosaic_add(struct mem_mosaic *m, const json_t *item, struct mem_err *err)
{
	char date[11], *key;
	json_t *g;

	if (mem_item_date(item, date, err) < 0)
		return mem_err_prefix(err, "item '%s'", mem_item_id(item));
	key = mem_xasprintf("%s\t%s", collection_of(item), date);
	g = json_object_get(m->groups, key);
	if (g == NULL) {
		g = json_array();
		json_object_set_new(m->groups, key, g);
	}
	json_array_append(g, (json_t *)item);
	free(key);
	return 0;
}

size_t
mem_mosaic_count(const struct mem_mosaic *m)
{
	return json_object_size(m->groups);
}

static int
cmp_item_id(const void *a, const void *b)
{
	return strcmp(mem_item_id(*(json_t *const *)a), mem_item_id(*(json_t *const *)b));
}

/* Writes the mosaic COG of asset key over items into dir/KEY.tif; fills the stored asset. */
static int
mosaic_asset(json_t **items, size_t n, const char *key, const char *dir,
    const struct mem_store_opts *o, json_t *asset, struct mem_err *err)
{
	char **hrefs = NULL, *skey = mem_path_safe_name(key), *fname, *path, sum[69];
	GDALDatasetH vrt, ds;
	json_t *rb;
	off_t size;
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		const json_t *a = json_object_get(json_object_get(items[i], "assets"), key);

		if (a && is_raster(a) && mem_asset_href(a))
			hrefs = CSLAddString(hrefs, mem_asset_href(a));
	}
	fname = mem_xasprintf("%s.tif", skey);
	path = mem_path_join(dir, fname);
	if ((vrt = mem_raster_mosaic_vrt(hrefs, key, err)) == NULL)
		goto out;
	rb = json_array();
	for (int b = 1; b <= GDALGetRasterCount(vrt); b++) {
		double st[4];
		json_t *s = json_object(), *bo;

		/* statistics go into the COG's GDAL_METADATA and the item */
		if (GDALComputeRasterStatistics(GDALGetRasterBand(vrt, b), FALSE, &st[0], &st[1],
		    &st[2], &st[3], NULL, NULL) != CE_None)
			continue;
		json_object_set_new(s, "minimum", json_real(st[0]));
		json_object_set_new(s, "maximum", json_real(st[1]));
		json_object_set_new(s, "mean", json_real(st[2]));
		json_object_set_new(s, "stddev", json_real(st[3]));
		bo = json_deep_copy(json_array_get(json_object_get(asset, "raster:bands"), b - 1));
		if (!json_is_object(bo)) {
			json_decref(bo);
			bo = json_object();
		}
		json_object_set_new(bo, "statistics", s);
		json_array_append_new(rb, bo);
	}
	{
		char **co = cog_options(key, asset, o->co);
		int wrc = mem_raster_write_cog(vrt, path, co, err);

		CSLDestroy(co);
		if (wrc < 0) {
			GDALClose(vrt);
			json_decref(rb);
			goto out;
		}
	}
	GDALClose(vrt);
	if (json_array_size(rb) > 0)
		json_object_set(asset, "raster:bands", rb);
	json_decref(rb);
	if ((ds = mem_raster_open(path, NULL)) != NULL) {
		mem_raster_proj_fields(ds, asset);
		GDALClose(ds);
	}
	if (mem_file_checksum(path, sum, &size, err) < 0)
		goto out;
	json_object_set_new(asset, "href", json_string(fname));
	json_object_set_new(asset, "type",
	    json_string("image/tiff; application=geotiff; profile=cloud-optimized"));
	json_object_set_new(asset, "file:size", json_integer((json_int_t)size));
	json_object_set_new(asset, "file:checksum", json_string(sum));
	json_object_del(asset, "mem:source_href");
	if (o->tier)
		json_object_set_new(asset, "storage:tier", json_string("hot"));
	rc = 0;
out:
	CSLDestroy(hrefs);
	free(skey);
	free(fname);
	free(path);
	return rc;
}

json_t *
mem_mosaic_store(struct mem_mosaic *m, size_t index, const struct mem_store_opts *o,
    int *skipped, struct mem_err *err)
{
	const char *gkey, *coll, *key;
	json_t *g, *params, *stored = NULL, *out = NULL, *assets, *links, *a, *props, *geom, *bba;
	json_t **items;
	char date[11], *id, *sid, *scoll, *cdir, *dir, *jname, *jpath, *rel, *rbase;
	double bb[4] = { INFINITY, INFINITY, -INFINITY, -INFINITY }, t0 = INFINITY;
	size_t n, i, j = 0, first = 0;
	void *iter = json_object_iter(m->groups);

	*skipped = 0;
	while (iter && j++ < index)
		iter = json_object_iter_next(m->groups, iter);
	if (iter == NULL) {
		mem_err_set(err, MEM_EUSAGE, "no mosaic %zu", index);
		return NULL;
	}
	gkey = json_object_iter_key(iter);
	g = json_object_iter_value(iter);
	n = json_array_size(g);
	items = mem_xmalloc(n * sizeof *items);
	for (i = 0; i < n; i++)
		items[i] = json_array_get(g, i);
	qsort(items, n, sizeof *items, cmp_item_id);
	coll = collection_of(items[0]);
	snprintf(date, sizeof date, "%s", strchr(gkey, '\t') + 1);
	/* the id: the tiles it is made of, so a rerun over the same tiles skips it */
	params = json_pack("{s:s, s:[]}", "mosaic", date, "items");
	for (i = 0; i < n; i++)
		json_array_append_new(json_object_get(params, "items"),
		    json_string(mem_item_id(items[i])));
	{
		char *stem = mem_xasprintf("%s-mosaic-%s", coll, date);

		id = mem_item_derive_id(stem, "mem-store", params);
		free(stem);
	}
	json_decref(params);
	scoll = mem_path_safe_name(coll);
	sid = mem_path_safe_name(id);
	cdir = mem_path_join(o->outdir, scoll);
	dir = mem_path_join(cdir, sid);
	jname = mem_xasprintf("%s.json", sid);
	jpath = mem_path_join(dir, jname);
	rel = mem_xasprintf("%s/%s", scoll, sid);
	rbase = o->remote ? mem_xasprintf("%s/%s", o->remote, rel) : NULL;
	remote_check(o, rel, jpath);
	if (mem_path_exists(jpath) && (stored = json_load_file(jpath, 0, NULL)) != NULL) {
		*skipped = 1;
		out = absolute_copy(stored, dir, rbase);
		goto done;
	}
	if (mem_workdir(dir, err) < 0)
		goto done;
	for (i = 0; i < n; i++) {
		double b[4];
		struct mem_interval tv;

		if (mem_item_bbox(items[i], b, NULL) == 0) {
			bb[0] = fmin(bb[0], b[0]);
			bb[1] = fmin(bb[1], b[1]);
			bb[2] = fmax(bb[2], b[2]);
			bb[3] = fmax(bb[3], b[3]);
		}
		if (mem_item_time(items[i], &tv, NULL) == 0 && tv.start < t0) {
			t0 = tv.start;
			first = i;
		}
	}
	stored = json_object();
	json_object_set_new(stored, "type", json_string("Feature"));
	json_object_set_new(stored, "stac_version", json_string(MEM_STAC_VERSION));
	a = json_object_get(items[first], "stac_extensions");
	json_object_set_new(stored, "stac_extensions", a ? json_deep_copy(a) : json_array());
	json_object_set_new(stored, "id", json_string(id));
	json_object_set_new(stored, "collection", json_string(coll));
	bba = json_pack("[ffff]", bb[0], bb[1], bb[2], bb[3]);
	geom = json_pack("{s:s, s:[[[ff],[ff],[ff],[ff],[ff]]]}", "type", "Polygon", "coordinates",
	    bb[0], bb[1], bb[2], bb[1], bb[2], bb[3], bb[0], bb[3], bb[0], bb[1]);
	json_object_set_new(stored, "geometry", geom);
	json_object_set_new(stored, "bbox", bba);
	/* the earliest tile's properties, less what belonged to one tile */
	props = json_deep_copy(json_object_get(items[first], "properties"));
	json_object_del(props, "mem:grid");
	json_object_del(props, "proj:transform");
	json_object_del(props, "proj:shape");
	json_object_del(props, "proj:bbox");
	json_object_set_new(props, "mem:mosaic_of", json_integer((json_int_t)n));
	json_object_set_new(stored, "properties", props);
	links = json_array();
	{
		json_t *seen = json_object();

		for (i = 0; i < n; i++) {
			size_t k;
			json_t *l;

			json_array_foreach(json_object_get(items[i], "links"), k, l) {
				const char *rel = json_string_value(json_object_get(l, "rel"));
				const char *href = json_string_value(json_object_get(l, "href"));

				if (rel == NULL || strcmp(rel, "derived_from") || href == NULL ||
				    json_object_get(seen, href))
					continue;
				json_object_set_new(seen, href, json_true());
				json_array_append(links, l);
			}
		}
		json_decref(seen);
	}
	json_array_append_new(links, mklink("root", "../../catalog.json", "application/json", NULL));
	json_array_append_new(links, mklink("parent", "../collection.json", "application/json", NULL));
	json_array_append_new(links, mklink("collection", "../collection.json", "application/json",
	    NULL));
	json_object_set_new(stored, "links", links);
	assets = json_object();
	json_object_set_new(stored, "assets", assets);
	for (i = 0; i < n; i++) {
		json_object_foreach(json_object_get(items[i], "assets"), key, a) {
			json_t *sa;

			if (json_object_get(assets, key) || !is_raster(a) || mem_asset_href(a) == NULL)
				continue;
			sa = json_deep_copy(a);
			json_object_del(sa, "file:size");
			json_object_del(sa, "file:checksum");
			json_object_set_new(assets, key, sa);
			if (mosaic_asset(items, n, key, dir, o, sa, err) < 0) {
				mem_err_prefix(err, "mosaic '%s' asset '%s'", id, key);
				goto fail;
			}
		}
	}
	if (json_object_size(assets) == 0) {
		mem_err_set(err, MEM_EITEM, "mosaic '%s': no raster assets in its %zu items", id, n);
		goto fail;
	}
	/* the item's own projection: the mosaic's, when all its assets share one grid */
	{
		json_t *a0 = json_object_iter_value(json_object_iter(assets));

		json_object_set(props, "proj:transform", json_object_get(a0, "proj:transform"));
		json_object_set(props, "proj:shape", json_object_get(a0, "proj:shape"));
	}
	mem_item_add_extension(stored, MEM_EXT_FILE);
	if (o->tier)
		mem_item_add_extension(stored, MEM_EXT_STORAGE);
	if (write_json(jpath, stored, err) < 0)
		goto fail;
	if (o->remote && remote_publish(o, stored, dir, rel, jpath, err) < 0)
		goto fail;
	out = absolute_copy(stored, dir, rbase);
	goto done;
fail:
	out = NULL;
done:
	json_decref(stored);
	free(rel);
	free(rbase);
	free(items);
	free(id);
	free(sid);
	free(scoll);
	free(cdir);
	free(dir);
	free(jname);
	free(jpath);
	return out;
}
