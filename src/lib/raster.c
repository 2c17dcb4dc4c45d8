/*
 * raster.c - the GDAL side of libmemories.
 *
 * GDAL prints errors through a handler; the library installs a quiet one and
 * reads CPLGetLastErrorMsg() into the caller's mem_err, so that messages
 * come out once, in the program's own voice.
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal_utils.h>
#include <gdalwarper.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <unistd.h>

#include "files.h"
#include "item.h"
#include "raster.h"

void
mem_raster_init(void)
{
	GDALAllRegister();
	CPLSetErrorHandler(CPLQuietErrorHandler);
	/*
	 * Blocks are read once each by per-thread handles, so GDAL's default
	 * cache (5 % of RAM) only inflates the resident set: 1.3 GB for an NDVI
	 * of a 10980 px band pair against 190 MB with 64 MB.  The user's
	 * GDAL_CACHEMAX, from the environment or --config, still wins.
	 */
	if (CPLGetConfigOption("GDAL_CACHEMAX", NULL) == NULL)
		CPLSetConfigOption("GDAL_CACHEMAX", "64");
	/* Remote COGs: do not list directories, and keep connections alive. */
	CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
	/* counts the bytes read for window fetches (mem-fetch reports them) */
	CPLSetConfigOption("CPL_VSIL_NETWORK_STATS_ENABLED", "YES");
	if (CPLGetConfigOption("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", NULL) == NULL)
		CPLSetConfigOption("GDAL_HTTP_MULTIRANGE", "YES");
}

static char threads[16] = "ALL_CPUS";

void
mem_raster_set_threads(int n)
{
	if (n > 0)
		snprintf(threads, sizeof threads, "%d", n);
	else
		snprintf(threads, sizeof threads, "ALL_CPUS");
}

void
mem_raster_done(void)
{
	GDALDestroyDriverManager();
	OSRCleanup();
	CPLCleanupTLS();
}

static const char *
gdal_msg(void)
{
	const char *m = CPLGetLastErrorMsg();

	return m && *m ? m : "unknown GDAL error";
}

int
mem_raster_close(GDALDatasetH ds)
{
	/* GDALClose returns void before GDAL 3.8: errors while flushing show in the error state */
	CPLErrorReset();
	GDALClose(ds);
	return CPLGetLastErrorType() >= CE_Failure ? -1 : 0;
}

char *
mem_raster_gdal_path(const char *href)
{
	if (strncmp(href, "file://", 7) == 0)
		return mem_xstrdup(href + 7);
	if (strncmp(href, "http://", 7) == 0 || strncmp(href, "https://", 8) == 0)
		return mem_xasprintf("/vsicurl/%s", href);
	if (strncmp(href, "s3://", 5) == 0)
		return mem_xasprintf("/vsis3/%s", href + 5);
	if (strncmp(href, "gs://", 5) == 0)
		return mem_xasprintf("/vsigs/%s", href + 5);
	return mem_xstrdup(href);
}

GDALDatasetH
mem_raster_open(const char *href, struct mem_err *err)
{
	char *path = mem_raster_gdal_path(href);
	GDALDatasetH ds;

	CPLErrorReset();
	ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL, NULL,
	    NULL);
	if (ds == NULL) {
		const char *m = gdal_msg();

		if (!mem_href_is_url(href) && access(path, F_OK) < 0)
			mem_err_set(err, MEM_EITEM, "cannot open '%s': No such file or directory", href);
		else if (strstr(m, "not recognized as a supported file format") ||
		    strstr(m, "not recognised"))
			mem_err_set(err, MEM_EITEM, "cannot open '%s': not a raster GDAL can read", href);
		else
			mem_err_set(err, mem_href_is_url(href) ? MEM_ETEMP : MEM_EITEM,
			    "cannot open '%s': %s", href, m);
	}
	free(path);
	return ds;
}

int
mem_raster_epsg(GDALDatasetH ds)
{
	OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
	const char *auth, *code;

	if (srs == NULL)
		return 0;
	auth = OSRGetAuthorityName(srs, NULL);
	code = OSRGetAuthorityCode(srs, NULL);
	if (auth && code && strcmp(auth, "EPSG") == 0)
		return atoi(code);
	{
		OGRSpatialReferenceH c = OSRClone(srs);
		int epsg = 0;

		if (OSRAutoIdentifyEPSG(c) == OGRERR_NONE) {
			code = OSRGetAuthorityCode(c, NULL);
			epsg = code ? atoi(code) : 0;
		}
		OSRDestroySpatialReference(c);
		return epsg;
	}
}

void
mem_raster_proj_fields(GDALDatasetH ds, json_t *obj)
{
	double gt[6];
	int epsg = mem_raster_epsg(ds);
	json_t *t;

	if (epsg > 0)
		json_object_set_new(obj, "proj:epsg", json_integer(epsg));
	else if (GDALGetSpatialRef(ds) != NULL) {
		char *wkt = NULL;
		const char *opts[] = { "FORMAT=WKT2_2019", NULL };

		json_object_set_new(obj, "proj:epsg", json_null());
		if (OSRExportToWktEx(GDALGetSpatialRef(ds), &wkt, opts) == OGRERR_NONE && wkt)
			json_object_set_new(obj, "proj:wkt2", json_string(wkt));
		CPLFree(wkt);
	}
	if (GDALGetGeoTransform(ds, gt) == CE_None) {
		t = json_array();
		json_array_append_new(t, json_real(gt[1]));
		json_array_append_new(t, json_real(gt[2]));
		json_array_append_new(t, json_real(gt[0]));
		json_array_append_new(t, json_real(gt[4]));
		json_array_append_new(t, json_real(gt[5]));
		json_array_append_new(t, json_real(gt[3]));
		json_object_set_new(obj, "proj:transform", t);
	}
	t = json_array();
	json_array_append_new(t, json_integer(GDALGetRasterYSize(ds)));
	json_array_append_new(t, json_integer(GDALGetRasterXSize(ds)));
	json_object_set_new(obj, "proj:shape", t);
}

/*
 * Transforms the box in[] from one CRS to another, sampling 21 points along
 * each edge: straight edges bow across a projection change (a UTM tile in
 * lon/lat, a lon/lat box in UTM).  Returns 0, or -1 when no point transforms.
 */
int
mem_raster_box_transform(OGRSpatialReferenceH from, OGRSpatialReferenceH to, const double in[4],
    double out[4])
{
	OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(from, to);
	double x[84], y[84];
	int ok[84], n = 0, i;

	if (ct == NULL)
		return -1;
	for (i = 0; i <= 20; i++) {
		double f = i / 20.0, xs = in[0] + f * (in[2] - in[0]), ys = in[1] + f * (in[3] - in[1]);

		x[n] = xs; y[n++] = in[1];
		x[n] = xs; y[n++] = in[3];
		x[n] = in[0]; y[n++] = ys;
		x[n] = in[2]; y[n++] = ys;
	}
	out[0] = out[1] = INFINITY;
	out[2] = out[3] = -INFINITY;
	if (OCTTransformEx(ct, n, x, y, NULL, ok))
		for (i = 0; i < n; i++) {
			if (!ok[i])
				continue;
			out[0] = fmin(out[0], x[i]);
			out[1] = fmin(out[1], y[i]);
			out[2] = fmax(out[2], x[i]);
			out[3] = fmax(out[3], y[i]);
		}
	OCTDestroyCoordinateTransformation(ct);
	return out[0] <= out[2] ? 0 : -1;
}

OGRSpatialReferenceH
mem_raster_srs_epsg(int epsg)
{
	OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);

	OSRImportFromEPSG(s, epsg);
	OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
	return s;
}

/* The extent of ds in its own CRS (north-up or not: the corners' box). */
static int
extent(GDALDatasetH ds, double b[4])
{
	double gt[6], w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
	double px[4] = { 0, w, 0, w }, py[4] = { 0, 0, h, h };

	if (GDALGetGeoTransform(ds, gt) != CE_None)
		return -1;
	b[0] = b[1] = INFINITY;
	b[2] = b[3] = -INFINITY;
	for (int k = 0; k < 4; k++) {
		double x = gt[0] + px[k] * gt[1] + py[k] * gt[2], y = gt[3] + px[k] * gt[4] + py[k] * gt[5];

		b[0] = fmin(b[0], x);
		b[1] = fmin(b[1], y);
		b[2] = fmax(b[2], x);
		b[3] = fmax(b[3], y);
	}
	return 0;
}

int
mem_raster_lonlat_bbox(GDALDatasetH ds, double bbox[4], struct mem_err *err)
{
	OGRSpatialReferenceH src = GDALGetSpatialRef(ds), wgs;
	double b[4];
	int rc;

	if (src == NULL || extent(ds, b) < 0)
		return mem_err_set(err, MEM_EITEM, "raster '%s' is not georeferenced",
		    GDALGetDescription(ds));
	wgs = mem_raster_srs_epsg(4326);
	rc = mem_raster_box_transform(src, wgs, b, bbox);
	OSRDestroySpatialReference(wgs);
	if (rc < 0)
		return mem_err_set(err, MEM_EITEM, "cannot transform '%s' to lon/lat: %s",
		    GDALGetDescription(ds), gdal_msg());
	return 0;
}

/*
 * Ends a write to the temporary file tmp: closes out (NULL when creating it
 * failed), then renames tmp to path, or removes it and reports GDAL's
 * message as "cannot WHAT 'NAME'".  Frees tmp.
 */
static int
commit_dataset(GDALDatasetH out, char *tmp, const char *path, enum mem_status status,
    const char *what, const char *name, struct mem_err *err)
{
	int rc;

	if (out == NULL || mem_raster_close(out) < 0) {
		/* libtiff's words for a full disk name the symptom, not the cause */
		if (mem_fs_full(tmp))
			rc = mem_err_set(err, status, "cannot %s '%s': %s", what, name,
			    strerror(ENOSPC));
		else
			rc = mem_err_set(err, status, "cannot %s '%s': %s", what, name, gdal_msg());
		unlink(tmp);
	} else if (mem_fs_full(tmp)) {
		/*
		 * libtiff does not always report a short write at close: a file
		 * that ends on a full disk may lack its last directory, so it is
		 * not taken
		 */
		rc = mem_err_set(err, status, "cannot %s '%s': %s", what, name, strerror(ENOSPC));
		unlink(tmp);
	} else
		rc = mem_commit_file(tmp, path, err);
	free(tmp);
	return rc;
}

int
mem_raster_check_options(const char *driver, char **opts, struct mem_err *err)
{
	GDALDriverH drv = GDALGetDriverByName(driver);
	int ok;

	if (drv == NULL)
		return mem_err_set(err, MEM_EUSAGE, "this GDAL has no %s driver%s", driver,
		    strcmp(driver, "COG") == 0 ? " (GDAL >= 3.1 needed)" : "");
	if (opts == NULL)
		return 0;
	/* GDAL warns about the bad option and would then write the file without it */
	CPLErrorReset();
	CPLPushErrorHandler(CPLQuietErrorHandler);
	ok = GDALValidateCreationOptions(drv, (CSLConstList)opts);
	CPLPopErrorHandler();
	if (!ok)
		return mem_err_set(err, MEM_EUSAGE, "invalid --co: %s",
		    *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "refused by the driver");
	return 0;
}

int
mem_raster_check_cog_options(char **opts, struct mem_err *err)
{
	return mem_raster_check_options("COG", opts, err);
}

int
mem_raster_write_cog(GDALDatasetH src, const char *path, char **opts, struct mem_err *err)
{
	GDALDriverH drv = GDALGetDriverByName("COG");
	char **co = NULL, *tmp;
	GDALDatasetH out;

	if (drv == NULL)
		return mem_err_set(err, MEM_EUSAGE, "this GDAL has no COG driver (GDAL >= 3.1 needed)");
	co = CSLSetNameValue(co, "COMPRESS", "DEFLATE");
	co = CSLSetNameValue(co, "OVERVIEWS", "AUTO");
	co = CSLSetNameValue(co, "NUM_THREADS", threads);
	co = CSLSetNameValue(co, "BLOCKSIZE", "512");
	for (char **o = opts; o && *o; o++) {
		char *key = NULL;
		const char *val = CPLParseNameValue(*o, &key);

		if (key && val)
			co = CSLSetNameValue(co, key, val);
		CPLFree(key);
	}
	/*
	 * DEFLATE, ZSTD, LZW and LZMA want a predictor: 2 for integers, 3 for
	 * floats; LERC (and LERC_DEFLATE, LERC_ZSTD) has its own, with
	 * MAX_Z_ERROR as the error allowed per value (0: lossless)
	 */
	if (CSLFetchNameValue(co, "PREDICTOR") == NULL && GDALGetRasterCount(src) > 0 &&
	    strncasecmp(CSLFetchNameValueDef(co, "COMPRESS", ""), "LERC", 4) != 0 &&
	    strcasecmp(CSLFetchNameValueDef(co, "COMPRESS", ""), "NONE") != 0) {
		GDALDataType t = GDALGetRasterDataType(GDALGetRasterBand(src, 1));

		co = CSLSetNameValue(co, "PREDICTOR",
		    GDALDataTypeIsFloating(t) ? "FLOATING_POINT" : "STANDARD");
	} else if (GDALGetRasterCount(src) > 0 &&
	    !GDALDataTypeIsFloating(GDALGetRasterDataType(GDALGetRasterBand(src, 1)))) {
		/* the floating-point predictor asked for: integers get theirs */
		const char *p = CSLFetchNameValue(co, "PREDICTOR");

		if (p && (!strcmp(p, "3") || !strcasecmp(p, "FLOATING_POINT")))
			co = CSLSetNameValue(co, "PREDICTOR", "STANDARD");
	}
	tmp = mem_tmp_name(path);
	CPLErrorReset();
	out = GDALCreateCopy(drv, tmp, src, FALSE, co, NULL, NULL);
	CSLDestroy(co);
	return commit_dataset(out, tmp, path, MEM_EITEM, "write COG", path, err);
}

GDALDatasetH
mem_raster_mosaic_vrt(char **hrefs, const char *desc, struct mem_err *err)
{
	int n = CSLCount(hrefs), usage = 0;
	char **paths = NULL, **argv = NULL;
	GDALBuildVRTOptions *vo;
	GDALDatasetH vrt;

	for (int i = 0; i < n; i++) {
		/* GDALBuildVRT skips a source it cannot open: a hole, not an error */
		GDALDatasetH ds = mem_raster_open(hrefs[i], err);
		char *p;

		if (ds == NULL) {
			CSLDestroy(paths);
			return NULL;
		}
		GDALClose(ds);
		p = mem_raster_gdal_path(hrefs[i]);
		paths = CSLAddString(paths, p);
		free(p);
	}
	/* the tiles of one grid share a resolution; keep it exactly */
	argv = CSLAddString(argv, "-resolution");
	argv = CSLAddString(argv, "highest");
	vo = GDALBuildVRTOptionsNew(argv, NULL);
	CSLDestroy(argv);
	CPLErrorReset();
	vrt = GDALBuildVRT("", n, NULL, (const char *const *)paths, vo, &usage);
	GDALBuildVRTOptionsFree(vo);
	CSLDestroy(paths);
	if (vrt == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot mosaic %d rasters ('%s', ...): %s", n,
		    n > 0 ? hrefs[0] : "", gdal_msg());
		return NULL;
	}
	for (int b = 1; b <= GDALGetRasterCount(vrt); b++) {
		GDALRasterBandH band = GDALGetRasterBand(vrt, b);
		const char *d = GDALGetDescription(band);

		if (desc && (d == NULL || *d == '\0') && GDALGetRasterCount(vrt) == 1)
			GDALSetDescription(band, desc);
	}
	return vrt;
}

char **
mem_raster_tiff_options(const char *compress)
{
	char **co = NULL;

	co = CSLSetNameValue(co, "TILED", "YES");
	co = CSLSetNameValue(co, "BLOCKXSIZE", "256");
	co = CSLSetNameValue(co, "BLOCKYSIZE", "256");
	co = CSLSetNameValue(co, "COMPRESS", compress ? compress : "ZSTD");
	if (compress == NULL || strcasecmp(compress, "ZSTD") == 0)
		co = CSLSetNameValue(co, "ZSTD_LEVEL", "1");
	co = CSLSetNameValue(co, "NUM_THREADS", threads);
	co = CSLSetNameValue(co, "BIGTIFF", "IF_SAFER");
	return co;
}

static int
any_valid(GDALDatasetH ds)
{
	GDALRasterBandH b = GDALGetRasterBand(ds, 1);
	int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
	GDALRasterBandH m = GDALGetMaskBand(b);
	unsigned char *buf = VSI_MALLOC2_VERBOSE(w, h);
	int found = 0;

	if (buf == NULL)
		return 1;
	if (GDALRasterIO(m, GF_Read, 0, 0, w, h, buf, w, h, GDT_Byte, 0, 0) == CE_None) {
		for (long i = 0; i < (long)w * h && !found; i++)
			found = buf[i] != 0;
	} else
		found = 1;
	VSIFree(buf);
	return found;
}

int
mem_raster_warp_cell(char **srcs, int band, int epsg, const double b[4], int xsize, int ysize,
    const char *resample, int has_nodata, double nodata, const char *path, int *empty,
    struct mem_err *err)
{
	GDALDatasetH *in, mem, out;
	GDALWarpAppOptions *wo;
	char **argv = NULL, buf[64], *tmp, **co;
	int n = CSLCount(srcs), i, usage = 0, rc = -1;

	*empty = 0;
	in = mem_xcalloc((size_t)n, sizeof *in);
	for (i = 0; i < n; i++) {
		in[i] = mem_raster_open(srcs[i], err);
		if (in[i] == NULL)
			goto out;
	}
	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, "MEM");
	snprintf(buf, sizeof buf, "EPSG:%d", epsg);
	argv = CSLAddString(argv, "-t_srs");
	argv = CSLAddString(argv, buf);
	argv = CSLAddString(argv, "-te");
	for (i = 0; i < 4; i++) {
		snprintf(buf, sizeof buf, "%.10f", b[i]);
		argv = CSLAddString(argv, buf);
	}
	argv = CSLAddString(argv, "-ts");
	snprintf(buf, sizeof buf, "%d", xsize);
	argv = CSLAddString(argv, buf);
	snprintf(buf, sizeof buf, "%d", ysize);
	argv = CSLAddString(argv, buf);
	argv = CSLAddString(argv, "-r");
	argv = CSLAddString(argv, resample);
	if (band > 0) {
		snprintf(buf, sizeof buf, "%d", band);
		argv = CSLAddString(argv, "-b");
		argv = CSLAddString(argv, buf);
	}
	if (has_nodata) {
		snprintf(buf, sizeof buf, "%.17g", nodata);
		argv = CSLAddString(argv, "-srcnodata");
		argv = CSLAddString(argv, buf);
		argv = CSLAddString(argv, "-dstnodata");
		argv = CSLAddString(argv, buf);
	}
	argv = CSLAddString(argv, "-wo");
	snprintf(buf, sizeof buf, "NUM_THREADS=%s", threads);
	argv = CSLAddString(argv, buf);
	argv = CSLAddString(argv, "-multi");
	wo = GDALWarpAppOptionsNew(argv, NULL);
	CSLDestroy(argv);
	if (wo == NULL) {
		mem_err_set(err, MEM_EUSAGE, "invalid warp options: %s", gdal_msg());
		goto out;
	}
	CPLErrorReset();
	mem = GDALWarp("", NULL, n, in, wo, &usage);
	GDALWarpAppOptionsFree(wo);
	if (mem == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot warp '%s': %s", srcs[0], gdal_msg());
		goto out;
	}
	if (!any_valid(mem)) {
		*empty = 1;
		GDALClose(mem);
		rc = 0;
		goto out;
	}
	tmp = mem_tmp_name(path);
	co = mem_raster_tiff_options(NULL);
	out = GDALCreateCopy(GDALGetDriverByName("GTiff"), tmp, mem, FALSE, co, NULL, NULL);
	CSLDestroy(co);
	GDALClose(mem);
	rc = commit_dataset(out, tmp, path, MEM_EITEM, "write", path, err);
out:
	for (i = 0; i < n; i++)
		if (in[i])
			GDALClose(in[i]);
	free(in);
	return rc;
}

int
mem_raster_window(GDALDatasetH ds, const double ll[4], int win[4], struct mem_err *err)
{
	OGRSpatialReferenceH src = GDALGetSpatialRef(ds), wgs;
	double gt[6], inv[6], b[4], px0 = INFINITY, py0 = INFINITY, px1 = -INFINITY,
	    py1 = -INFINITY;
	int i, rc, w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);

	if (src == NULL || GDALGetGeoTransform(ds, gt) != CE_None || !GDALInvGeoTransform(gt, inv))
		return mem_err_set(err, MEM_EITEM, "raster '%s' is not georeferenced",
		    GDALGetDescription(ds));
	wgs = mem_raster_srs_epsg(4326);
	rc = mem_raster_box_transform(wgs, src, ll, b);
	OSRDestroySpatialReference(wgs);
	if (rc < 0)
		return mem_err_set(err, MEM_EITEM, "cannot transform lon/lat to the CRS of '%s'",
		    GDALGetDescription(ds));
	for (i = 0; i < 4; i++) {
		double x = b[i & 1 ? 2 : 0], y = b[i & 2 ? 3 : 1];
		double px = inv[0] + x * inv[1] + y * inv[2], py = inv[3] + x * inv[4] + y * inv[5];

		px0 = fmin(px0, px);
		py0 = fmin(py0, py);
		px1 = fmax(px1, px);
		py1 = fmax(py1, py);
	}
	/* whole pixels covering the box, cut to the raster */
	px0 = fmax(floor(px0), 0);
	py0 = fmax(floor(py0), 0);
	px1 = fmin(ceil(px1), w);
	py1 = fmin(ceil(py1), h);
	if (px1 <= px0 || py1 <= py0)
		return 1;
	win[0] = (int)px0;
	win[1] = (int)py0;
	win[2] = (int)(px1 - px0);
	win[3] = (int)(py1 - py0);
	return 0;
}

int
mem_raster_write_window(GDALDatasetH src, const int win[4], const char *path,
    struct mem_err *err)
{
	GDALTranslateOptions *to;
	GDALDatasetH out;
	char **argv = NULL, buf[32], *tmp;
	int usage = 0;

	argv = CSLAddString(argv, "-of");
	argv = CSLAddString(argv, "COG");
	argv = CSLAddString(argv, "-srcwin");
	for (int i = 0; i < 4; i++) {
		snprintf(buf, sizeof buf, "%d", win[i]);
		argv = CSLAddString(argv, buf);
	}
	argv = CSLAddString(argv, "-co");
	argv = CSLAddString(argv, "COMPRESS=DEFLATE");
	argv = CSLAddString(argv, "-co");
	snprintf(buf, sizeof buf, "NUM_THREADS=%s", threads);
	argv = CSLAddString(argv, buf);
	to = GDALTranslateOptionsNew(argv, NULL);
	CSLDestroy(argv);
	tmp = mem_tmp_name(path);
	CPLErrorReset();
	out = to ? GDALTranslate(tmp, src, to, &usage) : NULL;
	GDALTranslateOptionsFree(to);
	return commit_dataset(out, tmp, path, MEM_ETEMP, "read a window of",
	    GDALGetDescription(src), err);
}
