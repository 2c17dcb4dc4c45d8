/*
 * test-halo.c - which items are a tile's neighbours (mem_halo_neighbours):
 * a 3x3 block of 100 x 100 pixel tiles and their near misses (another
 * CRS, date, platform, pixel size, a grid half a pixel off, a tile just
 * beyond the halo), and the VRT it reads them through.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halo.h"
#include "tap.h"

/* A tile item of w x h pixels of size px at (x0, y0). */
static json_t *
tile(const char *id, double x0, double y0, int w, int h, double px, const char *extra)
{
	char buf[1024];
	json_error_t e;
	json_t *j;

	snprintf(buf, sizeof buf, "{\"type\": \"Feature\", \"id\": \"%s\", \"properties\": {"
	    "\"datetime\": \"2024-09-06T17:30:00Z\", \"platform\": \"sentinel-2a\", "
	    "\"proj:epsg\": 32613, \"proj:transform\": [%.17g, 0, %.17g, 0, %.17g, %.17g], "
	    "\"proj:shape\": [%d, %d]%s%s}, \"assets\": {}}", id, px, x0, -px, y0, h, w,
	    extra ? ", " : "", extra ? extra : "");
	j = json_loads(buf, 0, &e);
	if (j == NULL)
		fprintf(stderr, "bad item %s: %s\n", buf, e.text);
	return j;
}

static int
has(const size_t *v, size_t n, size_t k)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == k)
			return 1;
	return 0;
}

int
main(void)
{
	json_t *it[32];
	size_t n = 0, near[32], m, centre;
	struct mem_halo_index *x;
	struct mem_halo_src src[2] = {
		{ "/a/b&c.tif", 1, -2, 0, 4, 100, 1, 0 },
		{ "own.tif", 2, 0, 0, 4, 4, 0, 0 },
	};
	double gt[6] = { 500000, 10, 0, 4000000, 0, -10 };
	char *xml;

	/* the 3x3 block: centre at (1000, 2000), 10 m pixels, 1000 m tiles */
	for (int r = -1; r <= 1; r++)
		for (int c = -1; c <= 1; c++) {
			char id[32];

			snprintf(id, sizeof id, "t%d%d", r + 1, c + 1);
			it[n++] = tile(id, 1000 + c * 1000, 2000 - r * 1000, 100, 100, 10, NULL);
		}
	centre = 4;
	it[n++] = tile("far", 2010, 2000, 100, 100, 10, NULL);	/* dx 101: beyond halo 1 */
	it[n++] = tile("crs", 2000, 2000, 100, 100, 10, "\"proj:epsg\": 32614");
	it[n++] = tile("date", 2000, 2000, 100, 100, 10, "\"datetime\": \"2024-09-07T17:30:00Z\"");
	it[n++] = tile("platform", 2000, 2000, 100, 100, 10, "\"platform\": \"sentinel-2b\"");
	it[n++] = tile("pixel", 2000, 2000, 50, 50, 20, NULL);
	it[n++] = tile("half", 2005, 2000, 100, 100, 10, NULL);
	it[n++] = tile("overlap", 1500, 2000, 100, 100, 10, NULL);
	it[n++] = tile("nogrid", 2000, 2000, 100, 100, 10, "\"proj:shape\": null");
	/* the same instant written with an offset is the same acquisition */
	it[n++] = tile("offset", 1000, 1000, 100, 100, 10,
	    "\"datetime\": \"2024-09-06T19:30:00+02:00\"");
	for (size_t i = 0; i < n; i++)
		if (it[i] == NULL)
			return 1;
	x = mem_halo_index_new(it, n);

	m = mem_halo_neighbours(x, centre, 1, near);
	is_int((long long)m, 10, "the centre tile has 10 neighbours at halo 1");
	for (size_t i = 0; i < 9; i++)
		if (i != centre)
			ok(has(near, m, i), "tile %s is one", json_string_value(json_object_get(it[i], "id")));
	ok(!has(near, m, centre), "not itself");
	ok(has(near, m, 15), "an overlapping tile is one");
	ok(has(near, m, 17), "a datetime with an offset is the same instant");
	ok(!has(near, m, 9), "a tile 1 px beyond the grown extent is not");
	ok(!has(near, m, 10), "another CRS is not");
	ok(!has(near, m, 11), "another datetime is not");
	ok(!has(near, m, 12), "another platform is not");
	ok(!has(near, m, 13), "another pixel size is not");
	ok(!has(near, m, 14), "a grid half a pixel off is not");
	ok(!has(near, m, 16), "an item without proj:shape is not");
	is_int((long long)mem_halo_neighbours(x, 16, 1, near), 0, "an item without a grid has none");
	m = mem_halo_neighbours(x, centre, 2, near);
	ok(has(near, m, 9), "a tile 1 px beyond halo 1 is within halo 2");
	m = mem_halo_neighbours(x, 0, 1, near);
	is_int((long long)m, 3, "a corner tile has 3 neighbours");
	mem_halo_index_free(x);

	xml = mem_halo_vrt(4, 4, gt, NULL, 0, 0, src, 2);
	like(xml, "rasterXSize=\"4\" rasterYSize=\"4\"", "the VRT's size");
	like(xml, "<NoDataValue>nan</NoDataValue>", "nodata NaN where no tile is");
	like(xml, "/a/b&amp;c.tif", "file names escaped");
	like(xml, "<SrcRect xOff=\"2\" yOff=\"0\" xSize=\"2\" ySize=\"4\"/>"
	    "<DstRect xOff=\"0\" yOff=\"0\" xSize=\"2\" ySize=\"4\"/><NODATA>0</NODATA>",
	    "a source cut to the VRT, its nodata transparent");
	ok(strstr(xml, "ComplexSource") < strstr(xml, "own.tif"), "the item's own source last");
	free(xml);
	xml = mem_halo_vrt(4, 4, gt, NULL, 1, 0, src, 2);
	like(xml, "<NoDataValue>0</NoDataValue>", "or the nodata given");
	free(xml);
	for (size_t i = 0; i < n; i++)
		json_decref(it[i]);
	done_testing();
	return tap_exit();
}
