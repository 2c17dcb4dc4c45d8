/*
 * zonal.c - statistics of the pixels of each zone.
 *
 * Values are gathered per zone (4 bytes a pixel inside a zone) and reduced
 * once at the end, so the result is exact and the same whatever the
 * strips and threads: percentiles are order statistics, not a histogram's
 * estimate, and the mean is a compensated sum over the sorted values.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "simd.h"

static int
grow(struct mem_kern_zone *z, size_t need)
{
	size_t cap = z->cap ? z->cap : 1024;
	float *v;

	while (cap < need)
		cap *= 2;
	if (cap == z->cap)
		return 0;
	v = realloc(z->v, cap * sizeof *v);
	if (v == NULL)
		return -1;
	z->v = v;
	z->cap = cap;
	return 0;
}

/*
 * Pixels come in runs of one zone (a field is many pixels wide), so the
 * zone is looked up once a run and its values are appended with a
 * branch-free compaction that drops NaN: the loop is a load, a store and
 * an add a pixel, whatever the share of nodata.
 */
MEM_KERN_CLONES int
mem_kern_zonal_add(struct mem_kern_zone *z, size_t nzones, const int *ids, const float *v,
    size_t n)
{
	size_t i = 0;

	while (i < n) {
		int id = ids[i];
		size_t j = i + 1, m = 0;
		struct mem_kern_zone *zz;
		float *d;

		/* the run's end: 8 ids at a time (a vectorized or), then one by one */
		while (j + 8 <= n) {
			unsigned diff = 0;

			for (int k = 0; k < 8; k++)
				diff |= (unsigned)(ids[j + k] ^ id);
			if (diff)
				break;
			j += 8;
		}
		while (j < n && ids[j] == id)
			j++;
		if (id <= 0 || (size_t)id > nzones) {
			i = j;
			continue;
		}
		zz = &z[id - 1];
		if (zz->n + (j - i) > zz->cap && grow(zz, zz->n + (j - i)) < 0)
			return -1;
		d = zz->v + zz->n;
		{
			int nan = 0;

#pragma omp simd reduction(|:nan)
			for (size_t k = i; k < j; k++)
				nan |= v[k] != v[k];
			if (!nan) {
				const float *restrict src = v + i;
				float *restrict dst = d;

				m = j - i;
#pragma omp simd
				for (size_t k = 0; k < m; k++)
					dst[k] = src[k];
			} else
				for (size_t k = i; k < j; k++) {
					d[m] = v[k];
					m += v[k] == v[k];
				}
		}
		zz->n += m;
		i = j;
	}
	return 0;
}

int
mem_kern_zonal_merge(struct mem_kern_zone *dst, struct mem_kern_zone *src)
{
	struct mem_kern_zone *node, *end;

	if (src->n == 0 && src->more == NULL) {
		free(src->v);
		memset(src, 0, sizeof *src);
		return 0;
	}
	if (dst->n == 0 && dst->more == NULL) {
		free(dst->v);
		*dst = *src;
		memset(src, 0, sizeof *src);
		return 0;
	}
	if ((node = malloc(sizeof *node)) == NULL)
		return -1;
	*node = *src;
	for (end = node; end->more; end = end->more)
		;
	end->more = dst->more;
	dst->more = node;
	memset(src, 0, sizeof *src);
	return 0;
}

size_t
mem_kern_zone_count(const struct mem_kern_zone *z)
{
	size_t n = 0;

	for (; z; z = z->more)
		n += z->n;
	return n;
}

/* Frees a chain of zones, their values included. */
static void
free_chain(struct mem_kern_zone *p)
{
	while (p) {
		struct mem_kern_zone *next = p->more;

		free(p->v);
		free(p);
		p = next;
	}
}

void
mem_kern_zone_free(struct mem_kern_zone *z)
{
	free_chain(z->more);
	free(z->v);
	memset(z, 0, sizeof *z);
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static uint32_t
key_of(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/*
 * Sorts the n values (no NaN) of zone z and its chain ascending into z->v,
 * which it grows to n, freeing the chain: a radix sort on the bits, ordered
 * as the values are (negative values' bits flipped), three passes of 11
 * bits.  Linear, so the statistics of a tile's 100 M pixels in zones take
 * a second, not the ten a comparison sort takes.  Its first pass reads the
 * chain's buffers as it makes the keys: merged values are not gathered
 * first.  Small zones, or no memory for the keys: gathered, then qsort.
 * Returns -1 when out of memory (z unchanged).
 */
static int
sort_zone(struct mem_kern_zone *z, size_t n)
{
	uint32_t *k, *t;
	size_t cnt[3][2048], i = 0;
	float *v;

	if (n > z->cap) {
		if ((v = realloc(z->v, n * sizeof *v)) == NULL)
			return -1;
		z->v = v;
		z->cap = n;
	}
	v = z->v;
	if (n < 256 || (k = malloc(2 * n * sizeof *k)) == NULL) {
		size_t m = z->n;

		for (struct mem_kern_zone *p = z->more; p; p = p->more) {
			memcpy(v + m, p->v, p->n * sizeof *v);
			m += p->n;
		}
		free_chain(z->more);
		z->more = NULL;
		z->n = n;
		qsort(v, n, sizeof *v, cmp_float);
		return 0;
	}
	t = k + n;
	memset(cnt, 0, sizeof cnt);
	for (const struct mem_kern_zone *p = z; p; p = p->more)
		for (size_t j = 0; j < p->n; j++, i++) {
			uint32_t u = key_of(p->v[j]);

			k[i] = u;
			cnt[0][u & 2047]++;
			cnt[1][u >> 11 & 2047]++;
			cnt[2][u >> 22]++;
		}
	free_chain(z->more);
	z->more = NULL;
	z->n = n;
	for (int p = 0; p < 3; p++) {
		size_t sum = 0;
		uint32_t *src = p == 1 ? t : k, *dst = p == 1 ? k : t;

		for (int b = 0; b < 2048; b++) {
			size_t c = cnt[p][b];

			cnt[p][b] = sum;
			sum += c;
		}
		for (size_t j = 0; j < n; j++)
			dst[cnt[p][src[j] >> (11 * p) & 2047]++] = src[j];
	}
	/* three passes end in t */
	for (size_t j = 0; j < n; j++) {
		uint32_t u = t[j];

		u = u & 0x80000000u ? u & 0x7fffffffu : ~u;
		memcpy(&v[j], &u, sizeof u);
	}
	free(k);
	return 0;
}

/* The statistics of n sorted values. */
static void
sorted_stats(const float *v, size_t n, const double *pct, int npct,
    struct mem_kern_zonal_stats *out)
{
	double sum = 0, c = 0, ss = 0, mean;

	memset(out, 0, sizeof *out);
	out->count = n;
	if (n == 0) {
		out->mean = out->std = out->min = out->max = NAN;
		for (int k = 0; k < npct && k < 16; k++)
			out->pct[k] = NAN;
		return;
	}
	/* Neumaier's compensated sum */
	for (size_t i = 0; i < n; i++) {
		double x = v[i], t = sum + x;

		c += fabs(sum) >= fabs(x) ? (sum - t) + x : (x - t) + sum;
		sum = t;
	}
	mean = (sum + c) / (double)n;
	for (size_t i = 0; i < n; i++) {
		double d = v[i] - mean;

		ss += d * d;
	}
	out->mean = mean;
	out->std = sqrt(ss / (double)n);
	out->min = v[0];
	out->max = v[n - 1];
	for (int k = 0; k < npct && k < 16; k++) {
		double r = pct[k] / 100.0 * (double)(n - 1), f = floor(r), t = r - f;
		size_t i = (size_t)f;
		double a = v[i], b = i + 1 < n ? v[i + 1] : v[i];

		/* numpy's lerp: exact at both ends */
		out->pct[k] = t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
	}
}

void
mem_kern_zonal_stats(float *v, size_t n, const double *pct, int npct,
    struct mem_kern_zonal_stats *out)
{
	struct mem_kern_zone z = { v, n, n, NULL };

	/* v has room for its n values: the sort neither grows nor frees it */
	if (n > 0 && sort_zone(&z, n) < 0)
		qsort(v, n, sizeof *v, cmp_float);
	sorted_stats(v, n, pct, npct, out);
}

int
mem_kern_zonal_stats_zone(struct mem_kern_zone *z, const double *pct, int npct,
    struct mem_kern_zonal_stats *out)
{
	size_t n = mem_kern_zone_count(z);

	if (n > 0 && sort_zone(z, n) < 0)
		return -1;
	sorted_stats(z->v, n, pct, npct, out);
	return 0;
}

void
mem_kern_zonal_acc_init(struct mem_kern_zonal_acc *acc, size_t nzones)
{
	for (size_t z = 0; z < nzones; z++) {
		acc[z].count = 0;
		acc[z].sum = acc[z].sumsq = 0;
		acc[z].min = INFINITY;
		acc[z].max = -INFINITY;
	}
}

void
mem_kern_zonal_moments_f32(struct mem_kern_zonal_acc *acc, size_t nzones, const int *ids,
    const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct mem_kern_zonal_acc *a;
		float x = v[i];

		if (ids[i] <= 0 || (size_t)ids[i] > nzones || isnan(x))
			continue;
		a = &acc[ids[i] - 1];
		a->count++;
		a->sum += x;
		a->sumsq += (double)x * x;
		a->min = x < a->min ? x : a->min;
		a->max = x > a->max ? x : a->max;
	}
}
