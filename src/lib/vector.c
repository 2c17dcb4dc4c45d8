/*
 * vector.c - areas of interest through OGR.
 *
 * An AOI comes as whatever users have: a GeoJSON polygon in lon/lat, an old
 * GeoJSON with a "crs" member in UTM (as sen2r's), a GeoPackage layer of
 * fields.  OGR reads them all and knows their CRS; the union of the
 * geometries in lon/lat is what a STAC search's "intersects" wants.
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "item.h"
#include "vector.h"

json_t *
mem_vector_aoi(const char *path, double bbox[4], struct mem_err *err)
{
	GDALDatasetH ds;
	OGRGeometryH all = NULL;
	OGRSpatialReferenceH wgs84;
	OGREnvelope env;
	json_t *out = NULL;
	char *text;
	int nl, i;

	CPLErrorReset();
	ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
	if (ds == NULL) {
		mem_err_set(err, MEM_EUSAGE, "cannot open AOI '%s': %s", path,
		    *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "not a vector file OGR can read");
		return NULL;
	}
	wgs84 = OSRNewSpatialReference(NULL);
	OSRImportFromEPSG(wgs84, 4326);
	OSRSetAxisMappingStrategy(wgs84, OAMS_TRADITIONAL_GIS_ORDER);
	nl = GDALDatasetGetLayerCount(ds);
	for (i = 0; i < nl; i++) {
		OGRLayerH layer = GDALDatasetGetLayer(ds, i);
		OGRSpatialReferenceH srs = OGR_L_GetSpatialRef(layer);
		OGRCoordinateTransformationH ct = NULL;
		OGRFeatureH f;

		if (srs && !OSRIsSame(srs, wgs84))
			ct = OCTNewCoordinateTransformation(srs, wgs84);
		OGR_L_ResetReading(layer);
		while ((f = OGR_L_GetNextFeature(layer)) != NULL) {
			OGRGeometryH g = OGR_F_GetGeometryRef(f);

			if (g && !OGR_G_IsEmpty(g)) {
				OGRGeometryH c = OGR_G_Clone(g);

				if (ct)
					OGR_G_Transform(c, ct);
				if (all == NULL)
					all = c;
				else {
					OGRGeometryH u = OGR_G_Union(all, c);

					OGR_G_DestroyGeometry(all);
					OGR_G_DestroyGeometry(c);
					all = u;
				}
			}
			OGR_F_Destroy(f);
		}
		if (ct)
			OCTDestroyCoordinateTransformation(ct);
	}
	GDALClose(ds);
	OSRDestroySpatialReference(wgs84);
	if (all == NULL) {
		mem_err_set(err, MEM_EUSAGE, "AOI '%s' has no geometry", path);
		return NULL;
	}
	OGR_G_GetEnvelope(all, &env);
	bbox[0] = env.MinX;
	bbox[1] = env.MinY;
	bbox[2] = env.MaxX;
	bbox[3] = env.MaxY;
	text = OGR_G_ExportToJson(all);
	OGR_G_DestroyGeometry(all);
	if (text)
		out = json_loads(text, 0, NULL);
	CPLFree(text);
	if (out == NULL)
		mem_err_set(err, MEM_EUSAGE, "AOI '%s': cannot express it as GeoJSON", path);
	return out;
}

/* The clip geometry in lon/lat: the AOI, or the box as a polygon. */
static OGRGeometryH
clip_geometry(const struct mem_vector_opts *o)
{
	OGRGeometryH g = NULL;

	if (o->aoi) {
		char *text = json_dumps(o->aoi, JSON_COMPACT);

		g = OGR_G_CreateGeometryFromJson(text);
		free(text);
	} else if (o->has_bbox) {
		OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);

		g = OGR_G_CreateGeometry(wkbPolygon);
		OGR_G_AddPoint_2D(ring, o->bbox[0], o->bbox[1]);
		OGR_G_AddPoint_2D(ring, o->bbox[2], o->bbox[1]);
		OGR_G_AddPoint_2D(ring, o->bbox[2], o->bbox[3]);
		OGR_G_AddPoint_2D(ring, o->bbox[0], o->bbox[3]);
		OGR_G_AddPoint_2D(ring, o->bbox[0], o->bbox[1]);
		OGR_G_AddGeometryDirectly(g, ring);
	}
	return g;
}

static int
wanted(const struct mem_vector_opts *o, const char *name)
{
	if (o->layers == NULL)
		return 1;
	for (char **p = o->layers; *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

/* A geometry cut to the clip may come back as a collection; keep the kind the layer wants. */
static OGRGeometryH
fit_type(OGRGeometryH g, OGRwkbGeometryType want)
{
	OGRwkbGeometryType flat = wkbFlatten(want);

	if (flat == wkbUnknown || g == NULL)
		return g;
	if (flat == wkbPolygon || flat == wkbMultiPolygon)
		return OGR_G_ForceToMultiPolygon(g);
	if (flat == wkbLineString || flat == wkbMultiLineString)
		return OGR_G_ForceToMultiLineString(g);
	if (flat == wkbPoint || flat == wkbMultiPoint)
		return wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPoint && flat == wkbPoint ? g :
		    OGR_G_ForceToMultiPoint(g);
	return g;
}

static OGRwkbGeometryType
out_type(OGRwkbGeometryType t)
{
	switch (wkbFlatten(t)) {
	case wkbPolygon: case wkbMultiPolygon: return wkbMultiPolygon;
	case wkbLineString: case wkbMultiLineString: return wkbMultiLineString;
	case wkbMultiPoint: return wkbMultiPoint;
	default: return wkbFlatten(t);
	}
}

/* Writes one layer; returns features written, or -1. */
static long
write_layer(OGRLayerH in, OGRGeometryH clip_ll, const struct mem_vector_opts *o,
    const char *path, double bbox_ll[4], struct mem_err *err)
{
	OGRSpatialReferenceH src = OGR_L_GetSpatialRef(in), dst = NULL, wgs;
	OGRCoordinateTransformationH to_src = NULL, to_dst = NULL, to_ll = NULL;
	OGRGeometryH clip = NULL;
	GDALDatasetH out;
	OGRLayerH ol;
	OGRFeatureDefnH def = OGR_L_GetLayerDefn(in);
	OGRFeatureH f;
	OGREnvelope env;
	char *tmp = mem_tmp_name(path);
	long n = 0;
	int i, nf = OGR_FD_GetFieldCount(def), failed = 0;

	wgs = OSRNewSpatialReference(NULL);
	OSRImportFromEPSG(wgs, 4326);
	OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
	if (src == NULL)
		src = wgs;
	if (o->t_epsg > 0) {
		dst = OSRNewSpatialReference(NULL);
		OSRImportFromEPSG(dst, o->t_epsg);
		OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);
		if (!OSRIsSame(src, dst))
			to_dst = OCTNewCoordinateTransformation(src, dst);
	}
	if (!OSRIsSame(src, wgs))
		to_ll = OCTNewCoordinateTransformation(src, wgs);
	if (clip_ll) {
		clip = OGR_G_Clone(clip_ll);
		if (!OSRIsSame(src, wgs)) {
			to_src = OCTNewCoordinateTransformation(wgs, src);
			if (to_src)
				OGR_G_Transform(clip, to_src);
		}
		OGR_L_SetSpatialFilter(in, clip);
	}
	out = GDALCreate(GDALGetDriverByName("GPKG"), tmp, 0, 0, 0, GDT_Unknown, NULL);
	if (out == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", path, CPLGetLastErrorMsg());
		n = -1;
		goto done;
	}
	ol = GDALDatasetCreateLayer(out, OGR_L_GetName(in), dst ? dst : src,
	    out_type(OGR_L_GetGeomType(in)), NULL);
	for (i = 0; ol && i < nf; i++)
		OGR_L_CreateField(ol, OGR_FD_GetFieldDefn(def, i), TRUE);
	if (ol == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot create layer '%s' in '%s': %s", OGR_L_GetName(in),
		    path, CPLGetLastErrorMsg());
		GDALClose(out);
		n = -1;
		goto done;
	}
	env.MinX = env.MinY = INFINITY;
	env.MaxX = env.MaxY = -INFINITY;
	GDALDatasetStartTransaction(out, FALSE);
	OGR_L_ResetReading(in);
	while (!failed && (f = OGR_L_GetNextFeature(in)) != NULL) {
		OGRGeometryH g = OGR_F_GetGeometryRef(f), cut = NULL;

		if (g && clip) {
			if (!OGR_G_Intersects(g, clip)) {
				OGR_F_Destroy(f);
				continue;
			}
			/* features crossing the edge are cut, not dropped */
			if (!OGR_G_Within(g, clip))
				cut = OGR_G_Intersection(g, clip);
			else
				cut = OGR_G_Clone(g);
			if (cut == NULL || OGR_G_IsEmpty(cut)) {
				if (cut)
					OGR_G_DestroyGeometry(cut);
				OGR_F_Destroy(f);
				continue;
			}
		} else if (g)
			cut = OGR_G_Clone(g);
		{
			OGRFeatureH of = OGR_F_Create(OGR_L_GetLayerDefn(ol));

			OGR_F_SetFrom(of, f, TRUE);
			if (cut) {
				OGRGeometryH ll;

				cut = fit_type(cut, OGR_L_GetGeomType(ol));
				ll = OGR_G_Clone(cut);
				if (to_ll)
					OGR_G_Transform(ll, to_ll);
				{
					OGREnvelope e;

					OGR_G_GetEnvelope(ll, &e);
					env.MinX = fmin(env.MinX, e.MinX);
					env.MinY = fmin(env.MinY, e.MinY);
					env.MaxX = fmax(env.MaxX, e.MaxX);
					env.MaxY = fmax(env.MaxY, e.MaxY);
				}
				OGR_G_DestroyGeometry(ll);
				if (to_dst)
					OGR_G_Transform(cut, to_dst);
				OGR_F_SetGeometryDirectly(of, cut);
			}
			if (OGR_L_CreateFeature(ol, of) != OGRERR_NONE) {
				mem_err_set(err, MEM_EITEM, "cannot write a feature to '%s': %s", path,
				    CPLGetLastErrorMsg());
				failed = 1;
			} else
				n++;
			OGR_F_Destroy(of);
		}
		OGR_F_Destroy(f);
	}
	GDALDatasetCommitTransaction(out);
	GDALClose(out);
	if (failed) {
		n = -1;
		goto done;
	}
	if (mem_commit_file(tmp, path, err) < 0) {
		n = -1;
		goto done;
	}
	if (n > 0) {
		bbox_ll[0] = env.MinX;
		bbox_ll[1] = env.MinY;
		bbox_ll[2] = env.MaxX;
		bbox_ll[3] = env.MaxY;
	} else
		bbox_ll[0] = NAN;
done:
	if (n < 0)
		unlink(tmp);
	free(tmp);
	OGR_L_SetSpatialFilter(in, NULL);
	if (clip)
		OGR_G_DestroyGeometry(clip);
	if (to_src)
		OCTDestroyCoordinateTransformation(to_src);
	if (to_dst)
		OCTDestroyCoordinateTransformation(to_dst);
	if (to_ll)
		OCTDestroyCoordinateTransformation(to_ll);
	if (dst)
		OSRDestroySpatialReference(dst);
	OSRDestroySpatialReference(wgs);
	return n;
}

/*
 * Cuts one layer into WORKDIR/vectors/ID.gpkg and returns its item (new),
 * or the item a previous run left beside the layer; NULL on error.
 */
static json_t *
layer_item(OGRLayerH layer, const char *src, const char *sum, const char *stem, const char *dt,
    OGRGeometryH clip, const struct mem_vector_opts *o, struct mem_err *err)
{
	const char *lname = OGR_L_GetName(layer);
	json_t *params = json_object(), *item = NULL, *a;
	char *sid, *id, *name, *path, *side, fsum[69], *abs, *text;
	double bb[4] = { NAN, NAN, NAN, NAN };
	off_t fsize;
	long n;

	json_object_set_new(params, "source", json_string(sum));
	json_object_set_new(params, "layer", json_string(lname));
	json_object_set_new(params, "clip", o->aoi ? json_deep_copy(o->aoi) : o->has_bbox ?
	    json_pack("[f,f,f,f]", o->bbox[0], o->bbox[1], o->bbox[2], o->bbox[3]) : json_null());
	json_object_set_new(params, "t_epsg", json_integer(o->t_epsg));
	sid = mem_xasprintf("%s-%s", stem, lname);
	name = mem_path_safe_name(sid);
	id = mem_item_derive_id(name, "mem-fetch --vector", params);
	free(sid);
	free(name);
	json_decref(params);
	path = mem_xasprintf("%s/vectors/%s.gpkg", o->workdir, id);
	side = mem_xasprintf("%s/vectors/.%s.item.json", o->workdir, id);
	/* done before: the layer and its item are there (the item written last) */
	if (mem_path_exists(path) && (item = json_load_file(side, 0, NULL)) != NULL)
		goto out;
	/* GeoPackage stamps its tables with the time: the source's, for the same bytes each run */
	CPLSetConfigOption("OGR_CURRENT_DATE", dt);
	n = write_layer(layer, clip, o, path, bb, err);
	CPLSetConfigOption("OGR_CURRENT_DATE", NULL);
	if (n < 0) {
		mem_err_prefix(err, "layer '%s' of '%s'", lname, src);
		goto out;
	}
	if (mem_file_checksum(path, fsum, &fsize, err) < 0)
		goto out;
	item = json_object();
	json_object_set_new(item, "type", json_string("Feature"));
	json_object_set_new(item, "stac_version", json_string(MEM_STAC_VERSION));
	json_object_set_new(item, "stac_extensions", json_pack("[s,s]", MEM_EXT_FILE,
	    MEM_EXT_PROCESSING));
	json_object_set_new(item, "id", json_string(id));
	if (isnan(bb[0])) {
		json_object_set_new(item, "geometry", json_null());
	} else {
		json_object_set_new(item, "bbox", json_pack("[f,f,f,f]", bb[0], bb[1], bb[2], bb[3]));
		json_object_set_new(item, "geometry", json_pack(
		    "{s:s,s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}", "type", "Polygon", "coordinates",
		    bb[0], bb[1], bb[2], bb[1], bb[2], bb[3], bb[0], bb[3], bb[0], bb[1]));
	}
	json_object_set_new(item, "properties", json_pack("{s:s,s:s,s:s,s:I,s:{s:s}}",
	    "datetime", dt, "mem:stage", "fetch", "mem:layer", lname, "mem:feature_count",
	    (json_int_t)n, "processing:software", "memories", mem_version()));
	json_object_set_new(item, "links", json_pack("[{s:s,s:s,s:s}]", "rel", "derived_from",
	    "href", src, "title", mem_path_basename(src)));
	abs = mem_path_absolute(path);
	a = json_pack("{s:s,s:s,s:[s],s:s,s:I,s:s}", "href", abs, "type",
	    "application/geopackage+sqlite3", "roles", "data", "title", lname, "file:size",
	    (json_int_t)fsize, "file:checksum", fsum);
	free(abs);
	json_object_set_new(item, "assets", json_pack("{s:o}", "data", a));
	json_object_set_new(item, "collection", json_string("vectors"));
	text = json_dumps(item, JSON_COMPACT);
	if (text == NULL || mem_write_file_atomic(side, text, strlen(text), err) < 0) {
		json_decref(item);
		item = NULL;
	}
	free(text);
out:
	free(id);
	free(path);
	free(side);
	return item;
}

int
mem_vector_fetch(const char *src, const struct mem_vector_opts *o, mem_vector_emit_fn emit,
    void *ctx, struct mem_err *err)
{
	GDALDatasetH ds;
	OGRGeometryH clip;
	struct stat st;
	char sum[69], dt[40], *stem;
	int nl, i, count = 0;

	if (mem_file_checksum(src, sum, NULL, err) < 0 || stat(src, &st) < 0) {
		if (err)
			err->status = MEM_EUSAGE;
		return -1;
	}
	CPLErrorReset();
	ds = GDALOpenEx(src, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
	if (ds == NULL)
		return mem_err_set(err, MEM_EUSAGE, "cannot open '%s': not a vector source OGR can read",
		    src);
	{
		char *dir = mem_xasprintf("%s/vectors", o->workdir);

		if (mem_workdir(dir, err) < 0) {
			free(dir);
			GDALClose(ds);
			return -1;
		}
		free(dir);
	}
	/* the source's own time: the same for every run on the same file */
	mem_time_format((double)st.st_mtime, dt, sizeof dt);
	stem = mem_path_safe_name(mem_path_basename(src));
	clip = clip_geometry(o);
	nl = GDALDatasetGetLayerCount(ds);
	for (i = 0; i < nl; i++) {
		OGRLayerH layer = GDALDatasetGetLayer(ds, i);
		json_t *item;
		int rc;

		if (!wanted(o, OGR_L_GetName(layer)))
			continue;
		item = layer_item(layer, src, sum, stem, dt, clip, o, err);
		if (item == NULL) {
			count = -1;
			break;
		}
		rc = emit(item, ctx);
		json_decref(item);
		count++;
		if (rc < 0)
			break;
	}
	if (clip)
		OGR_G_DestroyGeometry(clip);
	free(stem);
	GDALClose(ds);
	return count;
}

long
mem_vector_store_gpkg(const char *src, const char *path, const char *table, const char *date,
    json_t **tables, struct mem_err *err)
{
	GDALDatasetH in, out;
	GDALVectorTranslateOptions *vo;
	char **argv = NULL, *tmp;
	long n = 0;
	int usage = 0, nl;

	if (tables)
		*tables = NULL;
	CPLErrorReset();
	in = GDALOpenEx(src, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
	if (in == NULL) {
		if (access(src, F_OK) < 0)
			return mem_err_set(err, MEM_EITEM, "cannot open '%s': No such file or directory",
			    src);
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", src,
		    *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "not a vector source GDAL can read");
	}
	nl = GDALDatasetGetLayerCount(in);
	argv = CSLAddString(argv, "-f");
	argv = CSLAddString(argv, "GPKG");
	argv = CSLAddString(argv, "-lco");
	argv = CSLAddString(argv, "SPATIAL_INDEX=YES");
	if (nl == 1 && table) {
		argv = CSLAddString(argv, "-nln");
		argv = CSLAddString(argv, table);
	}
	vo = GDALVectorTranslateOptionsNew(argv, NULL);
	CSLDestroy(argv);
	tmp = mem_tmp_name(path);
	/* GeoPackage stamps its tables with the time: the item's, for the same bytes each run */
	CPLSetThreadLocalConfigOption("OGR_CURRENT_DATE", date);
	CPLErrorReset();
	out = GDALVectorTranslate(tmp, NULL, 1, &in, vo, &usage);
	GDALVectorTranslateOptionsFree(vo);
	if (out != NULL) {
		json_t *names = json_array();

		for (int i = 0; i < GDALDatasetGetLayerCount(out); i++) {
			OGRLayerH l = GDALDatasetGetLayer(out, i);

			n += (long)OGR_L_GetFeatureCount(l, TRUE);
			json_array_append_new(names, json_string(OGR_L_GetName(l)));
		}
		if (tables)
			*tables = names;
		else
			json_decref(names);
		CPLErrorReset();
		GDALClose(out);		/* stamps last_change: still under the item's date */
		if (CPLGetLastErrorType() >= CE_Failure)
			out = NULL;
	}
	CPLSetThreadLocalConfigOption("OGR_CURRENT_DATE", NULL);
	GDALClose(in);
	if (out == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot write GeoPackage '%s': %s", path,
		    mem_fs_full(tmp) ? strerror(ENOSPC) :
		    *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown error");
		unlink(tmp);
		free(tmp);
		if (tables) {
			json_decref(*tables);
			*tables = NULL;
		}
		return -1;
	}
	if (mem_commit_file(tmp, path, err) < 0) {
		free(tmp);
		if (tables) {
			json_decref(*tables);
			*tables = NULL;
		}
		return -1;
	}
	free(tmp);
	return n;
}
