/*
 * fetch.c - bringing an item's assets home.
 *
 * Copies are written under a temporary name and renamed, so a kill -9 never
 * leaves a partial file under a final name, and a rerun keeps what is
 * there.  The item that comes out keeps every member of the source item
 * (unknown ones too) and describes the local files as they are, which
 * matters when a catalog's proj:shape does not match a resampled copy.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_vsi.h>
#include <curl/curl.h>

#include "fetch.h"
#include "files.h"
#include "raster.h"
#include "sha256.h"

int
mem_fetch_match(const json_t *item, const struct mem_fetch_opts *o)
{
	struct mem_err err;

	if (o->has_bbox) {
		double b[4];

		if (mem_item_bbox(item, b, &err) < 0 || !mem_bbox_intersects(b, o->bbox))
			return 0;
	}
	if (o->has_datetime) {
		struct mem_interval iv;

		if (mem_item_time(item, &iv, &err) < 0)
			return 0;
		if (iv.end < o->datetime.start || iv.start > o->datetime.end)
			return 0;
	}
	if (o->collections) {
		const char *c = json_string_value(json_object_get(item, "collection"));
		char **p;

		if (c == NULL)
			return 0;
		for (p = o->collections; *p; p++)
			if (strcmp(*p, c) == 0)
				break;
		if (*p == NULL)
			return 0;
	}
	if (o->has_max_cloud) {
		double cc;

		if (mem_item_prop_number(item, "eo:cloud_cover", &cc) == 0 && cc > o->max_cloud)
			return 0;
	}
	return 1;
}

static int
has_role(const json_t *asset, const char *role)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(asset, "roles"), i, r)
		if (json_is_string(r) && strcmp(json_string_value(r), role) == 0)
			return 1;
	return 0;
}

static void
append_unique(json_t *arr, const char *key)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), key) == 0)
			return;
	json_array_append_new(arr, json_string(key));
}

json_t *
mem_fetch_select(const json_t *item, const struct mem_fetch_opts *o, struct mem_err *err)
{
	json_t *assets = json_object_get(item, "assets"), *a, *keys = json_array();
	const char *key;

	if (o->assets == NULL) {
		json_object_foreach(assets, key, a)
			if (has_role(a, "data") && mem_asset_href(a))
				append_unique(keys, key);
		if (json_array_size(keys) == 0)
			return mem_err_set(err, MEM_EITEM, "item '%s' has no data assets",
			    mem_item_id(item)), json_decref(keys), NULL;
		return keys;
	}
	for (char **n = o->assets; *n; n++) {
		struct mem_band band;
		const char *found = NULL;

		json_object_foreach(assets, key, a)
			if (strcasecmp(key, *n) == 0 && mem_asset_href(a)) {
				found = key;
				break;
			}
		if (found == NULL && mem_item_find_band(item, *n, &band, NULL) == 0)
			found = band.asset_key;
		if (found == NULL) {
			json_decref(keys);
			mem_err_set(err, MEM_EITEM, "item '%s' has no asset or band '%s'",
			    mem_item_id(item), *n);
			return NULL;
		}
		append_unique(keys, found);
	}
	return keys;
}

/* The file name of an asset copy: its key, with the source's extension. */
static char *
local_name(const char *key, const char *href)
{
	const char *base = mem_path_basename(href), *dot = strrchr(base, '.');
	char *safe = mem_path_safe_name(key), *name;
	char ext[16] = "";

	if (dot && strlen(dot) < sizeof ext && strcspn(dot, "?#") == strlen(dot))
		snprintf(ext, sizeof ext, "%s", dot);
	else if (dot) {
		size_t n = strcspn(dot, "?#");

		if (n < sizeof ext)
			snprintf(ext, sizeof ext, "%.*s", (int)n, dot);
	}
	name = mem_xasprintf("%s%s", safe, ext);
	free(safe);
	return name;
}

/*
 * Planetary Computer serves assets from blob storage that wants a SAS
 * token; its token endpoint gives one per collection.  The signed URL is
 * used for the transfer only: tokens expire, so items keep the plain href.
 */
static char *
sign(const char *href, const char *collection, const struct mem_fetch_opts *o,
    struct mem_err *err)
{
	const char *tok;
	json_t *t;

	if (o->sas_url == NULL || strstr(href, "sig=") != NULL)
		return mem_xstrdup(href);
	if (collection == NULL)
		collection = "";
	t = json_object_get(o->sas_tokens, collection);
	if (t == NULL) {
		char *url = mem_xasprintf("%s/%s", o->sas_url, collection), *body;
		json_t *doc;
		size_t len;

		if (mem_http_get(url, &o->http, &body, &len, err) < 0) {
			mem_err_prefix(err, "cannot sign '%s'", href);
			free(url);
			return NULL;
		}
		doc = json_loadb(body, len, 0, NULL);
		free(body);
		if (!json_is_string(json_object_get(doc, "token"))) {
			mem_err_set(err, MEM_ETEMP, "cannot sign '%s': '%s' gave no token", href, url);
			json_decref(doc);
			free(url);
			return NULL;
		}
		free(url);
		json_object_set(o->sas_tokens, collection, json_object_get(doc, "token"));
		json_decref(doc);
		t = json_object_get(o->sas_tokens, collection);
	}
	tok = json_string_value(t);
	return mem_xasprintf("%s%c%s", href, strchr(href, '?') ? '&' : '?', tok);
}

/*
 * At most per_host transfers to one host at a time, whatever -j allows:
 * servers throttle or refuse clients that open too many connections.
 */
static pthread_mutex_t hosts_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hosts_free = PTHREAD_COND_INITIALIZER;
static json_t *hosts_busy;

static char *
host_of(const char *url)
{
	const char *p = strstr(url, "://"), *e;

	if (p == NULL)
		return mem_xstrdup("");
	p += 3;
	e = p + strcspn(p, "/?#");
	return mem_xasprintf("%.*s", (int)(e - p), p);
}

static void
host_acquire(const char *host, int limit)
{
	pthread_mutex_lock(&hosts_lock);
	if (hosts_busy == NULL)
		hosts_busy = json_object();
	while (json_integer_value(json_object_get(hosts_busy, host)) >= limit)
		pthread_cond_wait(&hosts_free, &hosts_lock);
	json_object_set_new(hosts_busy, host,
	    json_integer(json_integer_value(json_object_get(hosts_busy, host)) + 1));
	pthread_mutex_unlock(&hosts_lock);
}

static void
host_release(const char *host)
{
	pthread_mutex_lock(&hosts_lock);
	json_object_set_new(hosts_busy, host,
	    json_integer(json_integer_value(json_object_get(hosts_busy, host)) - 1));
	pthread_cond_broadcast(&hosts_free);
	pthread_mutex_unlock(&hosts_lock);
}

static int
bring(const char *href, const char *collection, const char *dest, const struct mem_fetch_opts *o,
    struct mem_err *err)
{
	if (mem_path_exists(dest))
		return 0;
	if (strncmp(href, "http://", 7) == 0 || strncmp(href, "https://", 8) == 0) {
		char *url = sign(href, collection, o, err);
		int rc;

		char *host;

		if (url == NULL)
			return -1;
		host = host_of(url);
		host_acquire(host, o->per_host > 0 ? o->per_host : 4);
		rc = mem_http_download(url, dest, &o->http, err);
		host_release(host);
		free(host);
		free(url);
		return rc;
	}
	if (mem_href_is_url(href) && strncmp(href, "file://", 7) != 0)
		return mem_err_set(err, MEM_EITEM,
		    "cannot fetch '%s': scheme not supported (http, https, file and paths are)", href);
	return mem_copy_file(strncmp(href, "file://", 7) == 0 ? href + 7 : href, dest, err);
}

static int
is_raster(const json_t *asset, const char *path)
{
	const char *type = json_string_value(json_object_get(asset, "type"));
	size_t n = strlen(path);

	if (type)
		return strstr(type, "image/tiff") || strstr(type, "image/jp2") ||
		    strstr(type, "netcdf") || strstr(type, "x-hdf");
	return (n > 4 && (!strcasecmp(path + n - 4, ".tif") || !strcasecmp(path + n - 4, ".jp2"))) ||
	    (n > 5 && !strcasecmp(path + n - 5, ".tiff"));
}

static int
is_geotiff(const json_t *asset, const char *href)
{
	const char *type = json_string_value(json_object_get(asset, "type"));
	size_t n = strcspn(href, "?#");

	if (type)
		return strstr(type, "image/tiff") != NULL;
	return (n > 4 && !strncasecmp(href + n - 4, ".tif", 4)) ||
	    (n > 5 && !strncasecmp(href + n - 5, ".tiff", 5));
}

/*
 * Bytes GDAL has read over the network from one file so far.  Counted per
 * file, not reset, since windows of several assets are read at once.
 */
static long long
network_bytes(const char *gdal_path)
{
	char *s = VSINetworkStatsGetAsSerializedJSON(NULL);
	json_t *v = s ? json_loads(s, 0, NULL) : NULL, *files, *f;
	long long n = 0;
	const char *name;

	files = json_object_get(json_object_get(json_object_get(v, "handlers"), "vsicurl"), "files");
	json_object_foreach(files, name, f)
		if (strcmp(name, gdal_path) == 0)
			n = (long long)json_integer_value(json_object_get(json_object_get(
			    json_object_get(f, "methods"), "GET"), "downloaded_bytes"));
	json_decref(v);
	CPLFree(s);
	return n;
}

/*
 * Reads only the window of the asset that covers the box into a COG at
 * DIR/KEY-X_Y_W_H.tif.  Returns 0 with *dest set, 1 when the window is the
 * whole raster (the caller copies it whole), -1 on error.
 */
static int
copy_window(json_t *a, const char *key, const char *collection, const char *dir,
    const struct mem_fetch_opts *o, char **dest, struct mem_err *err)
{
	const char *href = mem_asset_href(a);
	char *url, *safe, *name, *gpath, *side, hex[65], *what, *host;
	GDALDatasetH ds;
	VSIStatBufL st;
	long long full = -1, got, before;
	json_t *w;
	int win[4], rc;

	/*
	 * The copy is named by what it is a window of (href and box), and a
	 * sidecar records the window, so a rerun finds both without asking
	 * the server anything.
	 */
	what = mem_xasprintf("%s\n%.9f,%.9f,%.9f,%.9f", href, o->bbox[0], o->bbox[1], o->bbox[2],
	    o->bbox[3]);
	mem_sha256_hex(what, strlen(what), hex);
	free(what);
	safe = mem_path_safe_name(key);
	name = mem_xasprintf("%s-%.16s.tif", safe, hex);
	free(safe);
	*dest = mem_path_join(dir, name);
	side = mem_xasprintf("%s/.%s.window.json", dir, name);
	free(name);
	w = json_load_file(side, 0, NULL);
	if (w != NULL) {
		rc = json_is_true(json_object_get(w, "whole")) ? 1 : 0;
		if (rc == 0 && mem_path_exists(*dest)) {
			json_object_set_new(a, "mem:window", w);
			free(side);
			return 0;
		}
		json_decref(w);
		if (rc == 1) {
			free(side);
			free(*dest);
			*dest = NULL;
			return 1;
		}
	}
	url = sign(href, collection, o, err);
	if (url == NULL)
		goto fail;
	gpath = mem_raster_gdal_path(url);
	host = host_of(url);
	host_acquire(host, o->per_host > 0 ? o->per_host : 4);
	before = network_bytes(gpath);
	ds = mem_raster_open(url, err);
	if (ds == NULL) {
		host_release(host);
		free(host);
		free(url);
		free(gpath);
		goto fail;
	}
	rc = mem_raster_window(ds, o->bbox, win, err);
	if (rc != 0 || (win[0] == 0 && win[1] == 0 && win[2] == GDALGetRasterXSize(ds) &&
	    win[3] == GDALGetRasterYSize(ds))) {
		char *s = "{\"whole\": true}\n";

		GDALClose(ds);
		host_release(host);
		free(host);
		free(url);
		free(gpath);
		if (rc < 0)
			goto fail;
		mem_write_file_atomic(side, s, strlen(s), NULL);
		free(side);
		free(*dest);
		*dest = NULL;
		return 1;
	}
	if (VSIStatL(gpath, &st) == 0)
		full = (long long)st.st_size;
	rc = mem_raster_write_window(ds, win, *dest, err);
	GDALClose(ds);
	host_release(host);
	free(host);
	free(url);
	got = network_bytes(gpath) - before;
	free(gpath);
	if (rc < 0)
		goto fail;
	if (o->stats) {
#pragma omp atomic
		o->stats->fetched += got;
#pragma omp atomic
		o->stats->full += full > 0 ? full : 0;
#pragma omp atomic
		o->stats->windows++;
	}
	w = json_object();
	json_object_set_new(w, "srcwin", json_pack("[i,i,i,i]", win[0], win[1], win[2], win[3]));
	json_object_set_new(w, "bytes_read", json_integer(got));
	if (full > 0)
		json_object_set_new(w, "source_size", json_integer(full));
	{
		char *s = json_dumps(w, JSON_COMPACT);

		if (s == NULL || mem_write_file_atomic(side, s, strlen(s), err) < 0) {
			free(s);
			json_decref(w);
			goto fail;
		}
		free(s);
	}
	json_object_set_new(a, "mem:window", w);
	free(side);
	return 0;
fail:
	free(side);
	free(*dest);
	*dest = NULL;
	return -1;
}

/* Describes the local copy dest in asset a (href, size, checksum, projection). */
static int
describe_copy(json_t *a, const char *href, const char *dest, struct mem_err *err)
{
	char sum[69], *abs;
	off_t size;

	if (mem_file_checksum(dest, sum, &size, err) < 0)
		return -1;
	if (is_raster(a, dest)) {
		GDALDatasetH ds = mem_raster_open(dest, err);

		if (ds == NULL)
			return -1;
		mem_raster_proj_fields(ds, a);
		GDALClose(ds);
	}
	json_object_set_new(a, "mem:source_href", json_string(href));
	abs = mem_path_absolute(dest);
	json_object_set_new(a, "href", json_string(abs));
	free(abs);
	json_object_set_new(a, "file:size", json_integer((json_int_t)size));
	json_object_set_new(a, "file:checksum", json_string(sum));
	return 0;
}

/* Brings asset a into dir, whole or its window, and rewrites a to describe the copy. */
static int
copy_asset(json_t *a, const char *key, const char *collection, const char *dir,
    const struct mem_fetch_opts *o, struct mem_err *err)
{
	char *href = mem_xstrdup(mem_asset_href(a)), *dest = NULL;
	int rc = 1;

	if ((o->has_bbox || o->aoi) && !o->whole && is_geotiff(a, href))
		rc = copy_window(a, key, collection, dir, o, &dest, err);
	if (rc == 1) {
		char *name = local_name(key, href);
		const char *want = json_string_value(json_object_get(a, "file:checksum"));

		dest = mem_path_join(dir, name);
		free(name);
		rc = bring(href, collection, dest, o, err);
		/* a catalog that states a SHA-256 checksum gets it checked */
		if (rc == 0 && want && strncmp(want, "1220", 4) == 0 && strlen(want) == 68) {
			char got[69];

			rc = mem_file_checksum(dest, got, NULL, err);
			if (rc == 0 && strcasecmp(got, want) != 0) {
				unlink(dest);
				rc = mem_err_set(err, MEM_EITEM,
				    "'%s': checksum %s does not match the item's file:checksum %s", href,
				    got, want);
			}
		}
	}
	if (rc == 0)
		rc = describe_copy(a, href, dest, err);
	free(dest);
	free(href);
	return rc;
}

json_t *
mem_fetch_item(const json_t *item, const struct mem_fetch_opts *o, struct mem_err *err)
{
	json_t *keys, *out, *assets, *newassets, *links, *props, *sw;
	char *sid = mem_path_safe_name(mem_item_id(item));
	char *dir = mem_xasprintf("%s/scenes/%s", o->workdir, sid);
	size_t i;

	free(sid);
	keys = mem_fetch_select(item, o, err);
	if (keys == NULL) {
		free(dir);
		return NULL;
	}
	if (mem_workdir(dir, err) < 0)
		goto fail;
	out = json_deep_copy(item);
	assets = json_object_get(out, "assets");
	newassets = json_object();
	/* a token is asked for once, before the transfers run side by side */
	if (o->sas_url != NULL) {
		char *warm = sign("https://x/y", json_string_value(json_object_get(item, "collection")), o,
		    err);

		if (warm == NULL) {
			mem_err_prefix(err, "item '%s'", mem_item_id(item));
			json_decref(newassets);
			json_decref(out);
			goto fail;
		}
		free(warm);
	}
	{
		size_t nk = json_array_size(keys);
		json_t **copies = mem_xcalloc(nk, sizeof *copies);
		struct mem_err *errs = mem_xcalloc(nk, sizeof *errs);
		const char *coll = json_string_value(json_object_get(item, "collection"));
		int nthreads = o->jobs > 0 ? o->jobs : 4, failed = -1;
		long j;

		for (j = 0; j < (long)nk; j++)
			copies[j] = json_deep_copy(json_object_get(assets,
			    json_string_value(json_array_get(keys, (size_t)j))));
		/* the assets of an item are fetched side by side, -j at a time */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads < (int)nk ? nthreads : (int)nk) if (nk > 1)
		for (j = 0; j < (long)nk; j++)
			if (copy_asset(copies[j], json_string_value(json_array_get(keys, (size_t)j)), coll,
			    dir, o, &errs[j]) < 0)
				errs[j].status = errs[j].status ? errs[j].status : MEM_EITEM;
		for (j = 0; j < (long)nk; j++) {
			if (errs[j].status != MEM_OK && failed < 0)
				failed = (int)j;
			if (failed < 0)
				json_object_set_new(newassets, json_string_value(json_array_get(keys,
				    (size_t)j)), copies[j]);
			else
				json_decref(copies[j]);
		}
		if (failed >= 0) {
			if (err)
				*err = errs[failed];
			mem_err_prefix(err, "item '%s' asset '%s'", mem_item_id(item),
			    json_string_value(json_array_get(keys, (size_t)failed)));
		}
		free(copies);
		free(errs);
		if (failed >= 0) {
			json_decref(newassets);
			json_decref(out);
			goto fail;
		}
	}
	json_object_set_new(out, "assets", newassets);
	mem_item_add_extension(out, MEM_EXT_FILE);
	mem_item_add_extension(out, MEM_EXT_PROJ);
	props = json_object_get(out, "properties");
	json_object_set_new(props, "mem:stage", json_string("fetch"));
	sw = json_object_get(props, "processing:software");
	if (!json_is_object(sw)) {
		sw = json_object();
		json_object_set_new(props, "processing:software", sw);
	}
	json_object_set_new(sw, "memories", json_string(mem_version()));
	/* the copy is derived from the source: keep the source's self as a link */
	links = json_object_get(out, "links");
	if (json_is_array(links)) {
		json_t *l;

		json_array_foreach(links, i, l) {
			const char *rel = json_string_value(json_object_get(l, "rel"));

			if (rel && strcmp(rel, "self") == 0)
				json_object_set_new(l, "rel", json_string("derived_from"));
		}
	}
	json_decref(keys);
	free(dir);
	return out;
fail:
	json_decref(keys);
	free(dir);
	return NULL;
}

json_t *
mem_fetch_search_body(const struct mem_fetch_opts *o, long limit, const char *sortby,
    const json_t *query, const json_t *filter)
{
	json_t *b = json_object();

	if (o->aoi)
		json_object_set(b, "intersects", o->aoi);
	else if (o->has_bbox)
		json_object_set_new(b, "bbox", json_pack("[f,f,f,f]", o->bbox[0], o->bbox[1],
		    o->bbox[2], o->bbox[3]));
	if (o->has_datetime) {
		char a[40] = "..", z[40] = "..";

		if (isfinite(o->datetime.start))
			mem_time_format(o->datetime.start, a, sizeof a);
		if (isfinite(o->datetime.end))
			mem_time_format(o->datetime.end, z, sizeof z);
		json_object_set_new(b, "datetime", strcmp(a, z) == 0 ? json_string(a) :
		    json_pack("s++", a, "/", z));
	}
	if (o->collections) {
		json_t *c = json_array();

		for (char **p = o->collections; *p; p++)
			json_array_append_new(c, json_string(*p));
		json_object_set_new(b, "collections", c);
	}
	if (limit > 0)
		json_object_set_new(b, "limit", json_integer(limit));
	if (sortby) {
		char *s = mem_xstrdup(sortby), *tok, *save;
		json_t *arr = json_array();

		for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			int desc = *tok == '-';

			if (*tok == '-' || *tok == '+')
				tok++;
			json_array_append_new(arr, json_pack("{s:s,s:s}", "field", tok, "direction",
			    desc ? "desc" : "asc"));
		}
		free(s);
		json_object_set_new(b, "sortby", arr);
	}
	if (query || o->has_max_cloud) {
		json_t *q = query ? json_deep_copy(query) : json_object();

		if (o->has_max_cloud && json_object_get(q, "eo:cloud_cover") == NULL)
			json_object_set_new(q, "eo:cloud_cover", json_pack("{s:f}", "lte", o->max_cloud));
		json_object_set_new(b, "query", q);
	}
	if (filter) {
		json_object_set(b, "filter", (json_t *)filter);
		json_object_set_new(b, "filter-lang", json_string("cql2-json"));
	}
	return b;
}

long long
mem_fetch_asset_size(const json_t *asset)
{
	json_t *fs = json_object_get(asset, "file:size");
	const char *href = mem_asset_href(asset);
	VSIStatBufL st;
	char *path;
	long long n = -1;

	if (json_is_integer(fs))
		return (long long)json_integer_value(fs);
	if (href == NULL)
		return -1;
	/* a HEAD request for a URL, a stat for a path */
	path = mem_raster_gdal_path(href);
	if (VSIStatL(path, &st) == 0)
		n = (long long)st.st_size;
	free(path);
	return n;
}

char *
mem_fetch_overpass(const char *url, const char *query, const struct mem_fetch_opts *o,
    struct mem_err *err)
{
	char *q = mem_xstrdup(query), *p, *enc, *form, *body, *dir, *path, hex[65], *key;
	size_t len;
	CURL *c;

	/* {{bbox}} as overpass turbo has it: south,west,north,east */
	while ((p = strstr(q, "{{bbox}}")) != NULL) {
		char *n;

		if (!o->has_bbox) {
			free(q);
			mem_err_set(err, MEM_EUSAGE, "the Overpass query uses {{bbox}}: give --bbox or --aoi");
			return NULL;
		}
		n = mem_xasprintf("%.*s%.7f,%.7f,%.7f,%.7f%s", (int)(p - q), q, o->bbox[1], o->bbox[0],
		    o->bbox[3], o->bbox[2], p + 8);
		free(q);
		q = n;
	}
	key = mem_xasprintf("%s\n%s", url, q);
	mem_sha256_hex(key, strlen(key), hex);
	free(key);
	dir = mem_xasprintf("%s/vectors", o->workdir);
	path = mem_xasprintf("%s/overpass-%.16s.osm", dir, hex);
	if (mem_mkdir_p(dir, err) < 0)
		goto fail;
	if (mem_path_exists(path)) {
		/* the same query asked before: its answer is here */
		free(q);
		free(dir);
		return path;
	}
	c = curl_easy_init();
	enc = curl_easy_escape(c, q, 0);
	form = mem_xasprintf("data=%s", enc);
	curl_free(enc);
	curl_easy_cleanup(c);
	if (mem_http_request(url, form, "application/x-www-form-urlencoded", &o->http, &body, &len,
	    err) < 0) {
		free(form);
		if (err && err->status == MEM_EITEM)
			err->status = MEM_EUSAGE;	/* the server refused the query */
		goto fail;
	}
	free(form);
	if (len < 5 || (strncmp(body, "<?xml", 5) != 0 && strncmp(body, "<osm", 4) != 0)) {
		mem_err_set(err, MEM_EUSAGE, "'%s' did not answer OSM XML (ask for [out:xml])", url);
		free(body);
		goto fail;
	}
	if (mem_write_file_atomic(path, body, len, err) < 0) {
		free(body);
		goto fail;
	}
	free(body);
	free(q);
	free(dir);
	return path;
fail:
	free(q);
	free(dir);
	free(path);
	return NULL;
}
