/*
 * infer.c - inference stages.
 *
 * NDVI reads red and NIR in strips.  Each OpenMP thread keeps its own GDAL
 * dataset handles (GDAL handles are not thread-safe), decodes its strip,
 * runs the kernel and hands the strip to the writer under a lock; GeoTIFF
 * compression of the written blocks runs on GDAL's own worker threads
 * (NUM_THREADS), so decode, compute and encode overlap.
 */
#include "config.h"

#include <cpl_conv.h>
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

#include "files.h"
#include "infer.h"
#include "item.h"
#include "kern.h"
#include "raster.h"

static const char *stages[] = { "ndvi", NULL };
static _Thread_local const char *last_device = "cpu";

int
mem_infer_stage_known(const char *name)
{
	for (const char **s = stages; *s; s++)
		if (strcmp(*s, name) == 0)
			return 1;
	return 0;
}

const char *
mem_infer_stage_list(void)
{
	return "ndvi";
}

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

static int
run_ndvi(const json_t *item, const struct mem_infer_opts *o, const char *path,
    struct mem_err *err)
{
	struct mem_band red, nir;
	struct mem_kern_ndvi_params p;
	GDALDatasetH rds, nds, out = NULL;
	char **co, *tmp = NULL;
	const char *rhref, *nhref;
	double gt[6];
	int w, h, strip, nstrips, failed = 0, use_cuda;
	char msg[MEM_ERR_MSG] = "";

	if (mem_item_find_band(item, "red", &red, err) < 0 ||
	    mem_item_find_band(item, "nir", &nir, err) < 0)
		return -1;
	rds = open_band(item, &red, err);
	if (rds == NULL)
		return -1;
	nds = open_band(item, &nir, err);
	if (nds == NULL) {
		GDALClose(rds);
		return -1;
	}
	if (!same_grid(rds, nds)) {
		mem_err_set(err, MEM_EITEM, "item '%s': red and nir bands cover different areas",
		    mem_item_id(item));
		goto fail;
	}
	w = GDALGetRasterXSize(rds);
	h = GDALGetRasterYSize(rds);
	p.red_scale = red.scale;
	p.red_offset = red.offset;
	p.nir_scale = nir.scale;
	p.nir_offset = nir.offset;
	band_nodata(rds, &red, &p.red_has_nodata, &p.red_nodata);
	band_nodata(nds, &nir, &p.nir_has_nodata, &p.nir_nodata);

	co = mem_raster_tiff_options(NULL);
	for (char **c = o->co; c && *c; c++) {
		char *key = NULL;
		const char *val = CPLParseNameValue(*c, &key);

		if (key && val)
			co = CSLSetNameValue(co, key, val);
		CPLFree(key);
	}
	if (CSLFetchNameValue(co, "PREDICTOR") == NULL)
		co = CSLSetNameValue(co, "PREDICTOR", "3");
	if (strcasecmp(CSLFetchNameValueDef(co, "COMPRESS", ""), "ZSTD") != 0)
		co = CSLSetNameValue(co, "ZSTD_LEVEL", NULL);
	tmp = mem_tmp_name(path);
	CPLErrorReset();
	out = GDALCreate(GDALGetDriverByName("GTiff"), tmp, w, h, 1, GDT_Float32, co);
	CSLDestroy(co);
	if (out == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", path, CPLGetLastErrorMsg());
		goto fail;
	}
	if (GDALGetGeoTransform(rds, gt) == CE_None)
		GDALSetGeoTransform(out, gt);
	if (GDALGetSpatialRef(rds))
		GDALSetSpatialRef(out, GDALGetSpatialRef(rds));
	GDALSetRasterNoDataValue(GDALGetRasterBand(out, 1), NAN);
	GDALSetDescription(GDALGetRasterBand(out, 1), "ndvi");

	use_cuda = o->device != MEM_DEVICE_CPU && mem_kern_cuda_available();
	if (o->device == MEM_DEVICE_CUDA && !use_cuda) {
		mem_err_set(err, MEM_EUSAGE, "--device cuda: %s",
#ifdef HAVE_CUDA
		    "no CUDA device found"
#else
		    "this build has no CUDA support (configure --enable-cuda)"
#endif
		);
		goto fail;
	}
	last_device = use_cuda ? "cuda" : "cpu";
	/*
	 * Strips are whole rows of input blocks: each thread has its own
	 * handles, so a strip that cut a block in two would decode it twice.
	 * Aim at about 4 Mpx per strip (2048 rows or more on the GPU).
	 */
	{
		int bw, bh;

		GDALGetBlockSize(GDALGetRasterBand(rds, red.index), &bw, &bh);
		if (bh <= 1 || bh > h)
			bh = 256 < h ? 256 : h;
		strip = bh;
		while ((long)strip * w < (use_cuda ? 1L << 24 : 1L << 22) && strip < h && bh < 4096)
			strip += bh;
	}
	if (strip > h)
		strip = h;
	nstrips = (h + strip - 1) / strip;
	rhref = mem_asset_href(red.asset);
	nhref = mem_asset_href(nir.asset);

#pragma omp parallel num_threads(o->threads > 0 ? o->threads : omp_get_max_threads())
	{
		struct mem_err terr;
		GDALDatasetH tr = NULL, tn = NULL;
		size_t n = (size_t)w * (size_t)strip;
		float *rb = VSI_MALLOC_VERBOSE(n * sizeof(float));
		float *nb = VSI_MALLOC_VERBOSE(n * sizeof(float));
		float *ob = VSI_MALLOC_VERBOSE(n * sizeof(float));

		mem_err_clear(&terr);
		if (rb && nb && ob) {
			tr = mem_raster_open(rhref, &terr);
			tn = tr ? mem_raster_open(nhref, &terr) : NULL;
		} else
			mem_err_set(&terr, MEM_EITEM, "out of memory for a strip of %d rows", strip);
		if (tn == NULL) {
#pragma omp critical(mem_infer_err)
			{
				if (!failed)
					snprintf(msg, sizeof msg, "%s", terr.msg);
				failed = 1;
			}
		}
#pragma omp for schedule(dynamic, 1)
		for (int s = 0; s < nstrips; s++) {
			int y0 = s * strip, rows = h - y0 < strip ? h - y0 : strip;
			GDALRasterIOExtraArg ex;
			int nw = GDALGetRasterXSize(tn ? tn : rds), nh = GDALGetRasterYSize(tn ? tn : rds);
			int ny0, nrows;
			CPLErr e;

			if (failed)
				continue;
			INIT_RASTERIO_EXTRA_ARG(ex);
			ex.eResampleAlg = GRIORA_Bilinear;
			e = GDALRasterIO(GDALGetRasterBand(tr, red.index), GF_Read, 0, y0, w, rows, rb, w,
			    rows, GDT_Float32, 0, 0);
			/* nir may be at another resolution over the same extent */
			ny0 = (int)((double)y0 * nh / h);
			nrows = (int)((double)(y0 + rows) * nh / h + 0.5) - ny0;
			if (nrows < 1)
				nrows = 1;
			if (ny0 + nrows > nh)
				nrows = nh - ny0;
			if (e == CE_None)
				e = GDALRasterIOEx(GDALGetRasterBand(tn, nir.index), GF_Read, 0, ny0, nw,
				    nrows, nb, w, rows, GDT_Float32, 0, 0, nw == w ? NULL : &ex);
			if (e != CE_None) {
#pragma omp critical(mem_infer_err)
				{
					if (!failed)
						snprintf(msg, sizeof msg, "cannot read '%s': %s", rhref,
						    CPLGetLastErrorMsg());
					failed = 1;
				}
				continue;
			}
			if (!use_cuda || mem_kern_ndvi_cuda(rb, nb, ob, (size_t)w * rows, &p) < 0)
				mem_kern_ndvi_f32(rb, nb, ob, (size_t)w * rows, &p);
#pragma omp critical(mem_infer_write)
			{
				if (GDALRasterIO(GDALGetRasterBand(out, 1), GF_Write, 0, y0, w, rows, ob, w,
				    rows, GDT_Float32, 0, 0) != CE_None && !failed) {
					snprintf(msg, sizeof msg, "cannot write '%s': %s", path,
					    CPLGetLastErrorMsg());
					failed = 1;
				}
			}
		}
		if (tr)
			GDALClose(tr);
		if (tn)
			GDALClose(tn);
		VSIFree(rb);
		VSIFree(nb);
		VSIFree(ob);
	}
	if (failed) {
		mem_err_set(err, MEM_EITEM, "item '%s': %s", mem_item_id(item), msg);
		goto fail;
	}
	if (mem_raster_close(out) < 0) {
		out = NULL;
		mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", path, CPLGetLastErrorMsg());
		goto fail;
	}
	out = NULL;
	GDALClose(rds);
	GDALClose(nds);
	{
		int rc = mem_commit_file(tmp, path, err);

		free(tmp);
		return rc;
	}
fail:
	if (out)
		GDALClose(out);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	GDALClose(rds);
	GDALClose(nds);
	return -1;
}

/* The facts about an input that decide a result: ids, and checksums where known. */
static json_t *
input_params(const json_t *item, const struct mem_infer_opts *o)
{
	json_t *p = json_object(), *st = json_array(), *sums = json_object(), *a;
	const char *key;

	json_object_set_new(p, "input", json_string(mem_item_id(item)));
	json_object_foreach(json_object_get(item, "assets"), key, a) {
		json_t *c = json_object_get(a, "file:checksum");

		json_object_set_new(sums, key, c ? json_deep_copy(c) :
		    json_string(mem_asset_href(a) ? mem_asset_href(a) : ""));
	}
	json_object_set_new(p, "assets", sums);
	for (char **s = o->stages; s && *s; s++)
		json_array_append_new(st, json_string(*s));
	json_object_set_new(p, "stages", st);
	/* creation options change the file, so they are part of what is made */
	st = json_array();
	for (char **c = o->co; c && *c; c++)
		json_array_append_new(st, json_string(*c));
	json_object_set_new(p, "co", st);
	return p;
}

static json_t *
describe(const char *path, const char *stage, struct mem_err *err)
{
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
	json_object_set_new(b, "data_type", json_string("float32"));
	json_object_set_new(b, "nodata", json_string("nan"));
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

json_t *
mem_infer_item(const json_t *item, const struct mem_infer_opts *o, struct mem_err *err)
{
	json_t *params = input_params(item, o), *out;
	char *sid = mem_path_safe_name(mem_item_id(item));
	char *id = mem_item_derive_id(sid, "mem-infer", params);
	char *dir = mem_xasprintf("%s/results/%s", o->workdir, id);

	free(sid);
	json_decref(params);
	if (mem_workdir(dir, err) < 0)
		goto fail;
	out = mem_item_derive(item, id, "infer");
	json_object_set_new(out, "collection", json_string(o->stages[0]));
	for (char **s = o->stages; *s; s++) {
		char *name = mem_xasprintf("%s.tif", *s), *path = mem_path_join(dir, name);
		json_t *a;

		free(name);
		if (!mem_path_exists(path) && strcmp(*s, "ndvi") == 0 &&
		    run_ndvi(item, o, path, err) < 0) {
			free(path);
			json_decref(out);
			goto fail;
		}
		a = describe(path, *s, err);
		free(path);
		if (a == NULL) {
			json_decref(out);
			goto fail;
		}
		json_object_set_new(json_object_get(out, "assets"), *s, a);
	}
	mem_item_add_extension(out, MEM_EXT_RASTER);
	mem_item_add_extension(out, MEM_EXT_FILE);
	mem_item_add_extension(out, MEM_EXT_PROJ);
	free(dir);
	free(id);
	return out;
fail:
	free(dir);
	free(id);
	return NULL;
}
