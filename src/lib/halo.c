/*
 * halo.c - neighbours of a tile and the VRT that joins them.
 *
 * A 3x3 convolution or a dilated mask reads pixels around each pixel.
 * Within one raster, strips read rows of halo from the same file; a tile
 * item (mem-tile's) has its neighbours in other items.  mem-infer reads
 * its whole input first when the chain has a halo, finds each item's
 * neighbours here from the items' JSON alone (no file is opened), and
 * reads each band through a VRT over the item's extent grown by the halo,
 * with the neighbours' same band as further sources.
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halo.h"
#include "item.h"
#include "memories.h"

struct tile {
	int ok;			/* has a grid in its JSON */
	char *id;		/* the item's id: neighbours are given in its order */
	char *key;		/* CRS, acquisition, platform, collection: equal for neighbours */
	double px, py;		/* pixel size (py < 0 for north up) */
	double x0, y0;		/* origin */
	int w, h;
};

struct mem_halo_index {
	size_t n;
	struct tile *t;
};

static int
number_array(const json_t *a, double *v, size_t n)
{
	if (!json_is_array(a) || json_array_size(a) < n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!json_is_number(json_array_get(a, i)))
			return -1;
		v[i] = json_number_value(json_array_get(a, i));
	}
	return 0;
}

/* The CRS as the item names it, or NULL. */
static char *
crs_of(const json_t *props)
{
	json_t *e = json_object_get(props, "proj:epsg");
	const char *s;

	if (json_is_integer(e))
		return mem_xasprintf("EPSG:%lld", (long long)json_integer_value(e));
	if ((s = json_string_value(json_object_get(props, "proj:code"))) != NULL)
		return mem_xstrdup(s);
	if ((s = json_string_value(json_object_get(props, "proj:wkt2"))) != NULL)
		return mem_xstrdup(s);
	return NULL;
}

static void
tile_init(struct tile *t, const json_t *item)
{
	const json_t *props = json_object_get(item, "properties");
	const char *coll = json_string_value(json_object_get(item, "collection"));
	const char *plat = json_string_value(json_object_get(props, "platform"));
	struct mem_interval iv;
	double tr[6], shape[2];
	char *crs;

	memset(t, 0, sizeof *t);
	t->id = mem_xstrdup(mem_item_id(item) ? mem_item_id(item) : "");
	if (number_array(json_object_get(props, "proj:transform"), tr, 6) < 0 ||
	    number_array(json_object_get(props, "proj:shape"), shape, 2) < 0 ||
	    mem_item_time(item, &iv, NULL) < 0 || (crs = crs_of(props)) == NULL)
		return;
	/* north-up grids only: a rotated one has no neighbours */
	if (tr[1] != 0 || tr[3] != 0 || tr[0] == 0 || tr[4] == 0 || shape[0] < 1 || shape[1] < 1 ||
	    shape[0] > 1e9 || shape[1] > 1e9) {
		free(crs);
		return;
	}
	t->px = tr[0];
	t->x0 = tr[2];
	t->py = tr[4];
	t->y0 = tr[5];
	t->h = (int)shape[0];
	t->w = (int)shape[1];
	/* %.3f of seconds: instants written differently (offsets, fractions) still match */
	t->key = mem_xasprintf("%s\n%.3f\n%.3f\n%s%s\n%s%s", crs, iv.start, iv.end,
	    plat ? "p:" : "", plat ? plat : "", coll ? "c:" : "", coll ? coll : "");
	t->ok = 1;
	free(crs);
}

struct mem_halo_index *
mem_halo_index_new(json_t *const *items, size_t n)
{
	struct mem_halo_index *x = mem_xcalloc(1, sizeof *x);

	x->n = n;
	x->t = mem_xcalloc(n ? n : 1, sizeof *x->t);
	for (size_t i = 0; i < n; i++)
		tile_init(&x->t[i], items[i]);
	return x;
}

void
mem_halo_index_free(struct mem_halo_index *x)
{
	if (x == NULL)
		return;
	for (size_t i = 0; i < x->n; i++) {
		free(x->t[i].key);
		free(x->t[i].id);
	}
	free(x->t);
	free(x);
}

/* v is a whole number within 1e-6; *k gets it. */
static int
whole(double v, long long *k)
{
	double r = floor(v + 0.5);

	if (fabs(v - r) > 1e-6 || fabs(r) > 1e12)
		return 0;
	*k = (long long)r;
	return 1;
}

size_t
mem_halo_neighbours(const struct mem_halo_index *x, size_t i, int halo, size_t *near)
{
	const struct tile *a = &x->t[i];
	size_t m = 0;

	if (i >= x->n || !a->ok)
		return 0;
	for (size_t j = 0; j < x->n; j++) {
		const struct tile *b = &x->t[j];
		long long dx, dy;

		if (j == i || !b->ok || strcmp(a->key, b->key) != 0)
			continue;
		if (fabs(a->px - b->px) > 1e-9 * fabs(a->px) || fabs(a->py - b->py) > 1e-9 * fabs(a->py))
			continue;
		if (!whole((b->x0 - a->x0) / a->px, &dx) || !whole((b->y0 - a->y0) / a->py, &dy))
			continue;
		/* b's pixels [dx, dx + w) x [dy, dy + h) against a's grown by halo */
		if (dx >= (long long)a->w + halo || dx + b->w <= -(long long)halo ||
		    dy >= (long long)a->h + halo || dy + b->h <= -(long long)halo)
			continue;
		near[m++] = j;
	}
	/*
	 * by id, then input order: the VRT's sources and the result's id are
	 * then the same whatever order the items came in (one host's manifest,
	 * or the shards' of a Slurm array, concatenated)
	 */
	for (size_t k = 1; k < m; k++) {
		size_t v = near[k], l = k;

		while (l > 0 && strcmp(x->t[near[l - 1]].id, x->t[v].id) > 0) {
			near[l] = near[l - 1];
			l--;
		}
		near[l] = v;
	}
	return m;
}

char *
mem_halo_vrt(int w, int h, const double gt[6], OGRSpatialReferenceH srs, int has_nodata,
    double nodata, const struct mem_halo_src *src, size_t n)
{
	char *wkt = NULL, *xml, *esc;
	size_t len, cap = 4096;

	xml = mem_xmalloc(cap);
	len = (size_t)snprintf(xml, cap, "<VRTDataset rasterXSize=\"%d\" rasterYSize=\"%d\">\n"
	    "<GeoTransform>%.17g,%.17g,%.17g,%.17g,%.17g,%.17g</GeoTransform>\n", w, h, gt[0], gt[1],
	    gt[2], gt[3], gt[4], gt[5]);
#define ADD(...) do { \
		int k_ = snprintf(NULL, 0, __VA_ARGS__); \
		if (len + (size_t)k_ + 1 > cap) { \
			cap = 2 * (len + (size_t)k_ + 1); \
			xml = mem_xrealloc(xml, cap); \
		} \
		len += (size_t)snprintf(xml + len, cap - len, __VA_ARGS__); \
	} while (0)
	if (srs && OSRExportToWkt(srs, &wkt) == OGRERR_NONE && wkt) {
		esc = CPLEscapeString(wkt, -1, CPLES_XML);
		ADD("<SRS>%s</SRS>\n", esc);
		CPLFree(esc);
	}
	CPLFree(wkt);
	ADD("<VRTRasterBand dataType=\"Float32\" band=\"1\">\n");
	if (has_nodata)
		ADD("<NoDataValue>%.17g</NoDataValue>\n", nodata);
	else
		ADD("<NoDataValue>nan</NoDataValue>\n");
	for (size_t i = 0; i < n; i++) {
		const struct mem_halo_src *s = &src[i];
		int x0 = s->x < 0 ? 0 : s->x, y0 = s->y < 0 ? 0 : s->y;
		int x1 = s->x + s->w > w ? w : s->x + s->w, y1 = s->y + s->h > h ? h : s->y + s->h;
		const char *kind = s->has_nodata ? "ComplexSource" : "SimpleSource";

		if (x1 <= x0 || y1 <= y0)
			continue;
		esc = CPLEscapeString(s->href, -1, CPLES_XML);
		ADD("<%s><SourceFilename relativeToVRT=\"0\">%s</SourceFilename>"
		    "<SourceBand>%d</SourceBand>"
		    "<SrcRect xOff=\"%d\" yOff=\"%d\" xSize=\"%d\" ySize=\"%d\"/>"
		    "<DstRect xOff=\"%d\" yOff=\"%d\" xSize=\"%d\" ySize=\"%d\"/>",
		    kind, esc, s->band, x0 - s->x, y0 - s->y, x1 - x0, y1 - y0, x0, y0, x1 - x0, y1 - y0);
		CPLFree(esc);
		if (s->has_nodata)
			ADD("<NODATA>%.17g</NODATA>", s->nodata);
		ADD("</%s>\n", kind);
	}
	ADD("</VRTRasterBand>\n</VRTDataset>\n");
#undef ADD
	return xml;
}
