/*
 * tile.c - cutting scenes into grid cells.
 *
 * A group (the scenes of one period and zone) is made cell by cell, the
 * cells shared out among worker threads.  Each worker owns one warper per
 * scene and band (a dataset handle and a PROJ transformer, made once), and
 * makes its cell in strips of rows sized by --mem: every scene's band
 * warped into the strip, then combined pixel by pixel (latest or first
 * valid, least cloudy by SCL and cloud cover, median, max NDVI) and
 * written.  A cell with no valid pixel leaves no file.  Files and the
 * finished item land under WORKDIR/tiles/ID/, ID being the tile item's
 * deterministic id, so a rerun emits finished cells without touching a
 * pixel.  Coarser pyramid levels are reduced from the finer tiles, 2x2 to
 * 1, never warped from the scenes again.
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "item.h"
#include "ledger.h"
#include "raster.h"
#include "shard.h"
#include "tile.h"
#include "warp.h"

struct mem_tiler {
	struct mem_tile_opts o;
	mem_tile_emit_fn emit;
	mem_tile_fail_fn fail;
	void *ctx;
	json_t *groups;		/* "PERIOD|EPSG" -> {scenes, label, period, epsg} */
};

struct mem_tiler *
mem_tiler_new(const struct mem_tile_opts *o, mem_tile_emit_fn emit, mem_tile_fail_fn fail,
    void *ctx)
{
	struct mem_tiler *t = mem_xcalloc(1, sizeof *t);

	t->o = *o;
	t->emit = emit;
	t->fail = fail;
	t->ctx = ctx;
	t->groups = json_object();
	return t;
}

void
mem_tiler_free(struct mem_tiler *t)
{
	if (t == NULL)
		return;
	json_decref(t->groups);
	free(t);
}

static int
is_classification(const char *key, const json_t *asset)
{
	const json_t *rb = json_array_get(json_object_get(asset, "raster:bands"), 0);
	const char *dt = json_string_value(json_object_get(rb, "data_type"));

	if (strcasecmp(key, "scl") == 0 || strcasecmp(key, "qa_pixel") == 0 ||
	    json_object_get(asset, "classification:classes") ||
	    json_object_get(rb, "classification:classes"))
		return 1;
	return dt && strcmp(dt, "uint8") == 0 && json_array_size(json_object_get(asset, "eo:bands")) == 0
	    && strstr(key, "mask") != NULL;
}

static int
raster_type(const json_t *asset)
{
	const char *type = json_string_value(json_object_get(asset, "type"));
	const char *href = mem_asset_href(asset);
	size_t n = href ? strlen(href) : 0;

	if (type)
		return strstr(type, "image/tiff") || strstr(type, "image/jp2");
	return n > 4 && (!strcasecmp(href + n - 4, ".tif") || !strcasecmp(href + n - 4, ".jp2"));
}

/* The asset keys to tile: the requested names, or every raster asset with data. */
static json_t *
asset_keys(const struct mem_tiler *t, const json_t *scene)
{
	json_t *keys = json_array(), *a;
	const char *key;

	if (t->o.bands) {
		for (char **n = t->o.bands; *n; n++) {
			struct mem_band b;

			if (json_object_get(json_object_get(scene, "assets"), *n))
				json_array_append_new(keys, json_string(*n));
			else if (mem_item_find_band(scene, *n, &b, NULL) == 0)
				json_array_append_new(keys, json_string(b.asset_key));
		}
		return keys;
	}
	json_object_foreach(json_object_get(scene, "assets"), key, a) {
		json_t *roles = json_object_get(a, "roles"), *r;
		size_t i;
		int skip = 0;

		json_array_foreach(roles, i, r) {
			const char *s = json_string_value(r);

			if (s && (!strcmp(s, "visual") || !strcmp(s, "overview") ||
			    !strcmp(s, "thumbnail") || !strcmp(s, "metadata")))
				skip = 1;
		}
		if (!skip && raster_type(a) && mem_asset_href(a))
			json_array_append_new(keys, json_string(key));
	}
	return keys;
}

static int
scene_epsg(const json_t *scene, const struct mem_grid *g)
{
	double v, b[4];

	if (g->kind == MEM_GRID_WEBMERCATOR)
		return 3857;
	if (g->epsg)
		return g->epsg;
	if (mem_item_prop_number(scene, "proj:epsg", &v) == 0 &&
	    ((v > 32600 && v <= 32660) || (v > 32700 && v <= 32760)))
		return (int)v;
	if (mem_item_bbox(scene, b, NULL) == 0)
		return mem_grid_utm_epsg((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
	return 0;
}

/* Transforms a lon/lat box into EPSG epsg (or back, with inverse), edges sampled. */
static int
lonlat_to(int epsg, const double ll[4], double out[4], int inverse)
{
	OGRSpatialReferenceH a = mem_raster_srs_epsg(4326), b = mem_raster_srs_epsg(epsg);
	int rc = inverse ? mem_raster_box_transform(b, a, ll, out) :
	    mem_raster_box_transform(a, b, ll, out);

	OSRDestroySpatialReference(a);
	OSRDestroySpatialReference(b);
	return rc;
}

/* The finest pixel size among the scene's assets (for utm without RES). */
static double
finest_res(const json_t *scene, json_t *keys)
{
	double best = INFINITY;
	json_t *k;
	size_t i;

	json_array_foreach(keys, i, k) {
		json_t *a = json_object_get(json_object_get(scene, "assets"), json_string_value(k));
		GDALDatasetH ds = mem_raster_open(mem_asset_href(a), NULL);
		double gt[6];

		if (ds == NULL)
			continue;
		if (GDALGetGeoTransform(ds, gt) == CE_None && fabs(gt[1]) < best)
			best = fabs(gt[1]);
		GDALClose(ds);
	}
	return isfinite(best) ? best : 10;
}

static json_t *
polygon(const double b[4])
{
	json_t *g = json_object(), *rings = json_array(), *ring = json_array();
	double pts[5][2] = { { b[0], b[1] }, { b[2], b[1] }, { b[2], b[3] }, { b[0], b[3] },
		{ b[0], b[1] } };

	for (int i = 0; i < 5; i++) {
		json_t *p = json_array();

		json_array_append_new(p, json_real(pts[i][0]));
		json_array_append_new(p, json_real(pts[i][1]));
		json_array_append_new(ring, p);
	}
	json_array_append_new(rings, ring);
	json_object_set_new(g, "type", json_string("Polygon"));
	json_object_set_new(g, "coordinates", rings);
	return g;
}

static json_t *
bbox_json(const double b[4])
{
	json_t *a = json_array();

	for (int i = 0; i < 4; i++)
		json_array_append_new(a, json_real(b[i]));
	return a;
}

/* ---- the sources of a group, resolved once ------------------------------ */

/* A band of the group: an output asset, or one that only steers a composite. */
struct slot {
	char *key;		/* asset key (output) or band name (selector) */
	int output;		/* written as an asset of the tile */
	int classes;		/* classification: nearest, never averaged */
	const char *resample;
	GDALDataType type;	/* of the first source that has it */
	int has_nodata;
	double nodata;		/* of the tile's file */
	json_t *meta;		/* the first source's asset (borrowed) */
};

/* Band k of scene s. */
struct source {
	const char *href;	/* NULL: the scene lacks it */
	int band;
	int has_nodata;
	double nodata;
	double scale, offset;
};

struct group {
	struct mem_tiler *t;
	json_t *scenes;		/* sorted by time, then id */
	int ns, nk;
	struct slot *k;
	struct source *src;	/* ns x nk */
	int *order;		/* the scenes in the order a pixel is looked for */
	int scl, red, nir;	/* selector slots, or -1 */
	const char *label;	/* the period (a date, a bin start, or "all") */
	char period[64];	/* "START/END" of a composite bin, or "" */
	struct mem_grid g;	/* the level being made */
	char srs[40];
};

static struct source *
src_at(const struct group *gr, int s, int k)
{
	return &gr->src[(size_t)s * (size_t)gr->nk + (size_t)k];
}

static double
scene_time(const json_t *s)
{
	struct mem_interval iv;

	return mem_item_time(s, &iv, NULL) == 0 ? iv.start : 0;
}

static double
scene_cloud(const json_t *s)
{
	double v;

	return mem_item_prop_number(s, "eo:cloud_cover", &v) == 0 ? v : 101;
}

static const struct group *sort_group;

static int
cmp_scene_time(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	double tx = scene_time(x), ty = scene_time(y);

	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(mem_item_id(x), mem_item_id(y));
}

/* least cloudy first; among equals the latest */
static int
cmp_order_cloud(const void *a, const void *b)
{
	int i = *(const int *)a, j = *(const int *)b;
	double ci = scene_cloud(json_array_get(sort_group->scenes, (size_t)i)),
	    cj = scene_cloud(json_array_get(sort_group->scenes, (size_t)j));

	if (ci != cj)
		return ci < cj ? -1 : 1;
	return j - i;
}

static int
slot_add(struct group *gr, const char *key, int output)
{
	for (int i = 0; i < gr->nk; i++)
		if (strcmp(gr->k[i].key, key) == 0) {
			gr->k[i].output |= output;
			return i;
		}
	gr->k = mem_xrealloc(gr->k, (size_t)(gr->nk + 1) * sizeof *gr->k);
	memset(&gr->k[gr->nk], 0, sizeof gr->k[0]);
	gr->k[gr->nk].key = mem_xstrdup(key);
	gr->k[gr->nk].output = output;
	return gr->nk++;
}

/* The asset key of band name in every scene that has it, when that is one key. */
static int
selector_slot(struct group *gr, const char *name)
{
	const char *key = NULL;
	json_t *s;
	size_t i;

	json_array_foreach(gr->scenes, i, s) {
		struct mem_band b;

		if (mem_item_find_band(s, name, &b, NULL) == 0) {
			if (key && strcmp(key, b.asset_key) != 0)
				return slot_add(gr, name, 0);
			key = b.asset_key;
		}
	}
	if (key == NULL)
		return -1;
	return slot_add(gr, key, 0);
}

static void
group_free(struct group *gr)
{
	for (int i = 0; i < gr->nk; i++)
		free(gr->k[i].key);
	free(gr->k);
	free(gr->src);
	free(gr->order);
	json_decref(gr->scenes);
}

/* Resolves the group's slots and sources; -1 with err when a composite cannot be made. */
static int
group_init(struct group *gr, struct mem_tiler *t, json_t *scenes, struct mem_err *err)
{
	size_t i, j, n = json_array_size(scenes);
	json_t **v = mem_xcalloc(n, sizeof *v), *s, *k;
	enum mem_composite c = t->o.composite;

	gr->t = t;
	gr->scl = gr->red = gr->nir = -1;
	for (i = 0; i < n; i++)
		v[i] = json_array_get(scenes, i);
	qsort(v, n, sizeof *v, cmp_scene_time);
	gr->scenes = json_array();
	for (i = 0; i < n; i++)
		json_array_append(gr->scenes, v[i]);
	free(v);
	gr->ns = (int)n;
	if (n > 32767)
		return mem_err_set(err, MEM_EUSAGE,
		    "%zu scenes in one group: split the run (a shorter --composite period, or --bbox)", n);
	/* the union of the scenes' asset keys, in a fixed order */
	json_array_foreach(gr->scenes, i, s) {
		json_t *sk = asset_keys(t, s);

		json_array_foreach(sk, j, k)
			slot_add(gr, json_string_value(k), 1);
		json_decref(sk);
	}
	if (c == MEM_COMP_LEAST_CLOUDY || c == MEM_COMP_MEDIAN || c == MEM_COMP_MAX_NDVI)
		gr->scl = selector_slot(gr, "scl");
	if (c == MEM_COMP_MAX_NDVI) {
		gr->red = selector_slot(gr, "red");
		gr->nir = selector_slot(gr, "nir");
		if (gr->red < 0 || gr->nir < 0)
			return mem_err_set(err, MEM_EITEM,
			    "a max-ndvi composite needs red and nir bands, and scene '%s' has %s",
			    mem_item_id(json_array_get(gr->scenes, 0)),
			    gr->red < 0 ? "no red" : "no nir");
	}
	gr->src = mem_xcalloc((size_t)gr->ns * (size_t)gr->nk, sizeof *gr->src);
	for (int kk = 0; kk < gr->nk; kk++) {
		struct slot *sl = &gr->k[kk];

		json_array_foreach(gr->scenes, i, s) {
			struct source *so = src_at(gr, (int)i, kk);
			json_t *a = json_object_get(json_object_get(s, "assets"), sl->key);
			struct mem_band b;
			int found;

			/* an asset key, else (selectors) a band name */
			if (a && mem_asset_href(a)) {
				json_t *one = json_object(), *as = json_object();

				json_object_set(as, sl->key, a);
				json_object_set_new(one, "id", json_string("x"));
				json_object_set_new(one, "assets", as);
				found = mem_item_find_band(one, sl->key, &b, NULL) == 0;
				if (found) {
					so->band = b.index;
					so->has_nodata = b.has_nodata;
					so->nodata = b.nodata;
					so->scale = b.scale;
					so->offset = b.offset;
				} else {
					so->band = 1;
					so->scale = 1;
				}
				json_decref(one);
				so->href = mem_asset_href(a);
			} else if (!sl->output && mem_item_find_band(s, sl->key, &b, NULL) == 0) {
				a = b.asset;
				so->href = mem_asset_href(a);
				so->band = b.index;
				so->has_nodata = b.has_nodata;
				so->nodata = b.nodata;
				so->scale = b.scale;
				so->offset = b.offset;
			}
			if (so->href && sl->meta == NULL) {
				sl->meta = a;
				sl->classes = is_classification(sl->key, a) ||
				    (!sl->output && (int)kk == gr->scl);
				sl->has_nodata = so->has_nodata;
				sl->nodata = so->nodata;
			}
		}
		sl->resample = sl->classes ? "near" : t->o.resample;
	}
	gr->order = mem_xcalloc((size_t)gr->ns, sizeof *gr->order);
	for (int s2 = 0; s2 < gr->ns; s2++)
		gr->order[s2] = c == MEM_COMP_FIRST ? s2 : gr->ns - 1 - s2;
	if (c == MEM_COMP_LEAST_CLOUDY || c == MEM_COMP_MEDIAN || c == MEM_COMP_MAX_NDVI) {
		sort_group = gr;
		qsort(gr->order, (size_t)gr->ns, sizeof *gr->order, cmp_order_cloud);
	}
	return 0;
}

/* ---- one thread's tools -------------------------------------------------- */

struct worker {
	struct group *gr;
	struct mem_warper **w;	/* ns x nk, opened on first use */
	double **buf;		/* per slot and scene: the strip as warped */
	int *warped;		/* per slot: warped for the current strip */
	double *out;
	unsigned char *clear;	/* ns x strip */
	unsigned char *any;
	short *sel;
	double *vals;
	double **scl, **red, **nir, **b;	/* per scene: its strip of a slot, or NULL */
	size_t cap;		/* pixels the strip buffers hold */
	char *claimed;		/* --ledger: the id of the cell just claimed */
	int taken;		/* --ledger: the cell just tried is another worker's */
};

static void
worker_init(struct worker *wk, struct group *gr)
{
	memset(wk, 0, sizeof *wk);
	wk->gr = gr;
	wk->w = mem_xcalloc((size_t)gr->ns * (size_t)gr->nk, sizeof *wk->w);
	wk->buf = mem_xcalloc((size_t)gr->ns * (size_t)gr->nk, sizeof *wk->buf);
	wk->warped = mem_xcalloc((size_t)gr->nk, sizeof *wk->warped);
	wk->vals = mem_xcalloc((size_t)gr->ns + 1, sizeof *wk->vals);
	wk->scl = mem_xcalloc((size_t)gr->ns, sizeof *wk->scl);
	wk->red = mem_xcalloc((size_t)gr->ns, sizeof *wk->red);
	wk->nir = mem_xcalloc((size_t)gr->ns, sizeof *wk->nir);
	wk->b = mem_xcalloc((size_t)gr->ns, sizeof *wk->b);
}

static void
worker_free(struct worker *wk)
{
	size_t n = (size_t)wk->gr->ns * (size_t)wk->gr->nk;

	for (size_t i = 0; i < n; i++) {
		mem_warper_free(wk->w[i]);
		free(wk->buf[i]);
	}
	free(wk->w);
	free(wk->buf);
	free(wk->warped);
	free(wk->out);
	free(wk->clear);
	free(wk->any);
	free(wk->sel);
	free(wk->vals);
	free(wk->scl);
	free(wk->red);
	free(wk->nir);
	free(wk->b);
}

static void
worker_reserve(struct worker *wk, size_t px)
{
	size_t n = (size_t)wk->gr->ns * (size_t)wk->gr->nk;

	if (px <= wk->cap)
		return;
	for (size_t i = 0; i < n; i++) {
		free(wk->buf[i]);
		wk->buf[i] = NULL;
	}
	free(wk->out);
	free(wk->clear);
	free(wk->any);
	free(wk->sel);
	wk->out = mem_xcalloc(px, sizeof *wk->out);
	wk->clear = mem_xcalloc(px * (size_t)wk->gr->ns, 1);
	wk->any = mem_xcalloc(px, 1);
	wk->sel = mem_xcalloc(px, sizeof *wk->sel);
	wk->cap = px;
}

/* Warps slot k of scene s into the worker's buffer for the strip; NULL when absent. */
static double *
warp_into(struct worker *wk, int s, int k, const double gt[6], int w, int h, struct mem_err *err)
{
	struct group *gr = wk->gr;
	struct source *so = src_at(gr, s, k);
	size_t i = (size_t)s * (size_t)gr->nk + (size_t)k;

	if (so->href == NULL)
		return NULL;
	if (wk->w[i] == NULL) {
		wk->w[i] = mem_warper_new(so->href, so->band, gr->srs, gr->k[k].resample,
		    so->has_nodata, so->nodata, err);
		if (wk->w[i] == NULL)
			return NULL;
		if (gr->t->o.mem > 0)
			mem_warper_set_limit(wk->w[i], mem_tile_worker_mem(&gr->t->o) / 4);
	}
	if (wk->buf[i] == NULL)
		wk->buf[i] = mem_xcalloc(wk->cap, sizeof(double));
	if (mem_warper_run(wk->w[i], gt, w, h, wk->buf[i], err) < 0)
		return NULL;
	return wk->buf[i];
}

static int
is_valid(double v, double nd)
{
	return v != nd && !isnan(v);
}

static int
scl_cloud(double v)
{
	/* SCL 3 cloud shadow, 8 and 9 cloud, 10 thin cirrus */
	return v == 3 || v == 8 || v == 9 || v == 10;
}

/* ---- the cell file writer -------------------------------------------------- */

struct out {
	char *path, *tmp;
	GDALDatasetH ds;
	long nvalid, ncloud, nscl;
};

static int
out_open(struct out *o, const char *dir, const char *key, GDALDataType type, double nodata,
    const char *cell, const double gt[6], int w, int h, const char *srs, struct mem_err *err)
{
	char *name = mem_path_safe_name(key), *fname = mem_xasprintf("%s.tif", name);
	char **co = mem_raster_tiff_options(NULL);
	OGRSpatialReferenceH sr = OSRNewSpatialReference(NULL);
	double g[6];

	memset(o, 0, sizeof *o);
	o->path = mem_path_join(dir, fname);
	free(fname);
	free(name);
	o->tmp = mem_tmp_name(o->path);
	co = CSLSetNameValue(co, "NUM_THREADS", "1");	/* the cells are the parallelism */
	if (!GDALDataTypeIsFloating(type) && CSLFetchNameValue(co, "PREDICTOR") == NULL)
		co = CSLSetNameValue(co, "PREDICTOR", "2");
	CPLErrorReset();
	o->ds = GDALCreate(GDALGetDriverByName("GTiff"), o->tmp, w, h, 1, type, co);
	CSLDestroy(co);
	if (o->ds == NULL) {
		OSRDestroySpatialReference(sr);
		return mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", o->path,
		    CPLGetLastErrorMsg());
	}
	memcpy(g, gt, sizeof g);
	GDALSetGeoTransform(o->ds, g);
	OSRSetFromUserInput(sr, srs);
	GDALSetSpatialRef(o->ds, sr);
	OSRDestroySpatialReference(sr);
	GDALSetRasterNoDataValue(GDALGetRasterBand(o->ds, 1), nodata);
	GDALSetMetadataItem(o->ds, "MEM_GRID_CELL", cell, NULL);
	return 0;
}

static int
out_write(struct out *o, int row, int w, int h, double *buf, struct mem_err *err)
{
	if (GDALRasterIO(GDALGetRasterBand(o->ds, 1), GF_Write, 0, row, w, h, buf, w, h,
	    GDT_Float64, 0, 0) != CE_None)
		return mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", o->path,
		    CPLGetLastErrorMsg());
	return 0;
}

/* Closes o: commits it when it holds a valid pixel (and keep), else removes it. */
static int
out_close(struct out *o, int keep, struct mem_err *err)
{
	int rc = 0;

	if (o->ds) {
		CPLErrorReset();
		GDALClose(o->ds);
		o->ds = NULL;
		if (CPLGetLastErrorType() >= CE_Failure && keep) {
			rc = mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", o->path,
			    CPLGetLastErrorMsg());
			keep = 0;
		}
		if (keep && o->nvalid > 0)
			rc = mem_rename_file(o->tmp, o->path, err);
		else
			unlink(o->tmp);
	}
	free(o->tmp);
	o->tmp = NULL;
	return rc;
}

/* ---- making a cell ----------------------------------------------------------- */

/* The tile item's common part: id, geometry, projection, grid cell. */
static json_t *
tile_item(const struct group *gr, const json_t *first, const char *id, const char *cell,
    const double b[4])
{
	const struct mem_grid *g = &gr->g;
	json_t *tile = mem_item_derive(first, id, "tile"), *props = json_object_get(tile, "properties"),
	    *tr;
	double ll[4];

	json_array_clear(json_object_get(tile, "links"));
	json_object_del(props, "eo:cloud_cover");
	json_object_del(props, "proj:code");
	json_object_del(props, "proj:wkt2");
	json_object_del(props, "proj:bbox");
	json_object_set_new(props, "proj:epsg", json_integer(g->epsg));
	tr = json_array();
	json_array_append_new(tr, json_real(mem_grid_res(g)));
	json_array_append_new(tr, json_real(0));
	json_array_append_new(tr, json_real(b[0]));
	json_array_append_new(tr, json_real(0));
	json_array_append_new(tr, json_real(-mem_grid_res(g)));
	json_array_append_new(tr, json_real(b[3]));
	json_object_set_new(props, "proj:transform", tr);
	tr = json_array();
	json_array_append_new(tr, json_integer(g->tile_h));
	json_array_append_new(tr, json_integer(g->tile_size));
	json_object_set_new(props, "proj:shape", tr);
	json_object_set_new(props, "mem:grid", json_string(cell));
	if (lonlat_to(g->epsg, b, ll, 1) == 0) {
		json_object_set_new(tile, "bbox", bbox_json(ll));
		json_object_set_new(tile, "geometry", polygon(ll));
	}
	return tile;
}

static void
link_derived(json_t *tile, const char *id)
{
	json_t *l = json_object();

	json_object_set_new(l, "rel", json_string("derived_from"));
	json_object_set_new(l, "href", json_string(id));
	json_object_set_new(l, "title", json_string(id));
	json_array_append_new(json_object_get(tile, "links"), l);
}

/* Adds the finished file of o as asset key (metadata from meta) of tile. */
static int
add_asset(json_t *tile, const char *key, const json_t *meta, const struct out *o,
    struct mem_err *err)
{
	json_t *a = json_object(), *m;
	const char *mk;
	char sum[69], *abs;
	off_t size;

	if (mem_file_checksum(o->path, sum, &size, err) < 0) {
		json_decref(a);
		return -1;
	}
	/* keep what describes the bands; drop what described the source file */
	json_object_foreach((json_t *)meta, mk, m)
		if (strcmp(mk, "href") && strncmp(mk, "proj:", 5) && strncmp(mk, "file:", 5) &&
		    strcmp(mk, "mem:source_href") && strcmp(mk, "alternate") && strcmp(mk, "type"))
			json_object_set(a, mk, m);
	abs = mem_path_absolute(o->path);
	json_object_set_new(a, "href", json_string(abs));
	free(abs);
	json_object_set_new(a, "type", json_string("image/tiff; application=geotiff"));
	json_object_set_new(a, "file:size", json_integer((json_int_t)size));
	json_object_set_new(a, "file:checksum", json_string(sum));
	json_object_set_new(json_object_get(tile, "assets"), key, a);
	return 0;
}

/* Records the valid and cloud fractions of a finished tile. */
static void
set_fractions(json_t *tile, long any, long total, long nscl, long ncloud)
{
	json_t *props = json_object_get(tile, "properties");

	json_object_set_new(props, "mem:valid_fraction",
	    json_real(round((double)any / (double)total * 1e6) / 1e6));
	if (nscl > 0) {
		double f = round((double)ncloud / (double)nscl * 1e6) / 1e6;

		json_object_set_new(props, "mem:cloud_fraction", json_real(f));
		json_object_set_new(props, "eo:cloud_cover", json_real(round(f * 1e4) / 1e2));
	}
}

/* Stores the finished item beside its files, so a rerun emits it unchanged. */
static int
save_item(const char *dir, json_t *tile, struct mem_err *err)
{
	char *path = mem_path_join(dir, "item.json"), *s = json_dumps(tile, JSON_COMPACT);
	int rc = mem_write_file_renamed(path, s, strlen(s), err);

	free(s);
	free(path);
	return rc;
}

/*
 * The item of a finished cell, or NULL.  Files are synced per level, not
 * one by one: after a crash a renamed file can be short, so an item whose
 * files do not have their recorded sizes is made again.
 */
static json_t *
load_item(const char *dir)
{
	char *path = mem_path_join(dir, "item.json");
	json_t *j = mem_path_exists(path) ? json_load_file(path, 0, NULL) : NULL, *a;
	const char *k;

	free(path);
	json_object_foreach(json_object_get(j, "assets"), k, a) {
		struct stat st;
		const char *href = mem_asset_href(a);

		if (href == NULL || stat(href, &st) < 0 ||
		    st.st_size != (off_t)json_integer_value(json_object_get(a, "file:size"))) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

/*
 * --ledger: claims the cell id before it is made; 1 when it is not ours to
 * make (*tile then the item of a cell done by another, or NULL; *rc -1 on
 * a ledger failure), 0 to go on making it.
 */
static int
ledger_gate(struct worker *wk, const char *id, const char *dir, json_t **tile, int *rc,
    struct mem_err *err)
{
	const struct mem_tile_opts *o = &wk->gr->t->o;
	int st;

	free(wk->claimed);
	wk->claimed = NULL;
	wk->taken = 0;
	if (o->claim == NULL)
		return 0;
	if ((st = o->claim(o->ledger_ctx, id, err)) == MEM_LEDGER_WON) {
		wk->claimed = mem_xstrdup(id);
		return 0;
	}
	*rc = st < 0 ? -1 : 0;
	wk->taken = st == MEM_LEDGER_TAKEN;
	if (st == MEM_LEDGER_DONE)
		*tile = load_item(dir);
	return 1;
}

/*
 * The work directory of a cell, named by its id (derived from stem and
 * params, which are consumed): 1 with *tile loaded when the cell is already
 * finished there (or, with --ledger, not ours to make), 0 when the
 * directory is ready for new work, -1 on error.
 */
static int
open_cell(struct worker *wk, const char *stem, json_t *params, char **id, char **dir,
    json_t **tile, struct mem_err *err)
{
	const struct group *gr = wk->gr;
	int lrc = 0;

	*id = mem_item_derive_id(stem, "mem-tile", params);
	json_decref(params);
	*dir = mem_xasprintf("%s/tiles/%s", gr->t->o.workdir, *id);
	if (ledger_gate(wk, *id, *dir, tile, &lrc, err))
		return lrc < 0 ? -1 : 1;
	if ((*tile = load_item(*dir)) != NULL)
		return 1;
	return mem_workdir(*dir, err) < 0 ? -1 : 0;
}

/* Rows per strip so that one worker keeps within its share of --mem. */
static int
strip_rows(const struct group *gr, int w, int h)
{
	const struct mem_tile_opts *o = &gr->t->o;
	/* a strip: the sources of every slot kept, the output, the masks */
	double per_row = (double)w * (8.0 * gr->ns * gr->nk + 8 + gr->ns + 1 + 2);
	double share;
	int rows;

	if (o->mem <= 0)
		return h;
	share = mem_tile_worker_mem(o);
	rows = (int)fmin(h, fmax(16, share / 2 / per_row));
	return rows >= 256 ? rows / 256 * 256 : rows;
}

/* The pixel choices of a strip: sel[] and clear[] from the selector slots. */
static int
choose(struct worker *wk, const double gt[6], int w, int h, long *nscl, long *ncloud,
    struct mem_err *err)
{
	struct group *gr = wk->gr;
	enum mem_composite c = gr->t->o.composite;
	size_t px = (size_t)w * (size_t)h;
	double **scl = wk->scl, **red = wk->red, **nir = wk->nir;
	double sclnd = gr->scl >= 0 ? gr->k[gr->scl].nodata : 0;

	memset(wk->warped, 0, (size_t)gr->nk * sizeof *wk->warped);
	for (int s = 0; s < gr->ns; s++) {
		struct mem_err e;

		scl[s] = red[s] = nir[s] = NULL;
		mem_err_clear(&e);
		if (gr->scl >= 0 && (scl[s] = warp_into(wk, s, gr->scl, gt, w, h, &e)) == NULL &&
		    e.status != MEM_OK)
			return mem_err_set(err, e.status, "%s", e.msg);
		if (gr->red >= 0 && (red[s] = warp_into(wk, s, gr->red, gt, w, h, &e)) == NULL &&
		    e.status != MEM_OK)
			return mem_err_set(err, e.status, "%s", e.msg);
		if (gr->nir >= 0 && (nir[s] = warp_into(wk, s, gr->nir, gt, w, h, &e)) == NULL &&
		    e.status != MEM_OK)
			return mem_err_set(err, e.status, "%s", e.msg);
	}
	if (gr->scl >= 0)
		wk->warped[gr->scl] = 1;
	if (gr->red >= 0)
		wk->warped[gr->red] = 1;
	if (gr->nir >= 0)
		wk->warped[gr->nir] = 1;
	for (size_t i = 0; i < px; i++) {
		int best = -1;
		double bestv = -INFINITY;

		for (int s = 0; s < gr->ns; s++) {
			int cl = 1;

			if (scl[s])
				cl = is_valid(scl[s][i], sclnd) && scl[s][i] != 0 && !scl_cloud(scl[s][i]);
			wk->clear[(size_t)s * px + i] = (unsigned char)cl;
		}
		if (c == MEM_COMP_MAX_NDVI) {
			for (int pass = 0; pass < 2 && best < 0; pass++)
				for (int s = 0; s < gr->ns; s++) {
					const struct source *r = src_at(gr, s, gr->red), *n = src_at(gr, s, gr->nir);
					double rv, nv, v;

					if (!red[s] || !nir[s] || (pass == 0 && !wk->clear[(size_t)s * px + i]) ||
					    !is_valid(red[s][i], r->nodata) || !is_valid(nir[s][i], n->nodata))
						continue;
					rv = red[s][i] * r->scale + r->offset;
					nv = nir[s][i] * n->scale + n->offset;
					if (nv + rv == 0)
						continue;
					v = (nv - rv) / (nv + rv);
					if (v > bestv) {
						bestv = v;
						best = s;
					}
				}
		} else {
			/* least cloudy: the first scene in order that is clear here */
			for (int o = 0; o < gr->ns && best < 0; o++) {
				int s = gr->order[o];

				if (wk->clear[(size_t)s * px + i] && (scl[s] == NULL ||
				    is_valid(scl[s][i], sclnd)))
					best = s;
			}
		}
		wk->sel[i] = (short)best;
		/* the cloud fraction: the class of the scene this pixel comes from */
		if (gr->scl >= 0) {
			int s = best;

			if (s < 0 || scl[s] == NULL || !is_valid(scl[s][i], sclnd) || scl[s][i] == 0)
				for (int o = 0; o < gr->ns; o++) {
					s = gr->order[o];
					if (scl[s] && is_valid(scl[s][i], sclnd) && scl[s][i] != 0)
						break;
					s = -1;
				}
			if (s >= 0) {
				(*nscl)++;
				*ncloud += scl_cloud(scl[s][i]);
			}
		}
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One output slot of a strip: the composite of its scenes into wk->out. */
static int
combine(struct worker *wk, int k, const double gt[6], int w, int h, long *nvalid,
    struct mem_err *err)
{
	struct group *gr = wk->gr;
	enum mem_composite c = gr->t->o.composite;
	size_t px = (size_t)w * (size_t)h;
	double **b = wk->b, nd = gr->k[k].nodata;
	int use_sel = c == MEM_COMP_LEAST_CLOUDY || c == MEM_COMP_MAX_NDVI ||
	    (c == MEM_COMP_MEDIAN && gr->k[k].classes);

	for (int s = 0; s < gr->ns; s++) {
		size_t i = (size_t)s * (size_t)gr->nk + (size_t)k;
		struct mem_err e;

		mem_err_clear(&e);
		b[s] = NULL;
		if (wk->warped[k])
			b[s] = src_at(gr, s, k)->href ? wk->buf[i] : NULL;
		else if ((b[s] = warp_into(wk, s, k, gt, w, h, &e)) == NULL && e.status != MEM_OK)
			return mem_err_set(err, e.status, "%s", e.msg);
	}
	for (size_t i = 0; i < px; i++) {
		double v = nd;
		int found = 0;

		if (use_sel && wk->sel[i] >= 0) {
			int s = wk->sel[i];

			if (b[s] && is_valid(b[s][i], wk->w[(size_t)s * gr->nk + k] ?
			    mem_warper_nodata(wk->w[(size_t)s * gr->nk + k]) : nd)) {
				v = b[s][i];
				found = 1;
			}
		}
		if (!found && c == MEM_COMP_MEDIAN && !gr->k[k].classes) {
			int n = 0;

			for (int pass = 0; pass < 2 && n == 0; pass++)
				for (int s = 0; s < gr->ns; s++) {
					struct mem_warper *ww = wk->w[(size_t)s * gr->nk + k];

					if (b[s] && is_valid(b[s][i], mem_warper_nodata(ww)) &&
					    (pass == 1 || wk->clear[(size_t)s * px + i]))
						wk->vals[n++] = b[s][i];
				}
			if (n > 0) {
				if (n > 1)
					qsort(wk->vals, (size_t)n, sizeof *wk->vals, cmp_double);
				v = n % 2 ? wk->vals[n / 2] : (wk->vals[n / 2 - 1] + wk->vals[n / 2]) / 2;
				found = 1;
			}
		}
		for (int o = 0; o < gr->ns && !found; o++) {
			int s = gr->order[o];

			if (b[s] && is_valid(b[s][i], mem_warper_nodata(wk->w[(size_t)s * gr->nk + k]))) {
				v = b[s][i];
				found = 1;
			}
		}
		wk->out[i] = v;
		if (found) {
			(*nvalid)++;
			wk->any[i] = 1;
		}
	}
	return 0;
}

static char *
cell_stem(const char *cell, const char *label, const struct mem_tile_opts *o)
{
	static const char *names[] = { "latest", "first", "least-cloudy", "median", "max-ndvi" };
	char *stem = o->composite_set ?
	    mem_xasprintf("%s-%s-%s", cell, label, names[o->composite]) :
	    mem_xasprintf("%s-%s", cell, label);

	for (char *p = stem; *p; p++)
		if (*p == '/')
			*p = '-';
	return stem;
}

/* Makes one cell of the group's finest level; *tile is NULL when the cell is empty. */
static int
make_cell(struct worker *wk, long x, long y, json_t **tile, struct mem_err *err)
{
	struct group *gr = wk->gr;
	const struct mem_grid *g = &gr->g;
	const struct mem_tile_opts *o = &gr->t->o;
	char cell[160], *stem, *id, *dir = NULL;
	double b[4], gt[6];
	json_t *params = json_object(), *ids = json_array(), *s, *item;
	struct out *outs = mem_xcalloc((size_t)gr->nk, sizeof *outs);
	long nany = 0, nscl = 0, ncloud = 0;
	int w = g->tile_size, h = g->tile_h, rows, rc = -1, r;
	size_t i;

	*tile = NULL;
	mem_grid_tile_bounds(g, x, y, b);
	mem_grid_cell_name(g, x, y, cell, sizeof cell);
	stem = cell_stem(cell, gr->label, o);
	/* the inputs by id and content (checksum, else href): a changed input is new work */
	json_array_foreach(gr->scenes, i, s) {
		json_t *sc = json_object(), *sums = json_object();

		json_object_set_new(sc, "id", json_string(mem_item_id(s)));
		for (int k = 0; k < gr->nk; k++) {
			json_t *sa = json_object_get(json_object_get(s, "assets"), gr->k[k].key);
			json_t *c = json_object_get(sa, "file:checksum");

			if (sa && mem_asset_href(sa))
				json_object_set_new(sums, gr->k[k].key,
				    c ? json_deep_copy(c) : json_string(mem_asset_href(sa)));
		}
		json_object_set_new(sc, "assets", sums);
		json_array_append_new(ids, sc);
	}
	json_object_set_new(params, "scenes", ids);
	json_object_set_new(params, "cell", json_string(cell));
	json_object_set_new(params, "resampling", json_string(o->resample));
	{
		json_t *keys = json_array();

		for (int k = 0; k < gr->nk; k++)
			if (gr->k[k].output)
				json_array_append_new(keys, json_string(gr->k[k].key));
		json_object_set_new(params, "assets", keys);
	}
	if (o->composite_set)
		json_object_set_new(params, "composite", json_string(stem + strlen(cell) + 1));
	if ((r = open_cell(wk, stem, params, &id, &dir, tile, err)) != 0) {
		if (r > 0)
			rc = 0;
		goto out;
	}

	rows = strip_rows(gr, w, h);
	worker_reserve(wk, (size_t)w * (size_t)rows);
	memset(wk->any, 0, wk->cap);
	gt[0] = b[0];
	gt[1] = mem_grid_res(g);
	gt[2] = 0;
	gt[4] = 0;
	gt[5] = -mem_grid_res(g);
	for (int k = 0; k < gr->nk; k++) {
		double tgt[6] = { b[0], gt[1], 0, b[3], 0, gt[5] };

		if (!gr->k[k].output || gr->k[k].meta == NULL)
			continue;
		if (gr->k[k].type == GDT_Unknown) {
			/* the type of the first source that has it, from its warper */
			for (int s2 = 0; s2 < gr->ns && gr->k[k].type == GDT_Unknown; s2++) {
				struct mem_err e;
				GDALDatasetH ds;

				if (src_at(gr, s2, k)->href == NULL)
					continue;
				mem_err_clear(&e);
				if ((ds = mem_raster_open(src_at(gr, s2, k)->href, &e)) == NULL) {
					mem_err_set(err, e.status, "%s", e.msg);
					goto out;
				}
				#pragma omp critical(mem_tile_type)
				if (gr->k[k].type == GDT_Unknown) {
					gr->k[k].type = GDALGetRasterDataType(GDALGetRasterBand(ds,
					    src_at(gr, s2, k)->band));
					if (!gr->k[k].has_nodata) {
						int has = 0;
						double v = GDALGetRasterNoDataValue(GDALGetRasterBand(ds,
						    src_at(gr, s2, k)->band), &has);

						gr->k[k].nodata = has ? v : 0;
					}
				}
				GDALClose(ds);
			}
		}
		if (out_open(&outs[k], dir, gr->k[k].key, gr->k[k].type, gr->k[k].nodata, cell, tgt, w,
		    h, gr->srs, err) < 0)
			goto out;
	}
	for (int row = 0; row < h; row += rows) {
		int sh = rows < h - row ? rows : h - row;

		gt[3] = b[3] - row * mem_grid_res(g);
		if ((gr->scl >= 0 || gr->red >= 0) &&
		    choose(wk, gt, w, sh, &nscl, &ncloud, err) < 0)
			goto out;
		if (gr->scl < 0 && gr->red < 0)
			memset(wk->warped, 0, (size_t)gr->nk * sizeof *wk->warped);
		for (int k = 0; k < gr->nk; k++) {
			if (outs[k].ds == NULL)
				continue;
			if (combine(wk, k, gt, w, sh, &outs[k].nvalid, err) < 0 ||
			    out_write(&outs[k], row, w, sh, wk->out, err) < 0)
				goto out;
		}
		for (size_t p = 0; p < (size_t)w * (size_t)sh; p++) {
			nany += wk->any[p];
			wk->any[p] = 0;
		}
	}
	if (nany == 0) {
		rc = 0;
		goto out;
	}
	item = tile_item(gr, json_array_get(gr->scenes, 0), id, cell, b);
	json_array_foreach(gr->scenes, i, s)
		link_derived(item, mem_item_id(s));
	{
		json_t *props = json_object_get(item, "properties");

		if (gr->ns > 1 || o->composite_set) {
			struct mem_interval all = { INFINITY, -INFINITY }, iv;
			char buf[40];

			json_array_foreach(gr->scenes, i, s)
				if (mem_item_time(s, &iv, NULL) == 0) {
					if (iv.start < all.start) all.start = iv.start;
					if (iv.end > all.end) all.end = iv.end;
				}
			mem_time_format(all.start, buf, sizeof buf);
			json_object_set_new(props, "datetime", json_string(buf));
			json_object_set_new(props, "start_datetime", json_string(buf));
			mem_time_format(all.end, buf, sizeof buf);
			json_object_set_new(props, "end_datetime", json_string(buf));
		}
		if (o->composite_set) {
			json_object_set_new(props, "mem:composite",
			    json_string(stem + strlen(cell) + strlen(gr->label) + 2));
			if (*gr->period)
				json_object_set_new(props, "mem:period", json_string(gr->period));
			json_object_set_new(props, "mem:scene_count", json_integer(gr->ns));
		}
	}
	set_fractions(item, nany, (long)w * h, nscl, ncloud);
	for (int k = 0; k < gr->nk; k++) {
		if (outs[k].ds == NULL)
			continue;
		if (out_close(&outs[k], 1, err) < 0) {
			json_decref(item);
			goto out;
		}
		if (outs[k].nvalid > 0 && add_asset(item, gr->k[k].key, gr->k[k].meta, &outs[k], err) < 0) {
			json_decref(item);
			goto out;
		}
	}
	mem_item_add_extension(item, MEM_EXT_FILE);
	mem_item_add_extension(item, MEM_EXT_PROJ);
	if (save_item(dir, item, err) < 0) {
		json_decref(item);
		goto out;
	}
	*tile = item;
	rc = 0;
out:
	for (int k = 0; k < gr->nk; k++) {
		out_close(&outs[k], 0, NULL);
		free(outs[k].path);
	}
	free(outs);
	free(stem);
	free(dir);
	free(id);
	return rc;
}

/* ---- pyramids: each coarser level from the one below ----------------------- */

/* 1 when level c's tiles are exactly 2x2 tiles of level f. */
static int
halves(const struct mem_grid *c, const struct mem_grid *f)
{
	return fabs(c->res - 2 * f->res) <= 1e-9 * c->res && c->tile_size == f->tile_size &&
	    c->tile_h == f->tile_h && c->y_down == f->y_down &&
	    fabs(c->ox - f->ox) <= 1e-6 * f->res && fabs(c->oy - f->oy) <= 1e-6 * f->res;
}

/* Reads band 1 of path into buf (stride bw) at column x0, row y0: w x h pixels. */
static int
read_into(const char *path, double *buf, int bw, int x0, int y0, int w, int h, struct mem_err *err)
{
	GDALDatasetH ds = mem_raster_open(path, err);
	CPLErr e;

	if (ds == NULL)
		return -1;
	e = GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0, 0, w, h, buf + (size_t)y0 * bw + x0, w,
	    h, GDT_Float64, 0, (GSpacing)bw * (GSpacing)sizeof(double));
	GDALClose(ds);
	if (e != CE_None)
		return mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", path, CPLGetLastErrorMsg());
	return 0;
}

/* 2x2 to 1: the mean of the valid pixels, or for classes their most common value. */
static void
reduce2(const double *in, double *out, int w, int h, double nd, int classes, long *nvalid,
    long *nscl, long *ncloud, int is_scl)
{
	int iw = 2 * w;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const double *p = in + (size_t)(2 * y) * iw + 2 * x;
			double v[4] = { p[0], p[1], p[iw], p[iw + 1] }, sum = 0, best = nd;
			int n = 0, bestc = 0;

			for (int i = 0; i < 4; i++) {
				if (!is_valid(v[i], nd))
					continue;
				n++;
				sum += v[i];
				if (classes) {
					int c = 0;

					for (int j = 0; j < 4; j++)
						c += v[j] == v[i];
					if (c > bestc || (c == bestc && v[i] < best)) {
						bestc = c;
						best = v[i];
					}
				}
			}
			out[(size_t)y * w + x] = n == 0 ? nd : classes ? best : sum / n;
			if (n) {
				(*nvalid)++;
				if (is_scl && best != 0) {
					(*nscl)++;
					*ncloud += scl_cloud(best);
				}
			}
		}
}

/* Makes cell x, y of level gr->g from the tiles of the level below (items in below). */
static int
make_parent(struct worker *wk, const struct mem_grid *fine, json_t *below, long x, long y,
    json_t **tile, struct mem_err *err)
{
	struct group *gr = wk->gr;
	const struct mem_grid *g = &gr->g;
	const struct mem_tile_opts *o = &gr->t->o;
	char cell[160], *stem, *id, *dir = NULL;
	double b[4];
	json_t *kids = json_array(), *params, *ids = json_array(), *k, *item = NULL;
	long fx0, fy0, fx1, fy1, nany = 0, nscl = 0, ncloud = 0;
	int w = g->tile_size, h = g->tile_h, direct = halves(g, fine), rc = -1, r;
	size_t i;

	*tile = NULL;
	mem_grid_tile_bounds(g, x, y, b);
	mem_grid_cell_name(g, x, y, cell, sizeof cell);
	if (mem_grid_tile_range(fine, b, &fx0, &fy0, &fx1, &fy1) == 0)
		for (long cy = fy0; cy <= fy1; cy++)
			for (long cx = fx0; cx <= fx1; cx++) {
				char name[160];
				json_t *it;

				mem_grid_cell_name(fine, cx, cy, name, sizeof name);
				if ((it = json_object_get(below, name)) != NULL) {
					json_array_append(kids, it);
					json_array_append_new(ids, json_string(mem_item_id(it)));
				}
			}
	if (json_array_size(kids) == 0) {
		json_decref(kids);
		json_decref(ids);
		return 0;
	}
	stem = cell_stem(cell, gr->label, o);
	params = json_object();
	json_object_set_new(params, "cell", json_string(cell));
	json_object_set_new(params, "from", ids);
	if ((r = open_cell(wk, stem, params, &id, &dir, tile, err)) != 0) {
		if (r > 0)
			rc = 0;
		goto out;
	}
	item = tile_item(gr, json_array_get(gr->scenes, 0), id, cell, b);
	{
		json_t *props = json_object_get(item, "properties"),
		    *cp = json_object_get(json_array_get(kids, 0), "properties");
		const char *copy[] = { "datetime", "start_datetime", "end_datetime", "mem:composite",
			"mem:period", "mem:scene_count" };

		for (size_t c = 0; c < sizeof copy / sizeof copy[0]; c++)
			if (json_object_get(cp, copy[c]))
				json_object_set(props, copy[c], json_object_get(cp, copy[c]));
	}
	json_array_foreach(kids, i, k)
		link_derived(item, mem_item_id(k));
	if (direct)
		worker_reserve(wk, (size_t)w * (size_t)h * 4);
	for (int kk = 0; kk < gr->nk; kk++) {
		struct slot *sl = &gr->k[kk];
		double gt[6] = { b[0], mem_grid_res(g), 0, b[3], 0, -mem_grid_res(g) };
		struct out ot;
		const json_t *meta = NULL;
		char **srcs = NULL;
		int n = 0, empty = 0;

		if (!sl->output)
			continue;
		json_array_foreach(kids, i, k) {
			json_t *a = json_object_get(json_object_get(k, "assets"), sl->key);

			if (a && mem_asset_href(a)) {
				srcs = mem_xrealloc(srcs, (size_t)(n + 2) * sizeof *srcs);
				srcs[n++] = (char *)mem_asset_href(a);
				srcs[n] = NULL;
				if (meta == NULL)
					meta = a;
			}
		}
		if (n == 0)
			continue;
		if (!direct) {
			/* levels that do not halve: warp from the finer tiles */
			char *name = mem_path_safe_name(sl->key), *fname = mem_xasprintf("%s.tif", name);

			memset(&ot, 0, sizeof ot);
			ot.path = mem_path_join(dir, fname);
			free(fname);
			free(name);
			rc = mem_raster_warp_cell(srcs, 0, g->epsg, b, w, h, sl->classes ? "mode" : "average",
			    1, sl->nodata, ot.path, &empty, err);
			free(srcs);
			if (rc < 0) {
				free(ot.path);
				goto out;
			}
			rc = -1;
			if (!empty) {
				ot.nvalid = 1;
				nany = 1;
				if (add_asset(item, sl->key, meta, &ot, err) < 0) {
					free(ot.path);
					goto out;
				}
			}
			free(ot.path);
			continue;
		}
		free(srcs);
		{
			double *in = wk->buf[0] ? wk->buf[0] : (wk->buf[0] = mem_xcalloc(wk->cap, sizeof(double)));
			GDALDataType type = GDT_Float64;
			double nd = sl->nodata;
			long nv = 0;
			GDALDatasetH first = mem_raster_open(mem_asset_href(meta), err);

			/* the children's own type and nodata: a resumed run may have warped nothing */
			if (first == NULL)
				goto out;
			type = GDALGetRasterDataType(GDALGetRasterBand(first, 1));
			{
				int has = 0;
				double v = GDALGetRasterNoDataValue(GDALGetRasterBand(first, 1), &has);

				if (has)
					nd = v;
			}
			GDALClose(first);
			for (size_t p = 0; p < (size_t)w * h * 4; p++)
				in[p] = nd;
			json_array_foreach(kids, i, k) {
				json_t *a = json_object_get(json_object_get(k, "assets"), sl->key);
				const char *cg = json_string_value(json_object_get(json_object_get(k,
				    "properties"), "mem:grid"));
				long cx, cy;
				const char *p;

				if (a == NULL || cg == NULL)
					continue;
				/* the child's column and row: the last two fields of its cell name */
				p = strrchr(cg, '/');
				cy = atol(p + 1);
				while (--p > cg && *p != '/')
					;
				cx = atol(p + 1);
				if (read_into(mem_asset_href(a), in, 2 * w, (int)(cx - 2 * x) * w,
				    (int)(cy - 2 * y) * h, w, h, err) < 0)
					goto out;
			}
			if (out_open(&ot, dir, sl->key, type, nd, cell, gt, w, h, gr->srs, err) < 0)
				goto out;
			reduce2(in, wk->out, w, h, nd, sl->classes, &nv, &nscl, &ncloud,
			    (int)kk == gr->scl || strcasecmp(sl->key, "scl") == 0);
			ot.nvalid = nv;
			if (nv > nany)
				nany = nv;
			if (out_write(&ot, 0, w, h, wk->out, err) < 0 || out_close(&ot, 1, err) < 0) {
				out_close(&ot, 0, NULL);
				free(ot.path);
				goto out;
			}
			if (nv > 0 && add_asset(item, sl->key, meta, &ot, err) < 0) {
				free(ot.path);
				goto out;
			}
			free(ot.path);
		}
	}
	if (nany == 0) {
		rc = 0;
		goto out;
	}
	if (direct)
		set_fractions(item, nany, (long)w * h, nscl, ncloud);
	mem_item_add_extension(item, MEM_EXT_FILE);
	mem_item_add_extension(item, MEM_EXT_PROJ);
	if (save_item(dir, item, err) < 0)
		goto out;
	*tile = item;
	item = NULL;
	rc = 0;
out:
	json_decref(item);
	json_decref(kids);
	free(stem);
	free(dir);
	free(id);
	return rc;
}

/* ---- running a level: cells in parallel, emitted in order ------------------ */

struct job {
	long x, y;
	json_t *item;
	struct mem_err err;
	int done, failed;
	char *claimed;		/* --ledger: made here, to be marked done */
	int taken;		/* --ledger: another worker's, to try again */
};

static int
run_level(struct group *gr, struct job *jobs, long n, const struct mem_grid *fine, json_t *below,
    json_t *made)
{
	struct mem_tiler *t = gr->t;
	long next = 0, row = 1;
	int stop = 0, nt = t->o.jobs > 0 ? t->o.jobs : 1;

	/*
	 * A worker takes a row of cells at a time: its dataset handles then
	 * decode each source block once for the row's cells, where single
	 * cells dealt out in turn had every worker decode nearly every block.
	 */
	while (row < n && jobs[row].y == jobs[0].y)
		row++;
	if (row > 1 && n / row < nt)
		row = (n + nt - 1) / nt;

	if (nt > n)
		nt = n > 0 ? (int)n : 1;
	#pragma omp parallel num_threads(nt)
	{
		struct worker wk;

		worker_init(&wk, gr);
		#pragma omp for schedule(dynamic, row)
		for (long i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			int rc, halt;

			#pragma omp atomic read
			halt = stop;
			mem_err_clear(&j->err);
			rc = halt ? 0 : fine ? make_parent(&wk, fine, below, j->x, j->y, &j->item, &j->err) :
			    make_cell(&wk, j->x, j->y, &j->item, &j->err);
			j->taken = !halt && wk.taken;
			j->claimed = !halt && rc == 0 ? wk.claimed : NULL;
			if (j->claimed == NULL)
				free(wk.claimed);
			wk.claimed = NULL;
			#pragma omp critical(mem_tile_emit)
			{
				j->done = 1;
				j->failed = rc < 0;
				while (next < n && jobs[next].done) {
					struct job *e = &jobs[next++];

					if (e->item && !stop) {
						if (t->emit(e->item, t->ctx) < 0)
							stop = 1;
						json_object_set(made, json_string_value(json_object_get(
						    json_object_get(e->item, "properties"), "mem:grid")), e->item);
					} else if (e->failed && t->fail)
						t->fail(&e->err, t->ctx);
					json_decref(e->item);
					e->item = NULL;
				}
			}
		}
		worker_free(&wk);
	}
	return stop ? -1 : 0;
}

/*
 * run_level, and with --ledger: the level's files synced, its cells marked
 * done, then the cells other workers held tried again until none is left
 * (they finish them, or their lease ends and they are ours).
 */
static int
level(struct group *gr, struct job *jobs, long n, const struct mem_grid *fine, json_t *below,
    json_t *made)
{
	const struct mem_tile_opts *o = &gr->t->o;
	int rc = run_level(gr, jobs, n, fine, below, made);

	while (o->claim) {
		long m = 0;

		if (rc == 0)
			mem_sync_fs(o->workdir, NULL);
		for (long i = 0; i < n; i++) {
			struct mem_err err;

			mem_err_clear(&err);
			if (jobs[i].claimed && rc == 0 && o->done(o->ledger_ctx, jobs[i].claimed, &err) < 0)
				rc = -1;
			free(jobs[i].claimed);
			jobs[i].claimed = NULL;
		}
		for (long i = 0; i < n; i++)
			if (jobs[i].taken) {
				jobs[m] = jobs[i];
				jobs[m].item = NULL;
				jobs[m].done = jobs[m].failed = jobs[m].taken = 0;
				m++;
			}
		if (rc < 0 || m == 0)
			break;
		n = m;
		{
			struct timespec ts = { 0, 500000000L };

			nanosleep(&ts, NULL);
		}
		rc = run_level(gr, jobs, n, fine, below, made);
	}
	return rc;
}

/* ---- groups -------------------------------------------------------------------- */

/* The cell whose centre is that of cell x, y of level g, at level z. */
static void
ancestor(const struct mem_grid *g, long x, long y, int z, char *name, size_t n)
{
	struct mem_grid a;
	double b[4], c[4];
	long ax, ay, ax1, ay1;

	mem_grid_tile_bounds(g, x, y, b);
	mem_grid_level(g, z, &a);
	c[0] = c[2] = (b[0] + b[2]) / 2;
	c[1] = c[3] = (b[1] + b[3]) / 2;
	if (mem_grid_tile_range(&a, c, &ax, &ay, &ax1, &ay1) < 0)
		ax = ay = -1;
	mem_grid_cell_name(&a, ax, ay, name, n);
}

static int
cmp_job(const void *a, const void *b)
{
	const struct job *x = a, *y = b;

	if (x->y != y->y)
		return x->y < y->y ? -1 : 1;
	return (x->x > y->x) - (x->x < y->x);
}

static int
make_group(struct mem_tiler *t, json_t *grp, struct mem_err *err)
{
	struct group gr;
	struct mem_grid g;
	long gx0 = 0, gy0 = 0, gx1 = -1, gy1 = -1, n = 0;
	struct job *jobs = NULL;
	json_t *s, *made, *below = NULL;
	size_t i;
	int rc = -1;

	memset(&gr, 0, sizeof gr);
	if (group_init(&gr, t, json_object_get(grp, "scenes"), err) < 0)
		goto out;
	gr.label = json_string_value(json_object_get(grp, "label"));
	snprintf(gr.period, sizeof gr.period, "%s",
	    json_string_value(json_object_get(grp, "period")));
	mem_grid_level(&t->o.grid, t->o.grid.zmax, &g);
	g.epsg = (int)json_integer_value(json_object_get(grp, "epsg"));
	if (g.kind == MEM_GRID_UTM && g.res == 0) {
		json_t *keys = json_array();

		for (int k = 0; k < gr.nk; k++)
			if (gr.k[k].output)
				json_array_append_new(keys, json_string(gr.k[k].key));
		g.res = finest_res(json_array_get(gr.scenes, 0), keys);
		json_decref(keys);
	}
	snprintf(gr.srs, sizeof gr.srs, "EPSG:%d", g.epsg);
	gr.g = g;
	/* the cells covered: the union of the scenes' boxes, cut to --bbox */
	json_array_foreach(gr.scenes, i, s) {
		double ll[4], pb[4];
		long a0, b0, a1, b1;

		if (mem_item_bbox(s, ll, NULL) < 0)
			continue;
		if (t->o.has_bbox) {
			if (!mem_bbox_intersects(ll, t->o.bbox))
				continue;
			ll[0] = fmax(ll[0], t->o.bbox[0]);
			ll[1] = fmax(ll[1], t->o.bbox[1]);
			ll[2] = fmin(ll[2], t->o.bbox[2]);
			ll[3] = fmin(ll[3], t->o.bbox[3]);
		}
		if (g.kind == MEM_GRID_WEBMERCATOR) {
			ll[1] = fmax(ll[1], -85.0511287798066);
			ll[3] = fmin(ll[3], 85.0511287798066);
		}
		if (lonlat_to(g.epsg, ll, pb, 0) < 0 || mem_grid_tile_range(&g, pb, &a0, &b0, &a1, &b1) < 0)
			continue;
		if (gx1 < gx0) {
			gx0 = a0; gy0 = b0; gx1 = a1; gy1 = b1;
		} else {
			if (a0 < gx0) gx0 = a0;
			if (b0 < gy0) gy0 = b0;
			if (a1 > gx1) gx1 = a1;
			if (b1 > gy1) gy1 = b1;
		}
	}
	for (long y = gy0; y <= gy1; y++)
		for (long x = gx0; x <= gx1; x++) {
			char name[160], key[160];

			mem_grid_cell_name(&g, x, y, name, sizeof name);
			/* a pyramid is split by its coarsest cells, so a shard owns whole subtrees */
			if (g.zmin < g.zmax)
				ancestor(&g, x, y, g.zmin, key, sizeof key);
			else
				memcpy(key, name, sizeof key);
			if (!mem_tile_in_shard(key, t->o.shard, t->o.nshards))
				continue;
			if (t->o.list_cells) {
				if (t->o.cells)
					json_object_set_new(t->o.cells, name, json_true());
				continue;
			}
			jobs = mem_xrealloc(jobs, (size_t)(n + 1) * sizeof *jobs);
			memset(&jobs[n], 0, sizeof jobs[n]);
			jobs[n].x = x;
			jobs[n].y = y;
			n++;
		}
	if (t->o.list_cells) {
		rc = 0;
		goto out;
	}
	made = json_object();
	rc = level(&gr, jobs, n, NULL, NULL, made);
	for (int z = g.zmax - 1; z >= g.zmin && rc == 0; z--) {
		struct mem_grid fine = gr.g;
		const char *cell;
		json_t *it, *seen = json_object();

		json_decref(below);
		below = made;
		made = json_object();
		mem_grid_level(&t->o.grid, z, &gr.g);
		gr.g.epsg = g.epsg;
		n = 0;
		json_object_foreach(below, cell, it) {
			const json_t *tr = json_object_get(json_object_get(it, "properties"), "proj:transform");
			double b[4];
			long a0, b0, a1, b1;
			char name[160];

			/* the parents this child's box meets */
			b[0] = json_number_value(json_array_get(tr, 2));
			b[3] = json_number_value(json_array_get(tr, 5));
			b[2] = b[0] + fine.tile_size * fine.res;
			b[1] = b[3] - fine.tile_h * fine.res;
			if (mem_grid_tile_range(&gr.g, b, &a0, &b0, &a1, &b1) < 0)
				continue;
			for (long y = b0; y <= b1; y++)
				for (long x = a0; x <= a1; x++) {
					mem_grid_cell_name(&gr.g, x, y, name, sizeof name);
					if (json_object_get(seen, name))
						continue;
					json_object_set_new(seen, name, json_true());
					jobs = mem_xrealloc(jobs, (size_t)(n + 1) * sizeof *jobs);
					memset(&jobs[n], 0, sizeof jobs[n]);
					jobs[n].x = x;
					jobs[n].y = y;
					n++;
				}
		}
		json_decref(seen);
		qsort(jobs, (size_t)n, sizeof *jobs, cmp_job);
		rc = level(&gr, jobs, n, &fine, below, made);
	}
	json_decref(made);
	/*
	 * The group's files to disk at once: one syncfs instead of two fsyncs a
	 * file.  Readers never needed it (the renames made each file whole);
	 * a crash before it costs a rerun the tiles whose sizes are wrong.
	 */
	mem_sync_fs(t->o.workdir, NULL);
	if (rc < 0)
		mem_err_set(err, MEM_EITEM, "output closed");
out:
	json_decref(below);
	free(jobs);
	group_free(&gr);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
mem_tiler_flush(struct mem_tiler *t, struct mem_err *err)
{
	size_t n = json_object_size(t->groups), i = 0;
	const char **keys = mem_xcalloc(n + 1, sizeof *keys), *k;
	json_t *v;
	int rc = 0;

	json_object_foreach(t->groups, k, v)
		keys[i++] = k;
	qsort(keys, n, sizeof *keys, cmp_str);
	for (i = 0; i < n && rc == 0; i++) {
		struct mem_err gerr;

		mem_err_clear(&gerr);
		if (make_group(t, json_object_get(t->groups, keys[i]), &gerr) < 0) {
			if (strcmp(gerr.msg, "output closed") == 0) {
				mem_err_set(err, MEM_EITEM, "output closed");
				rc = -1;
			} else if (t->fail)
				t->fail(&gerr, t->ctx);
		}
	}
	free(keys);
	json_object_clear(t->groups);
	return rc;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long
days_from_civil(long y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
date_of(long days, char buf[11])
{
	time_t s = (time_t)days * 86400;
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, 11, "%Y-%m-%d", &tm);
}

static long
floor_div(long a, long b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The period bin of time t: label (its first day) and "START/END". */
static void
period_bin(const char *period, double t, char label[11], char range[64])
{
	long n = strtol(period + 1, NULL, 10), days = (long)floor(t / 86400), a, b;
	char unit = period[strlen(period) - 1], e[11];

	if (unit == 'M' || unit == 'Y') {
		time_t s = (time_t)floor(t);
		struct tm tm;
		long months, m0;

		gmtime_r(&s, &tm);
		months = (tm.tm_year + 1900L) * 12 + tm.tm_mon;
		m0 = floor_div(months, unit == 'Y' ? 12 * n : n) * (unit == 'Y' ? 12 * n : n);
		a = days_from_civil(m0 / 12, (int)(m0 % 12) + 1, 1);
		m0 += unit == 'Y' ? 12 * n : n;
		b = days_from_civil(m0 / 12, (int)(m0 % 12) + 1, 1);
	} else {
		long span = unit == 'W' ? 7 * n : n, shift = unit == 'W' ? 3 : 0;

		/* weeks start on Mondays: 1970-01-01 was a Thursday */
		a = floor_div(days + shift, span) * span - shift;
		b = a + span;
	}
	date_of(a, label);
	date_of(b, e);
	snprintf(range, 64, "%s/%s", label, e);
}

int
mem_tiler_add(struct mem_tiler *t, const json_t *scene, struct mem_err *err)
{
	char date[11], label[11], range[64] = "", key[64];
	int epsg = scene_epsg(scene, &t->o.grid);
	json_t *grp;

	if (mem_item_date(scene, date, err) < 0)
		return -1;
	if (epsg == 0)
		return mem_err_set(err, MEM_EITEM, "item '%s': cannot choose a UTM zone",
		    mem_item_id(scene));
	if (!t->o.composite_set)
		memcpy(label, date, sizeof label);
	else if (t->o.period)
		period_bin(t->o.period, scene_time(scene), label, range);
	else
		snprintf(label, sizeof label, "all");
	snprintf(key, sizeof key, "%s|%05d", label, epsg);
	if ((grp = json_object_get(t->groups, key)) == NULL) {
		grp = json_object();
		json_object_set_new(grp, "scenes", json_array());
		json_object_set_new(grp, "label", json_string(label));
		json_object_set_new(grp, "period", json_string(range));
		json_object_set_new(grp, "epsg", json_integer(epsg));
		json_object_set_new(t->groups, key, grp);
	}
	json_array_append_new(json_object_get(grp, "scenes"), json_deep_copy(scene));
	return 0;
}

int
mem_tile_composite_parse(const char *s, struct mem_tile_opts *o, struct mem_err *err)
{
	static const struct {
		const char *name;
		enum mem_composite c;
	} m[] = { { "latest", MEM_COMP_LATEST }, { "first", MEM_COMP_FIRST },
		  { "least-cloudy", MEM_COMP_LEAST_CLOUDY }, { "median", MEM_COMP_MEDIAN },
		  { "max-ndvi", MEM_COMP_MAX_NDVI } };
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (strlen(m[i].name) == len && strncmp(m[i].name, s, len) == 0) {
			o->composite = m[i].c;
			o->composite_set = 1;
			o->period = NULL;
			if (colon) {
				const char *p = colon + 1;
				char *end;
				long n;

				if (p[0] != 'P' || (n = strtol(p + 1, &end, 10)) < 1 || n > 10000 ||
				    end == p + 1 || strchr("DWMY", *end) == NULL || *end == '\0' ||
				    end[1] != '\0')
					return mem_err_set(err, MEM_EUSAGE,
					    "invalid period '%s' in --composite: expected an ISO 8601 duration of one unit, such as P1D, P10D, P2W, P1M or P1Y",
					    p);
				o->period = p;
			}
			return 0;
		}
	return mem_err_set(err, MEM_EUSAGE,
	    "unknown composite '%.*s': expected latest, first, least-cloudy, median or max-ndvi",
	    (int)len, s);
}

#define MB (1024.0 * 1024.0)

double
mem_tile_base_mem(const struct mem_tile_opts *o)
{
	/* the program, GDAL, PROJ's database, and the block cache */
	return 48 * MB + o->cache;
}

double
mem_tile_worker_mem(const struct mem_tile_opts *o)
{
	return (o->mem - mem_tile_base_mem(o)) / (o->jobs > 0 ? o->jobs : 1);
}

int
mem_tile_plan_memory(struct mem_tile_opts *o, struct mem_err *err)
{
	/* per worker: its warpers' chunk buffers and dataset handles, and the least strip */
	const double per_job = 24 * MB;
	int jobs = o->jobs > 0 ? o->jobs : 1, fit;

	if (o->mem <= 0)
		return 0;
	/* a quarter of the budget caches decoded source blocks, shared by the workers */
	o->cache = fmax(8 * MB, fmin(512 * MB, floor(o->mem / 4 / MB) * MB));
	fit = (int)floor((o->mem - mem_tile_base_mem(o)) / per_job);
	if (fit < 1)
		return mem_err_set(err, MEM_EUSAGE, "--mem %.0fM is too small: mem-tile needs at least %.0fM",
		    o->mem / MB, ceil((mem_tile_base_mem(o) + per_job) / MB));
	if (jobs > fit)
		jobs = fit;
	o->jobs = jobs;
	GDALSetCacheMax64((GIntBig)o->cache);
	return 0;
}

int
mem_tile_in_shard(const char *cell, int shard, int nshards)
{
	return mem_shard_has(cell, shard, nshards);
}

int
mem_tile_list_box(const struct mem_tile_opts *o, json_t *cells, struct mem_err *err)
{
	struct mem_grid g;
	double ll[4], pb[4];
	long x0, y0, x1, y1, x, y;

	mem_grid_level(&o->grid, o->grid.zmax, &g);
	memcpy(ll, o->bbox, sizeof ll);
	if (g.kind == MEM_GRID_WEBMERCATOR) {
		ll[1] = fmax(ll[1], -85.0511287798066);
		ll[3] = fmin(ll[3], 85.0511287798066);
	} else if (g.kind == MEM_GRID_UTM) {
		if (g.epsg == 0)
			g.epsg = mem_grid_utm_epsg((ll[0] + ll[2]) / 2, (ll[1] + ll[3]) / 2);
		if (g.res == 0)
			return mem_err_set(err, MEM_EUSAGE,
			    "a UTM grid listed from --bbox alone needs its resolution (utm:RES)");
	}
	if (lonlat_to(g.epsg, ll, pb, 0) < 0 || mem_grid_tile_range(&g, pb, &x0, &y0, &x1, &y1) < 0)
		return 0;
	for (y = y0; y <= y1; y++)
		for (x = x0; x <= x1; x++) {
			char name[160], key[160];

			mem_grid_cell_name(&g, x, y, name, sizeof name);
			if (g.zmin < g.zmax)
				ancestor(&g, x, y, g.zmin, key, sizeof key);
			else
				memcpy(key, name, sizeof key);
			if (mem_tile_in_shard(key, o->shard, o->nshards))
				json_object_set_new(cells, name, json_true());
		}
	return 0;
}
