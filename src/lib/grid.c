/*
 * grid.c - tile grid arithmetic.  No GDAL here: the tests check it against
 * published WebMercatorQuad values with nothing but libc and jansson.
 */
#include "config.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grid.h"

struct mem_tms_matrix {
	char id[32];
	double res;
	double p[2];		/* point of origin, in the file's axis order */
	int top_left;
	int tw, th;
	long mw, mh;
};

struct mem_tms {
	char id[64];
	char crs[48];		/* "EPSG:n" */
	int axes_known;		/* orderedAxes was given, or the CRS is CRS84 */
	int swap;		/* the file's points are northing first */
	int n;
	struct mem_tms_matrix *m;
};

static int
parse_int(const char *s, long lo, long hi, long *v)
{
	char *end;

	*v = strtol(s, &end, 10);
	return end != s && *end == '\0' && *v >= lo && *v <= hi ? 0 : -1;
}

/* A zoom, or a range Z0-Z1, into zmin and zmax. */
static int
parse_zooms(const char *s, struct mem_grid *g)
{
	const char *dash = strchr(s, '-');
	long a, b;

	if (dash == NULL) {
		if (parse_int(s, 0, MEM_ZOOM_MAX, &a) < 0)
			return -1;
		b = a;
	} else {
		char lo[16];

		if ((size_t)(dash - s) >= sizeof lo)
			return -1;
		memcpy(lo, s, (size_t)(dash - s));
		lo[dash - s] = '\0';
		if (parse_int(lo, 0, MEM_ZOOM_MAX, &a) < 0 ||
		    parse_int(dash + 1, 0, MEM_ZOOM_MAX, &b) < 0 || b < a)
			return -1;
	}
	g->zmin = (int)a;
	g->zmax = (int)b;
	g->zoom = (int)b;
	return 0;
}

/*
 * The EPSG code of a CRS as TileMatrixSets name it: "EPSG:n", an OGC URN
 * or URL, or CRS84 (longitude first: *lonlat set).  0 when not EPSG.
 */
static int
crs_epsg(const char *s, int *lonlat)
{
	const char *p;

	*lonlat = 0;
	if (s == NULL)
		return 0;
	if (strstr(s, "CRS84")) {
		*lonlat = 1;
		return 4326;
	}
	if ((p = strstr(s, "EPSG")) == NULL)
		return 0;
	/* the code is the last number: EPSG:n, EPSG::n, EPSG:VER:n, EPSG/0/n */
	p = s + strlen(s);
	while (p > s && isdigit((unsigned char)p[-1]))
		p--;
	return *p ? atoi(p) : 0;
}

static double
number(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void
tms_free(struct mem_tms *t)
{
	if (t) {
		free(t->m);
		free(t);
	}
}

/*
 * Reads an OGC TileMatrixSet: 2.0 (crs, tileMatrices, id, cellSize,
 * pointOfOrigin, cornerOfOrigin) or the 1.0 JSON encoding GDAL ships
 * (supportedCRS, tileMatrix, identifier, topLeftCorner).
 */
static struct mem_tms *
tms_load(const char *path, struct mem_err *err)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je), *crs, *mats, *m, *axes;
	struct mem_tms *t;
	const char *s;
	size_t i;
	int lonlat;

	if (doc == NULL) {
		mem_err_set(err, MEM_EUSAGE, "cannot read TileMatrixSet '%s': %s", path, je.text);
		return NULL;
	}
	t = mem_xcalloc(1, sizeof *t);
	s = json_string_value(json_object_get(doc, "id"));
	if (s == NULL)
		s = json_string_value(json_object_get(doc, "identifier"));
	snprintf(t->id, sizeof t->id, "%s", s ? s : "tms");
	for (char *c = t->id; *c; c++)
		if (*c == '/' || isspace((unsigned char)*c))
			*c = '_';
	crs = json_object_get(doc, "crs");
	if (json_is_object(crs))
		crs = json_object_get(crs, "uri");
	if (crs == NULL)
		crs = json_object_get(doc, "supportedCRS");
	s = json_string_value(crs);
	{
		int epsg = crs_epsg(s, &lonlat);

		if (epsg <= 0) {
			mem_err_set(err, MEM_EUSAGE,
			    "TileMatrixSet '%s': CRS %s is not an EPSG code or CRS84 (the only kinds supported)",
			    path, s ? s : "(none)");
			goto bad;
		}
		snprintf(t->crs, sizeof t->crs, "EPSG:%d", epsg);
	}
	if (lonlat)
		t->axes_known = 1;
	axes = json_object_get(doc, "orderedAxes");
	if ((s = json_string_value(json_array_get(axes, 0))) != NULL) {
		t->axes_known = 1;
		t->swap = toupper((unsigned char)s[0]) == 'N' || strncasecmp(s, "lat", 3) == 0;
	}
	mats = json_object_get(doc, "tileMatrices");
	if (mats == NULL)
		mats = json_object_get(doc, "tileMatrix");
	t->n = (int)json_array_size(mats);
	if (t->n == 0) {
		mem_err_set(err, MEM_EUSAGE, "TileMatrixSet '%s' has no tile matrices", path);
		goto bad;
	}
	t->m = mem_xcalloc((size_t)t->n, sizeof *t->m);
	json_array_foreach(mats, i, m) {
		struct mem_tms_matrix *x = &t->m[i];
		const json_t *pt = json_object_get(m, "pointOfOrigin");
		const char *corner = json_string_value(json_object_get(m, "cornerOfOrigin"));
		double scale = number(m, "scaleDenominator"), tw = number(m, "tileWidth"),
		    th = number(m, "tileHeight"), mw = number(m, "matrixWidth"),
		    mh = number(m, "matrixHeight");

		s = json_string_value(json_object_get(m, "id"));
		if (s == NULL)
			s = json_string_value(json_object_get(m, "identifier"));
		snprintf(x->id, sizeof x->id, "%s", s ? s : "");
		if (pt == NULL)
			pt = json_object_get(m, "topLeftCorner");
		x->p[0] = json_number_value(json_array_get(pt, 0));
		x->p[1] = json_number_value(json_array_get(pt, 1));
		x->top_left = corner == NULL || strcmp(corner, "bottomLeft") != 0;
		x->res = number(m, "cellSize");
		/* 1.0 gives only the scale: 0.28 mm pixels, metres or degrees */
		if (!(x->res > 0))
			x->res = scale * 0.00028 /
			    (strcmp(t->crs, "EPSG:4326") == 0 ? 2 * M_PI * 6378137 / 360 : 1);
		if (!(x->res > 0) || !(tw >= 1 && tw <= 65536) || !(th >= 1 && th <= 65536) ||
		    !(mw >= 1) || !(mh >= 1) || json_array_size(pt) != 2 || *x->id == '\0') {
			mem_err_set(err, MEM_EUSAGE,
			    "TileMatrixSet '%s': tile matrix %zu lacks an id, a cell size, a point of origin or its sizes",
			    path, i);
			goto bad;
		}
		x->tw = (int)tw;
		x->th = (int)th;
		x->mw = (long)mw;
		x->mh = (long)mh;
	}
	json_decref(doc);
	return t;
bad:
	json_decref(doc);
	tms_free(t);
	return NULL;
}

static int
tms_find(const struct mem_tms *t, const char *id)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->m[i].id, id) == 0)
			return i;
	return -1;
}

/* tms:FILE:LEVEL or tms:FILE:LEVEL-LEVEL (the file may hold ':') */
static int
parse_tms(const char *spec, struct mem_grid *g, struct mem_err *err)
{
	const char *rest = spec + 4, *colon = strrchr(rest, ':');
	char *file, *lv;
	struct mem_tms *t;
	int a, b;

	if (colon == NULL || colon == rest || colon[1] == '\0')
		return mem_err_set(err, MEM_EUSAGE,
		    "invalid grid '%s': expected tms:FILE:LEVEL or tms:FILE:LEVEL-LEVEL", spec);
	file = mem_xasprintf("%.*s", (int)(colon - rest), rest);
	t = tms_load(file, err);
	free(file);
	if (t == NULL)
		return -1;
	lv = mem_xstrdup(colon + 1);
	a = b = tms_find(t, lv);
	if (a < 0) {
		char *dash = strchr(lv, '-');

		if (dash) {
			*dash = '\0';
			a = tms_find(t, lv);
			b = tms_find(t, dash + 1);
		}
	}
	if (a < 0 || b < 0 || b < a) {
		mem_err_set(err, MEM_EUSAGE, "grid '%s': no tile matrix '%s' in TileMatrixSet %s "
		    "(levels %s to %s)", spec, colon + 1, t->id, t->m[0].id, t->m[t->n - 1].id);
		free(lv);
		tms_free(t);
		return -1;
	}
	free(lv);
	g->kind = MEM_GRID_TMS;
	g->tms = t;
	g->zmin = a;
	g->zmax = b;
	g->epsg = atoi(t->crs + 5);
	return mem_grid_level(g, b, g);
}

int
mem_grid_parse(const char *spec, struct mem_grid *g, struct mem_err *err)
{
	char *s, *f[4], *p;
	int n = 0, rc = -1;
	long v;

	memset(g, 0, sizeof *g);
	if (strncmp(spec, "tms:", 4) == 0)
		return parse_tms(spec, g, err);
	s = p = mem_xstrdup(spec);
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
		if (parse_zooms(f[1], g) < 0) {
			mem_err_set(err, MEM_EUSAGE,
			    "zoom '%s' out of range (0-%d, or a range such as 8-13) in grid '%s'",
			    f[1], MEM_ZOOM_MAX, spec);
			goto out;
		}
		if (n == 3) {
			if (parse_int(f[2], 16, 4096, &v) < 0)
				goto bad;
			g->tile_size = (int)v;
		}
		mem_grid_level(g, g->zmax, g);
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
		g->tile_h = g->tile_size;
	} else
		goto bad;
	rc = 0;
	goto out;
bad:
	mem_err_set(err, MEM_EUSAGE,
	    "invalid grid '%s': expected webmercator:ZOOM[:SIZE], utm[:RES[:SIZE]] or tms:FILE:LEVEL",
	    spec);
out:
	free(s);
	return rc;
}

void
mem_grid_free(struct mem_grid *g)
{
	if (g->kind == MEM_GRID_TMS)
		tms_free((struct mem_tms *)g->tms);
	g->tms = NULL;
}

int
mem_grid_level(const struct mem_grid *g, int z, struct mem_grid *out)
{
	if (z < g->zmin || z > g->zmax)
		return -1;
	if (out != g)
		*out = *g;
	out->zoom = z;
	switch (g->kind) {
	case MEM_GRID_WEBMERCATOR:
		out->res = 2 * MEM_WEBMERC_HALF / ((double)g->tile_size * ldexp(1.0, z));
		out->tile_h = g->tile_size;
		out->ox = -MEM_WEBMERC_HALF;
		out->oy = MEM_WEBMERC_HALF;
		out->y_down = 1;
		out->mw = out->mh = 1L << z;
		break;
	case MEM_GRID_TMS: {
		const struct mem_tms_matrix *m = &g->tms->m[z];

		out->res = m->res;
		out->tile_size = m->tw;
		out->tile_h = m->th;
		out->ox = g->tms->swap ? m->p[1] : m->p[0];
		out->oy = g->tms->swap ? m->p[0] : m->p[1];
		out->y_down = m->top_left;
		out->mw = m->mw;
		out->mh = m->mh;
		break;
	}
	case MEM_GRID_UTM:
		out->tile_h = g->tile_size;
		break;
	}
	return 0;
}

void
mem_grid_set_axes(struct mem_grid *g, int northing_first)
{
	struct mem_tms *t = (struct mem_tms *)g->tms;

	if (g->kind != MEM_GRID_TMS || t->axes_known)
		return;
	t->swap = northing_first;
	t->axes_known = 1;
	mem_grid_level(g, g->zoom, g);
}

const char *
mem_grid_tms_crs(const struct mem_grid *g)
{
	return g->kind == MEM_GRID_TMS ? g->tms->crs : NULL;
}

int
mem_grid_tms_axes_known(const struct mem_grid *g)
{
	return g->kind == MEM_GRID_TMS && g->tms->axes_known;
}

double
mem_grid_res(const struct mem_grid *g)
{
	return g->res;
}

double
mem_grid_span(const struct mem_grid *g)
{
	return g->res * g->tile_size;
}

void
mem_grid_tile_bounds(const struct mem_grid *g, long x, long y, double b[4])
{
	double sx = g->res * g->tile_size, sy = g->res * (g->tile_h ? g->tile_h : g->tile_size);

	b[0] = g->ox + x * sx;
	b[2] = g->ox + (x + 1) * sx;
	if (g->y_down) {
		b[3] = g->oy - y * sy;
		b[1] = g->oy - (y + 1) * sy;
	} else {
		b[1] = g->oy + y * sy;
		b[3] = g->oy + (y + 1) * sy;
	}
}

int
mem_grid_tile_range(const struct mem_grid *g, const double b[4], long *x0, long *y0, long *x1,
    long *y1)
{
	double sx = g->res * g->tile_size, sy = g->res * (g->tile_h ? g->tile_h : g->tile_size);
	/*
	 * A box that only touches a tile edge does not take the next tile.  The
	 * tolerance is in tile units: at zoom 30 a tile is 4 cm and doubles near
	 * the antimeridian carry 2e-9 m, so 1e-6 of a tile is well above noise.
	 */
	const double tol = 1e-6;

	if (!(sx > 0) || !(sy > 0))
		return -1;
	*x0 = (long)floor((b[0] - g->ox) / sx + tol);
	*x1 = (long)floor((b[2] - g->ox) / sx - tol);
	if (g->y_down) {
		*y0 = (long)floor((g->oy - b[3]) / sy + tol);
		*y1 = (long)floor((g->oy - b[1]) / sy - tol);
	} else {
		*y0 = (long)floor((b[1] - g->oy) / sy + tol);
		*y1 = (long)floor((b[3] - g->oy) / sy - tol);
	}
	if (g->mw > 0) {
		if (*x1 < 0 || *x0 >= g->mw || *y1 < 0 || *y0 >= g->mh)
			return -1;
		if (*x0 < 0) *x0 = 0;
		if (*y0 < 0) *y0 = 0;
		if (*x1 >= g->mw) *x1 = g->mw - 1;
		if (*y1 >= g->mh) *y1 = g->mh - 1;
	}
	return *x1 >= *x0 && *y1 >= *y0 ? 0 : -1;
}

void
mem_grid_cell_name(const struct mem_grid *g, long x, long y, char *buf, size_t n)
{
	if (g->kind == MEM_GRID_TMS)
		snprintf(buf, n, "tms/%s/%s/%ld/%ld", g->tms->id, g->tms->m[g->zoom].id, x, y);
	else if (g->kind == MEM_GRID_WEBMERCATOR) {
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
