/*
 * zonal.c - zones from vector files, their statistics and the GeoPackages
 * mem-infer writes (zonal statistics, change polygons).
 *
 * GeoPackages are written under a temporary name and renamed, so a reader
 * or a rerun never sees half a file; GDAL's GPKG driver gives each table
 * its R-tree spatial index.
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal_alg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "zonal.h"

static int
is_polygon(OGRGeometryH g)
{
	OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));

	return t == wkbPolygon || t == wkbMultiPolygon || t == wkbCurvePolygon ||
	    t == wkbMultiSurface;
}

int
mem_zones_load(struct mem_zones *z, const char *path, const char *layer,
    OGRSpatialReferenceH srs, struct mem_err *err)
{
	GDALDatasetH ds;
	OGRLayerH l;
	OGRFeatureH f;
	OGRCoordinateTransformationH ct = NULL;
	OGRSpatialReferenceH from;
	size_t cap = 0;
	int rc = -1;

	memset(z, 0, sizeof *z);
	CPLErrorReset();
	ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
	if (ds == NULL)
		return mem_err_set(err, MEM_EUSAGE, "cannot open zones '%s': %s", path,
		    !mem_path_exists(path)	    ? "No such file or directory" :
			CPLGetLastErrorMsg()[0] ? CPLGetLastErrorMsg() :
						  "not a vector file");
	l = layer ? GDALDatasetGetLayerByName(ds, layer) : GDALDatasetGetLayer(ds, 0);
	if (l == NULL) {
		mem_err_set(err, MEM_EUSAGE, "zones '%s': no layer '%s'", path,
		    layer ? layer : "(none)");
		goto done;
	}
	from = OGR_L_GetSpatialRef(l);
	if (srs) {
		z->srs = OSRClone(srs);
		OSRSetAxisMappingStrategy(z->srs, OAMS_TRADITIONAL_GIS_ORDER);
	}
	if (from && z->srs && !OSRIsSame(from, z->srs)) {
		OGRSpatialReferenceH f2 = OSRClone(from);

		OSRSetAxisMappingStrategy(f2, OAMS_TRADITIONAL_GIS_ORDER);
		ct = OCTNewCoordinateTransformation(f2, z->srs);
		OSRDestroySpatialReference(f2);
		if (ct == NULL) {
			mem_err_set(err, MEM_EITEM, "zones '%s': cannot reproject to the raster's CRS",
			    path);
			goto done;
		}
	}
	OGR_L_ResetReading(l);
	while ((f = OGR_L_GetNextFeature(l)) != NULL) {
		OGRGeometryH g = OGR_F_GetGeometryRef(f);

		if (g == NULL || !is_polygon(g) || (ct && OGR_G_Transform(g, ct) != OGRERR_NONE)) {
			OGR_F_Destroy(f);
			continue;
		}
		if (z->n == cap) {
			cap = cap ? 2 * cap : 64;
			z->feat = mem_xrealloc(z->feat, cap * sizeof *z->feat);
		}
		z->feat[z->n++] = f;
	}
	rc = 0;
done:
	if (ct)
		OCTDestroyCoordinateTransformation(ct);
	GDALClose(ds);
	if (rc < 0)
		mem_zones_release(z);
	return rc;
}

void
mem_zones_release(struct mem_zones *z)
{
	for (size_t i = 0; i < z->n; i++)
		OGR_F_Destroy(z->feat[i]);
	free(z->feat);
	if (z->srs)
		OSRDestroySpatialReference(z->srs);
	memset(z, 0, sizeof *z);
}

OGRGeometryH *
mem_zones_geoms(const struct mem_zones *z)
{
	OGRGeometryH *g = mem_xcalloc(z->n ? z->n : 1, sizeof *g);

	for (size_t i = 0; i < z->n; i++)
		g[i] = OGR_G_Clone(OGR_F_GetGeometryRef(z->feat[i]));
	return g;
}

void
mem_zones_geoms_free(OGRGeometryH *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++)
		OGR_G_DestroyGeometry(g[i]);
	free(g);
}

int
mem_zones_rasterize(OGRGeometryH *g, size_t n, const double gt[6], int w, int y0, int rows,
    int *ids, struct mem_err *err)
{
	GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", w, rows, 0, GDT_Int32, NULL);
	double sgt[6], *burn;
	char opt[3][64], *opts[4];
	int band = 1;
	CPLErr e;

	if (ds == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot rasterize zones: %s", CPLGetLastErrorMsg());
	memset(ids, 0, (size_t)w * rows * sizeof *ids);
	snprintf(opt[0], sizeof opt[0], "DATAPOINTER=%p", (void *)ids);
	snprintf(opt[1], sizeof opt[1], "PIXELOFFSET=%d", (int)sizeof *ids);
	snprintf(opt[2], sizeof opt[2], "LINEOFFSET=%ld", (long)w * (long)sizeof *ids);
	opts[0] = opt[0];
	opts[1] = opt[1];
	opts[2] = opt[2];
	opts[3] = NULL;
	GDALAddBand(ds, GDT_Int32, opts);
	/* the strip's own grid: the item's shifted down by y0 rows */
	memcpy(sgt, gt, sizeof sgt);
	sgt[0] = gt[0] + y0 * gt[2];
	sgt[3] = gt[3] + y0 * gt[5];
	GDALSetGeoTransform(ds, sgt);
	/*
	 * Only the polygons whose envelope reaches the strip's rows: a tile's
	 * thousands of fields would otherwise all be walked for every strip.
	 */
	{
		double ya = sgt[3], yb = sgt[3] + rows * sgt[5];
		double ylo = ya < yb ? ya : yb, yhi = ya < yb ? yb : ya;
		OGRGeometryH *sel = mem_xmalloc((n ? n : 1) * sizeof *sel);
		size_t m = 0;

		burn = mem_xmalloc((n ? n : 1) * sizeof *burn);
		for (size_t i = 0; i < n; i++) {
			OGREnvelope env;

			if (gt[2] == 0 && gt[4] == 0 && g[i] != NULL) {
				OGR_G_GetEnvelope(g[i], &env);
				if (env.MaxY < ylo || env.MinY > yhi)
					continue;
			}
			sel[m] = g[i];
			burn[m++] = (double)(i + 1);
		}
		e = m ? GDALRasterizeGeometries(ds, 1, &band, (int)m, sel, NULL, NULL, burn, NULL, NULL,
		    NULL) : CE_None;
		free(sel);
	}
	free(burn);
	GDALClose(ds);
	if (e != CE_None)
		return mem_err_set(err, MEM_EITEM, "cannot rasterize zones: %s", CPLGetLastErrorMsg());
	return 0;
}

/* "p10", "p2_5": a column name for a percentile. */
static void
pct_name(double p, char *buf, size_t n)
{
	snprintf(buf, n, "p%g", p);
	for (char *c = buf; *c; c++)
		if (*c == '.')
			*c = '_';
}

static const char *stat_names[] = { "count", "mean", "std", "min", "max" };

static json_t *
num(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* Creates the GeoPackage tmp with one table; NULL on failure. */
static GDALDatasetH
gpkg_create(const char *tmp, const char *path, const char *table, OGRSpatialReferenceH srs,
    OGRwkbGeometryType gt, OGRLayerH *l, struct mem_err *err)
{
	char *lco[] = { "SPATIAL_INDEX=YES", NULL };
	GDALDatasetH ds;

	CPLErrorReset();
	ds = GDALCreate(GDALGetDriverByName("GPKG"), tmp, 0, 0, 0, GDT_Unknown, NULL);
	if (ds == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", path, CPLGetLastErrorMsg());
		return NULL;
	}
	*l = GDALDatasetCreateLayer(ds, table, srs, gt, lco);
	if (*l == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot create table '%s' in '%s': %s", table, path,
		    CPLGetLastErrorMsg());
		GDALClose(ds);
		unlink(tmp);
		return NULL;
	}
	return ds;
}

/* Closes ds and renames tmp to path; a failure leaves nothing. */
static int
gpkg_commit(GDALDatasetH ds, const char *tmp, const char *path, struct mem_err *err)
{
	CPLErrorReset();
	GDALClose(ds);
	if (CPLGetLastErrorType() >= CE_Failure) {
		mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", path, CPLGetLastErrorMsg());
		unlink(tmp);
		return -1;
	}
	return mem_commit_file(tmp, path, err);
}

int
mem_zones_write(const struct mem_zones *z, struct mem_kern_zone *vals,
    const struct mem_stage *s, const char *path, json_t **summary, struct mem_err *err)
{
	char *tmp = mem_tmp_name(path);
	OGRFeatureDefnH src = z->n ? OGR_F_GetDefnRef(z->feat[0]) : NULL;
	json_t *list = json_array();
	GDALDatasetH ds;
	OGRLayerH l;
	OGRFeatureDefnH dst;
	int nsrc = src ? OGR_FD_GetFieldCount(src) : 0, rc = -1, *map;
	size_t total = 0;

	*summary = NULL;
	ds = gpkg_create(tmp, path, s->of, z->srs, wkbMultiPolygon, &l, err);
	if (ds == NULL) {
		free(tmp);
		json_decref(list);
		return -1;
	}
	/* the source's fields, then one column per statistic */
	map = mem_xcalloc(nsrc ? (size_t)nsrc : 1, sizeof *map);
	for (int i = 0; i < nsrc; i++) {
		OGRFieldDefnH fd = OGR_FD_GetFieldDefn(src, i);

		map[i] = -1;
		if (OGR_L_CreateField(l, fd, TRUE) == OGRERR_NONE)
			map[i] = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), OGR_Fld_GetNameRef(fd));
	}
	for (int k = 0; k < 5; k++)
		if (s->stats & (1u << k)) {
			OGRFieldDefnH fd = OGR_Fld_Create(stat_names[k], k == 0 ? OFTInteger64 : OFTReal);

			OGR_L_CreateField(l, fd, TRUE);
			OGR_Fld_Destroy(fd);
		}
	for (int k = 0; k < s->npct; k++) {
		char name[32];
		OGRFieldDefnH fd;

		pct_name(s->pct[k], name, sizeof name);
		fd = OGR_Fld_Create(name, OFTReal);
		OGR_L_CreateField(l, fd, TRUE);
		OGR_Fld_Destroy(fd);
	}
	dst = OGR_L_GetLayerDefn(l);
	GDALDatasetStartTransaction(ds, FALSE);
	for (size_t i = 0; i < z->n; i++) {
		struct mem_kern_zonal_stats st;
		OGRFeatureH f = OGR_F_Create(dst);
		OGRGeometryH g = OGR_G_Clone(OGR_F_GetGeometryRef(z->feat[i]));
		json_t *zs = json_object();
		double v[5];

		if (mem_kern_zonal_stats_zone(&vals[i], s->pct, s->npct, &st) < 0) {
			OGR_F_Destroy(f);
			OGR_G_DestroyGeometry(g);
			json_decref(zs);
			GDALDatasetRollbackTransaction(ds);
			GDALClose(ds);
			unlink(tmp);
			mem_err_set(err, MEM_EITEM, "out of memory for the statistics of zone %zu",
			    i + 1);
			goto done;
		}
		mem_kern_zone_free(&vals[i]);
		total += st.count;
		v[0] = (double)st.count;
		v[1] = st.mean;
		v[2] = st.std;
		v[3] = st.min;
		v[4] = st.max;
		OGR_F_SetFID(f, OGR_F_GetFID(z->feat[i]));
		json_object_set_new(zs, "fid", json_integer((json_int_t)OGR_F_GetFID(z->feat[i])));
		for (int k = 0; k < nsrc; k++)
			if (map[k] >= 0 && OGR_F_IsFieldSetAndNotNull(z->feat[i], k))
				OGR_F_SetFieldString(f, map[k], OGR_F_GetFieldAsString(z->feat[i], k));
		if (wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPolygon)
			g = OGR_G_ForceToMultiPolygon(g);
		OGR_F_SetGeometryDirectly(f, g);
		for (int k = 0; k < 5; k++) {
			int fi;

			if (!(s->stats & (1u << k)))
				continue;
			fi = OGR_FD_GetFieldIndex(dst, stat_names[k]);
			if (k == 0) {
				OGR_F_SetFieldInteger64(f, fi, (GIntBig)st.count);
				json_object_set_new(zs, "count", json_integer((json_int_t)st.count));
			} else {
				if (!isnan(v[k]))
					OGR_F_SetFieldDouble(f, fi, v[k]);
				else
					OGR_F_SetFieldNull(f, fi);
				json_object_set_new(zs, stat_names[k], num(v[k]));
			}
		}
		for (int k = 0; k < s->npct; k++) {
			char name[32];
			int fi;

			pct_name(s->pct[k], name, sizeof name);
			fi = OGR_FD_GetFieldIndex(dst, name);
			if (!isnan(st.pct[k]))
				OGR_F_SetFieldDouble(f, fi, st.pct[k]);
			else
				OGR_F_SetFieldNull(f, fi);
			json_object_set_new(zs, name, num(st.pct[k]));
		}
		if (OGR_L_CreateFeature(l, f) != OGRERR_NONE) {
			mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", path, CPLGetLastErrorMsg());
			OGR_F_Destroy(f);
			json_decref(zs);
			GDALDatasetRollbackTransaction(ds);
			GDALClose(ds);
			unlink(tmp);
			goto done;
		}
		OGR_F_Destroy(f);
		json_array_append_new(list, zs);
	}
	GDALDatasetCommitTransaction(ds);
	if (gpkg_commit(ds, tmp, path, err) < 0)
		goto done;
	*summary = json_object();
	json_object_set_new(*summary, "of", json_string(s->of));
	json_object_set_new(*summary, "zones", json_integer((json_int_t)z->n));
	json_object_set_new(*summary, "pixels", json_integer((json_int_t)total));
	json_object_set_new(*summary, "table", json_string(s->of));
	/* per zone in the item only when there are few: the GeoPackage has them all */
	if (z->n <= 100)
		json_object_set(*summary, "stats", list);
	rc = 0;
done:
	for (size_t i = 0; i < z->n; i++)
		mem_kern_zone_free(&vals[i]);
	json_decref(list);
	free(map);
	free(tmp);
	return rc;
}

int
mem_polygons_write(const char *mask, const char *path, const char *table, json_t **summary,
    struct mem_err *err)
{
	GDALDatasetH src = GDALOpen(mask, GA_ReadOnly), mem = NULL, ds = NULL;
	OGRLayerH ml, l;
	OGRFeatureH f;
	OGRFieldDefnH fd;
	char *tmp = NULL;
	double area = 0;
	long n = 0;
	int rc = -1;

	*summary = NULL;
	if (src == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", mask, CPLGetLastErrorMsg());
	/* polygonize in memory, then copy with areas into the GeoPackage */
	mem = GDALCreate(GDALGetDriverByName("Memory"), "", 0, 0, 0, GDT_Unknown, NULL);
	ml = GDALDatasetCreateLayer(mem, table, GDALGetSpatialRef(src), wkbPolygon, NULL);
	fd = OGR_Fld_Create("value", OFTInteger);
	OGR_L_CreateField(ml, fd, TRUE);
	OGR_Fld_Destroy(fd);
	/*
	 * The band is its own mask, so 0 (no change) makes no polygon; nodata
	 * (255 of a UInt8 mask) does, and is dropped below: only the 1s are
	 * polygons of the change.
	 */
	if (GDALPolygonize(GDALGetRasterBand(src, 1), GDALGetRasterBand(src, 1), ml, 0, NULL, NULL,
	    NULL) != CE_None) {
		mem_err_set(err, MEM_EITEM, "cannot polygonize '%s': %s", mask, CPLGetLastErrorMsg());
		goto done;
	}
	tmp = mem_tmp_name(path);
	ds = gpkg_create(tmp, path, table, GDALGetSpatialRef(src), wkbPolygon, &l, err);
	if (ds == NULL)
		goto done;
	fd = OGR_Fld_Create("area", OFTReal);
	OGR_L_CreateField(l, fd, TRUE);
	OGR_Fld_Destroy(fd);
	GDALDatasetStartTransaction(ds, FALSE);
	OGR_L_ResetReading(ml);
	while ((f = OGR_L_GetNextFeature(ml)) != NULL) {
		OGRFeatureH o;
		double a;

		if (OGR_F_GetFieldAsInteger(f, 0) != 1) {
			OGR_F_Destroy(f);
			continue;
		}
		o = OGR_F_Create(OGR_L_GetLayerDefn(l));
		a = OGR_G_Area(OGR_F_GetGeometryRef(f));

		OGR_F_SetGeometry(o, OGR_F_GetGeometryRef(f));
		OGR_F_SetFieldDouble(o, 0, a);
		area += a;
		n++;
		if (OGR_L_CreateFeature(l, o) != OGRERR_NONE) {
			mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", path, CPLGetLastErrorMsg());
			OGR_F_Destroy(o);
			OGR_F_Destroy(f);
			GDALDatasetRollbackTransaction(ds);
			GDALClose(ds);
			ds = NULL;
			unlink(tmp);
			goto done;
		}
		OGR_F_Destroy(o);
		OGR_F_Destroy(f);
	}
	GDALDatasetCommitTransaction(ds);
	rc = gpkg_commit(ds, tmp, path, err);
	ds = NULL;
	if (rc == 0) {
		*summary = json_object();
		json_object_set_new(*summary, "polygons", json_integer(n));
		json_object_set_new(*summary, "area", json_real(area));
	}
done:
	free(tmp);
	if (mem)
		GDALClose(mem);
	GDALClose(src);
	return rc;
}
