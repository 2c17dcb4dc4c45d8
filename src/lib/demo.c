/*
 * demo.c - the demo scene.
 *
 * A synthetic scene with the look of a Sentinel-2 L2A tile in the Alps:
 * a lake, vegetation and bare ground laid out by smooth value noise, a
 * cloud with its shadow, and a nodata wedge where the swath ends.  All of
 * it comes from integer hashing of pixel positions, so the bytes are the
 * same on every machine and every run; the tests compare two runs with cmp.
 */
#include "config.h"

#include <cpl_string.h>
#include <gdal.h>
#include <jansson.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "files.h"
#include "item.h"
#include "raster.h"

#define X0 560000.0
#define Y0 5110000.0
#define COLL "sentinel-2-l2a-demo"
#define ITEM_ID "S2A_32TNR_20240715_0_L2A_DEMO"

enum cover { NODATA, WATER, VEG, BARE, CLOUD, SHADOW };

static uint32_t
hash(uint32_t x, uint32_t y, uint32_t s)
{
	uint32_t h = x * 0x8da6b343u ^ y * 0xd8163841u ^ s * 0xcb1ab31fu;

	h ^= h >> 13;
	h *= 0x5bd1e995u;
	h ^= h >> 15;
	return h;
}

/* Smooth value noise in [0,1) with cells of the given size (pixels). */
static double
noise(double x, double y, double cell, uint32_t seed)
{
	double fx = x / cell, fy = y / cell;
	uint32_t ix = (uint32_t)floor(fx), iy = (uint32_t)floor(fy);
	double tx = fx - floor(fx), ty = fy - floor(fy);
	double a = hash(ix, iy, seed) / 4294967296.0, b = hash(ix + 1, iy, seed) / 4294967296.0;
	double c = hash(ix, iy + 1, seed) / 4294967296.0, d = hash(ix + 1, iy + 1, seed) / 4294967296.0;

	tx = tx * tx * (3 - 2 * tx);
	ty = ty * ty * (3 - 2 * ty);
	return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

/* Land cover at (x, y) on a grid of n pixels (10 m units). */
static enum cover
cover_at(double x, double y, int n)
{
	double u = x / n, v = y / n;
	double lake = pow((u - 0.3) / 0.16, 2) + pow((v - 0.62) / 0.1, 2);
	double cloud = pow((u - 0.72) / 0.1, 2) + pow((v - 0.28) / 0.08, 2);
	double shadow = pow((u - 0.66) / 0.1, 2) + pow((v - 0.36) / 0.08, 2);
	double wobble = 0.25 * noise(x, y, n / 16.0, 7);

	if (u + v > 1.78)
		return NODATA;	/* the swath edge */
	if (cloud + wobble < 1)
		return CLOUD;
	if (shadow + wobble < 1)
		return SHADOW;
	if (lake + wobble < 1)
		return WATER;
	return noise(x, y, n / 6.0, 11) + 0.3 * noise(x, y, n / 40.0, 13) > 0.75 ? VEG : BARE;
}

/* Reflectance x 10000 of band b (0 blue, 1 green, 2 red, 3 nir) for a cover. */
static uint16_t
value(enum cover c, int b, int x, int y)
{
	static const int base[6][4] = {
		{ 0, 0, 0, 0 },
		{ 620, 540, 310, 160 },		/* water */
		{ 380, 720, 340, 3600 },	/* vegetation */
		{ 1150, 1450, 1750, 2450 },	/* bare ground and rock */
		{ 7100, 7250, 7400, 7600 },	/* cloud */
		{ 460, 580, 700, 980 }		/* cloud shadow on ground */
	};
	int jitter = (int)(hash((uint32_t)x, (uint32_t)y, (uint32_t)b + 101) % 121) - 60;
	int v;

	if (c == NODATA)
		return 0;
	v = base[c][b] + jitter;
	return (uint16_t)(v < 1 ? 1 : v);
}

static uint8_t
scl_class(enum cover c)
{
	static const uint8_t k[6] = { 0, 6, 4, 5, 9, 3 };

	return k[c];
}

static GDALDatasetH
mem_dataset(int n, double res, GDALDataType t)
{
	GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", n, n, 1, t, NULL);
	double gt[6] = { X0, res, 0, Y0, 0, -res };
	OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);

	OSRImportFromEPSG(srs, 32632);
	GDALSetGeoTransform(ds, gt);
	GDALSetSpatialRef(ds, srs);
	OSRDestroySpatialReference(srs);
	GDALSetRasterNoDataValue(GDALGetRasterBand(ds, 1), 0);
	return ds;
}

static json_t *
band_asset(const char *file, const char *title, const char *name, const char *common,
    double cw, int res, const char *dtype, int reflectance)
{
	json_t *a = json_object(), *roles = json_array(), *rb = json_array(), *b = json_object();

	json_object_set_new(a, "href", json_string(file));
	json_object_set_new(a, "type",
	    json_string("image/tiff; application=geotiff; profile=cloud-optimized"));
	json_object_set_new(a, "title", json_string(title));
	if (name) {
		json_t *eo = json_array(), *e = json_object();

		json_object_set_new(e, "name", json_string(name));
		json_object_set_new(e, "common_name", json_string(common));
		json_object_set_new(e, "center_wavelength", json_real(cw));
		json_array_append_new(eo, e);
		json_object_set_new(a, "eo:bands", eo);
	}
	json_object_set_new(a, "gsd", json_integer(res));
	json_object_set_new(b, "nodata", json_integer(0));
	json_object_set_new(b, "data_type", json_string(dtype));
	json_object_set_new(b, "spatial_resolution", json_integer(res));
	if (reflectance) {
		json_object_set_new(b, "scale", json_real(0.0001));
		json_object_set_new(b, "offset", json_integer(0));
	}
	json_array_append_new(rb, b);
	json_object_set_new(a, "raster:bands", rb);
	json_array_append_new(roles, json_string("data"));
	if (reflectance)
		json_array_append_new(roles, json_string("reflectance"));
	json_object_set_new(a, "roles", roles);
	return a;
}

static int
write_json(const char *path, json_t *v, struct mem_err *err)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	char *t = mem_xasprintf("%s\n", s);
	int rc = mem_write_file_atomic(path, t, strlen(t), err);

	free(s);
	free(t);
	return rc;
}

static json_t *
mklink(const char *rel, const char *href, const char *type)
{
	return json_pack("{s:s,s:s,s:s}", "rel", rel, "href", href, "type", type);
}

int
mem_demo_write(const char *dir, int n, struct mem_err *err)
{
	static const char *files[4] = { "B02.tif", "B03.tif", "B04.tif", "B08.tif" };
	char *idir = mem_xasprintf("%s/" COLL "/" ITEM_ID, dir), *path;
	uint16_t *buf;
	uint8_t *scl;
	double ll[4];
	json_t *item, *props, *assets, *coll, *cat;
	int b, x, y, half = n / 2;
	GDALDatasetH ds;

	if (n < 64 || n > 20000)
		return mem_err_set(err, MEM_EUSAGE, "demo size %d out of range (64-20000)", n);
	if (mem_mkdir_p(idir, err) < 0) {
		free(idir);
		return -1;
	}
	buf = malloc((size_t)n * n * sizeof *buf);
	scl = malloc((size_t)half * half);
	if (buf == NULL || scl == NULL) {
		free(buf);
		free(scl);
		free(idir);
		return mem_err_set(err, MEM_EUSAGE, "out of memory for a %dx%d demo scene", n, n);
	}
	for (b = 0; b < 4; b++) {
#pragma omp parallel for schedule(static)
		for (y = 0; y < n; y++)
			for (int xx = 0; xx < n; xx++)
				buf[(size_t)y * n + xx] = value(cover_at(xx + 0.5, y + 0.5, n), b, xx, y);
		ds = mem_dataset(n, 10, GDT_UInt16);
		if (GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, n, n, buf, n, n, GDT_UInt16,
		    0, 0) != CE_None) {
			GDALClose(ds);
			mem_err_set(err, MEM_EITEM, "cannot fill the demo band in memory");
			goto fail;
		}
		path = mem_path_join(idir, files[b]);
		if (mem_raster_write_cog(ds, path, NULL, err) < 0) {
			GDALClose(ds);
			free(path);
			goto fail;
		}
		free(path);
		GDALClose(ds);
	}
	for (y = 0; y < half; y++)
		for (x = 0; x < half; x++)
			scl[(size_t)y * half + x] = scl_class(cover_at(2 * x + 1.0, 2 * y + 1.0, n));
	ds = mem_dataset(half, 20, GDT_Byte);
	if (GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, half, half, scl, half, half,
	    GDT_Byte, 0, 0) != CE_None) {
		GDALClose(ds);
		mem_err_set(err, MEM_EITEM, "cannot fill the demo SCL band in memory");
		goto fail;
	}
	path = mem_path_join(idir, "SCL.tif");
	/* classes: overviews by nearest neighbour, not the COG driver's cubic */
	if (mem_raster_write_cog(ds, path, (char *[]){ "RESAMPLING=NEAREST", NULL }, err) < 0) {
		GDALClose(ds);
		free(path);
		goto fail;
	}
	free(path);
	if (mem_raster_lonlat_bbox(ds, ll, err) < 0) {
		GDALClose(ds);
		goto fail;
	}
	GDALClose(ds);

	item = json_object();
	json_object_set_new(item, "type", json_string("Feature"));
	json_object_set_new(item, "stac_version", json_string(MEM_STAC_VERSION));
	json_object_set_new(item, "stac_extensions", json_pack("[s,s,s]", MEM_EXT_EO, MEM_EXT_PROJ,
	    MEM_EXT_RASTER));
	json_object_set_new(item, "id", json_string(ITEM_ID));
	json_object_set_new(item, "geometry", json_pack("{s:s,s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}",
	    "type", "Polygon", "coordinates", ll[0], ll[1], ll[2], ll[1], ll[2], ll[3], ll[0], ll[3],
	    ll[0], ll[1]));
	json_object_set_new(item, "bbox", json_pack("[f,f,f,f]", ll[0], ll[1], ll[2], ll[3]));
	props = json_object();
	json_object_set_new(props, "datetime", json_string("2024-07-15T10:20:31.024000Z"));
	json_object_set_new(props, "platform", json_string("sentinel-2a"));
	json_object_set_new(props, "constellation", json_string("sentinel-2"));
	json_object_set_new(props, "instruments", json_pack("[s]", "msi"));
	json_object_set_new(props, "eo:cloud_cover", json_real(7.5));
	json_object_set_new(props, "proj:epsg", json_integer(32632));
	json_object_set_new(props, "mgrs:utm_zone", json_integer(32));
	json_object_set_new(props, "s2:processing_baseline", json_string("05.10"));
	json_object_set_new(props, "description",
	    json_string("Synthetic demo scene made by mem-demo; not real data"));
	json_object_set_new(item, "properties", props);
	json_object_set_new(item, "links", json_pack("[o,o,o,o]",
	    mklink("root", "../../catalog.json", "application/json"),
	    mklink("parent", "../collection.json", "application/json"),
	    mklink("collection", "../collection.json", "application/json"),
	    mklink("self", "./" ITEM_ID ".json", "application/geo+json")));
	assets = json_object();
	json_object_set_new(assets, "blue", band_asset("./B02.tif", "Blue (band 2) - 10m", "B02",
	    "blue", 0.49, 10, "uint16", 1));
	json_object_set_new(assets, "green", band_asset("./B03.tif", "Green (band 3) - 10m", "B03",
	    "green", 0.56, 10, "uint16", 1));
	json_object_set_new(assets, "red", band_asset("./B04.tif", "Red (band 4) - 10m", "B04",
	    "red", 0.665, 10, "uint16", 1));
	json_object_set_new(assets, "nir", band_asset("./B08.tif", "NIR 1 (band 8) - 10m", "B08",
	    "nir", 0.842, 10, "uint16", 1));
	json_object_set_new(assets, "scl", band_asset("./SCL.tif", "Scene classification map (SCL)",
	    NULL, NULL, 0, 20, "uint8", 0));
	json_object_set_new(item, "assets", assets);
	json_object_set_new(item, "collection", json_string(COLL));
	path = mem_xasprintf("%s/" ITEM_ID ".json", idir);
	if (write_json(path, item, err) < 0) {
		free(path);
		json_decref(item);
		goto fail;
	}
	free(path);
	json_decref(item);

	coll = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:{s:[[f,f,f,f]]},s:{s:[[s,s]]}},s:[o,o,o]}",
	    "type", "Collection", "stac_version", MEM_STAC_VERSION, "id", COLL,
	    "description", "Synthetic Sentinel-2 L2A look-alike made by mem-demo",
	    "license", "CC0-1.0", "extent", "spatial", "bbox", ll[0], ll[1], ll[2], ll[3],
	    "temporal", "interval", "2024-07-15T10:20:31.024000Z", "2024-07-15T10:20:31.024000Z",
	    "links", mklink("root", "../catalog.json", "application/json"),
	    mklink("parent", "../catalog.json", "application/json"),
	    mklink("item", "./" ITEM_ID "/" ITEM_ID ".json", "application/geo+json"));
	path = mem_xasprintf("%s/" COLL "/collection.json", dir);
	if (write_json(path, coll, err) < 0) {
		free(path);
		json_decref(coll);
		goto fail;
	}
	free(path);
	json_decref(coll);

	cat = json_pack("{s:s,s:s,s:s,s:s,s:[o,o]}", "type", "Catalog", "stac_version",
	    MEM_STAC_VERSION, "id", "memories-demo", "description",
	    "Demo catalog made by mem-demo: one synthetic Sentinel-2 L2A scene",
	    "links", mklink("root", "./catalog.json", "application/json"),
	    mklink("child", "./" COLL "/collection.json", "application/json"));
	path = mem_path_join(dir, "catalog.json");
	if (write_json(path, cat, err) < 0) {
		free(path);
		json_decref(cat);
		goto fail;
	}
	free(path);
	json_decref(cat);
	free(buf);
	free(scl);
	free(idir);
	return 0;
fail:
	free(buf);
	free(scl);
	free(idir);
	return -1;
}
