/*
 * item.c - reading and making STAC Items.
 *
 * Catalogs in the wild name bands in several ways: Earth Search v1 keys its
 * assets by common name ("red") and lists eo:bands, older catalogs key by
 * band id ("B04"), STAC 1.1 moves eo:bands into "bands", and multi-band
 * assets (a sen2r BOA stack, a true-colour image) hold several bands.  The
 * band finder scores every candidate so that one rule serves them all.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "item.h"
#include "sha256.h"

static int
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int
mem_time_parse(const char *s, double *t, int *date_only, struct mem_err *err)
{
	struct tm tm;
	int Y, M, D, h = 0, m = 0, sec = 0;
	double frac = 0, off = 0;
	const char *p = s;

	memset(&tm, 0, sizeof tm);
	if (date_only)
		*date_only = 0;
	if (strlen(s) < 10 || digits(p, 4, &Y) || p[4] != '-' || digits(p + 5, 2, &M) ||
	    p[7] != '-' || digits(p + 8, 2, &D))
		goto bad;
	p += 10;
	if (*p == '\0') {
		if (date_only)
			*date_only = 1;
	} else {
		if (*p != 'T' && *p != 't' && *p != ' ')
			goto bad;
		p++;
		if (digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &m) || p[5] != ':' ||
		    digits(p + 6, 2, &sec))
			goto bad;
		p += 8;
		if (*p == '.') {
			double scale = 0.1;

			if (!isdigit((unsigned char)p[1]))
				goto bad;
			for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
				frac += (*p - '0') * scale;
		}
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (*p == '+' || *p == '-') {
			int oh, om;

			if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
			    om > 59)
				goto bad;
			off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
			p += 6;
		} else
			goto bad;
		if (*p != '\0')
			goto bad;
	}
	{
		static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;

		if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) ||
		    h > 23 || m > 59 || sec > 60)
			goto bad;
	}
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*t = (double)timegm(&tm) + frac - off;
	return 0;
bad:
	return mem_err_set(err, MEM_EUSAGE, "invalid RFC 3339 datetime '%s'", s);
}

void
mem_time_format(double t, char *buf, size_t n)
{
	/* round to whole microseconds first, so that .9999996 carries into the second */
	long long us = llround(t * 1e6);
	long long sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	long frac = (long)(us - sec * 1000000);
	time_t s = (time_t)sec;
	struct tm tm;
	size_t k;

	gmtime_r(&s, &tm);
	k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac > 0 && k + 8 < n)
		k += (size_t)snprintf(buf + k, n - k, ".%06ld", frac);
	if (k + 2 <= n) {
		buf[k] = 'Z';
		buf[k + 1] = '\0';
	}
}

static int
parse_end(const char *s, double *t, int is_end, struct mem_err *err)
{
	int date_only;

	if (*s == '\0' || strcmp(s, "..") == 0) {
		*t = is_end ? INFINITY : -INFINITY;
		return 0;
	}
	if (mem_time_parse(s, t, &date_only, err) < 0)
		return -1;
	if (date_only && is_end)
		*t += 86400 - 1e-6;
	return 0;
}

int
mem_interval_parse(const char *s, struct mem_interval *iv, struct mem_err *err)
{
	const char *slash = strchr(s, '/');
	int date_only;

	if (slash == NULL) {
		if (mem_time_parse(s, &iv->start, &date_only, err) < 0)
			return -1;
		iv->end = iv->start + (date_only ? 86400 - 1e-6 : 0);
		return 0;
	} else {
		char *a = mem_xasprintf("%.*s", (int)(slash - s), s);
		int rc = parse_end(a, &iv->start, 0, err);

		free(a);
		if (rc < 0 || parse_end(slash + 1, &iv->end, 1, err) < 0)
			return mem_err_prefix(err, "in --datetime '%s'", s);
		if (iv->end < iv->start)
			return mem_err_set(err, MEM_EUSAGE, "datetime interval '%s' ends before it starts", s);
	}
	return 0;
}

int
mem_item_time(const json_t *item, struct mem_interval *iv, struct mem_err *err)
{
	const char *dt = mem_item_prop_string(item, "datetime");
	const char *a = mem_item_prop_string(item, "start_datetime");
	const char *b = mem_item_prop_string(item, "end_datetime");

	if (a && b) {
		if (mem_time_parse(a, &iv->start, NULL, err) < 0 ||
		    mem_time_parse(b, &iv->end, NULL, err) < 0)
			return mem_err_prefix(err, "item '%s'", mem_item_id(item));
		return 0;
	}
	if (dt == NULL)
		return mem_err_set(err, MEM_EUSAGE, "item '%s' has no datetime", mem_item_id(item));
	if (mem_time_parse(dt, &iv->start, NULL, err) < 0)
		return mem_err_prefix(err, "item '%s'", mem_item_id(item));
	iv->end = iv->start;
	return 0;
}

int
mem_item_date(const json_t *item, char buf[11], struct mem_err *err)
{
	struct mem_interval iv;
	char tmp[40];

	if (mem_item_time(item, &iv, err) < 0)
		return -1;
	mem_time_format(iv.start, tmp, sizeof tmp);
	memcpy(buf, tmp, 10);
	buf[10] = '\0';
	return 0;
}

static void
extend(double b[4], double x, double y)
{
	if (x < b[0]) b[0] = x;
	if (y < b[1]) b[1] = y;
	if (x > b[2]) b[2] = x;
	if (y > b[3]) b[3] = y;
}

static void
walk_coords(const json_t *c, double b[4])
{
	size_t i;
	json_t *v;

	if (!json_is_array(c))
		return;
	if (json_array_size(c) >= 2 && json_is_number(json_array_get(c, 0))) {
		extend(b, json_number_value(json_array_get(c, 0)),
		    json_number_value(json_array_get(c, 1)));
		return;
	}
	json_array_foreach(c, i, v)
		walk_coords(v, b);
}

static void
walk_geometry(const json_t *g, double b[4])
{
	json_t *gs = json_object_get(g, "geometries"), *v;
	size_t i;

	if (json_is_array(gs)) {
		json_array_foreach(gs, i, v)
			walk_geometry(v, b);
		return;
	}
	walk_coords(json_object_get(g, "coordinates"), b);
}

int
mem_item_bbox(const json_t *item, double bbox[4], struct mem_err *err)
{
	const json_t *bb = json_object_get(item, "bbox"), *g;
	size_t n = json_array_size(bb);

	if (n == 4 || n == 6) {
		size_t k = n / 2;

		bbox[0] = json_number_value(json_array_get(bb, 0));
		bbox[1] = json_number_value(json_array_get(bb, 1));
		bbox[2] = json_number_value(json_array_get(bb, k));
		bbox[3] = json_number_value(json_array_get(bb, k + 1));
		return 0;
	}
	g = json_object_get(item, "geometry");
	bbox[0] = bbox[1] = INFINITY;
	bbox[2] = bbox[3] = -INFINITY;
	if (json_is_object(g))
		walk_geometry(g, bbox);
	if (!(bbox[0] <= bbox[2]))
		return mem_err_set(err, MEM_EUSAGE, "item '%s' has no bbox and no geometry",
		    mem_item_id(item));
	return 0;
}

int
mem_bbox_intersects(const double a[4], const double b[4])
{
	return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

int
mem_bbox_parse(const char *s, double bbox[4], struct mem_err *err)
{
	char *end;
	const char *p = s;
	int i;

	for (i = 0; i < 4; i++) {
		bbox[i] = strtod(p, &end);
		if (end == p || !isfinite(bbox[i]) || (i < 3 && *end != ',') || (i == 3 && *end != '\0'))
			return mem_err_set(err, MEM_EUSAGE,
			    "invalid bbox '%s': expected WEST,SOUTH,EAST,NORTH", s);
		p = end + 1;
	}
	if (bbox[0] > bbox[2] || bbox[1] > bbox[3])
		return mem_err_set(err, MEM_EUSAGE, "invalid bbox '%s': west > east or south > north", s);
	return 0;
}

const char *
mem_item_id(const json_t *item)
{
	const char *s = json_string_value(json_object_get(item, "id"));

	return s ? s : "(no id)";
}

const char *
mem_item_prop_string(const json_t *item, const char *key)
{
	return json_string_value(json_object_get(json_object_get(item, "properties"), key));
}

int
mem_item_prop_number(const json_t *item, const char *key, double *v)
{
	json_t *n = json_object_get(json_object_get(item, "properties"), key);

	if (!json_is_number(n))
		return -1;
	*v = json_number_value(n);
	return 0;
}

const char *
mem_asset_href(const json_t *asset)
{
	return json_string_value(json_object_get(asset, "href"));
}

static int
has_role(const json_t *asset, const char *role)
{
	json_t *roles = json_object_get(asset, "roles"), *r;
	size_t i;

	json_array_foreach(roles, i, r)
		if (json_is_string(r) && strcmp(json_string_value(r), role) == 0)
			return 1;
	return 0;
}

/* The per-band array of an asset: STAC 1.1 "bands", else "eo:bands". */
static json_t *
asset_bands(const json_t *asset)
{
	json_t *b = json_object_get(asset, "bands");

	return json_is_array(b) ? b : json_object_get(asset, "eo:bands");
}

static int
band_matches(const json_t *b, const char *name)
{
	static const char *keys[] = { "name", "common_name", "eo:common_name" };
	size_t i;

	for (i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *v = json_string_value(json_object_get(b, keys[i]));

		if (v && strcasecmp(v, name) == 0)
			return 1;
	}
	return 0;
}

static int
raster_asset(const json_t *asset)
{
	const char *type = json_string_value(json_object_get(asset, "type"));
	const char *href = mem_asset_href(asset);
	size_t n;

	if (type)
		return strstr(type, "image/tiff") != NULL ? 2 :
		    strstr(type, "image/jp2") != NULL ? 1 :
		    strstr(type, "netcdf") || strstr(type, "x-hdf") ? 1 : 0;
	if (href == NULL)
		return 0;
	n = strlen(href);
	return (n > 4 && (strcasecmp(href + n - 4, ".tif") == 0 ||
	    (n > 5 && strcasecmp(href + n - 5, ".tiff") == 0))) ? 2 :
	    (n > 4 && strcasecmp(href + n - 4, ".jp2") == 0) ? 1 : 0;
}

static void
band_numbers(const json_t *asset, int index, struct mem_band *band)
{
	json_t *rb = json_object_get(asset, "raster:bands"), *b, *v;

	band->scale = 1;
	band->offset = 0;
	band->has_nodata = 0;
	/* STAC 1.1 keeps these in "bands"; 1.0 in "raster:bands"; either may be asset-wide */
	b = json_array_get(rb, (size_t)index - 1);
	if (b == NULL && json_is_array(json_object_get(asset, "bands")))
		b = json_array_get(json_object_get(asset, "bands"), (size_t)index - 1);
	if (b == NULL)
		b = (json_t *)asset;
	/* STAC 1.1 names them raster:scale and raster:offset */
	if (json_is_number(v = json_object_get(b, "scale")) ||
	    json_is_number(v = json_object_get(b, "raster:scale")) ||
	    json_is_number(v = json_object_get(asset, "raster:scale"))) {
		band->scale = json_number_value(v);
		band->has_scale = 1;
	}
	if (json_is_number(v = json_object_get(b, "offset")) ||
	    json_is_number(v = json_object_get(b, "raster:offset")) ||
	    json_is_number(v = json_object_get(asset, "raster:offset"))) {
		band->offset = json_number_value(v);
		band->has_offset = 1;
	}
	v = json_object_get(b, "nodata");
	if (v == NULL)
		v = json_object_get(asset, "nodata");
	if (json_is_number(v)) {
		band->has_nodata = 1;
		band->nodata = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);

		band->has_nodata = 1;
		band->nodata = strcasecmp(s, "nan") == 0 ? NAN :
		    strcasecmp(s, "inf") == 0 ? INFINITY : -INFINITY;
	}
}

int
mem_item_find_band(const json_t *item, const char *name, struct mem_band *band,
    struct mem_err *err)
{
	json_t *assets = json_object_get(item, "assets"), *a;
	const char *key;
	int best = 0;

	memset(band, 0, sizeof *band);
	json_object_foreach(assets, key, a) {
		json_t *bands, *b;
		size_t i;
		int score, fmt;

		if (!json_is_object(a) || mem_asset_href(a) == NULL)
			continue;
		if (has_role(a, "visual") || has_role(a, "overview") || has_role(a, "thumbnail"))
			continue;
		fmt = raster_asset(a);
		bands = asset_bands(a);
		if (strcasecmp(key, name) == 0 && json_array_size(bands) <= 1) {
			score = 100 + fmt;
			if (score > best) {
				best = score;
				band->asset_key = key;
				band->asset = a;
				band->index = 1;
			}
			continue;
		}
		json_array_foreach(bands, i, b) {
			/* STAC 0.x: assets list indices into the item's eo:bands */
			if (json_is_integer(b))
				b = json_array_get(json_object_get(json_object_get(item, "properties"),
				    "eo:bands"), (size_t)json_integer_value(b));
			if (!band_matches(b, name))
				continue;
			score = 10 + fmt * 2 + (json_array_size(bands) == 1 ? 5 : 0) +
			    (has_role(a, "data") ? 1 : 0);
			if (score > best) {
				best = score;
				band->asset_key = key;
				band->asset = a;
				band->index = (int)i + 1;
			}
			break;
		}
	}
	if (best == 0)
		return mem_err_set(err, MEM_EITEM, "item '%s' has no band '%s'", mem_item_id(item), name);
	band_numbers(band->asset, band->index, band);
	return 0;
}

int
mem_href_is_url(const char *s)
{
	const char *p = s;

	if (!isalpha((unsigned char)*p))
		return 0;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return p - s >= 2 && strncmp(p, "://", 3) == 0;
}

char *
mem_href_resolve(const char *base, const char *href)
{
	const char *slash;

	if (mem_href_is_url(href)) {
		if (strncmp(href, "file://", 7) == 0)
			return mem_xstrdup(href + 7);
		return mem_xstrdup(href);
	}
	if (href[0] == '/' || base == NULL) {
		if (href[0] == '/' && base && mem_href_is_url(base) && strncmp(base, "file://", 7)) {
			/* host-absolute path on the same server */
			const char *host = strstr(base, "://") + 3;
			const char *end = strchr(host, '/');

			return mem_xasprintf("%.*s%s", (int)(end ? end - base : (long)strlen(base)), base, href);
		}
		return mem_xstrdup(href);
	}
	if (strncmp(base, "file://", 7) == 0)
		base += 7;
	slash = strrchr(base, '/');
	if (mem_href_is_url(base)) {
		const char *host = strstr(base, "://") + 3;

		if (slash < host)
			return mem_xasprintf("%s/%s", base, href);
	}
	{
		char *joined = slash ? mem_xasprintf("%.*s/%s", (int)(slash - base), base, href)
		    : mem_xstrdup(href);
		/* fold "./" and "x/../" segments after the scheme and host */
		char *start = joined, *out, *p;

		if (mem_href_is_url(joined)) {
			start = strstr(joined, "://") + 3;
			start = strchr(start, '/');
			if (start == NULL)
				return joined;
		}
		out = mem_xstrdup(joined);
		p = out + (start - joined);
		{
			char **segs = mem_xcalloc(strlen(start) + 1, sizeof *segs);
			char *dup = mem_xstrdup(start), *tok, *save;
			size_t n = 0, i;
			int abs = start[0] == '/';

			for (tok = strtok_r(dup, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
				if (strcmp(tok, ".") == 0)
					continue;
				if (strcmp(tok, "..") == 0 && n > 0 && strcmp(segs[n - 1], "..") != 0) {
					n--;
					continue;
				}
				/* above the root of a URL or an absolute path, ".." stays at the root */
				if (strcmp(tok, "..") == 0 && n == 0 && (abs || start != joined))
					continue;
				segs[n++] = tok;
			}
			*p = '\0';
			for (i = 0; i < n; i++) {
				if (i > 0 || abs)
					strcat(out, "/");
				strcat(out, segs[i]);
			}
			free(segs);
			free(dup);
		}
		free(joined);
		return out;
	}
}

/* Dumps v with sorted keys into the hash, so that member order never matters. */
char *
mem_item_derive_id(const char *stem, const char *tool, const json_t *params)
{
	char *s = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	char *all = mem_xasprintf("%s\n%s\n%s", tool, mem_version(), s ? s : "null");
	char hex[65], *id;

	size_t n = strlen(stem);

	mem_sha256_hex(all, strlen(all), hex);
	/* a stem that is itself a derived id keeps its name, not its hash */
	if (n > 17 && stem[n - 17] == '-' && strspn(stem + n - 16, "0123456789abcdef") == 16)
		n -= 17;
	id = mem_xasprintf("%.*s-%.16s", (int)n, stem, hex);
	free(s);
	free(all);
	return id;
}

void
mem_item_add_extension(json_t *item, const char *ext)
{
	json_t *exts = json_object_get(item, "stac_extensions"), *v;
	size_t i;

	if (!json_is_array(exts)) {
		exts = json_array();
		json_object_set_new(item, "stac_extensions", exts);
	}
	json_array_foreach(exts, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), ext) == 0)
			return;
	json_array_append_new(exts, json_string(ext));
}

json_t *
mem_item_derive(const json_t *parent, const char *id, const char *tool)
{
	static const char *copy_props[] = {
		"datetime", "start_datetime", "end_datetime", "platform", "constellation",
		"instruments", "eo:cloud_cover", "proj:epsg", "proj:code", "proj:wkt2",
		"proj:transform", "proj:shape", "proj:bbox", "mem:grid"
	};
	const json_t *pp = json_object_get(parent, "properties");
	json_t *item = json_object(), *props = json_object(), *links = json_array(), *v;
	const char *pid = mem_item_id(parent);
	size_t i;

	json_object_set_new(item, "type", json_string("Feature"));
	json_object_set_new(item, "stac_version", json_string(MEM_STAC_VERSION));
	json_object_set_new(item, "stac_extensions", json_array());
	json_object_set_new(item, "id", json_string(id));
	v = json_object_get(parent, "geometry");
	json_object_set_new(item, "geometry", v ? json_deep_copy(v) : json_null());
	if ((v = json_object_get(parent, "bbox")) != NULL)
		json_object_set_new(item, "bbox", json_deep_copy(v));
	for (i = 0; i < sizeof copy_props / sizeof *copy_props; i++)
		if ((v = json_object_get(pp, copy_props[i])) != NULL)
			json_object_set_new(props, copy_props[i], json_deep_copy(v));
	if (json_object_get(props, "datetime") == NULL)
		json_object_set_new(props, "datetime", json_null());
	{
		json_t *sw = json_object();

		json_object_set_new(sw, "memories", json_string(mem_version()));
		json_object_set_new(props, "processing:software", sw);
	}
	json_object_set_new(props, "mem:stage", json_string(tool));
	json_object_set_new(item, "properties", props);
	{
		json_t *l = json_object();

		json_object_set_new(l, "rel", json_string("derived_from"));
		v = json_object_get(parent, "links");
		/* point at the parent's self link when it has one, else name it by id */
		{
			json_t *lk;
			const char *self = NULL;

			json_array_foreach(v, i, lk)
				if (json_is_string(json_object_get(lk, "rel")) &&
				    strcmp(json_string_value(json_object_get(lk, "rel")), "self") == 0)
					self = json_string_value(json_object_get(lk, "href"));
			json_object_set_new(l, "href", json_string(self ? self : pid));
		}
		json_object_set_new(l, "type", json_string("application/geo+json"));
		json_object_set_new(l, "title", json_string(pid));
		json_array_append_new(links, l);
	}
	json_object_set_new(item, "links", links);
	json_object_set_new(item, "assets", json_object());
	if ((v = json_object_get(parent, "collection")) != NULL)
		json_object_set_new(item, "collection", json_deep_copy(v));
	mem_item_add_extension(item, MEM_EXT_PROCESSING);
	if (json_object_get(props, "proj:epsg") || json_object_get(props, "proj:code"))
		mem_item_add_extension(item, MEM_EXT_PROJ);
	return item;
}
