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
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdlib.h>
#include <string.h>

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
