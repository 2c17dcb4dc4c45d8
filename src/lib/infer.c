/*
 * infer.c - inference stages.
 *
 * The chain of stages reads its bands in strips.  Each OpenMP thread keeps its own GDAL
 * dataset handles (GDAL handles are not thread-safe), decodes its strip,
 * runs the kernel and hands the strip to the writer under a lock; GeoTIFF
 * compression of the written blocks runs on GDAL's own worker threads
 * (NUM_THREADS), so decode, compute and encode overlap.
 */
#include "config.h"

#include <cpl_conv.h>
#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "expr.h"
#include "files.h"
#include "halo.h"
#include "infer.h"
#include "item.h"
#include "kern.h"
#include "llm.h"
#include "model.h"
#include "raster.h"
#include "stage.h"
#include "zonal.h"

static _Thread_local const char *last_device = "cpu";

const char *
mem_infer_last_device(void)
{
	return last_device;
}

/* Opens a band's asset and checks the band index exists. */
static GDALDatasetH
open_band(const json_t *item, const struct mem_band *b, struct mem_err *err)
{
	GDALDatasetH ds = mem_raster_open(mem_asset_href(b->asset), err);

	if (ds == NULL)
		return NULL;
	if (b->index > GDALGetRasterCount(ds)) {
		mem_err_set(err, MEM_EITEM, "item '%s': asset '%s' has %d bands, not %d",
		    mem_item_id(item), b->asset_key, GDALGetRasterCount(ds), b->index);
		GDALClose(ds);
		return NULL;
	}
	return ds;
}

/* nodata of a band: the item's raster:bands value, else the file's own. */
static void
band_nodata(GDALDatasetH ds, const struct mem_band *b, int *has, float *v)
{
	int ok = 0;
	double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, b->index), &ok);

	if (b->has_nodata) {
		*has = 1;
		*v = (float)b->nodata;
	} else if (ok) {
		*has = 1;
		*v = (float)nd;
	} else
		*has = 0;
}

static int
same_grid(GDALDatasetH a, GDALDatasetH b)
{
	double ga[6], gb[6];
	double wa, wb, ha, hb;

	if (GDALGetGeoTransform(a, ga) != CE_None || GDALGetGeoTransform(b, gb) != CE_None)
		return GDALGetRasterXSize(a) == GDALGetRasterXSize(b) &&
		    GDALGetRasterYSize(a) == GDALGetRasterYSize(b);
	wa = GDALGetRasterXSize(a) * ga[1];
	wb = GDALGetRasterXSize(b) * gb[1];
	ha = GDALGetRasterYSize(a) * ga[5];
	hb = GDALGetRasterYSize(b) * gb[5];
	/* the same extent, maybe at another resolution (B8A at 20 m beside B04 at 10 m) */
	return fabs(ga[0] - gb[0]) < fabs(ga[1]) * 0.5 && fabs(ga[3] - gb[3]) < fabs(ga[5]) * 0.5 &&
	    fabs(wa - wb) < fabs(ga[1]) && fabs(ha - hb) < fabs(ga[5]);
}

/* Names a band may have besides its common name: Landsat's nir08, Sentinel-2's asset keys. */
static const struct {
	const char *name, *alt[3];
} aliases[] = {
	{ "nir", { "nir08", "B08" } }, { "red", { "B04" } }, { "green", { "B03" } },
	{ "blue", { "B02" } }, { "swir16", { "B11" } }, { "swir22", { "B12" } },
};

/* Bands in reflectance units once scaled: the ones a collection default applies to. */
static int
reflective(const char *name)
{
	static const char *names[] = { "coastal", "blue", "green", "red", "yellow", "rededge",
		"rededge1", "rededge2", "rededge3", "nir", "nir08", "nir09", "swir16", "swir22",
		"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
		NULL };

	for (const char **n = names; *n; n++)
		if (strcasecmp(*n, name) == 0)
			return 1;
	return 0;
}

static int
prop_starts(const json_t *item, const char *key, const char *prefix)
{
	const char *v = mem_item_prop_string(item, key);

	return v && strncasecmp(v, prefix, strlen(prefix)) == 0;
}

/*
 * Sentinel-2 from processing baseline 04.00 (25 January 2022) stores
 * DN = 10000 * reflectance + 1000: the baseline from the item's property,
 * else from the product name's _Nxxxx_, else from the date.
 */
static int
s2_has_boa_offset(const json_t *item)
{
	const char *pb = mem_item_prop_string(item, "s2:processing_baseline");
	const char *id = mem_item_id(item), *n;
	json_t *applied = json_object_get(json_object_get(item, "properties"),
	    "earthsearch:boa_offset_applied");
	char date[11];

	if (json_is_true(applied))
		return 0;
	if (pb)
		return atof(pb) >= 4.0;
	if (id && (n = strstr(id, "_N")) && strlen(n) >= 7 && isdigit((unsigned char)n[2]) &&
	    isdigit((unsigned char)n[5]))
		return atoi(n + 2) >= 400;
	return mem_item_date(item, date, NULL) == 0 && strcmp(date, "2022-01-25") >= 0;
}

/* Landsat Collection 2: by platform, collection or product id (LC08_L2SP_...). */
static int
is_landsat(const json_t *item)
{
	const char *id = mem_item_id(item), *coll = json_string_value(json_object_get(item,
	    "collection"));

	return prop_starts(item, "platform", "landsat") ||
	    (coll && strncasecmp(coll, "landsat-c2", 10) == 0) ||
	    (id && strlen(id) > 10 && id[0] == 'L' && strncmp(id + 4, "_L2S", 4) == 0);
}

/*
 * An item that states no scale or offset for a reflective band gets its
 * collection's: Sentinel-2 DN / 10000 (and the BOA offset when its
 * baseline has one), Landsat Collection 2 level 2 DN * 2.75e-5 - 0.2.
 * Indices with constants (EVI, SAVI) are wrong without it.
 */
static void
collection_scale(const json_t *item, const char *name, struct mem_band *b)
{
	const char *id = mem_item_id(item), *coll = json_string_value(json_object_get(item,
	    "collection"));

	if (b->has_scale || b->has_offset || !(reflective(name) || reflective(b->asset_key)))
		return;
	if (prop_starts(item, "platform", "sentinel-2") || prop_starts(item, "constellation",
	    "sentinel-2") || (coll && strncasecmp(coll, "sentinel-2", 10) == 0) ||
	    (id && (strncmp(id, "S2A_", 4) == 0 || strncmp(id, "S2B_", 4) == 0 ||
	    strncmp(id, "S2C_", 4) == 0))) {
		b->scale = 1e-4;
		b->offset = s2_has_boa_offset(item) ? -0.1 : 0;
	} else if (is_landsat(item)) {
		b->scale = 2.75e-5;
		b->offset = -0.2;
	}
}

/* Bands of classes, not measurements: never interpolated when resampled. */
static int
categorical(const char *name, const struct mem_band *b)
{
	json_t *roles = json_object_get(b->asset, "roles"), *r;
	size_t i;

	if (strcasecmp(name, "scl") == 0 || strncasecmp(name, "qa", 2) == 0 ||
	    strcasecmp(b->asset_key, "scl") == 0 || strncasecmp(b->asset_key, "qa", 2) == 0)
		return 1;
	json_array_foreach(roles, i, r)
		if (json_is_string(r) && strcmp(json_string_value(r), "classification") == 0)
			return 1;
	return 0;
}

/* One band read for the chain. */
struct input {
	struct mem_band b;
	const char *href;
	GDALDatasetH ds;
	int w, h;
	int nearest;		/* classes: no interpolation when resampled */
	int need_refl;		/* an expression reads it as reflectance */
	int need_halo;		/* classify reads it as reflectance with its halo rows */
	struct mem_kern_band kb;
	const json_t *item;	/* the item it is a band of (the run's, or the date before) */
	char *vrt;		/* with neighbours: the band over the grown grid, as VRT XML */
	int vw, vh;		/* the VRT's size */
	double vx, vy;		/* the grown grid's corner in the VRT's pixels */
	double vsx, vsy;	/* VRT pixels per grid pixel (1 but for a coarser band) */
};

#define MAX_INPUTS 32

/* What one stage reads and writes for one item. */
struct slot {
	int in[3];		/* inputs of an index or mask (zonal: a band measured) */
	int bin[2];		/* diff: the inputs of the index on the date before */
	int qa;			/* cloudmask: in[0] is QA_PIXEL, not SCL */
	int bmask, bqa;		/* diff with a cloudmask: its band on the date before */
	int vec;		/* zonal, change: its GeoPackage is to be made */
	char *gpkg, *json;	/* zonal, change: the GeoPackage and the summary beside it */
	struct mem_zones zones;	/* zonal */
	struct mem_kern_zone *acc; /* zonal: the values of each zone, all threads */
	int *vin;		/* expr: per name, an input, or -1 for a stage */
	int *cin;		/* classify: the input of each of the model's bands */
	GDALDatasetH out;	/* NULL when not written this time */
	char *tmp, *path;
	GDALDatasetH pout;	/* classify with prob=1: the probabilities */
	char *ptmp, *ppath;
};

struct run {
	const json_t *item;
	const json_t *before;	/* change: the item of the date before */
	const struct mem_chain *c;
	struct input in[MAX_INPUTS];
	int nin;
	struct slot *sl;
	const struct mem_infer_near *near; /* the tiles beside item and before, or NULL */
	int W, H;		/* with neighbours: the grown grid, 0 without */
	int hl, ht;		/* its columns left of and rows above the item */
};

/*
 * The input whose grid the run computes on: the finest band (coarser ones,
 * B8A or SCL at 20 m, are resampled onto it); -1 when a band covers another
 * area.
 */
static int
grid_input(const struct run *r, const json_t *item, struct mem_err *err)
{
	int ref = 0;

	for (int i = 1; i < r->nin; i++)
		if (r->in[i].w > r->in[ref].w)
			ref = i;
	for (int i = 0; i < r->nin; i++)
		if (!same_grid(r->in[ref].ds, r->in[i].ds))
			return mem_err_set(err, MEM_EITEM,
			    "item '%s': bands '%s' and '%s' cover different areas", mem_item_id(item),
			    r->in[ref].b.asset_key, r->in[i].b.asset_key);
	return ref;
}

/* The input for band name (or one of its aliases), opened once per band. */
static int
add_input(struct run *r, const json_t *item, const char *name, int nearest, struct mem_err *err)
{
	struct mem_band b;
	struct mem_err first;
	size_t a;
	int i;

	if (mem_item_find_band(item, name, &b, &first) < 0) {
		for (a = 0; a < sizeof aliases / sizeof *aliases; a++)
			if (strcmp(aliases[a].name, name) == 0)
				break;
		for (i = 0; a < sizeof aliases / sizeof *aliases && i < 3 && aliases[a].alt[i]; i++)
			if (mem_item_find_band(item, aliases[a].alt[i], &b, NULL) == 0)
				break;
		if (a == sizeof aliases / sizeof *aliases || i == 3 || aliases[a].alt[i] == NULL) {
			*err = first;
			return -1;
		}
	}
	collection_scale(item, name, &b);
	nearest |= categorical(name, &b);
	for (i = 0; i < r->nin; i++)
		if (r->in[i].b.asset == b.asset && r->in[i].b.index == b.index) {
			r->in[i].nearest |= nearest;
			return i;
		}
	if (r->nin == MAX_INPUTS)
		return mem_err_set(err, MEM_EITEM, "item '%s': more than %d bands", mem_item_id(item),
		    MAX_INPUTS);
	r->in[i].b = b;
	r->in[i].item = item;
	r->in[i].href = mem_asset_href(b.asset);
	r->in[i].nearest = nearest;
	r->in[i].ds = open_band(item, &b, err);
	if (r->in[i].ds == NULL)
		return -1;
	r->in[i].w = GDALGetRasterXSize(r->in[i].ds);
	r->in[i].h = GDALGetRasterYSize(r->in[i].ds);
	r->in[i].kb.scale = b.scale;
	r->in[i].kb.offset = b.offset;
	band_nodata(r->in[i].ds, &b, &r->in[i].kb.has_nodata, &r->in[i].kb.nodata);
	return r->nin++;
}

/*
 * The band of a cloudmask stage on item, and whether it holds QA_PIXEL
 * bits: the collection decides unless source= or band= says.
 */
static int
mask_input(struct run *r, const json_t *item, const struct mem_stage *s, int *qa,
    struct mem_err *err)
{
	*qa = s->source == MEM_CLOUD_QA || (s->source == MEM_CLOUD_AUTO && is_landsat(item));
	return add_input(r, item, s->band ? s->band : *qa ? "qa_pixel" : "scl", 1, err);
}

/* Finds and opens every band the stages read. */
static int
resolve(struct run *r, struct mem_err *err)
{
	for (size_t k = 0; k < r->c->n; k++) {
		const struct mem_stage *s = &r->c->st[k];
		struct slot *sl = &r->sl[k];

		if (s->kind == MEM_STAGE_EXPR) {
			size_t nv = mem_expr_nvars(s->expr);

			sl->vin = mem_xcalloc(nv ? nv : 1, sizeof *sl->vin);
			for (size_t v = 0; v < nv; v++) {
				sl->vin[v] = -1;
				if (s->refs[v] >= 0)
					continue;
				sl->vin[v] = add_input(r, r->item, mem_expr_var(s->expr, v), 0, err);
				if (sl->vin[v] < 0)
					return mem_err_prefix(err, "expr '%s'", s->name);
				r->in[sl->vin[v]].need_refl = 1;
			}
			continue;
		}
		if (s->kind == MEM_STAGE_CLASSIFY) {
			sl->cin = mem_xcalloc(s->clf->k.nbands, sizeof *sl->cin);
			for (int v = 0; v < s->clf->k.nbands; v++) {
				sl->cin[v] = add_input(r, r->item, s->clf->bands[v], 0, err);
				if (sl->cin[v] < 0)
					return mem_err_prefix(err, "classify '%s'", s->name);
				r->in[sl->cin[v]].need_halo = 1;
			}
			continue;
		}
		if (s->kind == MEM_STAGE_ZONAL && s->of_stage < 0) {
			/* a band measured as it is read: reflectance, NaN for nodata */
			if ((sl->in[0] = add_input(r, r->item, s->of, 0, err)) < 0)
				return mem_err_prefix(err, "zonal '%s'", s->name);
			r->in[sl->in[0]].need_refl = 1;
			continue;
		}
		if (s->kind == MEM_STAGE_CLOUDMASK) {
			if ((sl->in[0] = mask_input(r, r->item, s, &sl->qa, err)) < 0)
				return -1;
			continue;
		}
		for (int j = 0; j < s->nbands; j++)
			if ((sl->in[j] = add_input(r, r->item, s->bands[j], 0, err)) < 0)
				return -1;
		if (s->kind == MEM_STAGE_DIFF) {
			if (r->before == NULL)
				return mem_err_set(err, MEM_EITEM, "item '%s': change needs the item "
				    "of the date before", mem_item_id(r->item));
			for (int j = 0; j < 2; j++)
				if ((sl->bin[j] = add_input(r, r->before, s->bands[j], 0, err)) < 0)
					return mem_err_prefix(err, "item '%s' (before)",
					    mem_item_id(r->before));
			sl->bmask = -1;
			if (s->mask >= 0 && (sl->bmask = mask_input(r, r->before, &r->c->st[s->mask],
			    &sl->bqa, err)) < 0)
				return mem_err_prefix(err, "item '%s' (before)", mem_item_id(r->before));
		}
	}
	return 0;
}

/*
 * Masks (cloudmask, change) hold 0, 1 and nodata: they are written as
 * UInt8 with nodata MASK_NODATA, as GDAL and QGIS users expect of a mask
 * and a quarter of the bytes of float32.  In memory the chain keeps them as
 * float planes (0, 1, NaN), which later stages read (mask=cloudmask).
 */
#define MASK_NODATA 255

static int
is_mask(const struct mem_stage *s)
{
	return s->kind == MEM_STAGE_CLOUDMASK || s->kind == MEM_STAGE_CHANGE;
}

/* The names of a mask's values 0 and 1: its classes in the item. */
static const char *const *
mask_classes(const struct mem_stage *s)
{
	static const char *const cloud[] = { "clear", "cloud" }, *const change[] = {
		"no change", "change" };

	return s->kind == MEM_STAGE_CHANGE ? change : cloud;
}

/*
 * One strip row of a mask plane (0, 1, NaN) as bytes: NaN is MASK_NODATA,
 * any other non-zero 1.  GDAL's own conversion would make NaN 0 (clear).
 */
static void
mask_bytes(const float *restrict v, unsigned char *restrict b, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		b[i] = v[i] != v[i] ? MASK_NODATA : v[i] != 0;
}

/*
 * Creates the output of one stage under a temporary name: float32 with
 * NaN nodata, UInt8 with 255 for a class band or a mask.
 */
static GDALDatasetH
create_output(const struct mem_infer_opts *o, GDALDatasetH ref, const struct mem_stage *s,
    int prob, const char *path, const char *tmp, struct mem_err *err)
{
	const char *name = s->name;
	int cls = s->kind == MEM_STAGE_CLASSIFY && !prob, nb = prob ? s->clf->k.nclasses : 1;
	int byte = cls || is_mask(s);
	char **co = mem_raster_tiff_options(NULL);
	GDALDatasetH out;
	double gt[6];

	for (char **c = o->co; c && *c; c++) {
		char *key = NULL;
		const char *val = CPLParseNameValue(*c, &key);

		if (key && val)
			co = CSLSetNameValue(co, key, val);
		CPLFree(key);
	}
	/*
	 * Masks compress best without a predictor (0/1 runs; 10-20% smaller
	 * than with PREDICTOR=2 on real SCL masks, ZSTD and DEFLATE alike).
	 */
	if (CSLFetchNameValue(co, "PREDICTOR") == NULL)
		co = CSLSetNameValue(co, "PREDICTOR", cls ? "2" : byte ? "1" : "3");
	if (strcasecmp(CSLFetchNameValueDef(co, "COMPRESS", ""), "ZSTD") != 0)
		co = CSLSetNameValue(co, "ZSTD_LEVEL", NULL);
	CPLErrorReset();
	out = GDALCreate(GDALGetDriverByName("GTiff"), tmp, GDALGetRasterXSize(ref),
	    GDALGetRasterYSize(ref), nb, byte ? GDT_Byte : GDT_Float32, co);
	CSLDestroy(co);
	if (out == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", path, CPLGetLastErrorMsg());
		return NULL;
	}
	if (GDALGetGeoTransform(ref, gt) == CE_None)
		GDALSetGeoTransform(out, gt);
	if (GDALGetSpatialRef(ref))
		GDALSetSpatialRef(out, GDALGetSpatialRef(ref));
	GDALSetRasterNoDataValue(GDALGetRasterBand(out, 1), cls ? MEM_KERN_CLASS_NODATA :
	    byte ? MASK_NODATA : NAN);
	GDALSetDescription(GDALGetRasterBand(out, 1), name);
	for (int b = 0; prob && b < nb; b++) {
		GDALSetRasterNoDataValue(GDALGetRasterBand(out, b + 1), NAN);
		GDALSetDescription(GDALGetRasterBand(out, b + 1), s->clf->classes[b]);
	}
	/*
	 * No category names: a GeoTIFF keeps them only in a .aux.xml beside
	 * the temporary name, left behind by the rename.  The classes are in
	 * the item (classification:classes, describe()).
	 */
	return out;
}

/* Per-thread state of the strip loop: its own handles and buffers. */
struct worker {
	GDALDatasetH ds[MAX_INPUTS];
	float *raw[MAX_INPUTS], *refl[MAX_INPUTS];
	float *hrefl[MAX_INPUTS];	/* classify: reflectance with the halo rows */
	float **sout;
	float **pout;		/* classify with prob=1: a plane per class */
	unsigned char **bout;	/* a mask written: its strip as bytes */
	float *tmp;		/* diff: the index on the date before */
	unsigned char *scratch;
	int *ids;		/* zonal: the zone of each pixel of the strip */
	OGRGeometryH **geoms;	/* zonal: this thread's copy of each stage's zones */
	struct mem_kern_zone **acc; /* zonal: this thread's values per stage and zone */
	int gpu;		/* the strip buffers are pinned: the GPU copies them by DMA */
};

/* A strip buffer: pinned host memory when the stages run on the GPU. */
static void *
walloc(const struct worker *t, size_t bytes)
{
	return t->gpu ? mem_kern_cuda_host_alloc(bytes) : VSI_MALLOC_VERBOSE(bytes);
}

static void
wfree(const struct worker *t, void *p)
{
	if (t->gpu)
		mem_kern_cuda_host_free(p);
	else
		VSIFree(p);
}

static int
worker_init(struct worker *t, const struct run *r, size_t w, size_t strip, int halo, int gpu,
    struct mem_err *err)
{
	size_t n = w * strip, nh = w * (strip + 2 * (size_t)halo);
	int ok = 1;

	memset(t, 0, sizeof *t);
	t->gpu = gpu;
	t->sout = mem_xcalloc(r->c->n, sizeof *t->sout);
	for (int i = 0; i < r->nin && ok; i++) {
		ok = (t->raw[i] = walloc(t, nh * sizeof(float))) != NULL;
		if (ok && r->in[i].need_refl)
			ok = (t->refl[i] = walloc(t, n * sizeof(float))) != NULL;
		if (ok && r->in[i].need_halo)
			ok = (t->hrefl[i] = walloc(t, nh * sizeof(float))) != NULL;
	}
	t->pout = mem_xcalloc(r->c->n, sizeof *t->pout);
	t->bout = mem_xcalloc(r->c->n, sizeof *t->bout);
	for (size_t k = 0; k < r->c->n && ok; k++) {
		ok = (t->sout[k] = walloc(t, n * sizeof(float))) != NULL;
		if (ok && r->sl[k].ppath)
			ok = (t->pout[k] = walloc(t, n * r->c->st[k].clf->k.nclasses *
			    sizeof(float))) != NULL;
		if (ok && r->sl[k].out && is_mask(&r->c->st[k]))
			ok = (t->bout[k] = VSI_MALLOC_VERBOSE(n)) != NULL;
	}
	if (ok)
		ok = (t->scratch = VSI_MALLOC_VERBOSE(2 * nh)) != NULL;
	if (ok)
		ok = (t->tmp = walloc(t, n * sizeof(float))) != NULL;
	t->geoms = mem_xcalloc(r->c->n, sizeof *t->geoms);
	t->acc = mem_xcalloc(r->c->n, sizeof *t->acc);
	for (size_t k = 0; k < r->c->n && ok; k++) {
		if (r->c->st[k].kind != MEM_STAGE_ZONAL || !r->sl[k].vec)
			continue;
		if (t->ids == NULL)
			ok = (t->ids = VSI_MALLOC_VERBOSE(n * sizeof(int))) != NULL;
		t->geoms[k] = mem_zones_geoms(&r->sl[k].zones);
		t->acc[k] = mem_xcalloc(r->sl[k].zones.n ? r->sl[k].zones.n : 1, sizeof **t->acc);
	}
	if (!ok)
		return mem_err_set(err, MEM_EITEM, "out of memory for a strip of %zu rows", strip);
	for (int i = 0; i < r->nin; i++) {
		int j;

		if (r->in[i].vrt) {
			/* its own VRT (GDAL handles are not shared between threads) */
			CPLErrorReset();
			if ((t->ds[i] = GDALOpen(r->in[i].vrt, GA_ReadOnly)) == NULL)
				return mem_err_set(err, MEM_EITEM, "cannot open the halo of '%s': %s",
				    r->in[i].href, CPLGetLastErrorMsg());
			continue;
		}
		/* bands of one file share a handle */
		for (j = 0; j < i; j++)
			if (r->in[j].vrt == NULL && strcmp(r->in[j].href, r->in[i].href) == 0)
				break;
		t->ds[i] = j < i ? t->ds[j] : mem_raster_open(r->in[i].href, err);
		if (t->ds[i] == NULL)
			return -1;
	}
	return 0;
}

static void
worker_release(struct worker *t, const struct run *r)
{
	for (int i = 0; i < r->nin; i++) {
		int j;

		for (j = 0; j < i; j++)
			if (t->ds[j] == t->ds[i])
				break;
		if (t->ds[i] && j == i)
			GDALClose(t->ds[i]);
		wfree(t, t->raw[i]);
		wfree(t, t->refl[i]);
		wfree(t, t->hrefl[i]);
	}
	for (size_t k = 0; t->sout && k < r->c->n; k++) {
		wfree(t, t->sout[k]);
		if (t->pout)
			wfree(t, t->pout[k]);
		if (t->bout)
			VSIFree(t->bout[k]);
		if (t->geoms)
			mem_zones_geoms_free(t->geoms[k], r->sl[k].zones.n);
		for (size_t z = 0; t->acc && t->acc[k] && z < r->sl[k].zones.n; z++)
			mem_kern_zone_free(&t->acc[k][z]);
		if (t->acc)
			free(t->acc[k]);
	}
	free(t->sout);
	free(t->pout);
	free(t->bout);
	free(t->geoms);
	free(t->acc);
	wfree(t, t->tmp);
	VSIFree(t->ids);
	VSIFree(t->scratch);
	if (t->gpu)
		mem_kern_cuda_release();
}

/*
 * Reads rows [y0, y0 + rows) of the reference grid (w x h) from input i
 * into buf, resampling an input at another resolution over the same extent.
 */
static CPLErr
read_rows(const struct input *in, GDALDatasetH ds, int w, int h, int y0, int rows, float *buf)
{
	GDALRasterIOExtraArg ex;
	int ny0, nrows;

	if (in->w == w && in->h == h)
		return GDALRasterIO(GDALGetRasterBand(ds, in->b.index), GF_Read, 0, y0, w, rows, buf, w,
		    rows, GDT_Float32, 0, 0);
	INIT_RASTERIO_EXTRA_ARG(ex);
	ex.eResampleAlg = in->nearest ? GRIORA_NearestNeighbour : GRIORA_Bilinear;
	/*
	 * The exact source window of the strip, fractional where the strip
	 * does not start on a source row: each strip then samples the source
	 * where the whole image would, so strips join without seams.
	 */
	ex.bFloatingPointWindowValidity = TRUE;
	ex.dfXOff = 0;
	ex.dfXSize = in->w;
	ex.dfYOff = (double)y0 * in->h / h;
	ex.dfYSize = (double)rows * in->h / h;
	ny0 = (int)floor(ex.dfYOff);
	nrows = (int)ceil(ex.dfYOff + ex.dfYSize) - ny0;
	if (nrows < 1)
		nrows = 1;
	if (ny0 + nrows > in->h)
		nrows = in->h - ny0;
	return GDALRasterIOEx(GDALGetRasterBand(ds, in->b.index), GF_Read, 0, ny0, in->w, nrows, buf,
	    w, rows, GDT_Float32, 0, 0, &ex);
}

/*
 * Tiles beside the item: each band is read through a VRT over the item's
 * grid grown by the chain's halo, whose sources are the same asset of the
 * neighbours (mem_halo_neighbours) and, on top, the item's own.  The chain
 * then runs on the grown grid as on a larger image, so a convolution or a
 * dilation sees the pixels across the seam, and only the item's own pixels
 * are written and counted.  A side no neighbour covers is not grown: there
 * the item's edge is the image's edge, as it is for the whole image.
 */

/* The neighbours of item (the run's, or the date before). */
static void
near_of(const struct run *r, const json_t *item, json_t *const **v, size_t *n)
{
	*v = NULL;
	*n = 0;
	if (r->near && item == r->item) {
		*v = r->near->item;
		*n = r->near->nitem;
	} else if (r->near && item == r->before) {
		*v = r->near->before;
		*n = r->near->nbefore;
	}
}

static int
same_srs(OGRSpatialReferenceH a, OGRSpatialReferenceH b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return OSRIsSame(a, b);
}

/* v is a whole number of pixels within 1e-6 (and a sane one); *k gets it. */
static int
whole_px(double v, int *k)
{
	double r = floor(v + 0.5);

	if (!(fabs(v - r) <= 1e-6) || fabs(r) > 1e8)
		return 0;
	*k = (int)r;
	return 1;
}

/* The sources of one band: the neighbours' on its pixel grid, then its own. */
struct band_srcs {
	struct mem_halo_src *s;
	size_t n;
	int ux0, uy0, ux1, uy1;	/* their union, in the band's pixels */
	double gt[6];
};

static int
band_sources(const struct run *r, const struct input *in, struct band_srcs *bs)
{
	OGRSpatialReferenceH own = GDALGetSpatialRef(in->ds);
	const double *g0 = bs->gt;
	json_t *const *nb;
	size_t nn;

	if (GDALGetGeoTransform(in->ds, bs->gt) != CE_None || bs->gt[2] != 0 || bs->gt[4] != 0)
		return -1;
	near_of(r, in->item, &nb, &nn);
	bs->s = mem_xcalloc(nn + 1, sizeof *bs->s);
	bs->n = 0;
	bs->ux0 = bs->uy0 = 0;
	bs->ux1 = in->w;
	bs->uy1 = in->h;
	for (size_t k = 0; k < nn; k++) {
		json_t *a = json_object_get(json_object_get(nb[k], "assets"), in->b.asset_key);
		const char *href = a ? mem_asset_href(a) : NULL;
		struct mem_halo_src *s = &bs->s[bs->n];
		GDALDatasetH ds;
		double g[6];
		int ok;

		if (href == NULL || (ds = mem_raster_open(href, NULL)) == NULL)
			continue;
		/* the same band on the same pixel grid, or it is no source */
		ok = GDALGetRasterCount(ds) >= in->b.index && GDALGetGeoTransform(ds, g) == CE_None &&
		    g[2] == 0 && g[4] == 0 && fabs(g[1] - g0[1]) <= 1e-9 * fabs(g0[1]) &&
		    fabs(g[5] - g0[5]) <= 1e-9 * fabs(g0[5]) && whole_px((g[0] - g0[0]) / g0[1], &s->x) &&
		    whole_px((g[3] - g0[3]) / g0[5], &s->y) && same_srs(own, GDALGetSpatialRef(ds));
		if (ok) {
			int has;
			double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, in->b.index), &has);

			s->href = mem_raster_gdal_path(href);	/* freed by grow() */
			s->band = in->b.index;
			s->w = GDALGetRasterXSize(ds);
			s->h = GDALGetRasterYSize(ds);
			/* the item's raster:bands nodata holds for the same asset of its neighbours */
			s->has_nodata = in->b.has_nodata || has;
			s->nodata = in->b.has_nodata ? in->b.nodata : nd;
			bs->ux0 = s->x < bs->ux0 ? s->x : bs->ux0;
			bs->uy0 = s->y < bs->uy0 ? s->y : bs->uy0;
			bs->ux1 = s->x + s->w > bs->ux1 ? s->x + s->w : bs->ux1;
			bs->uy1 = s->y + s->h > bs->uy1 ? s->y + s->h : bs->uy1;
			bs->n++;
		}
		GDALClose(ds);
	}
	/* the item's own pixels on top, its nodata included: they are what it holds */
	bs->s[bs->n].href = mem_raster_gdal_path(in->href);
	bs->s[bs->n].band = in->b.index;
	bs->s[bs->n].w = in->w;
	bs->s[bs->n].h = in->h;
	bs->n++;
	return 0;
}

/* The larger of v and the whole pixels of e, at most halo. */
static int
side(int v, double e, int halo)
{
	double f = floor(e + 1e-9);

	if (f <= v)
		return v;
	return f > halo ? halo : (int)f;
}

/*
 * Grows the grid of input ref by up to halo pixels on each side the
 * neighbours cover, and makes each input's VRT over it.  r->W stays 0
 * (no growth: the item is read as it is) when no neighbour covers any side.
 */
static void
grow(struct run *r, int ref, int halo)
{
	struct band_srcs *bs = mem_xcalloc(r->nin, sizeof *bs);
	int w = r->in[ref].w, h = r->in[ref].h, L = 0, R = 0, T = 0, B = 0, ok = 1;
	double gr[6];

	if (GDALGetGeoTransform(r->in[ref].ds, gr) != CE_None)
		ok = 0;
	for (int i = 0; i < r->nin && ok; i++) {
		const struct band_srcs *b = &bs[i];
		double rx, ry;

		if (band_sources(r, &r->in[i], &bs[i]) < 0) {
			ok = 0;
			break;
		}
		rx = b->gt[1] / gr[1];
		ry = b->gt[5] / gr[5];
		/* what its sources cover beyond the item, in the grid's pixels */
		L = side(L, -b->ux0 * rx, halo);
		T = side(T, -b->uy0 * ry, halo);
		R = side(R, b->ux1 * rx - w, halo);
		B = side(B, b->uy1 * ry - h, halo);
	}
	if (ok && L + R + T + B > 0) {
		r->hl = L;
		r->ht = T;
		r->W = w + L + R;
		r->H = h + T + B;
		for (int i = 0; i < r->nin; i++) {
			struct input *in = &r->in[i];
			const struct band_srcs *b = &bs[i];
			double rx = b->gt[1] / gr[1], ry = b->gt[5] / gr[5], vgt[6], nd;
			double gx0 = -L / rx, gy0 = -T / ry, gx1 = (w + R) / rx, gy1 = (h + B) / ry;
			int x0 = (int)floor(gx0 + 1e-9), y0 = (int)floor(gy0 + 1e-9);
			int x1 = (int)ceil(gx1 - 1e-9), y1 = (int)ceil(gy1 - 1e-9), has;

			if (in->w != w || in->h != h) {
				/* resampled: one more source pixel around, where there is one */
				x0 = x0 - 1 >= b->ux0 ? x0 - 1 : x0;
				y0 = y0 - 1 >= b->uy0 ? y0 - 1 : y0;
				x1 = x1 + 1 <= b->ux1 ? x1 + 1 : x1;
				y1 = y1 + 1 <= b->uy1 ? y1 + 1 : y1;
			}
			for (size_t k = 0; k < b->n; k++) {
				b->s[k].x -= x0;
				b->s[k].y -= y0;
			}
			memcpy(vgt, b->gt, sizeof vgt);
			vgt[0] = b->gt[0] + x0 * b->gt[1];
			vgt[3] = b->gt[3] + y0 * b->gt[5];
			in->vw = x1 - x0;
			in->vh = y1 - y0;
			in->vx = gx0 - x0;
			in->vy = gy0 - y0;
			in->vsx = 1 / rx;
			in->vsy = 1 / ry;
			/*
			 * The file's own nodata, not NaN: GDAL's resampling then
			 * masks what it masks reading the file, the same bits.
			 */
			nd = GDALGetRasterNoDataValue(GDALGetRasterBand(in->ds, in->b.index), &has);
			if (in->b.has_nodata && (!has || nd != in->b.nodata)) {
				/* the item's, which the kernels test, where the file says another */
				has = 1;
				nd = in->b.nodata;
			}
			in->vrt = mem_halo_vrt(in->vw, in->vh, vgt, GDALGetSpatialRef(in->ds), has, nd,
			    b->s, b->n);
		}
	}
	for (int i = 0; i < r->nin; i++) {
		for (size_t k = 0; k < bs[i].n; k++)
			free((char *)bs[i].s[k].href);
		free(bs[i].s);
	}
	free(bs);
}

/* Rows [y0, y0 + rows) of the grown grid (W x H) from input i's VRT into buf. */
static CPLErr
read_grown(const struct input *in, GDALDatasetH ds, int W, int H, int y0, int rows, float *buf)
{
	GDALRasterIOExtraArg ex;
	GDALDatasetH mem = NULL;
	GDALRasterBandH vb = GDALGetRasterBand(ds, 1);
	char opt[3][64], *opts[4] = { opt[0], opt[1], opt[2], NULL };
	GDALDataType dt = GDALGetRasterDataType(GDALGetRasterBand(in->ds, in->b.index));
	int nx0, nxs, ny0, nys, m0, m1, has, sz = GDALGetDataTypeSizeBytes(dt);
	double nd;
	void *px;
	CPLErr e;

	if (in->vw == W && in->vh == H)
		return GDALRasterIO(vb, GF_Read, 0, y0, W, rows, buf, W, rows, GDT_Float32, 0, 0);
	INIT_RASTERIO_EXTRA_ARG(ex);
	ex.eResampleAlg = in->nearest ? GRIORA_NearestNeighbour : GRIORA_Bilinear;
	ex.bFloatingPointWindowValidity = TRUE;
	ex.dfXOff = in->vx;
	ex.dfXSize = W * in->vsx;
	ex.dfYOff = in->vy + y0 * in->vsy;
	ex.dfYSize = rows * in->vsy;
	nx0 = (int)floor(ex.dfXOff);
	nxs = (int)ceil(ex.dfXOff + ex.dfXSize) - nx0;
	ny0 = (int)floor(ex.dfYOff);
	nys = (int)ceil(ex.dfYOff + ex.dfYSize) - ny0;
	if (nxs < 1)
		nxs = 1;
	if (nys < 1)
		nys = 1;
	if (nx0 + nxs > in->vw)
		nxs = in->vw - nx0;
	if (ny0 + nys > in->vh)
		nys = in->vh - ny0;
	/*
	 * A VRT resamples each of its sources apart, which leaves a seam
	 * between them: read the sources' pixels (two rows more on each side,
	 * for the kernel) and resample those as one raster, of the file's own
	 * type: GDAL resamples in the band's type (a UInt16 band's values are
	 * rounded), and so must this, for the bits of the whole image.
	 */
	m0 = ny0 - 2 < 0 ? 0 : ny0 - 2;
	m1 = ny0 + nys + 2 > in->vh ? in->vh : ny0 + nys + 2;
	px = VSI_MALLOC_VERBOSE((size_t)in->vw * (size_t)(m1 - m0) * (size_t)sz);
	if (px == NULL)
		return CE_Failure;
	e = GDALRasterIO(vb, GF_Read, 0, m0, in->vw, m1 - m0, px, in->vw, m1 - m0, dt, 0, 0);
	if (e == CE_None)
		mem = GDALCreate(GDALGetDriverByName("MEM"), "", in->vw, m1 - m0, 0, dt, NULL);
	if (mem) {
		snprintf(opt[0], sizeof opt[0], "DATAPOINTER=%p", px);
		snprintf(opt[1], sizeof opt[1], "PIXELOFFSET=%d", sz);
		snprintf(opt[2], sizeof opt[2], "LINEOFFSET=%ld", (long)in->vw * (long)sz);
		GDALAddBand(mem, dt, opts);
		nd = GDALGetRasterNoDataValue(vb, &has);
		if (has)
			GDALSetRasterNoDataValue(GDALGetRasterBand(mem, 1), nd);
		ex.dfYOff -= m0;
		e = GDALRasterIOEx(GDALGetRasterBand(mem, 1), GF_Read, nx0, ny0 - m0, nxs, nys, buf, W,
		    rows, GDT_Float32, 0, 0, &ex);
		GDALClose(mem);
	} else if (e == CE_None)
		e = CE_Failure;
	VSIFree(px);
	return e;
}

/* (a - b) / (a + b) of two inputs: the NDVI kernel with nir = a, red = b. */
static void
nd(const struct input *a, const struct input *b, const float *ra, const float *rb, float *out,
    size_t n, int use_cuda)
{
	struct mem_kern_ndvi_params p;

	p.nir_scale = a->kb.scale;
	p.nir_offset = a->kb.offset;
	p.nir_has_nodata = a->kb.has_nodata;
	p.nir_nodata = a->kb.nodata;
	p.red_scale = b->kb.scale;
	p.red_offset = b->kb.offset;
	p.red_has_nodata = b->kb.has_nodata;
	p.red_nodata = b->kb.nodata;
	if (!use_cuda || mem_kern_ndvi_cuda(rb, ra, out, n, &p) < 0)
		mem_kern_ndvi_f32(rb, ra, out, n, &p);
}

/* A cloudmask stage's mask of input i (its strip with the halo rows) into out. */
static void
cloudmask(const struct mem_stage *s, const struct input *in, int qa, const float *raw,
    float *out, int w, int rows, int top, int inrows, unsigned char *scratch, int use_cuda)
{
	if (qa)	/* QA_PIXEL bits: on the CPU (no CUDA twin yet) */
		mem_kern_qamask_f32(raw, out, w, inrows, top, rows, &s->qa, in->kb.has_nodata,
		    in->kb.nodata, s->dilate, scratch);
	else if (!use_cuda || mem_kern_cloudmask_cuda(raw, out, w, inrows, top, rows, s->classes,
	    in->kb.has_nodata, in->kb.nodata, s->dilate) < 0)
		mem_kern_cloudmask_f32(raw, out, w, inrows, top, rows, s->classes,
		    in->kb.has_nodata, in->kb.nodata, s->dilate, scratch);
}

/* Runs stage k over one strip of n = w * rows pixels; top rows of halo precede it in raw. */
static int
run_stage(const struct run *r, struct worker *t, size_t k, int w, int rows, int top, int inrows,
    int use_cuda)
{
	const struct mem_stage *s = &r->c->st[k];
	const struct slot *sl = &r->sl[k];
	size_t n = (size_t)w * rows, off = (size_t)w * top;
	float *out = t->sout[k];
	const struct input *a = &r->in[sl->in[0]], *b = &r->in[sl->in[1]];
	int rc = 0;

	/*
	 * On the GPU every stage but zonal runs its *_cuda kernel; one that
	 * fails (the device lost, out of device memory) runs on the CPU
	 * instead, with the same results.  Zonal gathers each zone's values on
	 * the CPU for exact percentiles and means (mem_kern_zonal_add).
	 */
#define GPU(call) (use_cuda && (call) == 0)

	switch (s->kind) {
	case MEM_STAGE_ND: {
		struct mem_kern_ndvi_params p;

		/* (a - b) / (a + b) is the NDVI kernel with nir = a, red = b */
		p.nir_scale = a->kb.scale;
		p.nir_offset = a->kb.offset;
		p.nir_has_nodata = a->kb.has_nodata;
		p.nir_nodata = a->kb.nodata;
		p.red_scale = b->kb.scale;
		p.red_offset = b->kb.offset;
		p.red_has_nodata = b->kb.has_nodata;
		p.red_nodata = b->kb.nodata;
		if (!GPU(mem_kern_ndvi_cuda(t->raw[sl->in[1]] + off, t->raw[sl->in[0]] + off, out, n,
		    &p)))
			mem_kern_ndvi_f32(t->raw[sl->in[1]] + off, t->raw[sl->in[0]] + off, out, n, &p);
		break;
	}
	case MEM_STAGE_EVI: {
		struct mem_kern_band kb[3] = { a->kb, b->kb, r->in[sl->in[2]].kb };

		if (!GPU(mem_kern_evi_cuda(t->raw[sl->in[0]] + off, t->raw[sl->in[1]] + off,
		    t->raw[sl->in[2]] + off, out, n, kb)))
			mem_kern_evi_f32(t->raw[sl->in[0]] + off, t->raw[sl->in[1]] + off,
			    t->raw[sl->in[2]] + off, out, n, kb);
		break;
	}
	case MEM_STAGE_SAVI: {
		struct mem_kern_band kb[2] = { a->kb, b->kb };

		if (!GPU(mem_kern_savi_cuda(t->raw[sl->in[0]] + off, t->raw[sl->in[1]] + off, out, n, kb,
		    s->L)))
			mem_kern_savi_f32(t->raw[sl->in[0]] + off, t->raw[sl->in[1]] + off, out, n, kb,
			    s->L);
		break;
	}
	case MEM_STAGE_CLOUDMASK:
		cloudmask(s, a, sl->qa, t->raw[sl->in[0]], out, w, rows, top, inrows, t->scratch,
		    use_cuda);
		break;
	case MEM_STAGE_DIFF: {
		const struct input *c = &r->in[sl->bin[0]], *d = &r->in[sl->bin[1]];

		nd(a, b, t->raw[sl->in[0]] + off, t->raw[sl->in[1]] + off, out, n, use_cuda);
		nd(c, d, t->raw[sl->bin[0]] + off, t->raw[sl->bin[1]] + off, t->tmp, n, use_cuda);
		if (!GPU(mem_kern_diff_cuda(out, t->tmp, out, n)))
			mem_kern_diff_f32(out, t->tmp, out, n);
		if (s->mask >= 0) {
			/* the date before's clouds; the date after's are s->mask, below */
			cloudmask(&r->c->st[s->mask], &r->in[sl->bmask], sl->bqa, t->raw[sl->bmask],
			    t->tmp, w, rows, top, inrows, t->scratch, use_cuda);
			if (!GPU(mem_kern_apply_mask_cuda(out, t->tmp, n)))
				mem_kern_apply_mask_f32(out, t->tmp, n);
		}
		break;
	}
	case MEM_STAGE_CHANGE:
		if (!GPU(mem_kern_threshold_cuda(t->sout[s->diff], out, n, s->threshold)))
			mem_kern_threshold_f32(t->sout[s->diff], out, n, s->threshold);
		break;
	case MEM_STAGE_CLASSIFY: {
		const float *ins[32];

		for (int v = 0; v < s->clf->k.nbands; v++) {
			const struct input *in = &r->in[sl->cin[v]];

			if (!GPU(mem_kern_reflectance_cuda(t->raw[sl->cin[v]], t->hrefl[sl->cin[v]],
			    (size_t)w * inrows, &in->kb)))
				mem_kern_reflectance_f32(t->raw[sl->cin[v]], t->hrefl[sl->cin[v]],
				    (size_t)w * inrows, &in->kb);
			ins[v] = t->hrefl[sl->cin[v]];
		}
		if (!GPU(mem_kern_classify_cuda(&s->clf->k, ins, w, inrows, top, rows, out,
		    t->pout[k])))
			rc = mem_kern_classify_f32(&s->clf->k, ins, w, inrows, top, rows, out,
			    t->pout[k]);
		break;
	}
	case MEM_STAGE_ZONAL:
	case MEM_STAGE_LLM:
		break;
	case MEM_STAGE_EXPR: {
		size_t nv = mem_expr_nvars(s->expr);
		const float *vars[64];

		for (size_t v = 0; v < nv && v < 64; v++)
			vars[v] = s->refs[v] >= 0 ? t->sout[s->refs[v]] : t->refl[sl->vin[v]];
		if (!GPU(mem_expr_eval_cuda(s->expr, vars, out, n)))
			rc = mem_expr_eval(s->expr, vars, out, n);
		break;
	}
	}
	if (s->mask >= 0 && !GPU(mem_kern_apply_mask_cuda(out, t->sout[s->mask], n)))
		mem_kern_apply_mask_f32(out, t->sout[s->mask], n);
#undef GPU
	return rc;
}

/*
 * Runs the chain over the item in one pass: each strip of whole input
 * block rows is read once, every stage runs on it in memory, and the
 * outputs asked for (and not already made) are written.
 */
/* Stages that make a raster (an index, a mask, an expression, a difference). */
static int
is_raster(const struct mem_stage *s)
{
	return s->kind != MEM_STAGE_ZONAL && s->kind != MEM_STAGE_LLM;
}

/* Writes the summary of a GeoPackage beside it: what the item says of it. */
static int
write_summary(const char *path, json_t *j, struct mem_err *err)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = mem_write_file_atomic(path, text, strlen(text), err);

	free(text);
	return rc;
}

/*
 * Zone ids of a strip rasterized on the item's w columns, moved in place
 * to the W columns of the grown strip: the halo's columns belong to no zone.
 */
static void
spread_ids(int *ids, int w, int W, int hl, int rows)
{
	if (W == w)
		return;
	for (int y = rows - 1; y >= 0; y--) {
		int *d = ids + (size_t)y * W;

		memmove(d + hl, ids + (size_t)y * w, (size_t)w * sizeof *ids);
		memset(d, 0, (size_t)hl * sizeof *ids);
		memset(d + hl + w, 0, (size_t)(W - w - hl) * sizeof *ids);
	}
}

static int
run_chain(const json_t *item, const json_t *before, const struct mem_infer_near *near,
    const struct mem_infer_opts *o, const char *dir, struct mem_err *err)
{
	const struct mem_chain *c = o->chain;
	struct run r;
	int ref = 0, w, h, W, H, strip, nstrips, halo = c->halo, failed = 0, use_cuda, nout = 0, rc = -1;
	char msg[MEM_ERR_MSG] = "";
	double gt[6] = { 0, 1, 0, 0, 0, 1 };

	memset(&r, 0, sizeof r);
	r.item = item;
	r.before = before;
	r.c = c;
	r.near = near;
	r.sl = mem_xcalloc(c->n, sizeof *r.sl);
	for (size_t k = 0; k < c->n; k++) {
		const struct mem_stage *s = &c->st[k];
		char *name;

		if (!s->write)
			continue;
		if (is_raster(s)) {
			name = mem_xasprintf("%s.tif", s->name);
			r.sl[k].path = mem_path_join(dir, name);
			free(name);
			if (!mem_path_exists(r.sl[k].path))
				nout++;
		}
		if (s->kind == MEM_STAGE_CLASSIFY && s->prob) {
			name = mem_xasprintf("%s_prob.tif", s->name);
			r.sl[k].ppath = mem_path_join(dir, name);
			free(name);
			if (!mem_path_exists(r.sl[k].ppath))
				nout++;
		}
		if (s->kind == MEM_STAGE_ZONAL || s->kind == MEM_STAGE_CHANGE) {
			name = mem_xasprintf(s->kind == MEM_STAGE_ZONAL ? "%s.gpkg" : "%s-polygons.gpkg",
			    s->name);
			r.sl[k].gpkg = mem_path_join(dir, name);
			free(name);
			name = mem_xasprintf("%s.json", s->name);
			r.sl[k].json = mem_path_join(dir, name);
			free(name);
			if (!mem_path_exists(r.sl[k].gpkg) || !mem_path_exists(r.sl[k].json)) {
				r.sl[k].vec = 1;
				nout++;
			}
		}
	}
	if (nout == 0) {
		rc = 0;
		goto done;
	}
	if (resolve(&r, err) < 0)
		goto done;
	if (r.nin == 0) {
		/* an expression of constants and nothing else has no grid to fill */
		mem_err_set(err, MEM_EITEM, "item '%s': the stages read no band", mem_item_id(item));
		goto done;
	}
	if ((ref = grid_input(&r, item, err)) < 0)
		goto done;
	w = r.in[ref].w;
	h = r.in[ref].h;
	GDALGetGeoTransform(r.in[ref].ds, gt);
	if (halo > 0 && near && (near->nitem || near->nbefore))
		grow(&r, ref, halo);
	W = r.W ? r.W : w;
	H = r.W ? r.H : h;
	for (size_t k = 0; k < c->n; k++) {
		struct slot *sl = &r.sl[k];

		if (c->st[k].kind == MEM_STAGE_ZONAL && sl->vec) {
			if (mem_zones_load(&sl->zones, c->st[k].zones, c->st[k].layer,
			    GDALGetSpatialRef(r.in[ref].ds), err) < 0)
				goto done;
			sl->acc = mem_xcalloc(sl->zones.n ? sl->zones.n : 1, sizeof *sl->acc);
		}
		if (sl->path == NULL || mem_path_exists(sl->path))
			continue;
		sl->tmp = mem_tmp_name(sl->path);
		sl->out = create_output(o, r.in[ref].ds, &c->st[k], 0, sl->path, sl->tmp, err);
		if (sl->out == NULL)
			goto done;
	}
	for (size_t k = 0; k < c->n; k++) {
		struct slot *sl = &r.sl[k];

		if (sl->ppath == NULL || mem_path_exists(sl->ppath))
			continue;
		sl->ptmp = mem_tmp_name(sl->ppath);
		sl->pout = create_output(o, r.in[ref].ds, &c->st[k], 1, sl->ppath, sl->ptmp, err);
		if (sl->pout == NULL)
			goto done;
	}

	use_cuda = o->device != MEM_DEVICE_CPU && mem_kern_cuda_available();
	if (o->device == MEM_DEVICE_CUDA && !use_cuda) {
		mem_err_set(err, MEM_EUSAGE, "--device cuda: %s",
#ifdef HAVE_CUDA
		    "no CUDA device found"
#else
		    "this build has no CUDA support (configure --enable-cuda)"
#endif
		);
		goto done;
	}
	last_device = use_cuda ? "cuda" : "cpu";
	/*
	 * Strips are whole rows of input blocks: each thread has its own
	 * handles, so a strip that cut a block in two would decode it twice.
	 * Aim at about 4 Mpx per strip (2048 rows or more on the GPU).
	 */
	{
		int bw, bh;

		GDALGetBlockSize(GDALGetRasterBand(r.in[ref].ds, r.in[ref].b.index), &bw, &bh);
		if (bh <= 1 || bh > h)
			bh = 256 < h ? 256 : h;
		strip = bh;
		while ((long)strip * w < (use_cuda ? 1L << 24 : 1L << 22) && strip < h && bh < 4096)
			strip += bh;
	}
	/* a test knob: small strips show that strips join without seams */
	if (atoi(CPLGetConfigOption("MEM_INFER_STRIP_ROWS", "0")) > 0)
		strip = atoi(CPLGetConfigOption("MEM_INFER_STRIP_ROWS", "0"));
	if (strip > h)
		strip = h;
	nstrips = (h + strip - 1) / strip;

#pragma omp parallel num_threads(o->threads > 0 ? o->threads : omp_get_max_threads())
	{
		struct mem_err terr;
		struct worker t;

		mem_err_clear(&terr);
		if (worker_init(&t, &r, (size_t)W, (size_t)strip, halo, use_cuda, &terr) < 0) {
#pragma omp critical(mem_infer_err)
			{
				if (!failed)
					snprintf(msg, sizeof msg, "%s", terr.msg);
				failed = 1;
			}
		}
#pragma omp for schedule(dynamic, 1)
		for (int s = 0; s < nstrips; s++) {
			int y0 = s * strip, rows = h - y0 < strip ? h - y0 : strip, gy = y0 + r.ht;
			/* dilation reads halo rows above and below, cut at the (grown) image's edges */
			int top = gy < halo ? gy : halo;
			int bot = H - (gy + rows) < halo ? H - (gy + rows) : halo;
			CPLErr e = CE_None;
			int bad = -1;

			if (failed)
				continue;
			for (int i = 0; i < r.nin && e == CE_None; i++) {
				e = r.W ? read_grown(&r.in[i], t.ds[i], W, H, gy - top, rows + top + bot,
				    t.raw[i]) : read_rows(&r.in[i], t.ds[i], w, h, y0 - top, rows + top + bot,
				    t.raw[i]);
				bad = i;
				if (e == CE_None && r.in[i].need_refl && (!use_cuda ||
				    mem_kern_reflectance_cuda(t.raw[i] + (size_t)W * top, t.refl[i],
				    (size_t)W * rows, &r.in[i].kb) < 0))
					mem_kern_reflectance_f32(t.raw[i] + (size_t)W * top, t.refl[i],
					    (size_t)W * rows, &r.in[i].kb);
			}
			if (e != CE_None) {
#pragma omp critical(mem_infer_err)
				{
					if (!failed)
						snprintf(msg, sizeof msg, "cannot read '%s': %s", r.in[bad].href,
						    CPLGetLastErrorMsg());
					failed = 1;
				}
				continue;
			}
			for (size_t k = 0; k < c->n; k++)
				if (run_stage(&r, &t, k, W, rows, top, rows + top + bot, use_cuda) < 0) {
#pragma omp critical(mem_infer_err)
					{
						if (!failed)
							snprintf(msg, sizeof msg, "out of memory in stage '%s'",
							    c->st[k].name);
						failed = 1;
					}
				}
			for (size_t k = 0; k < c->n && !failed; k++) {
				const struct mem_stage *zs = &c->st[k];
				struct mem_err zerr;
				const float *v;

				if (zs->kind != MEM_STAGE_ZONAL || !r.sl[k].vec)
					continue;
				v = zs->of_stage >= 0 ? t.sout[zs->of_stage] : t.refl[r.sl[k].in[0]];
				if (mem_zones_rasterize(t.geoms[k], r.sl[k].zones.n, gt, w, y0, rows, t.ids,
				    &zerr) < 0 || (spread_ids(t.ids, w, W, r.hl, rows),
				    mem_kern_zonal_add(t.acc[k], r.sl[k].zones.n, t.ids, v,
				    (size_t)W * rows) < 0)) {
#pragma omp critical(mem_infer_err)
					{
						if (!failed)
							snprintf(msg, sizeof msg, "zonal '%s': %.400s", zs->name,
							    zerr.msg[0] ? zerr.msg : "out of memory");
						failed = 1;
					}
				}
			}
			/* a mask's bytes, made outside the writer's lock */
			for (size_t k = 0; k < c->n && !failed; k++)
				for (int y = 0; t.bout[k] && y < rows; y++)
					mask_bytes(t.sout[k] + (size_t)y * W + r.hl, t.bout[k] + (size_t)y * w,
					    (size_t)w);
#pragma omp critical(mem_infer_write)
			for (size_t k = 0; k < c->n; k++) {
				if (r.sl[k].out == NULL || failed)
					continue;
				/* the item's own columns of the (maybe grown) strip */
				if (t.bout[k] ? GDALRasterIO(GDALGetRasterBand(r.sl[k].out, 1), GF_Write, 0,
				    y0, w, rows, t.bout[k], w, rows, GDT_Byte, 0, 0) != CE_None :
				    GDALRasterIO(GDALGetRasterBand(r.sl[k].out, 1), GF_Write, 0, y0, w, rows,
				    t.sout[k] + r.hl, w, rows, GDT_Float32, 0,
				    (GSpacing)W * sizeof(float)) != CE_None) {
					snprintf(msg, sizeof msg, "cannot write '%s': %s", r.sl[k].path,
					    CPLGetLastErrorMsg());
					failed = 1;
				}
			}
#pragma omp critical(mem_infer_write)
			for (size_t k = 0; k < c->n; k++) {
				if (r.sl[k].pout == NULL || failed)
					continue;
				if (GDALDatasetRasterIO(r.sl[k].pout, GF_Write, 0, y0, w, rows,
				    t.pout[k] + r.hl, w, rows, GDT_Float32, c->st[k].clf->k.nclasses, NULL,
				    sizeof(float), (GSpacing)W * sizeof(float),
				    (GSpacing)W * rows * sizeof(float)) != CE_None) {
					snprintf(msg, sizeof msg, "cannot write '%s': %s", r.sl[k].ppath,
					    CPLGetLastErrorMsg());
					failed = 1;
				}
			}
		}
		/* this thread's values join the others' (values, not sums: order does not matter) */
#pragma omp critical(mem_infer_zonal)
		for (size_t k = 0; k < c->n; k++)
			for (size_t z = 0; t.acc && t.acc[k] && z < r.sl[k].zones.n; z++)
				if (mem_kern_zonal_merge(&r.sl[k].acc[z], &t.acc[k][z]) < 0 && !failed) {
					snprintf(msg, sizeof msg, "out of memory for zonal '%s'",
					    c->st[k].name);
					failed = 1;
				}
		worker_release(&t, &r);
	}
	if (failed) {
		mem_err_set(err, MEM_EITEM, "item '%s': %s", mem_item_id(item), msg);
		goto done;
	}
	for (size_t k = 0; k < c->n; k++) {
		struct slot *sl = &r.sl[k];

		GDALDatasetH out = sl->out;

		if (out == NULL)
			continue;
		sl->out = NULL;
		if (mem_raster_close(out) < 0) {
			mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", sl->path, CPLGetLastErrorMsg());
			goto done;
		}
		if (mem_commit_file(sl->tmp, sl->path, err) < 0)
			goto done;
		free(sl->tmp);
		sl->tmp = NULL;
	}
	for (size_t k = 0; k < c->n; k++) {
		struct slot *sl = &r.sl[k];
		GDALDatasetH out = sl->pout;

		if (out == NULL)
			continue;
		sl->pout = NULL;
		if (mem_raster_close(out) < 0) {
			mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", sl->ppath,
			    CPLGetLastErrorMsg());
			goto done;
		}
		if (mem_commit_file(sl->ptmp, sl->ppath, err) < 0)
			goto done;
		free(sl->ptmp);
		sl->ptmp = NULL;
	}
	/* the vector outputs, from the values gathered and the masks written */
	for (size_t k = 0; k < c->n; k++) {
		const struct mem_stage *s = &c->st[k];
		struct slot *sl = &r.sl[k];
		json_t *sum = NULL;
		int vrc;

		if (!sl->vec)
			continue;
		if (s->kind == MEM_STAGE_ZONAL)
			vrc = mem_zones_write(&sl->zones, sl->acc, s, sl->gpkg, &sum, err);
		else
			vrc = mem_polygons_write(sl->path, sl->gpkg, s->name, &sum, err);
		if (vrc == 0) {
			/* both must be there for a rerun to reuse them */
			vrc = write_summary(sl->json, sum, err);
			if (vrc < 0)
				unlink(sl->gpkg);
		}
		json_decref(sum);
		if (vrc < 0) {
			mem_err_prefix(err, "item '%s'", mem_item_id(item));
			goto done;
		}
	}
	rc = 0;
done:
	for (size_t k = 0; k < c->n; k++) {
		if (r.sl[k].out)
			GDALClose(r.sl[k].out);
		if (r.sl[k].tmp) {
			unlink(r.sl[k].tmp);
			free(r.sl[k].tmp);
		}
		if (r.sl[k].pout)
			GDALClose(r.sl[k].pout);
		if (r.sl[k].ptmp) {
			unlink(r.sl[k].ptmp);
			free(r.sl[k].ptmp);
		}
		free(r.sl[k].ppath);
		free(r.sl[k].path);
		free(r.sl[k].vin);
		free(r.sl[k].cin);
		free(r.sl[k].gpkg);
		free(r.sl[k].json);
		for (size_t z = 0; r.sl[k].acc && z < r.sl[k].zones.n; z++)
			mem_kern_zone_free(&r.sl[k].acc[z]);
		free(r.sl[k].acc);
		mem_zones_release(&r.sl[k].zones);
	}
	free(r.sl);
	for (int i = 0; i < r.nin; i++) {
		GDALClose(r.in[i].ds);
		free(r.in[i].vrt);
	}
	return rc;
}

int
mem_infer_read_bands(const json_t *item, char *const *names, int nb, float **out, int *w,
    int *h, double gt[6], OGRSpatialReferenceH *srs, struct mem_err *err)
{
	struct run r;
	int ref = 0, rc = -1, idx[MAX_INPUTS];
	float *raw = NULL;

	memset(&r, 0, sizeof r);
	r.item = item;
	for (int i = 0; i < nb; i++)
		out[i] = NULL;
	for (int i = 0; i < nb && i < MAX_INPUTS; i++)
		if ((idx[i] = add_input(&r, item, names[i], 0, err)) < 0)
			goto done;
	if ((ref = grid_input(&r, item, err)) < 0)
		goto done;
	*w = r.in[ref].w;
	*h = r.in[ref].h;
	if ((double)*w * *h > 1e8) {
		mem_err_set(err, MEM_EITEM, "item '%s': %dx%d pixels: too large to read whole",
		    mem_item_id(item), *w, *h);
		goto done;
	}
	if (GDALGetGeoTransform(r.in[ref].ds, gt) != CE_None) {
		gt[0] = gt[2] = gt[3] = gt[4] = 0;
		gt[1] = gt[5] = 1;
	}
	*srs = GDALGetSpatialRef(r.in[ref].ds) ? OSRClone(GDALGetSpatialRef(r.in[ref].ds)) : NULL;
	for (int i = 0; i < nb; i++) {
		const struct input *in = &r.in[idx[i]];

		out[i] = VSI_MALLOC_VERBOSE((size_t)*w * *h * sizeof(float));
		if (out[i] == NULL) {
			mem_err_set(err, MEM_EITEM, "out of memory for item '%s'", mem_item_id(item));
			goto done;
		}
		if (raw == NULL && (raw = VSI_MALLOC_VERBOSE((size_t)*w * *h * sizeof(float))) == NULL) {
			mem_err_set(err, MEM_EITEM, "out of memory for item '%s'", mem_item_id(item));
			goto done;
		}
		if (read_rows(in, in->ds, *w, *h, 0, *h, raw) != CE_None) {
			mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", in->href,
			    CPLGetLastErrorMsg());
			goto done;
		}
		mem_kern_reflectance_f32(raw, out[i], (size_t)*w * *h, &in->kb);
	}
	rc = 0;
done:
	if (rc < 0)
		for (int i = 0; i < nb; i++) {
			VSIFree(out[i]);
			out[i] = NULL;
		}
	VSIFree(raw);
	for (int i = 0; i < r.nin; i++)
		GDALClose(r.in[i].ds);
	return rc;
}

/* The facts about an input that decide a result: ids, and checksums where known. */
static json_t *
asset_sums(const json_t *item)
{
	json_t *sums = json_object(), *a;
	const char *key;

	json_object_foreach(json_object_get(item, "assets"), key, a) {
		json_t *c = json_object_get(a, "file:checksum");

		json_object_set_new(sums, key, c ? json_deep_copy(c) :
		    json_string(mem_asset_href(a) ? mem_asset_href(a) : ""));
	}
	return sums;
}

/* The neighbours read across the seams: their ids and inputs make the result too. */
static json_t *
near_params(json_t *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "id", json_string(mem_item_id(v[i])));
		json_object_set_new(e, "assets", asset_sums(v[i]));
		json_array_append_new(a, e);
	}
	return a;
}

static json_t *
input_params(const json_t *item, const json_t *before, const struct mem_infer_near *near,
    const struct mem_infer_opts *o)
{
	json_t *p = json_object(), *st = json_array(), *sums = json_object(), *a;
	const char *key;

	/* none: the id an item had before neighbours were read, for the same bytes */
	if (near && near->nitem)
		json_object_set_new(p, "near", near_params(near->item, near->nitem));
	if (near && near->nbefore)
		json_object_set_new(p, "before_near", near_params(near->before, near->nbefore));
	json_object_set_new(p, "input", json_string(mem_item_id(item)));
	if (before) {
		json_object_set_new(p, "before", json_string(mem_item_id(before)));
		json_object_set_new(p, "before_assets", asset_sums(before));
	}
	json_object_foreach(json_object_get(item, "assets"), key, a) {
		json_t *c = json_object_get(a, "file:checksum");

		json_object_set_new(sums, key, c ? json_deep_copy(c) :
		    json_string(mem_asset_href(a) ? mem_asset_href(a) : ""));
	}
	json_object_set_new(p, "assets", sums);
	for (char **s = o->stages; s && *s; s++)
		json_array_append_new(st, json_string(*s));
	json_object_set_new(p, "stages", st);
	/* a model retrained under the same name makes another result */
	for (size_t k = 0; k < o->chain->n; k++)
		if (o->chain->st[k].kind == MEM_STAGE_CLASSIFY)
		{
			char *key = mem_xasprintf("model:%s", o->chain->st[k].name);

			json_object_set_new(p, key, json_string(o->chain->st[k].model_sum));
			free(key);
		}
	/*
	 * Masks were float32 with NaN before they were UInt8: a chain that
	 * writes one names a new result, so a workdir of the old format is
	 * not reused under an item that says uint8.
	 */
	for (size_t k = 0; k < o->chain->n; k++)
		if (o->chain->st[k].write && is_mask(&o->chain->st[k])) {
			json_object_set_new(p, "masks", json_string("uint8"));
			break;
		}
	/* creation options change the file, so they are part of what is made */
	st = json_array();
	for (char **c = o->co; c && *c; c++)
		json_array_append_new(st, json_string(*c));
	json_object_set_new(p, "co", st);
	return p;
}

static json_t *
describe(const char *path, const struct mem_stage *s, struct mem_err *err)
{
	const char *stage = s->name;
	json_t *a = json_object(), *rb = json_array(), *b = json_object(), *roles = json_array();
	GDALDatasetH ds;
	off_t size;
	char *abs;

	struct stat st;

	/*
	 * No file:checksum here: the path holds the result's deterministic id,
	 * so it names the content; mem-store checksums what it makes durable.
	 */
	if (stat(path, &st) < 0) {
		mem_err_set(err, MEM_EITEM, "cannot stat '%s': %s", path, strerror(errno));
		json_decref(a);
		json_decref(rb);
		json_decref(b);
		json_decref(roles);
		return NULL;
	}
	size = st.st_size;
	abs = mem_path_absolute(path);
	json_object_set_new(a, "href", json_string(abs));
	free(abs);
	json_object_set_new(a, "type", json_string("image/tiff; application=geotiff"));
	json_object_set_new(a, "title", json_string(stage));
	json_array_append_new(roles, json_string("data"));
	json_object_set_new(a, "roles", roles);
	json_object_set_new(b, "name", json_string(stage));
	if (s->kind == MEM_STAGE_CLASSIFY) {
		/* the STAC classification extension's classes */
		json_t *cl = json_array();

		json_object_set_new(b, "data_type", json_string("uint8"));
		json_object_set_new(b, "nodata", json_integer(MEM_KERN_CLASS_NODATA));
		for (int i = 0; i < s->clf->k.nclasses; i++) {
			json_t *c = json_object();

			json_object_set_new(c, "value", json_integer(i));
			json_object_set_new(c, "name", json_string(s->clf->classes[i]));
			json_array_append_new(cl, c);
		}
		json_object_set_new(b, "classification:classes", cl);
	} else if (is_mask(s)) {
		/* 0 and 1 as classes: mem-tile then resamples the mask as classes, not values */
		json_t *cl = json_array();

		json_object_set_new(b, "data_type", json_string("uint8"));
		json_object_set_new(b, "nodata", json_integer(MASK_NODATA));
		for (int i = 0; i < 2; i++) {
			json_t *c = json_object();

			json_object_set_new(c, "value", json_integer(i));
			json_object_set_new(c, "name", json_string(mask_classes(s)[i]));
			json_array_append_new(cl, c);
		}
		json_object_set_new(b, "classification:classes", cl);
	} else {
		json_object_set_new(b, "data_type", json_string("float32"));
		json_object_set_new(b, "nodata", json_string("nan"));
	}
	json_array_append_new(rb, b);
	json_object_set_new(a, "raster:bands", rb);
	json_object_set_new(a, "file:size", json_integer((json_int_t)size));
	ds = mem_raster_open(path, NULL);
	if (ds) {
		mem_raster_proj_fields(ds, a);
		GDALClose(ds);
	}
	return a;
}

/* A GeoPackage asset. */
static json_t *
describe_gpkg(const char *path, const char *title, struct mem_err *err)
{
	json_t *a = json_object(), *roles = json_array();
	struct stat st;
	char *abs;

	if (stat(path, &st) < 0) {
		mem_err_set(err, MEM_EITEM, "cannot stat '%s': %s", path, strerror(errno));
		json_decref(a);
		json_decref(roles);
		return NULL;
	}
	abs = mem_path_absolute(path);
	json_object_set_new(a, "href", json_string(abs));
	free(abs);
	json_object_set_new(a, "type", json_string("application/geopackage+sqlite3"));
	json_object_set_new(a, "title", json_string(title));
	json_array_append_new(roles, json_string("data"));
	json_object_set_new(a, "roles", roles);
	json_object_set_new(a, "file:size", json_integer((json_int_t)st.st_size));
	return a;
}

/* The summary written beside a GeoPackage; NULL with err when it cannot be read. */
static json_t *
read_summary(const char *dir, const char *name, struct mem_err *err)
{
	char *f = mem_xasprintf("%s/%s.json", dir, name);
	json_error_t je;
	json_t *j = json_load_file(f, 0, &je);

	if (j == NULL)
		mem_err_set(err, MEM_EITEM, "cannot read '%s': %s", f, je.text);
	free(f);
	return j;
}

/* Adds the assets and properties of the vector outputs (zonal, change). */
static int
add_vectors(json_t *out, const json_t *item, const json_t *before, const struct mem_stage *s,
    const char *dir, struct mem_err *err)
{
	json_t *props = json_object_get(out, "properties"), *sum, *a, *m;
	char *name, *path;

	sum = read_summary(dir, s->name, err);
	if (sum == NULL)
		return -1;
	name = mem_xasprintf(s->kind == MEM_STAGE_ZONAL ? "%s.gpkg" : "%s-polygons.gpkg", s->name);
	path = mem_path_join(dir, name);
	free(name);
	a = describe_gpkg(path, s->name, err);
	free(path);
	if (a == NULL) {
		json_decref(sum);
		return -1;
	}
	if (s->kind == MEM_STAGE_ZONAL) {
		name = mem_xstrdup(s->name);
		json_object_set_new(sum, "asset", json_string(s->name));
		if ((m = json_object_get(props, "mem:zonal")) == NULL)
			json_object_set_new(props, "mem:zonal", m = json_object());
		json_object_set_new(m, s->name, sum);
	} else {
		name = mem_xasprintf("%s-polygons", s->name);
		json_object_set_new(sum, "asset", json_string(name));
		json_object_set_new(sum, "mask", json_string(s->name));
		json_object_set_new(sum, "index", json_string(s->index));
		json_object_set_new(sum, "threshold", json_real(s->threshold));
		json_object_set_new(sum, "before", json_string(mem_item_id(before)));
		json_object_set_new(sum, "after", json_string(mem_item_id(item)));
		json_object_set_new(props, "mem:change", sum);
	}
	json_object_set_new(json_object_get(out, "assets"), name, a);
	free(name);
	return 0;
}

/* Adds a derived_from link to the item of the date before. */
static void
link_before(json_t *out, const json_t *before)
{
	json_t *links = json_object_get(out, "links"), *l = json_object(), *self;
	size_t i;
	const char *href = NULL;

	json_array_foreach(json_object_get(before, "links"), i, self)
		if (json_is_string(json_object_get(self, "rel")) &&
		    strcmp(json_string_value(json_object_get(self, "rel")), "self") == 0)
			href = json_string_value(json_object_get(self, "href"));
	json_object_set_new(l, "rel", json_string("derived_from"));
	json_object_set_new(l, "href", json_string(href ? href : mem_item_id(before)));
	json_object_set_new(l, "type", json_string("application/geo+json"));
	json_object_set_new(l, "title", json_string(mem_item_id(before)));
	if (!json_is_array(links))
		json_object_set_new(out, "links", links = json_array());
	json_array_append_new(links, l);
}

json_t *
mem_infer_item(const json_t *item, const struct mem_infer_opts *o, struct mem_err *err)
{
	return mem_infer_pair(NULL, item, o, err);
}

json_t *
mem_infer_pair(const json_t *before, const json_t *item, const struct mem_infer_opts *o,
    struct mem_err *err)
{
	return mem_infer_near(before, item, NULL, o, err);
}

json_t *
mem_infer_near(const json_t *before, const json_t *item, const struct mem_infer_near *near,
    const struct mem_infer_opts *o, struct mem_err *err)
{
	json_t *params = input_params(item, before, near, o), *out;
	char *sid = mem_path_safe_name(mem_item_id(item));
	char *id = mem_item_derive_id(sid, "mem-infer", params);
	char *dir = mem_xasprintf("%s/results/%s", o->workdir, id);

	free(sid);
	json_decref(params);
	if (mem_workdir(dir, err) < 0)
		goto fail;
	if (run_chain(item, before, near, o, dir, err) < 0)
		goto fail;
	out = mem_item_derive(item, id, "infer");
	if (before)
		link_before(out, before);
	for (size_t k = 0, first = 1; k < o->chain->n; k++) {
		const struct mem_stage *s = &o->chain->st[k];
		char *name, *path;
		json_t *a;

		if (!s->write || s->kind == MEM_STAGE_LLM)
			continue;
		if (s->kind == MEM_STAGE_ZONAL) {
			if (add_vectors(out, item, before, s, dir, err) < 0) {
				json_decref(out);
				goto fail;
			}
			continue;
		}
		/* the collection is the first output's name, as it was with one stage */
		if (first)
			json_object_set_new(out, "collection", json_string(s->name));
		first = 0;
		name = mem_xasprintf("%s.tif", s->name);
		path = mem_path_join(dir, name);
		free(name);
		a = describe(path, s, err);
		free(path);
		if (a == NULL) {
			json_decref(out);
			goto fail;
		}
		json_object_set_new(json_object_get(out, "assets"), s->name, a);
		if (s->kind == MEM_STAGE_CLASSIFY && s->prob) {
			json_t *rb = json_array();

			name = mem_xasprintf("%s_prob.tif", s->name);
			path = mem_path_join(dir, name);
			free(name);
			a = describe(path, s, err);
			free(path);
			if (a == NULL) {
				json_decref(out);
				goto fail;
			}
			for (int i = 0; i < s->clf->k.nclasses; i++) {
				json_t *b = json_object();

				json_object_set_new(b, "name", json_string(s->clf->classes[i]));
				json_object_set_new(b, "data_type", json_string("float32"));
				json_object_set_new(b, "nodata", json_string("nan"));
				json_array_append_new(rb, b);
			}
			json_object_set_new(a, "raster:bands", rb);
			name = mem_xasprintf("%s_prob", s->name);
			json_object_set_new(a, "title", json_string(name));
			json_object_set_new(json_object_get(out, "assets"), name, a);
			free(name);
		}
		if (s->kind == MEM_STAGE_CHANGE && add_vectors(out, item, before, s, dir, err) < 0) {
			json_decref(out);
			goto fail;
		}
	}
	mem_item_add_extension(out, MEM_EXT_RASTER);
	mem_item_add_extension(out, MEM_EXT_FILE);
	mem_item_add_extension(out, MEM_EXT_PROJ);
	if (o->chain->llm >= 0 && !o->chain->st[o->chain->llm].scope_run && o->llm) {
		json_t *sum = mem_llm_summary(out), *ans;

		ans = mem_llm_ask(&o->chain->st[o->chain->llm], o->llm, sum, err);
		json_decref(sum);
		if (ans == NULL) {
			json_decref(out);
			goto fail;
		}
		json_object_set_new(json_object_get(out, "properties"), "mem:llm", ans);
	}
	free(dir);
	free(id);
	return out;
fail:
	free(dir);
	free(id);
	return NULL;
}

/* The cell an item belongs to: mem:grid, else the STAC grid extension's code. */
static const char *
cell_of(const json_t *item)
{
	const char *g = mem_item_prop_string(item, "mem:grid");

	return g ? g : mem_item_prop_string(item, "grid:code");
}

struct dated {
	size_t i;
	const char *cell;
	double t;
};

static int
cmp_dated(const void *a, const void *b)
{
	const struct dated *x = a, *y = b;
	int c = strcmp(x->cell, y->cell);

	if (c)
		return c;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

size_t
mem_infer_pairs(json_t *const *items, size_t n, struct mem_infer_pair *pairs, size_t *lonely,
    size_t *nlonely)
{
	struct dated *d = mem_xcalloc(n ? n : 1, sizeof *d);
	size_t m = 0, np = 0, nl = 0;

	for (size_t i = 0; i < n; i++) {
		struct mem_interval iv;

		if (cell_of(items[i]) == NULL || mem_item_time(items[i], &iv, NULL) < 0) {
			lonely[nl++] = i;
			continue;
		}
		d[m].i = i;
		d[m].cell = cell_of(items[i]);
		d[m].t = iv.start;
		m++;
	}
	qsort(d, m, sizeof *d, cmp_dated);
	for (size_t k = 0; k < m; k++) {
		int first = k == 0 || strcmp(d[k - 1].cell, d[k].cell) != 0;
		int last = k + 1 == m || strcmp(d[k + 1].cell, d[k].cell) != 0;

		if (first && last)
			lonely[nl++] = d[k].i;
		if (!first) {
			pairs[np].before = d[k - 1].i;
			pairs[np].after = d[k].i;
			np++;
		}
	}
	free(d);
	*nlonely = nl;
	return np;
}

int
mem_infer_llm_run(json_t *const *results, size_t n, const struct mem_infer_opts *o,
    struct mem_err *err)
{
	const struct mem_stage *s;
	json_t *all, *ans;

	if (o->chain->llm < 0 || o->llm == NULL || n == 0)
		return 0;
	s = &o->chain->st[o->chain->llm];
	all = json_object();
	json_object_set_new(all, "tiles", json_array());
	for (size_t i = 0; i < n; i++)
		json_array_append_new(json_object_get(all, "tiles"), mem_llm_summary(results[i]));
	ans = mem_llm_ask(s, o->llm, all, err);
	json_decref(all);
	if (ans == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		json_object_set(json_object_get(results[i], "properties"), "mem:llm", ans);
	json_decref(ans);
	return 0;
}
