/*
 * test-grid.c - tile grid arithmetic against values published elsewhere.
 *
 * The expected WebMercatorQuad numbers are not computed with the code
 * under test: they come from the OGC definition (OGC 17-083r2, Annex D:
 * half extent pi * 6378137 m, cell size at zoom 13 of 19.1092570712943 m),
 * from the OSM "slippy map" formula
 *
 *     x = floor((lon + 180) / 360 * 2^z)
 *     y = floor((1 - asinh(tan(lat)) / pi) / 2 * 2^z)
 *
 * evaluated separately (Python, double precision) and pasted here, and from
 * the well-known checks (0,0)@z1 = 1/1, Berlin@z10 = 550/335.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grid.h"
#include "tap.h"

#define H 20037508.342789244	/* pi * 6378137, OGC WebMercatorQuad half extent */

static struct mem_grid
grid(const char *spec)
{
	struct mem_grid g;
	struct mem_err err;

	if (mem_grid_parse(spec, &g, &err) < 0) {
		diag("cannot parse grid '%s': %s", spec, err.msg);
		memset(&g, 0, sizeof g);
	}
	return g;
}

static void
check_bounds(const struct mem_grid *g, long x, long y, const double want[4], double tol,
    const char *what)
{
	static const char *side[] = { "minx", "miny", "maxx", "maxy" };
	double b[4];
	int i;

	mem_grid_tile_bounds(g, x, y, b);
	for (i = 0; i < 4; i++)
		is_double(b[i], want[i], tol, "%s %s", what, side[i]);
}

static void
test_webmercator_bounds(void)
{
	struct mem_grid g;

	g = grid("webmercator:0");
	check_bounds(&g, 0, 0, (double[]){ -H, -H, H, H }, 1e-6, "tile 0/0/0");

	g = grid("webmercator:1");
	check_bounds(&g, 1, 0, (double[]){ 0, 0, 20037508.3427892, 20037508.3427892 }, 1e-6,
	    "tile 1/1/0");
	check_bounds(&g, 0, 1, (double[]){ -20037508.3427892, -20037508.3427892, 0, 0 }, 1e-6,
	    "tile 1/0/1");

	/*
	 * span = 40075016.68557849 / 8192 = 4891.96981025128;
	 * minx = 4290 * span - H, maxy = H - 2918 * span (Python float64).
	 */
	g = grid("webmercator:13");
	check_bounds(&g, 4290, 2918,
	    (double[]){ 949042.1431887485, 5757848.466665756, 953934.1129989997, 5762740.436476009 },
	    1e-6, "tile 13/4290/2918");
	{
		/* and by the formula in long double, as a second opinion */
		long double span = 40075016.68557849L / 8192, h = 20037508.342789244L;
		double b[4];

		mem_grid_tile_bounds(&g, 4290, 2918, b);
		is_double(b[0], (double)(4290 * span - h), 1e-6, "tile 13/4290/2918 minx by formula");
		is_double(b[3], (double)(h - 2918 * span), 1e-6, "tile 13/4290/2918 maxy by formula");
	}
	is_double(mem_grid_span(&g), 4891.96981025128, 1e-8, "z13 tile span");
	/* OGC 17-083r2 Table D.1: cell size at zoom 13 */
	is_double(mem_grid_res(&g), 19.1092570712943, 1e-9, "z13 cell size is the OGC value");
	is_int(g.epsg, 3857, "webmercator grid is EPSG:3857");
	is_int(g.tile_size, 256, "webmercator tiles are 256 px by default");

	g = grid("webmercator:13:512");
	is_int(g.tile_size, 512, "webmercator:13:512 has 512 px tiles");
	is_double(mem_grid_res(&g), 9.554628535647032, 1e-9, "512 px tiles halve the cell size");
	is_double(mem_grid_span(&g), 4891.96981025128, 1e-8, "512 px tiles keep the z13 span");
}

static void
tile_of(double lon, double lat, int z, long wx, long wy, const char *what)
{
	long x = -1, y = -1;

	mem_grid_webmercator_tile(lon, lat, z, &x, &y);
	ok(x == wx && y == wy, "%s: (%g, %g) at z%d is %ld/%ld", what, lon, lat, z, wx, wy);
	if (x != wx || y != wy)
		diag("     got: %ld/%ld", x, y);
}

static void
test_webmercator_tile(void)
{
	struct mem_grid g = grid("webmercator:13");
	double b[4];
	long x, y;

	tile_of(0, 0, 1, 1, 1, "origin");
	tile_of(-180, 85.0511, 5, 0, 0, "north-west corner");
	/* the OSM wiki / Mapbox example: Berlin */
	tile_of(13.4050, 52.5200, 10, 550, 335, "Berlin");
	/* floor((190.5/360) * 8192) = 4334; floor((1 - asinh(tan 46deg)/pi)/2 * 8192) = 2914 */
	tile_of(10.5, 46.0, 13, 4334, 2914, "Val Seriana");
	tile_of(8.55, 45.87, 13, 4290, 2918, "inside 13/4290/2918");

	/* the point must lie inside the bounds of the tile it is given */
	mem_grid_webmercator_tile(10.5, 46.0, 13, &x, &y);
	mem_grid_tile_bounds(&g, x, y, b);
	{
		/* spherical Mercator of (10.5, 46.0): 1168854.6533293726, 5780349.220256351 */
		double mx = 1168854.6533293726, my = 5780349.220256351;

		ok(b[0] <= mx && mx < b[2] && b[1] < my && my <= b[3],
		    "(10.5, 46.0) lies inside the bounds of its own tile");
	}

	/* outside the Mercator latitude range the edge rows are used */
	tile_of(180, 0, 5, 31, 16, "lon 180 is the last column");
	tile_of(0, 90, 5, 16, 0, "the north pole clamps to row 0");
	tile_of(0, -85.06, 5, 16, 31, "below -85.0511 clamps to the last row");
	tile_of(0, -89.9999, 5, 16, 31, "near the south pole clamps to the last row");
	tile_of(0, -90, 5, 16, 31, "the south pole clamps to the last row");
}

static void
test_parse(void)
{
	struct mem_grid g;
	struct mem_err err;
	static const char *bad[] = {
		"utm:-1", "utm:0", "utm:abc", "utm:10:8", "utm:10:512:1", "foo", "webmercator:",
		"webmercator", "", "webmercator:13:8", "webmercator:13:512:1", "webmercator:x",
		"utm:10x",
	};
	size_t i;

	ok(mem_grid_parse("webmercator:13", &g, &err) == 0 && g.kind == MEM_GRID_WEBMERCATOR &&
	    g.zoom == 13 && g.tile_size == 256, "parse 'webmercator:13'");
	ok(mem_grid_parse("webmercator:13:512", &g, &err) == 0 && g.zoom == 13 &&
	    g.tile_size == 512, "parse 'webmercator:13:512'");
	ok(mem_grid_parse("WebMercatorQuad:5", &g, &err) == 0 && g.zoom == 5,
	    "parse the OGC name 'WebMercatorQuad:5'");
	ok(mem_grid_parse("webmercator:0", &g, &err) == 0 && g.zoom == 0, "zoom 0 is allowed");
	ok(mem_grid_parse("webmercator:30", &g, &err) == 0 && g.zoom == 30, "zoom 30 is allowed");

	err.msg[0] = '\0';
	ok(mem_grid_parse("webmercator:31", &g, &err) < 0, "'webmercator:31' is refused");
	like(err.msg, "range", "the zoom error mentions the range");
	like(err.msg, "31", "the zoom error names the zoom");
	is_int(err.status, MEM_EUSAGE, "a bad grid is a usage error");
	ok(mem_grid_parse("webmercator:-1", &g, &err) < 0, "'webmercator:-1' is refused");

	ok(mem_grid_parse("utm", &g, &err) == 0 && g.kind == MEM_GRID_UTM && g.res == 0 &&
	    g.tile_size == 1024 && g.epsg == 0, "parse 'utm': resolution and zone from the scene");
	ok(mem_grid_parse("utm:10", &g, &err) == 0 && g.res == 10 && g.tile_size == 1024,
	    "parse 'utm:10'");
	ok(mem_grid_parse("utm:10:512", &g, &err) == 0 && g.res == 10 && g.tile_size == 512,
	    "parse 'utm:10:512'");
	ok(mem_grid_parse("utm:0.5", &g, &err) == 0 && g.res == 0.5, "parse 'utm:0.5'");

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		err.msg[0] = '\0';
		ok(mem_grid_parse(bad[i], &g, &err) < 0 && err.status == MEM_EUSAGE &&
		    strstr(err.msg, bad[i]) != NULL, "'%s' is refused, naming the spec", bad[i]);
	}
	err.msg[0] = '\0';
	mem_grid_parse("foo", &g, &err);
	like(err.msg, "webmercator:ZOOM", "the error shows the expected syntax");

	/* strtok_r folds empty fields: "utm::512" silently means RES 512 */
	{
		int rc = mem_grid_parse("utm::512", &g, &err);

		ok(rc < 0 || (g.res == 0 && g.tile_size == 512),
		    "'utm::512' is refused or means the default RES with 512 px tiles");
	}
}

static void
test_tile_range(void)
{
	struct mem_grid g = grid("webmercator:13");
	double b[4], box[4];
	long x0, y0, x1, y1;
	int z, bad, fz = -1;
	long fx = 0, fy = 0;

	/* a box exactly on the edges of one tile is that tile only */
	mem_grid_tile_bounds(&g, 4290, 2918, b);
	ok(mem_grid_tile_range(&g, b, &x0, &y0, &x1, &y1) == 0 && x0 == 4290 && x1 == 4290 &&
	    y0 == 2918 && y1 == 2918, "box on the edges of 13/4290/2918 is that tile alone");
	if (x0 != 4290 || x1 != 4290 || y0 != 2918 || y1 != 2918)
		diag("     got: x %ld..%ld y %ld..%ld", x0, x1, y0, y1);

	/* one metre over the east edge takes the next column */
	memcpy(box, b, sizeof box);
	box[2] += 1;
	ok(mem_grid_tile_range(&g, box, &x0, &y0, &x1, &y1) == 0 && x0 == 4290 && x1 == 4291 &&
	    y0 == 2918 && y1 == 2918, "one metre east of the edge takes column 4291");
	memcpy(box, b, sizeof box);
	box[1] -= 1;
	ok(mem_grid_tile_range(&g, box, &x0, &y0, &x1, &y1) == 0 && y0 == 2918 && y1 == 2919,
	    "one metre south of the edge takes row 2919");

	/* a box inside a tile */
	box[0] = b[0] + 10;
	box[1] = b[1] + 10;
	box[2] = b[2] - 10;
	box[3] = b[3] - 10;
	ok(mem_grid_tile_range(&g, box, &x0, &y0, &x1, &y1) == 0 && x0 == 4290 && x1 == 4290 &&
	    y0 == 2918 && y1 == 2918, "box inside a tile is that tile");

	/* the whole world at z2 is 4 x 4 tiles; past it is clamped; outside is -1 */
	g = grid("webmercator:2");
	ok(mem_grid_tile_range(&g, (double[]){ -H, -H, H, H }, &x0, &y0, &x1, &y1) == 0 &&
	    x0 == 0 && y0 == 0 && x1 == 3 && y1 == 3, "the world at z2 is tiles 0..3 x 0..3");
	ok(mem_grid_tile_range(&g, (double[]){ -3e7, -3e7, 3e7, 3e7 }, &x0, &y0, &x1, &y1) == 0 &&
	    x0 == 0 && y0 == 0 && x1 == 3 && y1 == 3, "a box past the world is clamped");
	ok(mem_grid_tile_range(&g, (double[]){ 2.1e7, 0, 2.2e7, 1 }, &x0, &y0, &x1, &y1) < 0,
	    "a box east of the world is outside the grid");

	/* every zoom: a tile's own bounds map back to that tile only */
	for (z = 0, bad = 0; z <= MEM_ZOOM_MAX; z++) {
		char spec[32];
		long n = 1L << z, k;

		if (z == 23) {
			ok(bad == 0, "tile bounds map back to their tile at zooms 0-22");
			bad = 0;
			fz = -1;
		}
		snprintf(spec, sizeof spec, "webmercator:%d", z);
		g = grid(spec);
		for (k = 0; k < 500; k++) {
			long x = (long)(((unsigned long)k * 2654435761UL) % (unsigned long)n);
			long y = (long)(((unsigned long)k * 40503UL + 7) % (unsigned long)n);

			mem_grid_tile_bounds(&g, x, y, b);
			if (mem_grid_tile_range(&g, b, &x0, &y0, &x1, &y1) < 0 || x0 != x ||
			    x1 != x || y0 != y || y1 != y) {
				if (fz < 0) {
					fz = z;
					fx = x;
					fy = y;
				}
				bad++;
			}
		}
	}
	ok(bad == 0, "tile bounds map back to their tile at zooms 23-30");
	if (bad > 0)
		diag("%d of 4000 tiles spill, first at %d/%ld/%ld", bad, fz, fx, fy);

	/* UTM: tiles of 10240 m from the zone origin */
	g = grid("utm:10:1024");
	g.epsg = 32629;
	is_double(mem_grid_span(&g), 10240, 0, "utm:10:1024 span is 10240 m");
	is_double(mem_grid_res(&g), 10, 0, "utm:10:1024 res is 10 m");
	check_bounds(&g, 23, 280, (double[]){ 235520, 2867200, 245760, 2877440 }, 0,
	    "utm tile 23/280");
	check_bounds(&g, 0, 0, (double[]){ 0, 0, 10240, 10240 }, 0, "utm tile 0/0");
	ok(mem_grid_tile_range(&g, (double[]){ 235520, 2867200, 245760, 2877440 }, &x0, &y0, &x1,
	    &y1) == 0 && x0 == 23 && x1 == 23 && y0 == 280 && y1 == 280,
	    "utm box on the edges of tile 23/280 is that tile alone");
	/* Sentinel-2 tile 29RKH: 199980..309780 E, 2690220..2800020 N */
	ok(mem_grid_tile_range(&g, (double[]){ 199980, 2690220, 309780, 2800020 }, &x0, &y0, &x1,
	    &y1) == 0 && x0 == 19 && x1 == 30 && y0 == 262 && y1 == 273,
	    "the 29RKH scene covers utm tiles 19..30 x 262..273");
	g = grid("utm:20:256");
	is_double(mem_grid_span(&g), 5120, 0, "utm:20:256 span is 5120 m");
	check_bounds(&g, 3, 4, (double[]){ 15360, 20480, 20480, 25600 }, 0, "utm:20:256 tile 3/4");
}

static void
test_utm_epsg(void)
{
	is_int(mem_grid_utm_epsg(9.9, 46.0), 32632, "(9.9, 46.0) is zone 32N");
	is_int(mem_grid_utm_epsg(-11.4, 24.8), 32629, "(-11.4, 24.8) is zone 29N");
	is_int(mem_grid_utm_epsg(10, -33), 32732, "(10, -33) is zone 32S");
	is_int(mem_grid_utm_epsg(13.405, 52.52), 32633, "Berlin is zone 33N");
	is_int(mem_grid_utm_epsg(-74.0, 40.7), 32618, "New York is zone 18N");
	is_int(mem_grid_utm_epsg(0, 0), 32631, "(0, 0) is zone 31N");
	is_int(mem_grid_utm_epsg(-0.0001, 0), 32630, "just west of Greenwich is zone 30N");
	is_int(mem_grid_utm_epsg(0, -0.0001), 32731, "just south of the equator is zone 31S");
	is_int(mem_grid_utm_epsg(-180, 0), 32601, "lon -180 is zone 1");
	is_int(mem_grid_utm_epsg(180, 0), 32660, "lon 180 is zone 60");
	is_int(mem_grid_utm_epsg(179.9, -10), 32760, "lon 179.9 is zone 60S");
	/* Norway: 32V spans 3E-12E between 56N and 64N */
	is_int(mem_grid_utm_epsg(5, 60), 32632, "Bergen (5, 60) is zone 32N, the Norway exception");
	is_int(mem_grid_utm_epsg(2.9, 60), 32631, "west of 3E stays in zone 31N");
	is_int(mem_grid_utm_epsg(5, 55.9), 32631, "south of 56N the exception does not apply");
	is_int(mem_grid_utm_epsg(5, 64), 32631, "from 64N the exception does not apply");
	/* Svalbard: 31X, 33X, 35X, 37X between 72N and 84N */
	is_int(mem_grid_utm_epsg(15, 78), 32633, "Longyearbyen (15, 78) is zone 33N");
	is_int(mem_grid_utm_epsg(3, 78), 32631, "(3, 78) is zone 31N");
	is_int(mem_grid_utm_epsg(10, 78), 32633, "(10, 78) is zone 33N");
	is_int(mem_grid_utm_epsg(25, 78), 32635, "(25, 78) is zone 35N");
	is_int(mem_grid_utm_epsg(40, 78), 32637, "(40, 78) is zone 37N");
	is_int(mem_grid_utm_epsg(45, 78), 32638, "east of 42E is zone 38N again");
	is_int(mem_grid_utm_epsg(15, 71.9), 32633, "south of 72N the ordinary zone (33N)");
	is_int(mem_grid_utm_epsg(7, 71.9), 32632, "(7, 71.9) is the ordinary zone 32N");
}

static void
test_cell_names(void)
{
	struct mem_grid g;
	char buf[128];

	g = grid("webmercator:13");
	mem_grid_cell_name(&g, 4290, 2918, buf, sizeof buf);
	is_str(buf, "webmercator/13/4290/2918", "cell name of 13/4290/2918");
	g = grid("webmercator:13:512");
	mem_grid_cell_name(&g, 4290, 2918, buf, sizeof buf);
	is_str(buf, "webmercator-512/13/4290/2918", "cell name with 512 px tiles");
	g = grid("utm:10:1024");
	g.epsg = 32629;
	mem_grid_cell_name(&g, 23, 280, buf, sizeof buf);
	is_str(buf, "utm/32629/10/1024/23/280", "utm cell name");
	g = grid("utm:0.5:256");
	g.epsg = 32733;
	mem_grid_cell_name(&g, 1, 2, buf, sizeof buf);
	is_str(buf, "utm/32733/0.5/256/1/2", "utm cell name with a fractional resolution");
	mem_grid_cell_name(&g, 1, 2, buf, 8);
	is_str(buf, "utm/327", "a short buffer is truncated and terminated");
}

/* Zoom ranges: a pyramid names its levels, the finest first made. */
static void
test_levels(void)
{
	struct mem_grid g, l;
	struct mem_err err;
	double b[4];

	g = grid("webmercator:8-13");
	is_int(g.zmin, 8, "range 8-13: zmin");
	is_int(g.zmax, 13, "range 8-13: zmax");
	is_int(g.zoom, 13, "range 8-13 starts at its finest level");
	is_double(mem_grid_res(&g), 19.1092570712943, 1e-9, "range 8-13: z13 cell size");
	ok(mem_grid_level(&g, 8, &l) == 0, "level 8 of 8-13");
	is_double(mem_grid_res(&l), 611.49622628141, 1e-8, "z8 cell size (OGC 17-083r2 Annex D)");
	mem_grid_tile_bounds(&l, 134, 91, b);
	/* 13/4290/2918 lies in 8/134/91 (4290 >> 5, 2918 >> 5) */
	{
		double c[4];

		mem_grid_tile_bounds(&g, 4290, 2918, c);
		ok(c[0] >= b[0] && c[2] <= b[2] && c[1] >= b[1] && c[3] <= b[3],
		    "13/4290/2918 lies inside 8/134/91");
	}
	ok(mem_grid_level(&g, 14, &l) < 0, "level 14 is outside 8-13");
	ok(mem_grid_parse("webmercator:13-8", &l, &err) < 0, "a reversed range is refused");
	ok(mem_grid_parse("webmercator:8-31", &l, &err) < 0, "a range past zoom 30 is refused");
	ok(mem_grid_parse("webmercator:-3", &l, &err) < 0, "a range without a start is refused");
	ok(mem_grid_parse("tms:/nonexistent.json:0", &l, &err) < 0 && err.status == MEM_EUSAGE,
	    "a missing TileMatrixSet file is a usage error");
	ok(mem_grid_parse("tms:nolevel", &l, &err) < 0, "a TileMatrixSet without a level is refused");
}

int
main(void)
{
	test_webmercator_bounds();
	test_webmercator_tile();
	test_parse();
	test_tile_range();
	test_utm_epsg();
	test_cell_names();
	test_levels();
	return tap_exit();
}
