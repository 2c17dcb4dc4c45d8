/*
 * tile.c - cutting scenes into grid cells.
 *
 * Each asset of a cell is warped from every scene of the group at once
 * (GDALWarp with several sources mosaics them, later sources on top), into
 * memory first so that a cell with no valid pixel costs no file.  Files
 * land under WORKDIR/tiles/ID/, ID being the tile item's deterministic id,
 * so a rerun finds finished cells and skips them.
 */
#include "config.h"

#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "files.h"
#include "item.h"
#include "raster.h"
#include "sha256.h"
#include "tile.h"

struct mem_tiler {
	struct mem_tile_opts o;
	mem_tile_emit_fn emit;
	mem_tile_fail_fn fail;
	void *ctx;
	json_t *group;		/* scenes of the current date */
	char date[11];
	int epsg;		/* the group's grid CRS */
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
	t->group = json_array();
	return t;
}

void
mem_tiler_free(struct mem_tiler *t)
{
	if (t == NULL)
		return;
	json_decref(t->group);
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

/* Makes one cell of the group: returns 0 (emitted or empty) or -1. */
static int
make_cell(struct mem_tiler *t, const struct mem_grid *g, long x, long y, json_t *keys,
    struct mem_err *err)
{
	char cell[128], stem[160], *id, *dir;
	double b[4], ll[4];
	json_t *params = json_object(), *ids = json_array(), *s, *k, *tile, *props, *tr;
	const json_t *first = json_array_get(t->group, 0);
	size_t i, j;
	int size = g->tile_size, any = 0, rc = -1;

	mem_grid_tile_bounds(g, x, y, b);
	mem_grid_cell_name(g, x, y, cell, sizeof cell);
	snprintf(stem, sizeof stem, "%s-%s", cell, t->date);
	for (char *p = stem; *p; p++)
		if (*p == '/')
			*p = '-';
	/* the inputs by id and content (checksum, else href): a changed input is new work */
	json_array_foreach(t->group, i, s) {
		json_t *sc = json_object(), *sums = json_object();

		json_object_set_new(sc, "id", json_string(mem_item_id(s)));
		json_array_foreach(keys, j, k) {
			json_t *sa = json_object_get(json_object_get(s, "assets"), json_string_value(k));
			json_t *c = json_object_get(sa, "file:checksum");

			if (sa && mem_asset_href(sa))
				json_object_set_new(sums, json_string_value(k),
				    c ? json_deep_copy(c) : json_string(mem_asset_href(sa)));
		}
		json_object_set_new(sc, "assets", sums);
		json_array_append_new(ids, sc);
	}
	json_object_set_new(params, "scenes", ids);
	json_object_set_new(params, "cell", json_string(cell));
	json_object_set_new(params, "resampling", json_string(t->o.resample));
	json_object_set_new(params, "assets", json_deep_copy(keys));
	id = mem_item_derive_id(stem, "mem-tile", params);
	json_decref(params);
	dir = mem_xasprintf("%s/tiles/%s", t->o.workdir, id);
	if (mem_workdir(dir, err) < 0)
		goto out;

	tile = mem_item_derive(first, id, "tile");
	props = json_object_get(tile, "properties");
	json_array_clear(json_object_get(tile, "links"));
	json_array_foreach(t->group, i, s) {
		json_t *l = json_object();

		json_object_set_new(l, "rel", json_string("derived_from"));
		json_object_set_new(l, "href", json_string(mem_item_id(s)));
		json_object_set_new(l, "title", json_string(mem_item_id(s)));
		json_array_append_new(json_object_get(tile, "links"), l);
	}
	if (json_array_size(t->group) > 1) {
		struct mem_interval all = { INFINITY, -INFINITY }, iv;
		char buf[40];

		json_array_foreach(t->group, i, s)
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
	json_array_append_new(tr, json_integer(size));
	json_array_append_new(tr, json_integer(size));
	json_object_set_new(props, "proj:shape", tr);
	json_object_set_new(props, "mem:grid", json_string(cell));
	if (lonlat_to(g->epsg, b, ll, 1) == 0) {
		json_object_set_new(tile, "bbox", bbox_json(ll));
		json_object_set_new(tile, "geometry", polygon(ll));
	}

	json_array_foreach(keys, j, k) {
		const char *key = json_string_value(k);
		char **srcs = NULL, *name = mem_path_safe_name(key), *path, *fname;
		json_t *src_asset = NULL, *a, *m;
		const char *mk;
		int empty = 0, has_nd = 0, n = 0;
		double nd = 0;
		char sum[69];
		off_t fsize;

		fname = mem_xasprintf("%s.tif", name);
		path = mem_path_join(dir, fname);
		free(fname);
		free(name);
		json_array_foreach(t->group, i, s) {
			json_t *sa = json_object_get(json_object_get(s, "assets"), key);

			if (sa && mem_asset_href(sa)) {
				srcs = mem_xrealloc(srcs, (size_t)(n + 2) * sizeof *srcs);
				srcs[n++] = (char *)mem_asset_href(sa);
				srcs[n] = NULL;
				if (src_asset == NULL)
					src_asset = sa;
			}
		}
		if (n == 0) {
			free(path);
			continue;
		}
		{
			struct mem_band band;
			json_t *one = json_object(), *as = json_object();

			/* nodata as the item states it, through the band finder's rules */
			json_object_set(as, key, src_asset);
			json_object_set_new(one, "id", json_string("x"));
			json_object_set_new(one, "assets", as);
			if (mem_item_find_band(one, key, &band, NULL) == 0 && band.has_nodata) {
				has_nd = 1;
				nd = band.nodata;
			}
			json_decref(one);
		}
		if (!mem_path_exists(path) &&
		    mem_raster_warp_cell(srcs, 0, g->epsg, b, size, size,
		    is_classification(key, src_asset) ? "near" : t->o.resample, has_nd, nd, path,
		    &empty, err) < 0) {
			free(srcs);
			free(path);
			json_decref(tile);
			goto out;
		}
		free(srcs);
		if (empty) {
			free(path);
			continue;
		}
		if (mem_file_checksum(path, sum, &fsize, err) < 0) {
			free(path);
			json_decref(tile);
			goto out;
		}
		a = json_object();
		/* keep what describes the bands; drop what described the source file */
		json_object_foreach(src_asset, mk, m)
			if (strcmp(mk, "href") && strncmp(mk, "proj:", 5) && strncmp(mk, "file:", 5) &&
			    strcmp(mk, "mem:source_href") && strcmp(mk, "alternate") && strcmp(mk, "type"))
				json_object_set(a, mk, m);
		{
			char *abs = mem_path_absolute(path);

			json_object_set_new(a, "href", json_string(abs));
			free(abs);
		}
		json_object_set_new(a, "type", json_string("image/tiff; application=geotiff"));
		json_object_set_new(a, "file:size", json_integer((json_int_t)fsize));
		json_object_set_new(a, "file:checksum", json_string(sum));
		json_object_set_new(json_object_get(tile, "assets"), key, a);
		free(path);
		any = 1;
	}
	if (any) {
		mem_item_add_extension(tile, MEM_EXT_FILE);
		mem_item_add_extension(tile, MEM_EXT_PROJ);
		rc = t->emit(tile, t->ctx);
	} else
		rc = 0;
	json_decref(tile);
out:
	free(dir);
	free(id);
	return rc;
}

int
mem_tiler_flush(struct mem_tiler *t, struct mem_err *err)
{
	struct mem_grid g = t->o.grid;
	long gx0 = 0, gy0 = 0, gx1 = -1, gy1 = -1, x, y;
	json_t *keys = json_array(), *s, *k;
	size_t i, j;
	int rc = 0;

	if (json_array_size(t->group) == 0) {
		json_decref(keys);
		return 0;
	}
	g.epsg = t->epsg;
	/* the union of the scenes' asset keys */
	json_array_foreach(t->group, i, s) {
		json_t *sk = asset_keys(t, s);

		json_array_foreach(sk, j, k) {
			size_t m;
			json_t *e;
			int dup = 0;

			json_array_foreach(keys, m, e)
				dup |= strcmp(json_string_value(e), json_string_value(k)) == 0;
			if (!dup)
				json_array_append(keys, k);
		}
		json_decref(sk);
	}
	if (g.kind == MEM_GRID_UTM && g.res == 0)
		g.res = finest_res(json_array_get(t->group, 0), keys);
	/* the cells covered: the union of the scenes' boxes, cut to --bbox */
	json_array_foreach(t->group, i, s) {
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
		if (lonlat_to(g.epsg, ll, pb, 0) < 0 ||
		    mem_grid_tile_range(&g, pb, &a0, &b0, &a1, &b1) < 0)
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
	for (y = gy0; y <= gy1 && rc == 0; y++)
		for (x = gx0; x <= gx1 && rc == 0; x++) {
			struct mem_err cerr;
			char name[128];

			mem_grid_cell_name(&g, x, y, name, sizeof name);
			if (!mem_tile_in_shard(name, t->o.shard, t->o.nshards))
				continue;
			if (t->o.list_cells) {
				/* cells only, once each over all dates */
				if (t->o.cells)
					json_object_set_new(t->o.cells, name, json_true());
				continue;
			}
			mem_err_clear(&cerr);
			if (make_cell(t, &g, x, y, keys, &cerr) < 0) {
				if (cerr.status == MEM_OK) {
					/* the emitter asked to stop */
					rc = -1;
					mem_err_set(err, MEM_EITEM, "output closed");
					break;
				}
				if (t->fail)
					t->fail(&cerr, t->ctx);
			}
		}
	json_decref(keys);
	json_array_clear(t->group);
	return rc;
}

int
mem_tiler_add(struct mem_tiler *t, const json_t *scene, struct mem_err *err)
{
	char date[11];
	int epsg = scene_epsg(scene, &t->o.grid);

	if (mem_item_date(scene, date, err) < 0)
		return -1;
	if (epsg == 0)
		return mem_err_set(err, MEM_EITEM, "item '%s': cannot choose a UTM zone",
		    mem_item_id(scene));
	if (json_array_size(t->group) > 0 && (strcmp(date, t->date) != 0 || epsg != t->epsg))
		if (mem_tiler_flush(t, err) < 0)
			return -1;
	memcpy(t->date, date, sizeof date);
	t->epsg = epsg;
	json_array_append_new(t->group, json_deep_copy(scene));
	return 0;
}

int
mem_tile_in_shard(const char *cell, int shard, int nshards)
{
	unsigned char dig[32];
	struct mem_sha256 h;
	uint64_t v = 0;

	if (nshards <= 1)
		return 1;
	mem_sha256_init(&h);
	mem_sha256_update(&h, cell, strlen(cell));
	mem_sha256_final(&h, dig);
	for (int i = 0; i < 8; i++)
		v = v << 8 | dig[i];
	return (int)(v % (uint64_t)nshards) == shard;
}

int
mem_tile_list_box(const struct mem_tile_opts *o, json_t *cells, struct mem_err *err)
{
	struct mem_grid g = o->grid;
	double ll[4], pb[4];
	long x0, y0, x1, y1, x, y;

	memcpy(ll, o->bbox, sizeof ll);
	if (g.kind == MEM_GRID_WEBMERCATOR) {
		ll[1] = fmax(ll[1], -85.0511287798066);
		ll[3] = fmin(ll[3], 85.0511287798066);
	} else {
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
			char name[128];

			mem_grid_cell_name(&g, x, y, name, sizeof name);
			if (mem_tile_in_shard(name, o->shard, o->nshards))
				json_object_set_new(cells, name, json_true());
		}
	return 0;
}
