/*
 * grid.c - tile grid arithmetic.  No GDAL here: the tests check it against
 * published WebMercatorQuad values on a machine with nothing but libc.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"

static int
parse_int(const char *s, long lo, long hi, long *v)
{
	char *end;

	*v = strtol(s, &end, 10);
	return end != s && *end == '\0' && *v >= lo && *v <= hi ? 0 : -1;
}

int
mem_grid_parse(const char *spec, struct mem_grid *g, struct mem_err *err)
{
	char *s = mem_xstrdup(spec), *f[4], *p = s;
	int n = 0, rc = -1;
	long v;

	memset(g, 0, sizeof *g);
	/* split on ':' keeping empty fields, which are errors */
	for (;;) {
		char *c = strchr(p, ':');

		if (n == 4)
			goto bad;
		f[n++] = p;
		if (c == NULL)
			break;
		*c = '\0';
		p = c + 1;
	}
	for (int i = 0; i < n; i++)
		if (*f[i] == '\0')
			goto bad;
	if (strcmp(f[0], "webmercator") == 0 || strcmp(f[0], "WebMercatorQuad") == 0) {
		g->kind = MEM_GRID_WEBMERCATOR;
		g->epsg = 3857;
		g->tile_size = 256;
		if (n < 2 || n > 3)
			goto bad;
		if (parse_int(f[1], 0, MEM_ZOOM_MAX, &v) < 0) {
			mem_err_set(err, MEM_EUSAGE, "zoom '%s' out of range (0-%d) in grid '%s'",
			    f[1], MEM_ZOOM_MAX, spec);
			goto out;
		}
		g->zoom = (int)v;
		if (n == 3) {
			if (parse_int(f[2], 16, 4096, &v) < 0)
				goto bad;
			g->tile_size = (int)v;
		}
		g->res = 2 * MEM_WEBMERC_HALF / ((double)g->tile_size * ldexp(1.0, g->zoom));
	} else if (strcmp(f[0], "utm") == 0) {
		g->kind = MEM_GRID_UTM;
		g->tile_size = 1024;
		if (n > 3)
			goto bad;
		if (n >= 2) {
			char *end;

			g->res = strtod(f[1], &end);
			if (end == f[1] || *end != '\0' || !(g->res > 0) || g->res > 100000)
				goto bad;
		}
		if (n == 3) {
			if (parse_int(f[2], 16, 65536, &v) < 0)
				goto bad;
			g->tile_size = (int)v;
		}
	} else
		goto bad;
	rc = 0;
	goto out;
bad:
	mem_err_set(err, MEM_EUSAGE,
	    "invalid grid '%s': expected webmercator:ZOOM[:SIZE] or utm[:RES[:SIZE]]", spec);
out:
	free(s);
	return rc;
}

double
mem_grid_res(const struct mem_grid *g)
{
	return g->res;
}

double
mem_grid_span(const struct mem_grid *g)
{
	if (g->kind == MEM_GRID_WEBMERCATOR)
		return 2 * MEM_WEBMERC_HALF / ldexp(1.0, g->zoom);
	return g->res * g->tile_size;
}

void
mem_grid_tile_bounds(const struct mem_grid *g, long x, long y, double b[4])
{
	double span = mem_grid_span(g);

	if (g->kind == MEM_GRID_WEBMERCATOR) {
		b[0] = -MEM_WEBMERC_HALF + x * span;
		b[2] = -MEM_WEBMERC_HALF + (x + 1) * span;
		b[3] = MEM_WEBMERC_HALF - y * span;
		b[1] = MEM_WEBMERC_HALF - (y + 1) * span;
	} else {
		b[0] = x * span;
		b[1] = y * span;
		b[2] = (x + 1) * span;
		b[3] = (y + 1) * span;
	}
}

int
mem_grid_tile_range(const struct mem_grid *g, const double b[4], long *x0, long *y0, long *x1,
    long *y1)
{
	double span = mem_grid_span(g);
	/*
	 * A box that only touches a tile edge does not take the next tile.  The
	 * tolerance is in tile units: at zoom 30 a tile is 4 cm and doubles near
	 * the antimeridian carry 2e-9 m, so 1e-6 of a tile is well above noise.
	 */
	const double tol = 1e-6;

	if (g->kind == MEM_GRID_WEBMERCATOR) {
		long max = (1L << g->zoom) - 1;

		if (b[2] <= -MEM_WEBMERC_HALF || b[0] >= MEM_WEBMERC_HALF ||
		    b[3] <= -MEM_WEBMERC_HALF || b[1] >= MEM_WEBMERC_HALF)
			return -1;
		*x0 = (long)floor((b[0] + MEM_WEBMERC_HALF) / span + tol);
		*x1 = (long)floor((b[2] + MEM_WEBMERC_HALF) / span - tol);
		*y0 = (long)floor((MEM_WEBMERC_HALF - b[3]) / span + tol);
		*y1 = (long)floor((MEM_WEBMERC_HALF - b[1]) / span - tol);
		if (*x0 < 0) *x0 = 0;
		if (*y0 < 0) *y0 = 0;
		if (*x1 > max) *x1 = max;
		if (*y1 > max) *y1 = max;
	} else {
		*x0 = (long)floor(b[0] / span + tol);
		*x1 = (long)floor(b[2] / span - tol);
		*y0 = (long)floor(b[1] / span + tol);
		*y1 = (long)floor(b[3] / span - tol);
	}
	return *x1 >= *x0 && *y1 >= *y0 ? 0 : -1;
}

void
mem_grid_cell_name(const struct mem_grid *g, long x, long y, char *buf, size_t n)
{
	if (g->kind == MEM_GRID_WEBMERCATOR) {
		if (g->tile_size == 256)
			snprintf(buf, n, "webmercator/%d/%ld/%ld", g->zoom, x, y);
		else
			snprintf(buf, n, "webmercator-%d/%d/%ld/%ld", g->tile_size, g->zoom, x, y);
	} else
		snprintf(buf, n, "utm/%d/%g/%d/%ld/%ld", g->epsg, g->res, g->tile_size, x, y);
}

int
mem_grid_utm_epsg(double lon, double lat)
{
	int zone = (int)floor((lon + 180) / 6) + 1;

	if (zone < 1)
		zone = 1;
	if (zone > 60)
		zone = 60;
	/* Norway and Svalbard exceptions, as the MGRS grid has them */
	if (lat >= 56 && lat < 64 && lon >= 3 && lon < 12)
		zone = 32;
	if (lat >= 72 && lat < 84) {
		if (lon >= 0 && lon < 9) zone = 31;
		else if (lon >= 9 && lon < 21) zone = 33;
		else if (lon >= 21 && lon < 33) zone = 35;
		else if (lon >= 33 && lon < 42) zone = 37;
	}
	return (lat >= 0 ? 32600 : 32700) + zone;
}

void
mem_grid_webmercator_tile(double lon, double lat, int z, long *x, long *y)
{
	double n = ldexp(1.0, z), r;

	/* WebMercatorQuad ends at +-85.0511 degrees: the poles map to its edge rows */
	if (lat > 85.0511287798066)
		lat = 85.0511287798066;
	if (lat < -85.0511287798066)
		lat = -85.0511287798066;
	r = lat * M_PI / 180;

	*x = (long)floor((lon + 180) / 360 * n);
	*y = (long)floor((1 - log(tan(r) + 1 / cos(r)) / M_PI) / 2 * n);
	if (*x < 0) *x = 0;
	if (*y < 0) *y = 0;
	if (*x >= (long)n) *x = (long)n - 1;
	if (*y >= (long)n) *y = (long)n - 1;
}
