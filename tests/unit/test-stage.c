/*
 * test-stage.c - the stage chain (src/lib/stage.c) and the kernels the
 * stages run besides NDVI (src/kern/index.c, src/kern/cloudmask.c).
 *
 * Kernel values are worked out by hand; the cloud mask cut into strips
 * with a halo must equal the mask of the whole image.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "kern.h"
#include "stage.h"
#include "tap.h"

static int
parse(struct mem_chain *c, struct mem_err *err, const char *a, const char *b, const char *d)
{
	char *specs[4] = { (char *)a, (char *)b, (char *)d, NULL };

	mem_err_clear(err);
	return mem_chain_parse(c, specs, err);
}

static void
test_chain(void)
{
	struct mem_chain c;
	struct mem_err err;

	ok(parse(&c, &err, "cloudmask:classes=3,8,9,dilate=2,as=cm", "ndvi:mask=cm", NULL) == 0,
	    "cloudmask with a comma-separated class list, then a masked ndvi");
	if (c.n == 2) {
		ok(c.st[0].classes == (1ULL << 3 | 1ULL << 8 | 1ULL << 9), "classes 3, 8, 9");
		is_int(c.st[0].dilate, 2, "dilate=2 after the class list");
		is_str(c.st[0].name, "cm", "as= names the output");
		is_int(c.st[1].mask, 0, "the mask is the first stage");
		is_int(c.halo, 2, "the chain's halo is the largest dilation");
	} else
		ok(0, "two stages, not %zu", c.n);
	mem_chain_release(&c);

	ok(parse(&c, &err, "savi:mask=cloudmask,L=0.25", NULL, NULL) == 0, "a mask not given is implied");
	if (c.n == 2) {
		is_str(c.st[0].name, "cloudmask", "the implied cloudmask comes first");
		ok(!c.st[0].write && c.st[1].write, "and is not written");
		ok(c.st[0].classes == (1ULL << 3 | 1ULL << 8 | 1ULL << 9 | 1ULL << 10),
		    "with the default classes 3, 8, 9, 10");
		is_double(c.st[1].L, 0.25, 0, "L=0.25");
	} else
		ok(0, "two stages, not %zu", c.n);
	mem_chain_release(&c);

	ok(parse(&c, &err, "evi", "expr:x=ndvi > 0.2 ? evi : red", NULL) == 0,
	    "an expression over stages and bands");
	if (c.n == 3) {
		is_str(c.st[1].name, "ndvi", "ndvi is implied before the expression");
		is_int(c.st[2].refs[0], 1, "'ndvi' refers to the implied stage");
		is_int(c.st[2].refs[1], 0, "'evi' refers to the first stage");
		is_int(c.st[2].refs[2], -1, "'red' is a band");
	} else
		ok(0, "three stages, not %zu", c.n);
	mem_chain_release(&c);

	ok(parse(&c, &err, "expr:x=(red + 1", NULL, NULL) < 0 && err.status == MEM_EUSAGE,
	    "a syntax error is a usage error");
	is_str(err.msg, "expr: column 9: expected ')'", "with the column in the expression");
	ok(parse(&c, &err, "ndvi", "ndvi", NULL) < 0, "one output made twice");
	like(err.msg, "already made", "is refused");
	ok(parse(&c, &err, "ndvi:mask=cloudmask", "cloudmask", NULL) < 0, "a stage given after its use");
	like(err.msg, "used before it is given", "is refused");
	ok(parse(&c, &err, "ndvi:mask=nope", NULL, NULL) < 0, "a mask that is no stage");
	like(err.msg, "mask 'nope' is not an earlier stage", "is named");
	ok(parse(&c, &err, "ndvi:L=1", NULL, NULL) < 0, "L is savi's alone");
	like(err.msg, "unknown parameter 'L'", "is named");
	ok(parse(&c, &err, "cloudmask:classes=64", NULL, NULL) < 0, "class 64 is out of range");
	ok(parse(&c, &err, "cloudmask:dilate=1.5", NULL, NULL) < 0, "a fractional dilation");
	ok(parse(&c, &err, "savi:L=", NULL, NULL) < 0, "an empty value");
	ok(parse(&c, &err, "ndvi:mask", NULL, NULL) < 0, "a parameter without a value");
	ok(parse(&c, &err, "expr:2x=red", NULL, NULL) < 0, "an output name must be a name");
	ok(parse(&c, &err, "nope", NULL, NULL) < 0, "an unknown stage");
	like(err.msg, "unknown stage 'nope'", "is named");
	ok(parse(&c, &err, NULL, NULL, NULL) < 0, "no stage at all");
}

static void
test_kernels(void)
{
	struct mem_kern_band b[3] = { { 1e-4, 0, 1, 0 }, { 1e-4, 0, 1, 0 }, { 1e-4, 0, 1, 0 } };
	float nir[3] = { 4000, 0, 3000 }, red[3] = { 1000, 500, 1000 }, blue[3] = { 500, 500, 0 };
	float out[3], mask[3] = { 0, 1, NAN }, v[3] = { 1, 2, 3 };

	/* EVI: 2.5 (0.4 - 0.1) / (0.4 + 0.6 - 0.375 + 1) = 0.75 / 1.625 */
	mem_kern_evi_f32(nir, red, blue, out, 3, b);
	ok(out[0] == (float)(2.5 * (0.4 - 0.1) / (0.4 + 6 * 0.1 - 7.5 * 0.05 + 1)), "EVI by hand");
	ok(isnan(out[1]) && isnan(out[2]), "EVI is NaN where nir or blue is nodata");
	/* SAVI, L = 0.5: 1.5 (0.4 - 0.1) / (0.4 + 0.1 + 0.5) = 0.45 */
	mem_kern_savi_f32(nir, red, out, 3, b, 0.5);
	ok(out[0] == (float)(1.5 * (0.4 - 0.1) / (0.4 + 0.1 + 0.5)), "SAVI by hand (%g)", out[0]);
	ok(isnan(out[1]), "SAVI is NaN where nir is nodata");
	b[0].offset = -0.1;
	mem_kern_reflectance_f32(nir, out, 3, &b[0]);
	ok(out[0] == (float)(4000 * 1e-4 - 0.1) && isnan(out[1]), "reflectance with an offset, nodata NaN");
	mem_kern_apply_mask_f32(v, mask, 3);
	ok(v[0] == 1 && isnan(v[1]) && isnan(v[2]), "a mask hides where it is not 0, NaN included");
}

/* The mask of a w x h class image cut into strips of rows rows with a halo. */
static void
mask_strips(const float *in, float *out, int w, int h, int rows, int dilate)
{
	unsigned char *scratch = malloc(2 * (size_t)w * h);

	for (int y0 = 0; y0 < h; y0 += rows) {
		int n = h - y0 < rows ? h - y0 : rows;
		int top = y0 < dilate ? y0 : dilate;
		int bot = h - (y0 + n) < dilate ? h - (y0 + n) : dilate;

		mem_kern_cloudmask_f32(in + (size_t)(y0 - top) * w, out + (size_t)y0 * w, w,
		    n + top + bot, top, n, 1ULL << 9, 1, 0, dilate, scratch);
	}
	free(scratch);
}

static void
test_cloudmask(void)
{
	enum { W = 9, H = 11 };
	float in[W * H], whole[W * H], strips[W * H];
	int same = 1, n = 0;

	for (int i = 0; i < W * H; i++)
		in[i] = 4;
	in[5 * W + 4] = 9; /* one cloud in the middle */
	in[0] = 0;	   /* nodata in a corner */
	in[10 * W + 8] = 9;
	mask_strips(in, whole, W, H, H, 0);
	for (int i = 0; i < W * H; i++)
		n += whole[i] == 1;
	is_int(n, 2, "without dilation only the cloud pixels");
	ok(isnan(whole[0]), "nodata is NaN");
	mask_strips(in, whole, W, H, H, 2);
	n = 0;
	for (int i = 0; i < W * H; i++)
		n += whole[i] == 1;
	/* a 5x5 square around (4,5) and a 3x3 corner around (8,10) */
	is_int(n, 25 + 9, "dilate=2 grows each cloud by a 5x5 square, cut at the edge");
	ok(whole[3 * W + 2] == 1 && whole[2 * W + 4] == 0, "the square's corner in, beyond it out");
	for (int rows = 1; rows <= H; rows++) {
		mask_strips(in, strips, W, H, rows, 2);
		for (int i = 0; i < W * H; i++)
			if (!(strips[i] == whole[i] || (isnan(strips[i]) && isnan(whole[i]))))
				same = 0;
	}
	ok(same, "strips of every height from 1 to %d with a halo equal the whole image", H);
}


/* A QA_PIXEL word from its flags and confidence pairs, put together here bit by bit. */
static unsigned
qa_word(int fill, int dilated, int cirrus, int cloud, int shadow, int snow, int clear, int water,
    int cloud_c, int shadow_c, int snow_c, int cirrus_c)
{
	return (unsigned)(fill | dilated << 1 | cirrus << 2 | cloud << 3 | shadow << 4 | snow << 5 |
	    clear << 6 | water << 7 | cloud_c << 8 | shadow_c << 10 | snow_c << 12 | cirrus_c << 14);
}

static void
qa_strips(const float *in, float *out, int w, int h, int rows, int dilate,
    const struct mem_kern_qa *q)
{
	unsigned char *scratch = malloc(2 * (size_t)w * h);

	for (int y0 = 0; y0 < h; y0 += rows) {
		int n = h - y0 < rows ? h - y0 : rows;
		int top = y0 < dilate ? y0 : dilate;
		int bot = h - (y0 + n) < dilate ? h - (y0 + n) : dilate;

		mem_kern_qamask_f32(in + (size_t)(y0 - top) * w, out + (size_t)y0 * w, w,
		    n + top + bot, top, n, q, 1, 1, dilate, scratch);
	}
	free(scratch);
}

static void
test_qamask(void)
{
	enum { W = 13, H = 10 };
	/* words USGS documents for Landsat 8/9 C2 L2 (QA_PIXEL value interpretations) */
	const unsigned clear_land = 21824, clear_water = 21952, cloud_high = 22280,
	    shadow = 23888, cirrus_high = 54596, snow = 30048;
	/* not in the table: dilated cloud alone, low confidences */
	const unsigned dilated = qa_word(0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1);
	float in[W * H], out[W * H], strips[W * H];
	struct mem_kern_qa q;
	unsigned words[W * H], lcg = 12345;
	int bad = 0, same = 1, n = 0;

	is_int(qa_word(0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1), clear_land, "21824 is clear, low confidences");
	is_int(qa_word(0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1), clear_water, "21952 is clear water");
	is_int(qa_word(0, 0, 0, 1, 0, 0, 0, 0, 3, 1, 1, 1), cloud_high, "22280 is cloud, high confidence");
	is_int(qa_word(0, 0, 0, 0, 1, 0, 1, 0, 1, 3, 1, 1), shadow,
	    "23888 is shadow, high confidence (clear: no cloud bit)");
	is_int(qa_word(0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1, 3), cirrus_high, "54596 is high cirrus");
	is_int(qa_word(0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 3, 1), snow, "30048 is snow, high confidence");

	memset(&q, 0, sizeof q);
	q.bits = 0x1e; /* the default: dilated, cirrus, cloud, shadow */
	{
		const unsigned v[] = { clear_land, clear_water, cloud_high, shadow, cirrus_high, snow,
			dilated, 1 };
		const float want[] = { 0, 0, 1, 1, 1, 0, 1, NAN };

		for (int i = 0; i < 8; i++)
			in[i] = (float)v[i];
		qa_strips(in, out, 8, 1, 1, 0, &q);
		for (int i = 0; i < 8; i++)
			bad += !(out[i] == want[i] || (isnan(out[i]) && isnan(want[i])));
		is_int(bad, 0, "the default bits mask cloud, dilated cloud, cirrus, shadow; not "
		    "snow or water; fill (1) is NaN");
	}

	/* random words, every flag and confidence, against the bits worked out here */
	for (int i = 0; i < W * H; i++) {
		lcg = lcg * 1103515245u + 12345u;
		words[i] = (lcg >> 8) & 0xffffu;
		in[i] = (float)words[i];
	}
	in[3] = 70000;	/* no 16-bit word */
	in[4] = 2.5f;	/* nor is this */
	in[5] = NAN;
	memset(&q, 0, sizeof q);
	q.bits = 1u << 3 | 1u << 5;			/* cloud, snow */
	q.conf[MEM_KERN_QA_SHADOW] = 2;			/* medium shadow confidence or above */
	q.conf[MEM_KERN_QA_CIRRUS] = 3;			/* high cirrus */
	qa_strips(in, out, W, H, H, 0, &q);
	bad = 0;
	for (int i = 0; i < W * H; i++) {
		unsigned v = words[i];
		float want = (v & 1) ? NAN : ((v >> 3 & 1) || (v >> 5 & 1) || (v >> 10 & 3) >= 2 ||
		    (v >> 14 & 3) == 3) ? 1.0f : 0.0f;

		if (i >= 3 && i <= 5)
			want = NAN;
		bad += !(out[i] == want || (isnan(out[i]) && isnan(want)));
		n += out[i] == 1;
	}
	ok(bad == 0 && n > 0 && n < W * H, "%d random words: bits and confidence pairs as "
	    "worked out bit by bit (%d masked, %d wrong)", W * H, n, bad);

	/* dilation: the same as the SCL mask's, and strips with a halo join without seams */
	for (int i = 0; i < W * H; i++)
		in[i] = (float)clear_land;
	in[4 * W + 6] = (float)cloud_high;
	in[0] = 1;
	memset(&q, 0, sizeof q);
	q.bits = 0x1e;
	qa_strips(in, out, W, H, H, 2, &q);
	n = 0;
	for (int i = 0; i < W * H; i++)
		n += out[i] == 1;
	ok(n == 25 && isnan(out[0]), "dilate=2 grows one cloud pixel into a 5x5 square (%d)", n);
	for (int rows = 1; rows <= H; rows++) {
		qa_strips(in, strips, W, H, rows, 2, &q);
		for (int i = 0; i < W * H; i++)
			if (!(strips[i] == out[i] || (isnan(strips[i]) && isnan(out[i]))))
				same = 0;
	}
	ok(same, "QA_PIXEL: strips of every height from 1 to %d equal the whole image", H);
}

static void
test_qa_params(void)
{
	struct mem_chain c;
	struct mem_err err;

	ok(parse(&c, &err, "cloudmask", NULL, NULL) == 0 && c.n == 1 &&
	    c.st[0].qa.bits == 0x1e && c.st[0].source == MEM_CLOUD_AUTO && c.st[0].band == NULL,
	    "cloudmask: QA_PIXEL bits 1-4 by default, the item decides the band");
	mem_chain_release(&c);
	ok(parse(&c, &err, "cloudmask:bits=cloud,shadow,7,cloud_conf=medium,cirrus_conf=high,"
	    "source=qa_pixel", NULL, NULL) == 0 && c.n == 1 &&
	    c.st[0].qa.bits == (1u << 3 | 1u << 4 | 1u << 7) &&
	    c.st[0].qa.conf[MEM_KERN_QA_CLOUD] == 2 && c.st[0].qa.conf[MEM_KERN_QA_CIRRUS] == 3 &&
	    c.st[0].qa.conf[MEM_KERN_QA_SHADOW] == 0 && c.st[0].source == MEM_CLOUD_QA,
	    "bits by name and number, confidence levels, source=qa_pixel");
	mem_chain_release(&c);
	ok(parse(&c, &err, "cloudmask:bits=clear", NULL, NULL) < 0 && strstr(err.msg, "'clear'"),
	    "bit 6 (clear) is no reason to mask: %s", err.msg);
	ok(parse(&c, &err, "cloudmask:bits=8", NULL, NULL) < 0, "bit 8 is a confidence pair");
	ok(parse(&c, &err, "cloudmask:cloud_conf=maybe", NULL, NULL) < 0 &&
	    strstr(err.msg, "none, low, medium or high"), "a bad confidence: %s", err.msg);
	ok(parse(&c, &err, "cloudmask:source=fmask", NULL, NULL) < 0, "an unknown source");

	ok(parse(&c, &err, "change:mask=cloudmask", NULL, NULL) == 0 && c.n == 3 &&
	    c.st[0].kind == MEM_STAGE_CLOUDMASK && !c.st[0].write && c.st[1].kind == MEM_STAGE_DIFF &&
	    c.st[1].mask == 0 && c.st[2].mask == -1,
	    "change:mask=cloudmask adds the mask and hides it from the difference");
	mem_chain_release(&c);
	ok(parse(&c, &err, "cloudmask:dilate=1,as=cm", "change:index=ndvi,mask=cm", NULL) == 0 &&
	    c.n == 3 && c.st[1].mask == 0 && c.halo == 1, "a named cloudmask as change's mask");
	mem_chain_release(&c);
	ok(parse(&c, &err, "ndwi", "change:mask=ndwi", NULL) < 0 && strstr(err.msg, "cloudmask"),
	    "change's mask must be a cloudmask: %s", err.msg);
}

static void
test_new_stages(void)
{
	struct mem_chain c;
	struct mem_err err;

	ok(parse(&c, &err, "ndvi", "zonal:zones=f.gpkg,stats=count,p2.5,max", NULL) == 0,
	    "zonal after ndvi");
	if (c.n == 2) {
		is_str(c.st[1].of, "ndvi", "zonal measures the stage before by default");
		is_int(c.st[1].of_stage, 0, "as a stage, not a band");
		is_str(c.st[1].name, "zonal_ndvi", "named zonal_OF");
		ok(c.st[1].stats == (MEM_ZONAL_COUNT | MEM_ZONAL_MAX) && c.st[1].npct == 1 &&
		    c.st[1].pct[0] == 2.5, "stats=count,p2.5,max");
	}
	mem_chain_release(&c);
	ok(parse(&c, &err, "zonal:zones=f.gpkg,of=nbr", NULL, NULL) == 0 && c.n == 2 &&
	    c.st[0].kind == MEM_STAGE_ND && !c.st[0].write && c.st[1].of_stage == 0,
	    "zonal of a built-in index adds it, unwritten");
	mem_chain_release(&c);
	ok(parse(&c, &err, "zonal:zones=f.gpkg,of=B8A", NULL, NULL) == 0 && c.n == 1 &&
	    c.st[0].of_stage == -1, "zonal of a band");
	mem_chain_release(&c);
	ok(parse(&c, &err, "zonal:of=ndvi", NULL, NULL) < 0 && err.status == MEM_EUSAGE &&
	    strstr(err.msg, "zones=FILE is required"), "zonal without zones: %s", err.msg);
	ok(parse(&c, &err, "zonal:zones=f,stats=p101", NULL, NULL) < 0 && strstr(err.msg, "p101"),
	    "a percentile beyond 100: %s", err.msg);
	ok(parse(&c, &err, "change:index=nbr,threshold=0.3", NULL, NULL) == 0 && c.n == 2 &&
	    c.pairs, "change adds its difference and pairs the items");
	if (c.n == 2) {
		is_str(c.st[0].name, "dnbr", "the difference is dnbr");
		ok(c.st[0].kind == MEM_STAGE_DIFF && c.st[0].write, "written");
		ok(c.st[1].kind == MEM_STAGE_CHANGE && c.st[1].diff == 0 &&
		    c.st[1].threshold == 0.3, "the mask reads it, threshold 0.3");
	}
	mem_chain_release(&c);
	ok(parse(&c, &err, "change:index=evi", NULL, NULL) < 0 && strstr(err.msg, "normalized"),
	    "change needs a normalized difference: %s", err.msg);
	ok(parse(&c, &err, "ndvi", "llm:mistral/mistral-small-latest,scope=run", NULL) == 0 &&
	    c.llm == 1, "llm after ndvi");
	if (c.n == 2) {
		is_str(c.st[1].provider, "mistral", "provider");
		is_str(c.st[1].model, "mistral-small-latest", "model");
		ok(c.st[1].scope_run && strstr(c.st[1].prompt, "{{summary}}"),
		    "scope=run, the built-in prompt");
	}
	mem_chain_release(&c);
	ok(parse(&c, &err, "llm:deepseek", NULL, NULL) < 0 && strstr(err.msg, "PROVIDER/MODEL"),
	    "llm needs PROVIDER/MODEL: %s", err.msg);
	ok(parse(&c, &err, "llm:a/b", "llm:c/d", NULL) < 0 && strstr(err.msg, "only one"),
	    "one llm stage: %s", err.msg);
	ok(parse(&c, &err, "llm:a/b,prompt=/nonexistent", NULL, NULL) < 0 &&
	    err.status == MEM_EUSAGE, "a missing prompt file: %s", err.msg);
}

static void
test_zonal_change_kernels(void)
{
	float v[] = { 5, 1, 4, 2, 3 }, d[] = { -0.3f, -0.2f, 0.1f, NAN }, m[4];
	struct mem_kern_zone z[2], w[2];
	int ids[] = { 1, 2, 1, 0, 1 };
	float vals[] = { 1, 7, NAN, 9, 3 };
	double p[] = { 0, 25, 50, 100 };
	struct mem_kern_zonal_stats st;

	mem_kern_zonal_stats(v, 5, p, 4, &st);
	ok(st.count == 5 && st.mean == 3 && st.min == 1 && st.max == 5, "count, mean, min, max");
	ok(fabs(st.std - sqrt(2.0)) < 1e-15, "population std");
	ok(st.pct[0] == 1 && st.pct[1] == 2 && st.pct[2] == 3 && st.pct[3] == 5,
	    "percentiles at ranks");
	{
		float u[] = { 0, 10 };
		double q = 35;

		mem_kern_zonal_stats(u, 2, &q, 1, &st);
		ok(fabs(st.pct[0] - 3.5) < 1e-12, "a percentile between ranks is interpolated");
	}
	mem_kern_zonal_stats(v, 0, p, 1, &st);
	ok(st.count == 0 && isnan(st.mean) && isnan(st.pct[0]), "an empty zone: NaN");
	memset(z, 0, sizeof z);
	memset(w, 0, sizeof w);
	ok(mem_kern_zonal_add(z, 2, ids, vals, 5) == 0 && z[0].n == 2 && z[1].n == 1,
	    "values by zone, NaN and zone 0 left out");
	ok(mem_kern_zonal_add(w, 2, ids, vals, 5) == 0 && mem_kern_zonal_merge(&z[0], &w[0]) == 0 &&
	    mem_kern_zone_count(&z[0]) == 4 && w[0].n == 0 && w[0].more == NULL,
	    "a thread's values merged");
	{
		struct mem_kern_zone e = { 0 };

		ok(mem_kern_zonal_merge(&e, &z[1]) == 0 && e.n == 1 && e.v[0] == 7 && z[1].v == NULL,
		    "merged into an empty zone: the buffer moves");
		ok(mem_kern_zonal_stats_zone(&z[0], p, 4, &st) == 0 && st.count == 4 && st.min == 1 &&
		    st.max == 3 && st.mean == 2 && z[0].more == NULL && z[0].n == 4 &&
		    z[0].v[0] == 1 && z[0].v[3] == 3,
		    "statistics over a merged zone, left sorted in one buffer");
		mem_kern_zone_free(&e);
	}
	mem_kern_zone_free(&z[0]);
	mem_kern_zone_free(&z[1]);
	mem_kern_zone_free(&w[1]);
	mem_kern_threshold_f32(d, m, 4, -0.2);
	ok(m[0] == 1 && m[1] == 1 && m[2] == 0 && isnan(m[3]), "a loss: d <= -0.2, NaN kept");
	mem_kern_threshold_f32(d, m, 4, 0.1);
	ok(m[0] == 0 && m[2] == 1, "a gain: d >= 0.1");
}

int
main(void)
{
	test_chain();
	test_new_stages();
	test_zonal_change_kernels();
	test_kernels();
	test_cloudmask();
	test_qamask();
	test_qa_params();
	done_testing();
	return tap_exit();
}
