/*
 * test-item.c - STAC item helpers: times, boxes, bands, hrefs, derived items.
 *
 * The band-finder fixtures are cut down from real catalog answers kept in
 * shared/realdata/stac (Earth Search v1 sentinel-2-l2a, Planetary Computer
 * sentinel-2-l2a), with the members the finder looks at left as they were,
 * plus the shapes real catalogs use that those two do not: a sen2r BOA
 * stack and STAC 1.1 "bands".  Expected epoch seconds were computed with
 * Python's datetime, not with timegm.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item.h"
#include "manifest.h"
#include "sha256.h"
#include "tap.h"

static json_t *
parse(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, 0, &e);

	if (v == NULL) {
		fprintf(stderr, "fixture does not parse: line %d: %s\n", e.line, e.text);
		exit(99);
	}
	return v;
}

/* ------------------------------------------------------------------ times */

static void
time_ok(const char *s, double want, int want_date_only)
{
	struct mem_err err;
	double t = NAN;
	int date_only = -1;
	int rc = mem_time_parse(s, &t, &date_only, &err);

	ok(rc == 0 && fabs(t - want) <= 1e-6 && date_only == want_date_only,
	    "time '%s' is %.6f%s", s, want, want_date_only ? " (a date)" : "");
	if (rc != 0 || fabs(t - want) > 1e-6 || date_only != want_date_only)
		diag("     got: rc %d t %.6f date_only %d %s", rc, t, date_only, rc ? err.msg : "");
}

static void
time_bad(const char *s, const char *why)
{
	struct mem_err err;
	double t;

	mem_err_clear(&err);
	ok(mem_time_parse(s, &t, NULL, &err) < 0 && err.status == MEM_EUSAGE &&
	    strstr(err.msg, s) != NULL, "time '%s' is refused (%s)", s, why);
}

static void
test_time_parse(void)
{
	char buf[40];

	time_ok("2024-06-01T10:00:00Z", 1717236000, 0);
	time_ok("2024-06-01T12:00:00+02:00", 1717236000, 0);
	time_ok("2024-06-01T05:30:00-04:30", 1717236000, 0);
	time_ok("2024-06-02T00:00:00+14:00", 1717236000, 0);
	time_ok("2024-06-01T10:00:00+00:00", 1717236000, 0);
	time_ok("2024-06-01t10:00:00z", 1717236000, 0);
	time_ok("2024-06-01 10:00:00Z", 1717236000, 0);
	time_ok("2024-06-01T10:00:00.25Z", 1717236000.25, 0);
	time_ok("2024-06-01T10:00:00.123456Z", 1717236000.123456, 0);
	time_ok("2024-06-01T10:00:00.123456789+01:00", 1717232400.123456789, 0);
	time_ok("2023-10-08T18:02:55.276000Z", 1696788175.276, 0);
	time_ok("2016-12-31T23:59:60Z", 1483228800, 0);	/* a leap second */
	time_ok("1969-12-31T23:59:59Z", -1, 0);
	time_ok("2024-06-01", 1717200000, 1);
	time_ok("2024-02-29", 1709164800, 1);

	time_bad("", "empty");
	time_bad("2024", "year only");
	time_bad("2024-6-1", "one-digit month");
	time_bad("2024/06/01", "slashes");
	time_bad("2024-06-01T10:00:00", "no offset");
	time_bad("2024-06-01T10:00Z", "no seconds");
	time_bad("2024-06-01T10:00:00+0200", "offset without colon");
	time_bad("2024-06-01T10:00:00+02", "offset without minutes");
	time_bad("2024-06-01T10:00:00Zjunk", "trailing text");
	time_bad("2024-06-01x", "text after the date");
	time_bad("2024-06-01T", "T and nothing");
	time_bad("2024-13-01", "month 13");
	time_bad("2024-00-10", "month 0");
	time_bad("2024-06-32", "day 32");
	time_bad("2024-06-00", "day 0");
	time_bad("2024-06-01T24:00:00Z", "hour 24");
	time_bad("2024-06-01T10:60:00Z", "minute 60");
	time_bad("2024-06-01T10:00:61Z", "second 61");
	time_bad("yesterday", "words");

	time_bad("2024-02-30", "February 30");
	time_bad("2023-02-29", "February 29 of a common year");
	time_bad("2024-04-31", "April 31");
	time_bad("2024-06-01T10:00:00+25:00", "offset hour 25");
	time_bad("2024-06-01T10:00:00+02:60", "offset minute 60");
	time_bad("2024-06-01T10:00:00.Z", "a dot without digits");

	mem_time_format(1717236000, buf, sizeof buf);
	is_str(buf, "2024-06-01T10:00:00Z", "format a whole second");
	mem_time_format(1717236000.25, buf, sizeof buf);
	is_str(buf, "2024-06-01T10:00:00.250000Z", "format a fraction");
	mem_time_format(-1, buf, sizeof buf);
	is_str(buf, "1969-12-31T23:59:59Z", "format before the epoch");
	mem_time_format(1717235999.9999996, buf, sizeof buf);
	is_str(buf, "2024-06-01T10:00:00Z", "a fraction that rounds up carries into the second");
}

static void
test_interval(void)
{
	struct mem_interval iv;
	struct mem_err err;
	double t;

	ok(mem_interval_parse("2024-06-01/2024-08-31", &iv, &err) == 0, "parse a date interval");
	is_double(iv.start, 1717200000, 0, "it starts at the first second of the first day");
	ok(iv.end > 1725148799.99 && iv.end < 1725148800,
	    "it ends within the last second of 2024-08-31 (%.6f)", iv.end);
	mem_time_parse("2024-08-31T23:59:59.5Z", &t, NULL, &err);
	ok(t >= iv.start && t <= iv.end, "23:59:59.5 on the last day is inside");
	mem_time_parse("2024-09-01T00:00:00Z", &t, NULL, &err);
	ok(t > iv.end, "midnight after the last day is outside");

	ok(mem_interval_parse("../2024-01-01", &iv, &err) == 0 && isinf(iv.start) &&
	    iv.start < 0 && iv.end > 1704153599.99 && iv.end < 1704153600,
	    "'../2024-01-01' is open at the start, through the end of that day");
	ok(mem_interval_parse("2024-01-01/..", &iv, &err) == 0 && iv.start == 1704067200 &&
	    isinf(iv.end) && iv.end > 0, "'2024-01-01/..' is open at the end");
	ok(mem_interval_parse("2024-01-01/", &iv, &err) == 0 && iv.start == 1704067200 &&
	    isinf(iv.end) && iv.end > 0, "'2024-01-01/' is open at the end");
	ok(mem_interval_parse("/2024-01-01", &iv, &err) == 0 && isinf(iv.start) && iv.start < 0,
	    "'/2024-01-01' is open at the start");
	ok(mem_interval_parse("2024-06-01", &iv, &err) == 0 && iv.start == 1717200000 &&
	    iv.end > 1717286399.99 && iv.end < 1717286400, "a single date is the whole day");
	ok(mem_interval_parse("2024-06-01T10:00:00Z", &iv, &err) == 0 && iv.start == 1717236000 &&
	    iv.end == 1717236000, "a single instant is that instant");
	ok(mem_interval_parse("2024-06-01T10:00:00Z/2024-06-01T12:00:00+02:00", &iv, &err) == 0 &&
	    iv.start == 1717236000 && iv.end == 1717236000, "an interval of instants, offsets applied");
	ok(mem_interval_parse("2024-06-01T10:00:00Z/2024-06-01", &iv, &err) == 0 &&
	    iv.end > 1717286399.99 && iv.end < 1717286400, "a date as the end takes the whole day");

	mem_err_clear(&err);
	ok(mem_interval_parse("2024-08-31/2024-06-01", &iv, &err) < 0 && err.status == MEM_EUSAGE,
	    "a reversed interval is refused");
	like(err.msg, "2024-08-31/2024-06-01", "naming the interval");
	mem_err_clear(&err);
	ok(mem_interval_parse("2024-06-01/soon", &iv, &err) < 0 && err.status == MEM_EUSAGE &&
	    strstr(err.msg, "soon") != NULL, "a bad end is refused, naming it (%s)", err.msg);
	mem_err_clear(&err);
	ok(mem_interval_parse("nope/2024-06-01", &iv, &err) < 0 && strstr(err.msg, "nope") != NULL,
	    "a bad start is refused, naming it (%s)", err.msg);
	ok(mem_interval_parse("", &iv, &err) < 0, "an empty filter is refused");
}

static void
test_item_time(void)
{
	struct mem_interval iv;
	struct mem_err err;
	char date[11];
	json_t *a = parse("{\"type\":\"Feature\",\"id\":\"a\",\"properties\":"
	    "{\"datetime\":\"2023-10-08T18:02:55.276000Z\"}}");
	json_t *b = parse("{\"type\":\"Feature\",\"id\":\"b\",\"properties\":{\"datetime\":null,"
	    "\"start_datetime\":\"2024-06-01T00:00:00Z\",\"end_datetime\":\"2024-06-30T23:59:59Z\"}}");
	json_t *c = parse("{\"type\":\"Feature\",\"id\":\"c\",\"properties\":"
	    "{\"datetime\":\"2024-06-01T23:30:00-02:00\"}}");
	json_t *d = parse("{\"type\":\"Feature\",\"id\":\"no-time\",\"properties\":{}}");

	ok(mem_item_time(a, &iv, &err) == 0 && fabs(iv.start - 1696788175.276) < 1e-6 &&
	    iv.end == iv.start, "an item's datetime is an instant");
	ok(mem_item_time(b, &iv, &err) == 0 && iv.start == 1717200000 && iv.end == 1719791999,
	    "start_datetime/end_datetime is a span");
	ok(mem_item_date(a, date, &err) == 0 && strcmp(date, "2023-10-08") == 0, "item date");
	ok(mem_item_date(c, date, &err) == 0 && strcmp(date, "2024-06-02") == 0,
	    "item date is the UTC date (%s)", date);
	ok(mem_item_time(d, &iv, &err) < 0 && strstr(err.msg, "no-time") != NULL,
	    "an item without datetime is refused, naming it");
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}

/* ------------------------------------------------------------------ boxes */

static void
test_bbox(void)
{
	struct mem_err err;
	double b[4];
	json_t *item;
	static const char *bad[] = {
		"", "1,2,3", "1,2,3,4,5", "a,b,c,d", "1,,3,4", "1,2,3,4x", "1;2;3;4", "10,0,5,1",
		"0,10,1,5",
	};
	size_t i;

	ok(mem_bbox_parse("8.5,45.9,10.6,46.6", b, &err) == 0 && b[0] == 8.5 && b[1] == 45.9 &&
	    b[2] == 10.6 && b[3] == 46.6, "parse a bbox");
	ok(mem_bbox_parse("-180,-90,180,90", b, &err) == 0 && b[0] == -180 && b[3] == 90,
	    "parse the world");
	ok(mem_bbox_parse("1e0,2,3,4", b, &err) == 0 && b[0] == 1, "exponents are numbers");
	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		mem_err_clear(&err);
		ok(mem_bbox_parse(bad[i], b, &err) < 0 && err.status == MEM_EUSAGE &&
		    strstr(err.msg, bad[i]) != NULL, "bbox '%s' is refused", bad[i]);
	}
	ok(mem_bbox_parse("nan,0,1,1", b, &err) < 0, "bbox 'nan,0,1,1' is refused");

	item = parse("{\"type\":\"Feature\",\"id\":\"bb\",\"bbox\":[8.5,45.9,10.6,46.6],"
	    "\"geometry\":{\"type\":\"Point\",\"coordinates\":[0,0]},\"properties\":{}}");
	ok(mem_item_bbox(item, b, &err) == 0 && b[0] == 8.5 && b[1] == 45.9 && b[2] == 10.6 &&
	    b[3] == 46.6, "an item's bbox member wins over its geometry");
	json_decref(item);
	item = parse("{\"type\":\"Feature\",\"id\":\"bb3\",\"bbox\":[8.5,45.9,100,10.6,46.6,3000],"
	    "\"properties\":{}}");
	ok(mem_item_bbox(item, b, &err) == 0 && b[0] == 8.5 && b[1] == 45.9 && b[2] == 10.6 &&
	    b[3] == 46.6, "a 3D bbox gives its horizontal box");
	json_decref(item);
	/* the Planetary Computer T06VVN footprint and its published bbox */
	item = parse("{\"type\":\"Feature\",\"id\":\"poly\",\"geometry\":{\"type\":\"Polygon\","
	    "\"coordinates\":[[[-148.86876,61.32159126],[-146.81763,61.33432013],"
	    "[-146.82315,60.34852729],[-148.81212,60.33630032],[-148.86876,61.32159126]]]},"
	    "\"properties\":{}}");
	ok(mem_item_bbox(item, b, &err) == 0 && b[0] == -148.86876 && b[1] == 60.33630032 &&
	    b[2] == -146.81763 && b[3] == 61.33432013, "bbox from a Polygon geometry");
	json_decref(item);
	item = parse("{\"type\":\"Feature\",\"id\":\"multi\",\"geometry\":{\"type\":"
	    "\"GeometryCollection\",\"geometries\":[{\"type\":\"Point\",\"coordinates\":[1,2]},"
	    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[3,-4],[5,-4],[5,6],[3,-4]]]]},"
	    "{\"type\":\"LineString\",\"coordinates\":[[-7,0,100],[0,0,200]]}]},\"properties\":{}}");
	ok(mem_item_bbox(item, b, &err) == 0 && b[0] == -7 && b[1] == -4 && b[2] == 5 && b[3] == 6,
	    "bbox from a GeometryCollection with MultiPolygon and 3D LineString");
	json_decref(item);
	item = parse("{\"type\":\"Feature\",\"id\":\"pt\",\"geometry\":{\"type\":\"Point\","
	    "\"coordinates\":[10.1,46.1]},\"properties\":{}}");
	ok(mem_item_bbox(item, b, &err) == 0 && b[0] == 10.1 && b[2] == 10.1 && b[1] == 46.1 &&
	    b[3] == 46.1, "bbox of a Point is the point");
	json_decref(item);
	item = parse("{\"type\":\"Feature\",\"id\":\"nowhere\",\"geometry\":null,\"properties\":{}}");
	mem_err_clear(&err);
	ok(mem_item_bbox(item, b, &err) < 0 && strstr(err.msg, "nowhere") != NULL,
	    "an item with no bbox and no geometry is refused, naming it");
	json_decref(item);

	ok(mem_bbox_intersects((double[]){ 0, 0, 2, 2 }, (double[]){ 1, 1, 3, 3 }),
	    "overlapping boxes intersect");
	ok(mem_bbox_intersects((double[]){ 0, 0, 2, 2 }, (double[]){ 2, 0, 3, 2 }),
	    "boxes sharing an edge intersect");
	ok(!mem_bbox_intersects((double[]){ 0, 0, 2, 2 }, (double[]){ 2.1, 0, 3, 2 }),
	    "disjoint boxes do not");
	ok(!mem_bbox_intersects((double[]){ 0, 0, 2, 2 }, (double[]){ 0, 3, 2, 4 }),
	    "boxes apart in latitude do not");
}

/* ------------------------------------------------------------------ bands */

/* Earth Search v1, sentinel-2-l2a S2A_13TDE_20231008_0_L2A, assets cut to these */
static const char earth_search_v1[] =
    "{\"type\":\"Feature\",\"stac_version\":\"1.0.0\",\"id\":\"S2A_13TDE_20231008_0_L2A\","
    "\"properties\":{\"datetime\":\"2023-10-08T18:02:55.276000Z\"},\"assets\":{"
    "\"visual\":{\"href\":\"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
    "13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/TCI.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"title\":\"True color image\","
    "\"eo:bands\":[{\"name\":\"red\",\"common_name\":\"red\"},{\"name\":\"green\","
    "\"common_name\":\"green\"},{\"name\":\"blue\",\"common_name\":\"blue\"}],"
    "\"roles\":[\"visual\"]},"
    "\"red-jp2\":{\"href\":\"s3://sentinel-s2-l2a/tiles/13/T/DE/2023/10/8/0/B04.jp2\","
    "\"type\":\"image/jp2\",\"eo:bands\":[{\"name\":\"red\",\"common_name\":\"red\"}],"
    "\"raster:bands\":[{\"nodata\":0,\"data_type\":\"uint16\",\"bits_per_sample\":15,"
    "\"spatial_resolution\":10,\"scale\":0.0001,\"offset\":-0.1}],"
    "\"roles\":[\"data\",\"reflectance\"]},"
    "\"nir08\":{\"href\":\"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
    "13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/B8A.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"eo:bands\":[{\"name\":\"nir08\","
    "\"common_name\":\"nir08\"}],\"raster:bands\":[{\"nodata\":0,\"data_type\":\"uint16\","
    "\"scale\":0.0001,\"offset\":-0.1}],\"roles\":[\"data\",\"reflectance\"]},"
    "\"red\":{\"href\":\"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
    "13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/B04.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"title\":\"Red (band 4) - 10m\","
    "\"eo:bands\":[{\"name\":\"red\",\"common_name\":\"red\",\"description\":\"Red (band 4)\","
    "\"center_wavelength\":0.665,\"full_width_half_max\":0.038}],\"gsd\":10,"
    "\"raster:bands\":[{\"nodata\":0,\"data_type\":\"uint16\",\"bits_per_sample\":15,"
    "\"spatial_resolution\":10,\"scale\":0.0001,\"offset\":-0.1}],"
    "\"roles\":[\"data\",\"reflectance\"]},"
    "\"nir\":{\"href\":\"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
    "13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/B08.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"eo:bands\":[{\"name\":\"nir\","
    "\"common_name\":\"nir\"}],\"raster:bands\":[{\"nodata\":0,\"data_type\":\"uint16\","
    "\"scale\":0.0001,\"offset\":-0.1}],\"roles\":[\"data\",\"reflectance\"]},"
    "\"scl\":{\"href\":\"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
    "13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/SCL.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"raster:bands\":[{\"nodata\":0,"
    "\"data_type\":\"uint8\",\"spatial_resolution\":20}],\"roles\":[\"data\",\"reflectance\"]},"
    "\"thumbnail\":{\"href\":\"https://sentinel-cogs.s3.us-west-2.amazonaws.com/"
    "sentinel-s2-l2a-cogs/13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/thumbnail.jpg\","
    "\"type\":\"image/jpeg\",\"roles\":[\"thumbnail\"]}}}";

/*
 * Planetary Computer sentinel-2-l2a, keyed by band id.  Its TCI asset
 * "visual" really has roles ["data"], so only the scoring keeps it away.
 */
static const char planetary_computer[] =
    "{\"type\":\"Feature\",\"stac_version\":\"1.0.0\","
    "\"id\":\"S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531\","
    "\"properties\":{\"datetime\":\"2019-06-29T21:25:29.024000Z\"},\"assets\":{"
    "\"visual\":{\"href\":\"https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/06/V/VN/"
    "2019/06/29/T06VVN_20190629T212529_TCI_10m.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"eo:bands\":[{\"name\":\"B04\","
    "\"common_name\":\"red\"},{\"name\":\"B03\",\"common_name\":\"green\"},{\"name\":\"B02\","
    "\"common_name\":\"blue\"}],\"roles\":[\"data\"]},"
    "\"B04\":{\"href\":\"https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/06/V/VN/"
    "2019/06/29/T06VVN_20190629T212529_B04_10m.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"title\":\"Band 4 - Red - 10m\","
    "\"eo:bands\":[{\"name\":\"B04\",\"common_name\":\"red\",\"description\":\"Band 4 - Red\"}],"
    "\"roles\":[\"data\"]},"
    "\"B08\":{\"href\":\"https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/06/V/VN/"
    "2019/06/29/T06VVN_20190629T212529_B08_10m.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"eo:bands\":[{\"name\":\"B08\","
    "\"common_name\":\"nir\"}],\"roles\":[\"data\"]},"
    "\"B8A\":{\"href\":\"https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/06/V/VN/"
    "2019/06/29/T06VVN_20190629T212529_B8A_20m.tif\",\"type\":\"image/tiff; "
    "application=geotiff; profile=cloud-optimized\",\"eo:bands\":[{\"name\":\"B8A\","
    "\"common_name\":\"rededge\"}],\"roles\":[\"data\"]}}}";

/* a sen2r BOA stack: one GeoTIFF holding 11 bands */
static const char sen2r_boa[] =
    "{\"type\":\"Feature\",\"id\":\"S2A2A_20190723_022_Barbellino_BOA_10\","
    "\"properties\":{\"datetime\":\"2019-07-23T10:20:31Z\"},\"assets\":{"
    "\"rgb\":{\"href\":\"S2A2A_20190723_022_Barbellino_RGB432B_10.tif\","
    "\"eo:bands\":[{\"name\":\"B04\",\"common_name\":\"red\"},{\"name\":\"B03\","
    "\"common_name\":\"green\"},{\"name\":\"B02\",\"common_name\":\"blue\"}],"
    "\"roles\":[\"overview\"]},"
    "\"boa\":{\"href\":\"S2A2A_20190723_022_Barbellino_BOA_10.tif\",\"type\":\"image/tiff; "
    "application=geotiff\",\"roles\":[\"data\"],\"eo:bands\":["
    "{\"name\":\"B01\",\"common_name\":\"coastal\"},{\"name\":\"B02\",\"common_name\":\"blue\"},"
    "{\"name\":\"B03\",\"common_name\":\"green\"},{\"name\":\"B04\",\"common_name\":\"red\"},"
    "{\"name\":\"B05\",\"common_name\":\"rededge\"},{\"name\":\"B06\",\"common_name\":\"rededge\"},"
    "{\"name\":\"B07\",\"common_name\":\"rededge\"},{\"name\":\"B08\",\"common_name\":\"nir\"},"
    "{\"name\":\"B8A\",\"common_name\":\"nir08\"},{\"name\":\"B11\",\"common_name\":\"swir16\"},"
    "{\"name\":\"B12\",\"common_name\":\"swir22\"}],\"raster:bands\":["
    "{\"scale\":0.0001,\"nodata\":0},{\"scale\":0.0001,\"nodata\":0},"
    "{\"scale\":0.0001,\"nodata\":0},{\"scale\":0.0001,\"nodata\":0},"
    "{\"scale\":0.0001,\"nodata\":0},{\"scale\":0.0001,\"nodata\":0},"
    "{\"scale\":0.0001,\"nodata\":0},{\"scale\":0.0001,\"nodata\":0},"
    "{\"scale\":0.0001,\"nodata\":0},{\"scale\":0.0001,\"nodata\":0},"
    "{\"scale\":0.0002,\"nodata\":65535}]}}}";

/* STAC 1.1: "bands" with eo: and raster: prefixes inside, nodata plain */
static const char stac11[] =
    "{\"type\":\"Feature\",\"stac_version\":\"1.1.0\",\"id\":\"stac11-item\","
    "\"properties\":{\"datetime\":\"2024-09-01T17:28:59Z\"},\"assets\":{"
    "\"reflectance\":{\"href\":\"./stack.tif\",\"type\":\"image/tiff; application=geotiff\","
    "\"roles\":[\"data\"],\"raster:scale\":0.0001,\"raster:offset\":-0.1,\"nodata\":0,"
    "\"bands\":[{\"name\":\"B02\",\"eo:common_name\":\"blue\"},"
    "{\"name\":\"B03\",\"eo:common_name\":\"green\"},{\"name\":\"B04\",\"eo:common_name\":\"red\"},"
    "{\"name\":\"B08\",\"eo:common_name\":\"nir\"}]},"
    "\"swir\":{\"href\":\"./B11.tif\",\"type\":\"image/tiff; application=geotiff\","
    "\"bands\":[{\"name\":\"B11\",\"eo:common_name\":\"swir16\",\"nodata\":0,"
    "\"data_type\":\"uint16\",\"raster:scale\":0.0001,\"raster:offset\":-0.1}]}}}";

static void
band_is(const json_t *item, const char *name, const char *key, int index, const char *what)
{
	struct mem_band band;
	struct mem_err err;
	int rc;

	mem_err_clear(&err);
	rc = mem_item_find_band(item, name, &band, &err);
	ok(rc == 0 && band.asset_key != NULL && strcmp(band.asset_key, key) == 0 &&
	    band.index == index, "%s: band '%s' is asset '%s' band %d", what, name, key, index);
	if (rc != 0)
		diag("     got: %s", err.msg);
	else if (strcmp(band.asset_key, key) != 0 || band.index != index)
		diag("     got: asset '%s' band %d", band.asset_key, band.index);
}

static void
band_numbers_are(const json_t *item, const char *name, double scale, double offset,
    int has_nodata, double nodata, const char *what)
{
	struct mem_band band;
	struct mem_err err;

	if (mem_item_find_band(item, name, &band, &err) < 0) {
		ok(0, "%s: find '%s' (%s)", what, name, err.msg);
		return;
	}
	is_double(band.scale, scale, 1e-15, "%s: '%s' scale", what, name);
	is_double(band.offset, offset, 1e-15, "%s: '%s' offset", what, name);
	ok(band.has_nodata == has_nodata && (!has_nodata || band.nodata == nodata ||
	    (isnan(nodata) && isnan(band.nodata))), "%s: '%s' nodata %s%g", what, name,
	    has_nodata ? "" : "none, not ", nodata);
}

static void
no_band(const json_t *item, const char *name, const char *what)
{
	struct mem_band band;
	struct mem_err err;
	char want[256];

	mem_err_clear(&err);
	snprintf(want, sizeof want, "'%s'", mem_item_id(item));
	ok(mem_item_find_band(item, name, &band, &err) < 0 && err.status == MEM_EITEM &&
	    strstr(err.msg, want) != NULL && strstr(err.msg, name) != NULL,
	    "%s: no band '%s', the message names band and item", what, name);
	if (strstr(err.msg, want) == NULL || strstr(err.msg, name) == NULL)
		diag("     got: '%s'", err.msg);
}

static void
test_find_band(void)
{
	json_t *es = parse(earth_search_v1), *pc = parse(planetary_computer);
	json_t *boa = parse(sen2r_boa), *s11 = parse(stac11), *it;
	struct mem_band band;
	struct mem_err err;

	/* (a) Earth Search v1: keys are common names; JP2 and TCI copies beside them */
	band_is(es, "red", "red", 1, "earth search v1");
	band_is(es, "nir", "nir", 1, "earth search v1");
	band_is(es, "nir08", "nir08", 1, "earth search v1");
	band_is(es, "RED", "red", 1, "earth search v1 (any case)");
	ok(mem_item_find_band(es, "red", &band, &err) == 0 &&
	    strstr(mem_asset_href(band.asset), "/B04.tif") != NULL,
	    "earth search v1: red is the COG, not the JP2 or the TCI");
	band_numbers_are(es, "red", 0.0001, -0.1, 1, 0, "earth search v1 raster:bands");
	band_numbers_are(es, "scl", 1, 0, 1, 0, "earth search v1 scl (no scale)");
	no_band(es, "blue", "earth search v1 (blue only in the visual asset)");
	no_band(es, "swir99", "earth search v1");

	/* (b) older catalogs keyed by band id */
	band_is(pc, "red", "B04", 1, "planetary computer");
	band_is(pc, "B04", "B04", 1, "planetary computer");
	band_is(pc, "b04", "B04", 1, "planetary computer (any case)");
	band_is(pc, "nir", "B08", 1, "planetary computer");
	band_is(pc, "B8A", "B8A", 1, "planetary computer");
	band_numbers_are(pc, "red", 1, 0, 0, 0, "planetary computer (no raster:bands)");

	/* (c) one multi-band asset */
	band_is(boa, "red", "boa", 4, "sen2r BOA");
	band_is(boa, "nir", "boa", 8, "sen2r BOA (B08, not B8A)");
	band_is(boa, "B8A", "boa", 9, "sen2r BOA");
	band_is(boa, "nir08", "boa", 9, "sen2r BOA");
	band_is(boa, "coastal", "boa", 1, "sen2r BOA");
	band_is(boa, "rededge", "boa", 5, "sen2r BOA (first rededge)");
	band_is(boa, "swir22", "boa", 11, "sen2r BOA");
	band_numbers_are(boa, "red", 0.0001, 0, 1, 0, "sen2r BOA per-band raster:bands");
	band_numbers_are(boa, "B12", 0.0002, 0, 1, 65535, "sen2r BOA band 11 raster:bands");

	/* STAC 0.x: asset eo:bands are indices into the item's eo:bands */
	{
		json_t *old = parse("{\"type\":\"Feature\",\"stac_version\":\"0.9.0\",\"id\":\"old\","
		    "\"properties\":{\"datetime\":\"2019-01-01T00:00:00Z\",\"eo:bands\":["
		    "{\"name\":\"B4\",\"common_name\":\"red\"},{\"name\":\"B5\",\"common_name\":\"nir\"}]},"
		    "\"assets\":{\"B4\":{\"href\":\"B4.TIF\",\"type\":\"image/tiff; application=geotiff\",\"eo:bands\":[0]},"
		    "\"B5\":{\"href\":\"B5.TIF\",\"type\":\"image/tiff; application=geotiff\",\"eo:bands\":[1]}}}");

		band_is(old, "nir", "B5", 1, "STAC 0.9 band index");
		band_is(old, "red", "B4", 1, "STAC 0.9 band index");
		json_decref(old);
	}

	/* (d) STAC 1.1 bands with eo:common_name */
	band_is(s11, "red", "reflectance", 3, "STAC 1.1");
	band_is(s11, "nir", "reflectance", 4, "STAC 1.1");
	band_is(s11, "B04", "reflectance", 3, "STAC 1.1 by name");
	band_is(s11, "swir16", "swir", 1, "STAC 1.1");
	band_numbers_are(s11, "nir", 0.0001, -0.1, 1, 0, "STAC 1.1 asset-wide raster:scale, plain nodata");
	ok(mem_item_find_band(s11, "swir16", &band, &err) == 0 && band.scale == 0.0001 &&
	    band.offset == -0.1, "STAC 1.1: raster:scale/raster:offset in bands are used");
	ok(mem_item_find_band(s11, "red", &band, &err) == 0 && band.scale == 0.0001 &&
	    band.offset == -0.1, "STAC 1.1: asset-wide raster:scale/raster:offset are used");

	/* (e) preferences and nodata spellings */
	it = parse("{\"type\":\"Feature\",\"id\":\"pref\",\"properties\":{},\"assets\":{"
	    "\"stack\":{\"href\":\"s.tif\",\"eo:bands\":[{\"name\":\"b1\",\"common_name\":\"red\"},"
	    "{\"name\":\"b2\",\"common_name\":\"nir\"}]},"
	    "\"red-jp2\":{\"href\":\"r.jp2\",\"eo:bands\":[{\"name\":\"r\",\"common_name\":\"red\"}]},"
	    "\"red-cog\":{\"href\":\"r.TIF\",\"eo:bands\":[{\"name\":\"r\",\"common_name\":\"red\"}],"
	    "\"raster:bands\":[{\"nodata\":\"nan\"}]},"
	    "\"nir-nohref\":{\"eo:bands\":[{\"name\":\"n\",\"common_name\":\"nir\"}]},"
	    "\"thumb\":{\"href\":\"t.png\",\"roles\":[\"thumbnail\"],\"eo:bands\":"
	    "[{\"name\":\"swir16\"}]},"
	    "\"ovr\":{\"href\":\"o.tif\",\"roles\":[\"overview\"],\"eo:bands\":[{\"name\":\"green\"}]},"
	    "\"neg\":{\"href\":\"n.tif\",\"nodata\":\"-inf\",\"eo:bands\":[{\"name\":\"swir22\"}]}}}");
	band_is(it, "red", "red-cog", 1, "single-band GeoTIFF over multi-band and JP2");
	band_is(it, "nir", "stack", 2, "an asset without href is skipped");
	no_band(it, "swir16", "a thumbnail is never used");
	no_band(it, "green", "an overview is never used");
	band_numbers_are(it, "red", 1, 0, 1, NAN, "nodata \"nan\"");
	band_numbers_are(it, "swir22", 1, 0, 1, -INFINITY, "asset-wide nodata \"-inf\"");
	json_decref(it);

	json_decref(es);
	json_decref(pc);
	json_decref(boa);
	json_decref(s11);
}

/* ------------------------------------------------------------------ hrefs */

static void
resolves(const char *base, const char *href, const char *want)
{
	char *got = mem_href_resolve(base, href);

	is_str(got, want, "resolve '%s' against '%s'", href, base ? base : "(none)");
	free(got);
}

static void
test_href(void)
{
	resolves("/data/cat/items/a.json", "B04.tif", "/data/cat/items/B04.tif");
	resolves("/data/cat/items/a.json", "./B04.tif", "/data/cat/items/B04.tif");
	resolves("/data/cat/items/a.json", "../assets/B04.tif", "/data/cat/assets/B04.tif");
	resolves("items/a.json", "../b/B04.tif", "b/B04.tif");
	resolves("a.json", "B04.tif", "B04.tif");
	resolves("a.json", "../B04.tif", "../B04.tif");
	resolves(NULL, "B04.tif", "B04.tif");
	resolves("/data/a.json", "/elsewhere/B04.tif", "/elsewhere/B04.tif");
	resolves("https://example.com/cat/items/a.json", "../assets/B04.tif",
	    "https://example.com/cat/assets/B04.tif");
	resolves("https://example.com/cat/items/a.json", "./B04.tif",
	    "https://example.com/cat/items/B04.tif");
	resolves("https://example.com/cat/items/a.json", "../../x/./y/../B04.tif",
	    "https://example.com/x/B04.tif");
	resolves("https://example.com/cat/items/a.json", "/vsi/B04.tif",
	    "https://example.com/vsi/B04.tif");
	resolves("https://example.com:8443/cat/a.json", "/B04.tif",
	    "https://example.com:8443/B04.tif");
	resolves("https://example.com", "B04.tif", "https://example.com/B04.tif");
	resolves("https://example.com/stac/search?page=2", "items/a.json",
	    "https://example.com/stac/items/a.json");
	resolves("file:///data/cat/a.json", "B04.tif", "/data/cat/B04.tif");
	resolves("file:///data/cat/a.json", "/abs/B04.tif", "/abs/B04.tif");
	resolves("/data/a.json", "file:///data/B04.tif", "/data/B04.tif");
	resolves("/data/a.json", "https://other.org/B04.tif", "https://other.org/B04.tif");
	resolves("https://example.com/a.json", "s3://sentinel-s2-l2a/tiles/B04.jp2",
	    "s3://sentinel-s2-l2a/tiles/B04.jp2");
	resolves("https://example.com/a.json", "../../B04.tif", "https://example.com/B04.tif");

	ok(mem_href_is_url("https://example.com/x"), "https:// is a URL");
	ok(mem_href_is_url("s3://bucket/key"), "s3:// is a URL");
	ok(mem_href_is_url("file:///x"), "file:// is a URL");
	ok(!mem_href_is_url("/vsis3/bucket/key"), "a GDAL /vsi path is not a URL");
	ok(!mem_href_is_url("C:/data/x.tif"), "a drive letter is not a URL");
	ok(!mem_href_is_url("relative/path.tif"), "a relative path is not a URL");
	ok(!mem_href_is_url("://x"), "no scheme is not a URL");
}

/* ------------------------------------------------------------ derived items */

static void
test_derive(void)
{
	json_t *p1 = parse("{\"grid\":\"webmercator:13\",\"bands\":[\"red\",\"nir\"],"
	    "\"opts\":{\"a\":1,\"b\":{\"x\":true,\"y\":null}}}");
	json_t *p2 = parse("{\"opts\":{\"b\":{\"y\":null,\"x\":true},\"a\":1},"
	    "\"bands\":[\"red\",\"nir\"],\"grid\":\"webmercator:13\"}");
	json_t *p3 = parse("{\"grid\":\"webmercator:14\",\"bands\":[\"red\",\"nir\"],"
	    "\"opts\":{\"a\":1,\"b\":{\"x\":true,\"y\":null}}}");
	json_t *p4 = parse("{\"grid\":\"webmercator:13\",\"bands\":[\"nir\",\"red\"],"
	    "\"opts\":{\"a\":1,\"b\":{\"x\":true,\"y\":null}}}");
	const char *stem = "S2A_13TDE_20231008_0_L2A";
	char *i1 = mem_item_derive_id(stem, "mem-tile", p1);
	char *i1b = mem_item_derive_id(stem, "mem-tile", p1);
	char *i2 = mem_item_derive_id(stem, "mem-tile", p2);
	char *i3 = mem_item_derive_id(stem, "mem-tile", p3);
	char *i4 = mem_item_derive_id(stem, "mem-tile", p4);
	char *i5 = mem_item_derive_id(stem, "mem-infer", p1);
	char *n1 = mem_item_derive_id(stem, "mem-tile", NULL);
	json_t *null = json_null();
	char *n2 = mem_item_derive_id(stem, "mem-tile", null);
	char hex[65];
	size_t i, sl = strlen(stem);
	int allhex = 1;

	mem_sha256_hex("abc", 3, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "sha256('abc') is the FIPS 180-2 value");
	ok(strlen(i1) == sl + 17 && strncmp(i1, stem, sl) == 0 && i1[sl] == '-',
	    "derived id is STEM-<16 hex> (%s)", i1);
	for (i = sl + 1; i1[i]; i++)
		allhex &= (i1[i] >= '0' && i1[i] <= '9') || (i1[i] >= 'a' && i1[i] <= 'f');
	ok(allhex, "the suffix is lower-case hex");
	is_str(i1b, i1, "derived ids are deterministic");
	is_str(i2, i1, "derived ids do not depend on member order");
	ok(strcmp(i3, i1) != 0, "a different parameter gives a different id");
	ok(strcmp(i4, i1) != 0, "array order is significant");
	ok(strcmp(i5, i1) != 0, "a different tool gives a different id");
	is_str(n1, n2, "NULL params hash like JSON null");
	{
		/* the documented recipe: sha256("TOOL\nVERSION\nPARAMS-sorted-compact") */
		char *dump = json_dumps(p2, JSON_COMPACT | JSON_SORT_KEYS);
		char *all = mem_xasprintf("mem-tile\n%s\n%s", mem_version(), dump);
		char *want;

		mem_sha256_hex(all, strlen(all), hex);
		want = mem_xasprintf("%s-%.16s", stem, hex);
		is_str(i1, want, "the id follows the documented recipe");
		free(dump);
		free(all);
		free(want);
	}
	free(i1);
	free(i1b);
	free(i2);
	free(i3);
	free(i4);
	free(i5);
	free(n1);
	free(n2);
	json_decref(null);
	json_decref(p1);
	json_decref(p2);
	json_decref(p3);
	json_decref(p4);

	{
		json_t *parent = parse(
		    "{\"type\":\"Feature\",\"stac_version\":\"1.0.0\",\"id\":\"S2A_13TDE_20231008_0_L2A\","
		    "\"collection\":\"sentinel-2-l2a\",\"bbox\":[-106.2,39.6,-104.9,40.6],"
		    "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[-106.2,39.6],[-104.9,39.6],"
		    "[-104.9,40.6],[-106.2,40.6],[-106.2,39.6]]]},"
		    "\"properties\":{\"datetime\":\"2023-10-08T18:02:55.276000Z\",\"platform\":"
		    "\"sentinel-2a\",\"eo:cloud_cover\":0.000299,\"proj:epsg\":32613,\"s2:x\":1},"
		    "\"links\":[{\"rel\":\"collection\",\"href\":\"https://earth-search.aws.element84.com/"
		    "v1/collections/sentinel-2-l2a\"},{\"rel\":\"self\",\"href\":\"https://earth-search."
		    "aws.element84.com/v1/collections/sentinel-2-l2a/items/S2A_13TDE_20231008_0_L2A\"}],"
		    "\"assets\":{\"red\":{\"href\":\"B04.tif\"}}}");
		json_t *before = json_deep_copy(parent);
		json_t *d = mem_item_derive(parent, "S2A_13TDE_20231008_0_L2A-ndvi", "mem-infer");
		json_t *props = json_object_get(d, "properties"), *link, *exts, *v;
		struct mem_err err;
		int has_proc = 0, has_proj = 0;

		is_str(mem_item_id(d), "S2A_13TDE_20231008_0_L2A-ndvi", "derived item has the new id");
		is_str(json_string_value(json_object_get(d, "type")), "Feature", "it is a Feature");
		is_str(mem_item_prop_string(d, "datetime"), "2023-10-08T18:02:55.276000Z",
		    "datetime is copied");
		ok(json_equal(json_object_get(d, "geometry"), json_object_get(parent, "geometry")),
		    "geometry is copied");
		ok(json_equal(json_object_get(d, "bbox"), json_object_get(parent, "bbox")),
		    "bbox is copied");
		is_int(json_integer_value(json_object_get(props, "proj:epsg")), 32613,
		    "proj:epsg is copied");
		ok(json_object_get(props, "s2:x") == NULL, "unrelated properties are not copied");
		is_str(json_string_value(json_object_get(d, "collection")), "sentinel-2-l2a",
		    "collection is copied");
		link = json_array_get(json_object_get(d, "links"), 0);
		is_str(json_string_value(json_object_get(link, "rel")), "derived_from",
		    "it links rel=derived_from");
		is_str(json_string_value(json_object_get(link, "href")),
		    "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/"
		    "S2A_13TDE_20231008_0_L2A", "to the parent's self href");
		ok(json_is_object(json_object_get(d, "assets")) &&
		    json_object_size(json_object_get(d, "assets")) == 0, "assets start empty");
		is_str(json_string_value(json_object_get(props, "mem:stage")), "mem-infer",
		    "the stage is named");
		is_str(json_string_value(json_object_get(json_object_get(props, "processing:software"),
		    "memories")), mem_version(), "processing:software names this version");
		exts = json_object_get(d, "stac_extensions");
		json_array_foreach(exts, i, v) {
			has_proc |= strcmp(json_string_value(v), MEM_EXT_PROCESSING) == 0;
			has_proj |= strcmp(json_string_value(v), MEM_EXT_PROJ) == 0;
		}
		ok(has_proc && has_proj, "processing and projection extensions are declared");
		mem_item_add_extension(d, MEM_EXT_PROJ);
		is_int((long long)json_array_size(exts), 2, "adding an extension twice keeps one");
		is_int(mem_manifest_check_item(d, &err), 0, "the derived item is a valid stream item");
		ok(json_equal(parent, before), "the parent is not modified");
		json_decref(d);
		json_decref(before);

		/* no self link: name the parent by id; a span keeps datetime null */
		json_object_set_new(parent, "links", json_array());
		json_object_set_new(json_object_get(parent, "properties"), "datetime", json_null());
		json_object_set_new(json_object_get(parent, "properties"), "start_datetime",
		    json_string("2023-10-01T00:00:00Z"));
		json_object_set_new(json_object_get(parent, "properties"), "end_datetime",
		    json_string("2023-10-31T23:59:59Z"));
		d = mem_item_derive(parent, "x", "mem-store");
		link = json_array_get(json_object_get(d, "links"), 0);
		is_str(json_string_value(json_object_get(link, "href")), "S2A_13TDE_20231008_0_L2A",
		    "without a self link, derived_from names the parent id");
		ok(json_is_null(json_object_get(json_object_get(d, "properties"), "datetime")) &&
		    mem_item_prop_string(d, "start_datetime") != NULL &&
		    mem_item_prop_string(d, "end_datetime") != NULL,
		    "a span is copied with datetime null");
		json_decref(d);
		json_decref(parent);
	}
}

int
main(void)
{
	test_time_parse();
	test_interval();
	test_item_time();
	test_bbox();
	test_find_band();
	test_href();
	test_derive();
	return tap_exit();
}
