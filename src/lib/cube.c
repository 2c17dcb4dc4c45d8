/*
 * cube.c - a netCDF-4 CF-1.8 datacube of items on one grid.
 *
 * The cube is always written whole, to a temporary file beside the target
 * that is then renamed over it.  Appending in place (netCDF's unlimited
 * dimension) would be cheaper, but an HDF5 file killed mid-write can be
 * left unreadable, and a new date that comes before the others or a new
 * cell that widens the extent would need a rewrite anyway.  Copying the
 * previous cube's chunks into the new file is the price of a crash never
 * costing the cube.
 *
 * The file carries no clock time (no timestamp in history, HDF5 object
 * times off in netCDF-C), so the same inputs give the same bytes.
 */
#include "config.h"

#include <cpl_conv.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netcdf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include "cube.h"
#include "files.h"
#include "item.h"
#include "raster.h"

/* Time steps per chunk; see define_var() for why. */
#define TIME_CHUNK 8
/* zlib level: 1 writes ~15% faster for ~2% more bytes here; 6 is far slower for ~0.5% less */
#define DEFLATE_LEVEL 4
/* Cells larger than this are chunked in blocks of CHUNK_DEFAULT. */
#define CHUNK_MAX 512
#define CHUNK_DEFAULT 256
/* The largest side of a cube, in pixels: past it, items are surely on another grid. */
#define SIDE_MAX (1L << 20)
/* How far from a pixel corner an item's origin may fall, in pixels. */
#define ALIGN_TOL 1e-3

struct var {
	char *key;			/* the asset key */
	char name[NC_MAX_NAME + 1];	/* the netCDF name */
	nc_type type;
	double fill;
	char *units, *long_name;
	int has_scale;
	double scale, offset;
	int oldid;			/* its id in the previous cube, or -1 */
	int id;
};

/* One asset of one item: where its pixels go. */
struct src {
	char *href;
	char *item;
	char *key;			/* its variable's key */
	size_t var;			/* its variable, once they are sorted */
	long day;
	double t;
	long col, row;			/* its origin, in pixels from the anchor */
	int w, h;
	int has_nodata;
	double nodata;
};

struct step {
	long day;
	double t;
	long old;			/* its index in the previous cube, or -1 */
};

struct mem_cube {
	const struct mem_cube_opts *o;
	int have_grid;
	OGRSpatialReferenceH srs;
	double gt[6];			/* the anchor: a pixel corner, and the pixel size */
	long c0, r0, c1, r1;		/* extent in pixels from the anchor, [c0,c1) x [r0,r1) */
	int cw, ch;			/* spatial chunk */
	struct var *vars;
	size_t nvars;
	struct src *srcs;
	size_t nsrcs;
	int old;			/* the previous cube's ncid, or -1 */
	int lock;			/* a descriptor of it, locked while we append, or -1 */
	size_t onx, ony;		/* its size; it sits at the anchor */
	long *odays;
	double *otimes;
	size_t ntold;
	char *ohistory;
	struct step *steps;		/* after mem_cube_commit */
	size_t nsteps;
};

static int
nc_fail(struct mem_err *err, int status, const char *path, const char *what)
{
	return mem_err_set(err, MEM_EITEM, "'%s': %s: %s", path, what, nc_strerror(status));
}

static long
day_of(double t)
{
	return (long)floor(t / 86400.0);
}

static size_t
type_size(nc_type t)
{
	switch (t) {
	case NC_BYTE: case NC_UBYTE: case NC_CHAR: return 1;
	case NC_SHORT: case NC_USHORT: return 2;
	case NC_INT: case NC_UINT: case NC_FLOAT: return 4;
	default: return 8;
	}
}

static nc_type
nc_type_of(GDALDataType g)
{
	switch (g) {
	case GDT_Byte: return NC_UBYTE;
	case GDT_UInt16: return NC_USHORT;
	case GDT_Int16: return NC_SHORT;
	case GDT_UInt32: return NC_UINT;
	case GDT_Int32: return NC_INT;
	case GDT_Float32: return NC_FLOAT;
	default: return NC_DOUBLE;
	}
}

/* The range of an integer type; 0 for floating types. */
static int
int_range(nc_type t, double *lo, double *hi)
{
	switch (t) {
	case NC_BYTE: *lo = -128; *hi = 127; return 1;
	case NC_UBYTE: *lo = 0; *hi = 255; return 1;
	case NC_SHORT: *lo = -32768; *hi = 32767; return 1;
	case NC_USHORT: *lo = 0; *hi = 65535; return 1;
	case NC_INT: *lo = -2147483648.0; *hi = 2147483647.0; return 1;
	case NC_UINT: *lo = 0; *hi = 4294967295.0; return 1;
	case NC_INT64: *lo = -9.2e18; *hi = 9.2e18; return 1;
	case NC_UINT64: *lo = 0; *hi = 1.8e19; return 1;
	default: return 0;
	}
}

static double
default_fill(nc_type t)
{
	switch (t) {
	case NC_BYTE: return NC_FILL_BYTE;
	case NC_UBYTE: return NC_FILL_UBYTE;
	case NC_SHORT: return NC_FILL_SHORT;
	case NC_USHORT: return NC_FILL_USHORT;
	case NC_INT: return NC_FILL_INT;
	case NC_UINT: return NC_FILL_UINT;
	default: return NAN;
	}
}

/* Stores v as element i of buf (of type t), clamped to the type's range. */
static void
put_value(nc_type t, void *buf, size_t i, double v)
{
	double lo, hi;

	if (int_range(t, &lo, &hi))
		v = v < lo ? lo : v > hi ? hi : nearbyint(v);
	switch (t) {
	case NC_BYTE: ((int8_t *)buf)[i] = (int8_t)v; break;
	case NC_UBYTE: ((uint8_t *)buf)[i] = (uint8_t)v; break;
	case NC_SHORT: ((int16_t *)buf)[i] = (int16_t)v; break;
	case NC_USHORT: ((uint16_t *)buf)[i] = (uint16_t)v; break;
	case NC_INT: ((int32_t *)buf)[i] = (int32_t)v; break;
	case NC_UINT: ((uint32_t *)buf)[i] = (uint32_t)v; break;
	case NC_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
	case NC_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
	case NC_FLOAT: ((float *)buf)[i] = (float)v; break;
	default: ((double *)buf)[i] = v; break;
	}
}

/* 1 when any element of buf (n of size sz) differs from fill. */
static int
any_data(const unsigned char *buf, size_t n, size_t sz, const unsigned char *fill)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(buf + i * sz, fill, sz) != 0)
			return 1;
	return 0;
}

/* A netCDF name for an asset key: letters, digits and '_', starting with a letter. */
static void
var_name(const char *key, char out[NC_MAX_NAME + 1])
{
	size_t n = 0;
	const char *p;

	if (!((key[0] >= 'a' && key[0] <= 'z') || (key[0] >= 'A' && key[0] <= 'Z')) ||
	    !strcmp(key, "x") || !strcmp(key, "y") || !strcmp(key, "time") || !strcmp(key, "crs")) {
		strcpy(out, "band_");
		n = 5;
	}
	for (p = key; *p && n < NC_MAX_NAME; p++)
		out[n++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9')) ? *p : '_';
	out[n] = '\0';
}

static int
is_raster_asset(const json_t *a)
{
	const char *type = json_string_value(json_object_get(a, "type"));
	const char *href = mem_asset_href(a);
	const json_t *roles = json_object_get(a, "roles"), *r;
	size_t i, n = href ? strlen(href) : 0;

	json_array_foreach(roles, i, r) {
		const char *s = json_string_value(r);

		if (s && (!strcmp(s, "thumbnail") || !strcmp(s, "overview") || !strcmp(s, "visual")))
			return 0;
	}
	if (type && (strstr(type, "image/tiff") || strstr(type, "image/jp2")))
		return 1;
	return n > 4 && (!strcasecmp(href + n - 4, ".tif") || !strcasecmp(href + n - 4, ".jp2") ||
	    (n > 5 && !strcasecmp(href + n - 5, ".tiff")));
}

static struct var *
find_var(struct mem_cube *c, const char *key)
{
	for (size_t i = 0; i < c->nvars; i++)
		if (!strcmp(c->vars[i].key, key))
			return &c->vars[i];
	return NULL;
}

static char *
get_text_att(int nc, int varid, const char *name)
{
	size_t len;
	char *s;

	if (nc_inq_attlen(nc, varid, name, &len) != NC_NOERR)
		return NULL;
	s = mem_xmalloc(len + 1);
	if (nc_get_att_text(nc, varid, name, s) != NC_NOERR) {
		free(s);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

/* Reads the grid, variables and dates of the cube at path (to append to it). */
static int
open_old(struct mem_cube *c, const char *path, struct mem_err *err)
{
	int nc = -1, st, xd, yd, td, tv, gm, nvars, i;
	char *wkt = NULL, *gts = NULL;
	size_t nt;

	if ((st = nc_open(path, NC_NOWRITE, &nc)) != NC_NOERR)
		return mem_err_set(err, MEM_EUSAGE, "cannot open cube '%s': %s", path,
		    nc_strerror(st));
	c->old = nc;
	if (nc_inq_dimid(nc, "x", &xd) || nc_inq_dimid(nc, "y", &yd) ||
	    nc_inq_dimid(nc, "time", &td) || nc_inq_dimlen(nc, xd, &c->onx) ||
	    nc_inq_dimlen(nc, yd, &c->ony) || nc_inq_dimlen(nc, td, &nt) ||
	    nc_inq_varid(nc, "time", &tv) || nc_inq_varid(nc, "crs", &gm))
		return mem_err_set(err, MEM_EUSAGE,
		    "'%s': not a cube mem-store wrote (no time, y, x and crs)", path);
	wkt = get_text_att(nc, gm, "crs_wkt");
	gts = get_text_att(nc, gm, "GeoTransform");
	c->srs = OSRNewSpatialReference(NULL);
	if (wkt == NULL || gts == NULL || OSRImportFromWkt(c->srs, &(char *){ wkt }) != OGRERR_NONE ||
	    sscanf(gts, "%lf %lf %lf %lf %lf %lf", &c->gt[0], &c->gt[1], &c->gt[2], &c->gt[3],
	    &c->gt[4], &c->gt[5]) != 6) {
		free(wkt);
		free(gts);
		return mem_err_set(err, MEM_EUSAGE, "'%s': no crs_wkt or GeoTransform on 'crs'", path);
	}
	free(wkt);
	free(gts);
	OSRSetAxisMappingStrategy(c->srs, OAMS_TRADITIONAL_GIS_ORDER);
	c->have_grid = 1;
	c->c0 = c->r0 = 0;
	c->c1 = (long)c->onx;
	c->r1 = (long)c->ony;
	c->cw = c->onx < CHUNK_MAX ? (int)c->onx : CHUNK_DEFAULT;
	c->ch = c->ony < CHUNK_MAX ? (int)c->ony : CHUNK_DEFAULT;
	c->ntold = nt;
	c->otimes = mem_xcalloc(nt, sizeof *c->otimes);
	c->odays = mem_xcalloc(nt, sizeof *c->odays);
	if (nt > 0 && (st = nc_get_var_double(nc, tv, c->otimes)) != NC_NOERR)
		return nc_fail(err, st, path, "cannot read time");
	for (size_t k = 0; k < nt; k++)
		c->odays[k] = day_of(c->otimes[k]);
	c->ohistory = get_text_att(nc, NC_GLOBAL, "history");
	/* every variable on (time, y, x) other than the coordinates is a band */
	nc_inq_nvars(nc, &nvars);
	for (i = 0; i < nvars; i++) {
		char name[NC_MAX_NAME + 1];
		int ndims, dims[NC_MAX_VAR_DIMS];
		nc_type type;
		struct var *v;

		nc_inq_var(nc, i, name, &type, &ndims, dims, NULL);
		if (ndims != 3 || dims[0] != td || dims[1] != yd || dims[2] != xd)
			continue;
		c->vars = mem_xrealloc(c->vars, (c->nvars + 1) * sizeof *c->vars);
		v = &c->vars[c->nvars++];
		memset(v, 0, sizeof *v);
		/* the key is the name: a key that needed renaming is found by its name */
		v->key = mem_xstrdup(name);
		strcpy(v->name, name);
		v->type = type;
		v->fill = default_fill(type);
		v->oldid = i;
		{
			double f;

			if (nc_get_att_double(nc, i, "_FillValue", &f) == NC_NOERR)
				v->fill = f;
		}
	}
	if (c->nvars > 0) {
		/* keep the cube's spatial chunks: they are its cells */
		size_t chunk[3];
		int storage;

		if (nc_inq_var_chunking(nc, c->vars[0].oldid, &storage, chunk) == NC_NOERR &&
		    storage == NC_CHUNKED && chunk[1] > 0 && chunk[2] > 0 &&
		    chunk[1] <= CHUNK_MAX && chunk[2] <= CHUNK_MAX) {
			c->ch = (int)chunk[1];
			c->cw = (int)chunk[2];
		}
	}
	return 0;
}

/*
 * Appends to one cube (two shards of a date, say) take turns: each holds
 * an exclusive lock from reading the cube to renaming the new one over
 * it, so the next reads what the last added.  The lock is on a file of
 * its own, ".NAME.lock" beside the cube, since HDF5 flocks the cube file
 * itself when it opens it.
 */
static int
lock_cube(struct mem_cube *c, struct mem_err *err)
{
	char *dir = mem_path_dirname(c->o->path);
	char *name = mem_xasprintf(".%s.lock", mem_path_basename(c->o->path));
	char *path = mem_path_join(dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666), rc = 0;

	if (fd < 0)
		rc = mem_err_set(err, MEM_EUSAGE, "cannot create '%s': %s", path, strerror(errno));
	else if (flock(fd, LOCK_EX) < 0) {
		rc = mem_err_set(err, MEM_EITEM, "cannot lock '%s': %s", path, strerror(errno));
		close(fd);
	} else
		c->lock = fd;
	free(dir);
	free(name);
	free(path);
	return rc;
}

struct mem_cube *
mem_cube_new(const struct mem_cube_opts *o, struct mem_err *err)
{
	struct mem_cube *c = mem_xcalloc(1, sizeof *c);

	c->o = o;
	c->old = -1;
	c->lock = -1;
	{
		/* a directory that cannot take the cube is found before any work */
		char *dir = mem_path_dirname(o->path);
		int rc = mem_workdir(dir, err);

		free(dir);
		if (rc < 0) {
			mem_cube_free(c);
			return NULL;
		}
	}
	if (lock_cube(c, err) < 0) {
		mem_cube_free(c);
		return NULL;
	}
	if (o->append && mem_path_exists(o->path) && open_old(c, o->path, err) < 0) {
		mem_cube_free(c);
		return NULL;
	}
	return c;
}

/* A new asset's variable, described from its raster and its STAC fields. */
static void
new_var(struct mem_cube *c, const char *key, const json_t *a, GDALRasterBandH b)
{
	const json_t *rb = json_array_get(json_object_get(a, "raster:bands"), 0);
	const char *title = json_string_value(json_object_get(a, "title"));
	const char *unit = json_string_value(json_object_get(rb, "unit"));
	json_t *sc = json_object_get(rb, "scale"), *of = json_object_get(rb, "offset");
	struct var *v;
	double nd, lo, hi;
	int ok = 0;

	c->vars = mem_xrealloc(c->vars, (c->nvars + 1) * sizeof *c->vars);
	v = &c->vars[c->nvars++];
	memset(v, 0, sizeof *v);
	v->key = mem_xstrdup(key);
	var_name(key, v->name);
	/* two keys that make one name ("a-b", "a_b"): the later gets a suffix */
	for (int k = 2; ; k++) {
		size_t j;

		for (j = 0; j + 1 < c->nvars && strcmp(c->vars[j].name, v->name) != 0; j++)
			;
		if (j + 1 >= c->nvars)
			break;
		char suffix[16];
		size_t at;

		var_name(key, v->name);
		snprintf(suffix, sizeof suffix, "_%d", k);
		at = strlen(v->name);
		if (at + strlen(suffix) > NC_MAX_NAME)
			at = NC_MAX_NAME - strlen(suffix);
		strcpy(v->name + at, suffix);
	}
	v->type = nc_type_of(GDALGetRasterDataType(b));
	v->oldid = -1;
	v->fill = default_fill(v->type);
	/* the item's nodata is the fill value when the type can hold it */
	nd = GDALGetRasterNoDataValue(b, &ok);
	if (ok) {
		if (!int_range(v->type, &lo, &hi))
			v->fill = nd;
		else if (nd >= lo && nd <= hi && nd == floor(nd))
			v->fill = nd;
	}
	v->units = unit ? mem_xstrdup(unit) : NULL;
	v->long_name = mem_xstrdup(title ? title : key);
	if (json_is_number(sc) || json_is_number(of)) {
		v->scale = json_is_number(sc) ? json_number_value(sc) : 1;
		v->offset = json_is_number(of) ? json_number_value(of) : 0;
		v->has_scale = v->scale != 1 || v->offset != 0;
	}
}

static int
same_size(double a, double b)
{
	return fabs(a - b) <= 1e-6 * fabs(b);
}

static const char *const same_opts[] = { "IGNORE_DATA_AXIS_TO_SRS_AXIS_MAPPING=YES", NULL };

/* "EPSG:32632", else the CRS's name */
static void
srs_name(OGRSpatialReferenceH s, char *buf, size_t n)
{
	const char *a = OSRGetAuthorityName(s, NULL), *code = OSRGetAuthorityCode(s, NULL);
	const char *name = OSRGetAttrValue(s, OSRIsProjected(s) ? "PROJCS" : "GEOGCS", 0);

	if (a && code)
		snprintf(buf, n, "%s:%s", a, code);
	else
		snprintf(buf, n, "'%s'", name ? name : "unnamed");
}

/* Checks one asset against the grid (setting it from the first) and describes it in *s. */
static int
place(struct mem_cube *c, const char *id, const char *key, GDALDatasetH ds, struct src *s,
    struct mem_err *err)
{
	OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
	double g[6], col, row;

	if (GDALGetGeoTransform(ds, g) != CE_None || srs == NULL)
		return mem_err_set(err, MEM_EITEM, "item '%s': asset '%s' has no geotransform or CRS",
		    id, key);
	if (g[2] != 0 || g[4] != 0)
		return mem_err_set(err, MEM_EITEM, "item '%s': asset '%s' is rotated", id, key);
	s->w = GDALGetRasterXSize(ds);
	s->h = GDALGetRasterYSize(ds);
	if (!c->have_grid) {
		c->srs = OSRClone(srs);
		memcpy(c->gt, g, sizeof g);
		c->have_grid = 1;
		/* a chunk per cell: a time series at a pixel reads one chunk column */
		c->cw = s->w <= CHUNK_MAX ? s->w : CHUNK_DEFAULT;
		c->ch = s->h <= CHUNK_MAX ? s->h : CHUNK_DEFAULT;
		c->c0 = c->r0 = LONG_MAX;
		c->c1 = c->r1 = LONG_MIN;
	}
	if (!OSRIsSameEx(srs, c->srs, same_opts)) {
		char a[64], b[64];

		srs_name(srs, a, sizeof a);
		srs_name(c->srs, b, sizeof b);
		return mem_err_set(err, MEM_EITEM,
		    "item '%s': asset '%s' is not on the cube's grid: CRS %s, the cube's is %s", id,
		    key, a, b);
	}
	if (!same_size(g[1], c->gt[1]) || !same_size(g[5], c->gt[5]))
		return mem_err_set(err, MEM_EITEM,
		    "item '%s': asset '%s' is not on the cube's grid: pixel size %g x %g, the cube's is %g x %g",
		    id, key, g[1], fabs(g[5]), c->gt[1], fabs(c->gt[5]));
	col = (g[0] - c->gt[0]) / c->gt[1];
	row = (g[3] - c->gt[3]) / c->gt[5];
	if (fabs(col - nearbyint(col)) > ALIGN_TOL || fabs(row - nearbyint(row)) > ALIGN_TOL)
		return mem_err_set(err, MEM_EITEM,
		    "item '%s': asset '%s' is not on the cube's grid: its origin is %.3f, %.3f pixels from the cube's",
		    id, key, col, row);
	if (fabs(col) > SIDE_MAX || fabs(row) > SIDE_MAX)
		return mem_err_set(err, MEM_EITEM,
		    "item '%s': asset '%s' is %.0f, %.0f pixels away from the cube: another grid?", id,
		    key, col, row);
	s->col = (long)nearbyint(col);
	s->row = (long)nearbyint(row);
	return 0;
}

int
mem_cube_add(struct mem_cube *c, const json_t *item, struct mem_err *err)
{
	const char *id = mem_item_id(item), *key;
	const json_t *a;
	struct mem_interval iv;
	struct src *add = NULL;
	size_t nadd = 0, i, nvars = c->nvars;
	long day;
	int rc = 0, had_grid = c->have_grid;

	if (id == NULL)
		id = "?";
	if (mem_item_time(item, &iv, err) < 0 || !isfinite(iv.start))
		return mem_err_set(err, MEM_EITEM, "item '%s': no datetime", id);
	day = day_of(iv.start);
	json_object_foreach((json_t *)json_object_get(item, "assets"), key, a) {
		GDALDatasetH ds;
		GDALRasterBandH b;
		struct src s;
		struct var *v;

		if (!is_raster_asset(a))
			continue;
		ds = mem_raster_open(mem_asset_href(a), err);
		if (ds == NULL) {
			mem_err_prefix(err, "item '%s' asset '%s'", id, key);
			rc = -1;
			break;
		}
		if (GDALGetRasterCount(ds) != 1) {
			GDALClose(ds);
			continue;	/* a cube variable is one band */
		}
		memset(&s, 0, sizeof s);
		if (place(c, id, key, ds, &s, err) < 0) {
			GDALClose(ds);
			rc = -1;
			break;
		}
		b = GDALGetRasterBand(ds, 1);
		if ((v = find_var(c, key)) == NULL) {
			char name[NC_MAX_NAME + 1];

			/* a variable of the previous cube whose key had to be renamed */
			var_name(key, name);
			if ((v = find_var(c, name)) == NULL || v->oldid < 0) {
				new_var(c, key, a, b);
				v = &c->vars[c->nvars - 1];
			}
		}
		s.key = mem_xstrdup(v->key);
		s.href = mem_xstrdup(mem_asset_href(a));
		s.item = mem_xstrdup(id);
		s.day = day;
		s.t = iv.start;
		s.nodata = GDALGetRasterNoDataValue(b, &s.has_nodata);
		GDALClose(ds);
		add = mem_xrealloc(add, (nadd + 1) * sizeof *add);
		add[nadd++] = s;
	}
	if (rc < 0) {
		/* a refused item leaves no trace: not its grid, not its variables */
		if (!had_grid && c->have_grid) {
			OSRDestroySpatialReference(c->srs);
			c->srs = NULL;
			c->have_grid = 0;
		}
		while (c->nvars > nvars) {
			struct var *v = &c->vars[--c->nvars];

			free(v->key);
			free(v->units);
			free(v->long_name);
		}
		for (i = 0; i < nadd; i++) {
			free(add[i].href);
			free(add[i].item);
			free(add[i].key);
		}
		free(add);
		return -1;
	}
	/* all of the item's assets fit: only now do they count */
	c->srcs = mem_xrealloc(c->srcs, (c->nsrcs + nadd + 1) * sizeof *c->srcs);
	for (i = 0; i < nadd; i++) {
		struct src *s = &add[i];

		c->c0 = s->col < c->c0 ? s->col : c->c0;
		c->r0 = s->row < c->r0 ? s->row : c->r0;
		c->c1 = s->col + s->w > c->c1 ? s->col + s->w : c->c1;
		c->r1 = s->row + s->h > c->r1 ? s->row + s->h : c->r1;
		c->srcs[c->nsrcs++] = *s;
	}
	free(add);
	return 0;
}

/*
 * Drops the sources whose pixels the previous cube has already: a date
 * and variable it holds, with data where the source goes.  A rerun so
 * adds nothing, while the cells of a date that another run (another
 * shard) did not cover are still filled in.  Then the extent is that of
 * the previous cube and the sources kept.
 */
static int
drop_present(struct mem_cube *c, struct mem_err *err)
{
	size_t i, k, kept = 0;

	for (i = 0; i < c->nsrcs; i++) {
		struct src *s = &c->srcs[i];
		struct var *v = find_var(c, s->key);
		long a0 = s->row > 0 ? s->row : 0, a1 = s->row + s->h < (long)c->ony ? s->row + s->h : (long)c->ony;
		long b0 = s->col > 0 ? s->col : 0, b1 = s->col + s->w < (long)c->onx ? s->col + s->w : (long)c->onx;
		int present = 0;

		for (k = 0; k < c->ntold && c->odays[k] != s->day; k++)
			;
		if (k < c->ntold && v->oldid >= 0 && a0 < a1 && b0 < b1) {
			size_t sz = type_size(v->type);
			size_t start[3] = { k, (size_t)a0, (size_t)b0 };
			size_t count[3] = { 1, (size_t)(a1 - a0), (size_t)(b1 - b0) };
			unsigned char *buf = malloc(count[1] * count[2] * sz), fill[8];
			int st;

			if (buf == NULL)
				return mem_err_set(err, MEM_EITEM, "'%s': out of memory", c->o->path);
			put_value(v->type, fill, 0, v->fill);
			st = nc_get_vara(c->old, v->oldid, start, count, buf);
			present = st == NC_NOERR && any_data(buf, count[1] * count[2], sz, fill);
			free(buf);
			if (st != NC_NOERR)
				return nc_fail(err, st, c->o->path, "cannot read the previous cube");
		}
		if (present) {
			free(s->href);
			free(s->item);
			free(s->key);
		} else
			c->srcs[kept++] = *s;
	}
	c->nsrcs = kept;
	c->c0 = c->r0 = 0;
	c->c1 = (long)c->onx;
	c->r1 = (long)c->ony;
	for (i = 0; i < c->nsrcs; i++) {
		struct src *s = &c->srcs[i];

		c->c0 = s->col < c->c0 ? s->col : c->c0;
		c->r0 = s->row < c->r0 ? s->row : c->r0;
		c->c1 = s->col + s->w > c->c1 ? s->col + s->w : c->c1;
		c->r1 = s->row + s->h > c->r1 ? s->row + s->h : c->r1;
	}
	return 0;
}

static int
cmp_step(const void *a, const void *b)
{
	const struct step *x = a, *y = b;

	return x->day < y->day ? -1 : x->day > y->day;
}

static int
cmp_var(const void *a, const void *b)
{
	const struct var *x = a, *y = b;

	/* the previous cube's variables first, in its order; then by name */
	if ((x->oldid >= 0) != (y->oldid >= 0))
		return x->oldid >= 0 ? -1 : 1;
	if (x->oldid >= 0)
		return x->oldid - y->oldid;
	return strcmp(x->name, y->name);
}

/* The time steps: the previous cube's and one per new UTC date, in order. */
static void
make_steps(struct mem_cube *c)
{
	size_t i, j;

	c->steps = mem_xcalloc(c->ntold + c->nsrcs + 1, sizeof *c->steps);
	c->nsteps = 0;
	for (i = 0; i < c->ntold; i++)
		c->steps[c->nsteps++] = (struct step){ c->odays[i], c->otimes[i], (long)i };
	for (i = 0; i < c->nsrcs; i++) {
		for (j = 0; j < c->nsteps; j++)
			if (c->steps[j].day == c->srcs[i].day)
				break;
		if (j == c->nsteps)
			c->steps[c->nsteps++] = (struct step){ c->srcs[i].day, c->srcs[i].t, -1 };
		else if (c->steps[j].old < 0 && c->srcs[i].t < c->steps[j].t)
			c->steps[j].t = c->srcs[i].t;	/* a date's time is its earliest item's */
	}
	qsort(c->steps, c->nsteps, sizeof *c->steps, cmp_step);
}

static int
put_text(int nc, int varid, const char *name, const char *s)
{
	return nc_put_att_text(nc, varid, name, strlen(s), s);
}

static int
put_double(int nc, int varid, const char *name, double v)
{
	return nc_put_att_double(nc, varid, name, NC_DOUBLE, 1, &v);
}

/*
 * The grid mapping variable: crs_wkt (CF), spatial_ref and GeoTransform
 * (what GDAL reads first, exactly), and the CF parameters for the
 * projections this program meets (GDAL 3.6 has no OSRExportToCF1).
 */
static int
define_crs(struct mem_cube *c, int nc, double x0, double y0)
{
	OGRSpatialReferenceH s = c->srs;
	const char *proj = OSRGetAttrValue(s, "PROJECTION", 0), *auth = OSRGetAuthorityCode(s, NULL);
	char *wkt = NULL, gt[256];
	int id, st;

	if ((st = nc_def_var(nc, "crs", NC_INT, 0, NULL, &id)) != NC_NOERR)
		return st;
	OSRExportToWkt(s, &wkt);
	put_text(nc, id, "crs_wkt", wkt ? wkt : "");
	put_text(nc, id, "spatial_ref", wkt ? wkt : "");
	CPLFree(wkt);
	snprintf(gt, sizeof gt, "%.17g %.17g 0 %.17g 0 %.17g", x0, c->gt[1], y0, c->gt[5]);
	put_text(nc, id, "GeoTransform", gt);
	if (OSRIsGeographic(s)) {
		put_text(nc, id, "grid_mapping_name", "latitude_longitude");
	} else if (proj && !strcmp(proj, SRS_PT_TRANSVERSE_MERCATOR)) {
		put_text(nc, id, "grid_mapping_name", "transverse_mercator");
		put_double(nc, id, "longitude_of_central_meridian",
		    OSRGetNormProjParm(s, SRS_PP_CENTRAL_MERIDIAN, 0, NULL));
		put_double(nc, id, "latitude_of_projection_origin",
		    OSRGetNormProjParm(s, SRS_PP_LATITUDE_OF_ORIGIN, 0, NULL));
		put_double(nc, id, "scale_factor_at_central_meridian",
		    OSRGetNormProjParm(s, SRS_PP_SCALE_FACTOR, 1, NULL));
		put_double(nc, id, "false_easting", OSRGetNormProjParm(s, SRS_PP_FALSE_EASTING, 0, NULL));
		put_double(nc, id, "false_northing",
		    OSRGetNormProjParm(s, SRS_PP_FALSE_NORTHING, 0, NULL));
	} else if (proj && !strncmp(proj, "Mercator", 8)) {
		put_text(nc, id, "grid_mapping_name", "mercator");
		put_double(nc, id, "longitude_of_projection_origin",
		    OSRGetNormProjParm(s, SRS_PP_CENTRAL_MERIDIAN, 0, NULL));
		if (!strcmp(proj, SRS_PT_MERCATOR_2SP))
			put_double(nc, id, "standard_parallel",
			    OSRGetNormProjParm(s, SRS_PP_STANDARD_PARALLEL_1, 0, NULL));
		else
			put_double(nc, id, "scale_factor_at_projection_origin",
			    OSRGetNormProjParm(s, SRS_PP_SCALE_FACTOR, 1, NULL));
		put_double(nc, id, "false_easting", OSRGetNormProjParm(s, SRS_PP_FALSE_EASTING, 0, NULL));
		put_double(nc, id, "false_northing",
		    OSRGetNormProjParm(s, SRS_PP_FALSE_NORTHING, 0, NULL));
	}
	if (auth && !strcmp(auth, "3857")) {
		/* Web Mercator is the spherical formula on WGS 84 coordinates */
		put_double(nc, id, "earth_radius", 6378137.0);
	} else {
		put_double(nc, id, "semi_major_axis", OSRGetSemiMajor(s, NULL));
		put_double(nc, id, "inverse_flattening", OSRGetInvFlattening(s, NULL));
		put_double(nc, id, "longitude_of_prime_meridian", OSRGetPrimeMeridian(s, NULL));
	}
	return NC_NOERR;
}

static int
define_coord(int nc, const char *name, int dim, const char *std, const char *lname,
    const char *units, const char *axis, int *id)
{
	int st = nc_def_var(nc, name, NC_DOUBLE, 1, &dim, id);

	if (st != NC_NOERR)
		return st;
	put_text(nc, *id, "standard_name", std);
	put_text(nc, *id, "long_name", lname);
	put_text(nc, *id, "units", units);
	put_text(nc, *id, "axis", axis);
	return NC_NOERR;
}

/*
 * A band variable.  Chunks are TIME_CHUNK dates by one cell: reading the
 * time series of a pixel, the access a cube is for, touches one chunk per
 * TIME_CHUNK dates instead of one per date, while a map of one date still
 * reads only the chunks of its area, and each chunk (at most 8 x 512 x 512
 * values) stays small enough for HDF5's chunk cache.  Shuffle puts the
 * bytes of equal significance together, which zlib compresses far better
 * for 16-bit and floating data.
 */
static int
define_var(struct mem_cube *c, int nc, struct var *v, const int dims[3], const size_t len[3])
{
	size_t chunk[3];
	int st;

	if ((st = nc_def_var(nc, v->name, v->type, 3, dims, &v->id)) != NC_NOERR)
		return st;
	chunk[0] = len[0] < TIME_CHUNK ? len[0] : TIME_CHUNK;
	chunk[1] = len[1] < (size_t)c->ch ? len[1] : (size_t)c->ch;
	chunk[2] = len[2] < (size_t)c->cw ? len[2] : (size_t)c->cw;
	if ((st = nc_def_var_chunking(nc, v->id, NC_CHUNKED, chunk)) != NC_NOERR ||
	    (st = nc_def_var_deflate(nc, v->id, 1, 1, DEFLATE_LEVEL)) != NC_NOERR)
		return st;
	if (v->oldid >= 0) {
		/* the previous cube's attributes, _FillValue included, as they were */
		int natts;
		char an[NC_MAX_NAME + 1];

		nc_inq_varnatts(c->old, v->oldid, &natts);
		for (int i = 0; i < natts; i++)
			if (nc_inq_attname(c->old, v->oldid, i, an) == NC_NOERR &&
			    (st = nc_copy_att(c->old, v->oldid, an, nc, v->id)) != NC_NOERR)
				return st;
		return NC_NOERR;
	}
	{
		unsigned char fill[8];

		put_value(v->type, fill, 0, v->fill);
		if ((st = nc_def_var_fill(nc, v->id, NC_FILL, fill)) != NC_NOERR)
			return st;
	}
	put_text(nc, v->id, "long_name", v->long_name);
	if (v->units)
		put_text(nc, v->id, "units", v->units);
	if (v->has_scale) {
		/* the packed values keep the type of the data; the attributes say how to unpack */
		put_double(nc, v->id, "scale_factor", v->scale);
		put_double(nc, v->id, "add_offset", v->offset);
	}
	put_text(nc, v->id, "grid_mapping", "crs");
	return NC_NOERR;
}

/* Fills one block of var v: times [t0, t0+nt), rows [r, r+h), cols [x, x+w) of the cube. */
static int
fill_block(struct mem_cube *c, struct var *v, unsigned char *buf, double *tmp,
    unsigned char *raw, size_t t0, size_t nt, long r, long x, long h, long w, int *any,
    struct mem_err *err)
{
	size_t sz = type_size(v->type), n = (size_t)(nt * h * w), i, k;
	unsigned char fill[8];
	long oc = -c->c0, orr = -c->r0;	/* the previous cube's origin in the new one */

	put_value(v->type, fill, 0, v->fill);
	for (i = 0; i < n; i++)
		memcpy(buf + i * sz, fill, sz);
	*any = 0;
	for (k = 0; k < nt; k++) {
		struct step *stp = &c->steps[t0 + k];
		unsigned char *plane = buf + k * (size_t)(h * w) * sz;

		if (stp->old >= 0 && v->oldid >= 0) {
			long a0 = r > orr ? r : orr, a1 = r + h < orr + (long)c->ony ? r + h : orr + (long)c->ony;
			long b0 = x > oc ? x : oc, b1 = x + w < oc + (long)c->onx ? x + w : oc + (long)c->onx;

			if (a0 < a1 && b0 < b1) {
				size_t start[3] = { (size_t)stp->old, (size_t)(a0 - orr), (size_t)(b0 - oc) };
				size_t count[3] = { 1, (size_t)(a1 - a0), (size_t)(b1 - b0) };
				int st = nc_get_vara(c->old, v->oldid, start, count, raw);

				if (st != NC_NOERR)
					return nc_fail(err, st, c->o->path, "cannot read the previous cube");
				if (any_data(raw, count[1] * count[2], sz, fill)) {
					*any = 1;
					for (long y = a0; y < a1; y++)
						memcpy(plane + ((size_t)((y - r) * w + (b0 - x))) * sz,
						    raw + (size_t)((y - a0) * (b1 - b0)) * sz,
						    (size_t)(b1 - b0) * sz);
				}
			}
		}
		for (i = 0; i < c->nsrcs; i++) {
			struct src *s = &c->srcs[i];
			long sc = s->col - c->c0, sr = s->row - c->r0;
			long a0 = r > sr ? r : sr, a1 = r + h < sr + s->h ? r + h : sr + s->h;
			long b0 = x > sc ? x : sc, b1 = x + w < sc + s->w ? x + w : sc + s->w;
			GDALDatasetH ds;
			CPLErr e;

			if (&c->vars[s->var] != v || s->day != stp->day || a0 >= a1 || b0 >= b1)
				continue;
			if ((ds = mem_raster_open(s->href, err)) == NULL)
				return mem_err_prefix(err, "item '%s'", s->item);
			e = GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, (int)(b0 - sc), (int)(a0 - sr),
			    (int)(b1 - b0), (int)(a1 - a0), tmp, (int)(b1 - b0), (int)(a1 - a0),
			    GDT_Float64, 0, 0);
			GDALClose(ds);
			if (e != CE_None)
				return mem_err_set(err, MEM_EITEM, "item '%s': cannot read '%s': %s", s->item,
				    s->href, CPLGetLastErrorMsg());
			/* valid pixels only: tiles of one date that overlap fill each other's gaps */
			for (long y = a0; y < a1; y++)
				for (long xx = b0; xx < b1; xx++) {
					double val = tmp[(y - a0) * (b1 - b0) + (xx - b0)];

					if (isnan(val) || (s->has_nodata && val == s->nodata))
						continue;
					put_value(v->type, plane, (size_t)((y - r) * w + (xx - x)), val);
					*any = 1;
				}
		}
	}
	return 0;
}

static int
write_data(struct mem_cube *c, int nc, struct var *v, const size_t len[3], struct mem_err *err)
{
	size_t sz = type_size(v->type), t;
	size_t cap = (size_t)TIME_CHUNK * c->ch * c->cw;
	unsigned char *buf = malloc(cap * sz), *raw = malloc((size_t)c->ch * c->cw * sz);
	double *tmp = malloc((size_t)c->ch * c->cw * sizeof *tmp);
	int rc = 0;

	if (buf == NULL || raw == NULL || tmp == NULL) {
		rc = mem_err_set(err, MEM_EITEM, "'%s': out of memory for a block", c->o->path);
		goto out;
	}
	/* chunk by chunk, so that HDF5 compresses each chunk once */
	for (long r = 0; r < (long)len[1] && rc == 0; r += c->ch)
		for (long x = 0; x < (long)len[2] && rc == 0; x += c->cw)
			for (t = 0; t < len[0] && rc == 0; t += TIME_CHUNK) {
				long h = r + c->ch < (long)len[1] ? c->ch : (long)len[1] - r;
				long w = x + c->cw < (long)len[2] ? c->cw : (long)len[2] - x;
				size_t nt = t + TIME_CHUNK < len[0] ? TIME_CHUNK : len[0] - t;
				size_t start[3] = { t, (size_t)r, (size_t)x }, count[3] = { nt, (size_t)h,
				    (size_t)w };
				int any, st;

				rc = fill_block(c, v, buf, tmp, raw, t, nt, r, x, h, w, &any, err);
				/* a chunk never written reads as _FillValue and takes no room */
				if (rc == 0 && any && (st = nc_put_vara(nc, v->id, start, count, buf)) != NC_NOERR)
					rc = nc_fail(err, st, c->o->path, "cannot write");
			}
out:
	free(buf);
	free(raw);
	free(tmp);
	return rc;
}

static int
step_has_sources(const struct mem_cube *c, const struct step *stp)
{
	for (size_t i = 0; i < c->nsrcs; i++)
		if (c->srcs[i].day == stp->day)
			return 1;
	return 0;
}

static int
write_cube(struct mem_cube *c, const char *tmp, struct mem_err *err)
{
	size_t len[3] = { c->nsteps, (size_t)(c->r1 - c->r0), (size_t)(c->c1 - c->c0) }, i;
	double x0 = c->gt[0] + c->c0 * c->gt[1], y0 = c->gt[3] + c->r0 * c->gt[5];
	int nc, st, dims[3], tid, yid, xid, geo = OSRIsGeographic(c->srs);
	double *vals;
	char *hist, *src;

	if ((st = nc_create(tmp, NC_NETCDF4 | NC_NOCLOBBER, &nc)) != NC_NOERR)
		return nc_fail(err, st, tmp, "cannot create");
	if ((st = nc_def_dim(nc, "time", len[0], &dims[0])) || (st = nc_def_dim(nc, "y", len[1], &dims[1])) ||
	    (st = nc_def_dim(nc, "x", len[2], &dims[2])))
		goto ncerr;
	if ((st = define_coord(nc, "time", dims[0], "time", "time",
	    "seconds since 1970-01-01 00:00:00", "T", &tid)))
		goto ncerr;
	put_text(nc, tid, "calendar", "standard");
	if ((st = geo ? define_coord(nc, "y", dims[1], "latitude", "latitude", "degrees_north", "Y",
	    &yid) : define_coord(nc, "y", dims[1], "projection_y_coordinate",
	    "y coordinate of projection", "m", "Y", &yid)))
		goto ncerr;
	if ((st = geo ? define_coord(nc, "x", dims[2], "longitude", "longitude", "degrees_east", "X",
	    &xid) : define_coord(nc, "x", dims[2], "projection_x_coordinate",
	    "x coordinate of projection", "m", "X", &xid)))
		goto ncerr;
	if ((st = define_crs(c, nc, x0, y0)))
		goto ncerr;
	for (i = 0; i < c->nvars; i++)
		if ((st = define_var(c, nc, &c->vars[i], dims, len)))
			goto ncerr;
	put_text(nc, NC_GLOBAL, "Conventions", "CF-1.8");
	put_text(nc, NC_GLOBAL, "title", "memories datacube");
	src = mem_xasprintf("memories %s (mem-store)", mem_version());
	put_text(nc, NC_GLOBAL, "source", src);
	free(src);
	/* no clock time: the same inputs give the same bytes */
	hist = mem_xasprintf("%s%s%s: added", c->ohistory ? c->ohistory : "", c->ohistory ? "\n" : "",
	    c->o->history ? c->o->history : "mem-store --cube");
	for (i = 0; i < c->nsteps; i++)
		if (step_has_sources(c, &c->steps[i])) {
			char d[40], *h;

			mem_time_format(c->steps[i].t, d, sizeof d);
			d[10] = '\0';
			h = mem_xasprintf("%s %s", hist, d);
			free(hist);
			hist = h;
		}
	put_text(nc, NC_GLOBAL, "history", hist);
	free(hist);
	if ((st = nc_enddef(nc)))
		goto ncerr;
	vals = mem_xcalloc(len[0] + len[1] + len[2] + 1, sizeof *vals);
	for (i = 0; i < len[0]; i++)
		vals[i] = c->steps[i].t;
	if (len[0] && (st = nc_put_var_double(nc, tid, vals))) {
		free(vals);
		goto ncerr;
	}
	/* coordinates of pixel centres, north first as in the items */
	for (i = 0; i < len[1]; i++)
		vals[i] = y0 + ((double)i + 0.5) * c->gt[5];
	if ((st = nc_put_var_double(nc, yid, vals))) {
		free(vals);
		goto ncerr;
	}
	for (i = 0; i < len[2]; i++)
		vals[i] = x0 + ((double)i + 0.5) * c->gt[1];
	st = nc_put_var_double(nc, xid, vals);
	free(vals);
	if (st)
		goto ncerr;
	for (i = 0; i < c->nvars; i++)
		if (write_data(c, nc, &c->vars[i], len, err) < 0) {
			nc_close(nc);
			return -1;
		}
	if ((st = nc_close(nc)) != NC_NOERR)
		return nc_fail(err, st, tmp, "cannot write");
	return 0;
ncerr:
	nc_close(nc);
	return nc_fail(err, st, tmp, "cannot define the cube");
}

int
mem_cube_commit(struct mem_cube *c, int *changed, struct mem_err *err)
{
	char *dir, *tmp;
	int rc;

	if (changed)
		*changed = 0;
	if (!c->have_grid)
		return mem_err_set(err, MEM_EUSAGE, "'%s': no raster items to put in the cube",
		    c->o->path);
	if (c->old >= 0 && drop_present(c, err) < 0)
		return -1;
	make_steps(c);
	if (c->nsrcs == 0 && c->old < 0)
		return mem_err_set(err, MEM_EUSAGE, "'%s': no raster items to put in the cube",
		    c->o->path);
	if (c->nsrcs == 0)
		return 0;	/* every pixel is in the cube already: not a byte changes */
	if (c->c1 - c->c0 > SIDE_MAX || c->r1 - c->r0 > SIDE_MAX)
		return mem_err_set(err, MEM_EUSAGE, "'%s': the items span %ld x %ld pixels: too large",
		    c->o->path, c->c1 - c->c0, c->r1 - c->r0);
	qsort(c->vars, c->nvars, sizeof *c->vars, cmp_var);
	for (size_t i = 0; i < c->nsrcs; i++)
		c->srcs[i].var = (size_t)(find_var(c, c->srcs[i].key) - c->vars);
	dir = mem_path_dirname(c->o->path);
	mem_sweep_tmp(dir);	/* the copies of appends killed before */
	free(dir);
	tmp = mem_tmp_name(c->o->path);
	rc = write_cube(c, tmp, err);
	if (rc == 0)
		rc = mem_commit_file(tmp, c->o->path, err);
	else
		unlink(tmp);
	free(tmp);
	if (rc == 0 && changed)
		*changed = 1;
	return rc;
}

json_t *
mem_cube_item(struct mem_cube *c, struct mem_err *err)
{
	double b[4], ll[4];
	char sum[69], t0[40], t1[40], *abs, *stem, *id;
	off_t size;
	json_t *it, *props, *assets, *a, *params;
	OGRSpatialReferenceH wgs;
	const char *auth;

	if (!c->have_grid || c->nsteps == 0)
		return mem_err_set(err, MEM_EITEM, "'%s': no cube", c->o->path), NULL;
	if (mem_file_checksum(c->o->path, sum, &size, err) < 0)
		return NULL;
	b[0] = c->gt[0] + c->c0 * c->gt[1];
	b[2] = c->gt[0] + c->c1 * c->gt[1];
	b[3] = c->gt[3] + c->r0 * c->gt[5];
	b[1] = c->gt[3] + c->r1 * c->gt[5];
	wgs = mem_raster_srs_epsg(4326);
	if (mem_raster_box_transform(c->srs, wgs, b, ll) < 0) {
		OSRDestroySpatialReference(wgs);
		return mem_err_set(err, MEM_EITEM, "'%s': cannot transform the extent", c->o->path),
		    NULL;
	}
	OSRDestroySpatialReference(wgs);
	mem_time_format(c->steps[0].t, t0, sizeof t0);
	mem_time_format(c->steps[c->nsteps - 1].t, t1, sizeof t1);
	abs = mem_path_absolute(c->o->path);
	/* the same file with the same bytes is the same item */
	params = json_pack("{s:s}", "file:checksum", sum);
	stem = mem_path_safe_name(mem_path_basename(c->o->path));
	id = mem_item_derive_id(stem, "mem-store", params);
	json_decref(params);
	free(stem);
	it = json_pack("{s:s, s:s, s:[], s:s, s:{s:s, s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}, "
	    "s:[f,f,f,f]}",
	    "type", "Feature", "stac_version", MEM_STAC_VERSION, "stac_extensions", "id", id,
	    "geometry", "type", "Polygon", "coordinates", ll[0], ll[1], ll[2], ll[1], ll[2], ll[3],
	    ll[0], ll[3], ll[0], ll[1], "bbox", ll[0], ll[1], ll[2], ll[3]);
	free(id);
	props = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "datetime", t0, "start_datetime", t0,
	    "end_datetime", t1, "mem:stage", "store", "processing:software", "memories",
	    mem_version());
	auth = OSRGetAuthorityCode(c->srs, NULL);
	if (auth)
		json_object_set_new(props, "proj:epsg", json_integer(atoi(auth)));
	json_object_set_new(props, "proj:shape", json_pack("[I,I]", (json_int_t)(c->r1 - c->r0),
	    (json_int_t)(c->c1 - c->c0)));
	json_object_set_new(props, "proj:transform", json_pack("[f,f,f,f,f,f]", c->gt[1], 0.0, b[0],
	    0.0, c->gt[5], b[3]));
	json_object_set_new(it, "properties", props);
	json_object_set_new(it, "links", json_array());
	a = json_pack("{s:s, s:s, s:s, s:[s], s:I, s:s}", "href", abs, "type", "application/x-netcdf",
	    "title", "datacube (netCDF-4, CF-1.8)", "roles", "data", "file:size", (json_int_t)size,
	    "file:checksum", sum);
	free(abs);
	assets = json_object();
	json_object_set_new(assets, "cube", a);
	json_object_set_new(it, "assets", assets);
	mem_item_add_extension(it, MEM_EXT_PROJ);
	mem_item_add_extension(it, MEM_EXT_FILE);
	mem_item_add_extension(it, MEM_EXT_PROCESSING);
	return it;
}

void
mem_cube_free(struct mem_cube *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->old >= 0)
		nc_close(c->old);
	if (c->lock >= 0)
		close(c->lock);	/* after the rename: the next append reads the new cube */
	if (c->srs)
		OSRDestroySpatialReference(c->srs);
	for (i = 0; i < c->nvars; i++) {
		free(c->vars[i].key);
		free(c->vars[i].units);
		free(c->vars[i].long_name);
	}
	free(c->vars);
	for (i = 0; i < c->nsrcs; i++) {
		free(c->srcs[i].href);
		free(c->srcs[i].item);
		free(c->srcs[i].key);
	}
	free(c->srcs);
	free(c->odays);
	free(c->otimes);
	free(c->ohistory);
	free(c->steps);
	free(c);
}
