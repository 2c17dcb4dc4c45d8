/*
 * kern-bench.c - each stage's kernel on the CPU and, when there is a GPU,
 * on CUDA, with the bandwidth it achieves and its fraction of the
 * memory-bound limit measured in the same run.
 *
 * Usage: kern-bench [WIDTH [ROWS [STAGE,...]]]
 *   (default 10980 x 2048: a strip of a tile; every stage)
 *
 * The CPU runs each kernel as mem-infer does: strips of 64 rows spread over
 * the OpenMP threads (the cloud mask and the classifier with their halo
 * rows).  Its limit is a plain OpenMP copy loop over the same bytes.  The
 * GPU runs the *_cuda entry points on pinned host buffers, as mem-infer
 * does: the data cross the host link both ways, so its limit is the pinned
 * host-to-device and device-to-host copy bandwidth (copies run in both
 * directions at once, so a stage's limit time is the larger of its input
 * bytes over H2D and its output bytes over D2H); the device-to-device copy
 * bandwidth is printed beside it for reference.  Best of 3 after a warm-up.
 *
 * Prints one line per stage:
 *   stage bytes/px cpu_s cpu_GBps cpu_frac [gpu_s gpu_GBps gpu_frac speedup]
 * and a classifier line in pixels per second.
 */
#include "config.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "kern.h"

enum { ND, EVI, SAVI, REFL, MASK, CLOUD, DIFF, THRESH, EXPR, ZONAL, CLASSIFY, NSTAGE };
static const char *const names[NSTAGE] = { "ndvi", "evi", "savi", "reflectance", "apply_mask",
	"cloudmask", "diff", "threshold", "expr", "zonal", "classify" };
/* bytes read and written per pixel (float32 planes; zonal reads ids and writes the values it gathers) */
static const int bin[NSTAGE] = { 8, 12, 8, 4, 8, 4, 8, 4, 8, 8, 8 };
static const int bout[NSTAGE] = { 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4 };

#define STRIP 64

static int W, H;
static size_t N;
static float *a, *b, *c, *mk, *o, *oc;
static int *ids;
static struct mem_kern_ndvi_params np = { 1e-4, -0.1, 1e-4, -0.1, 1, 1, 0, 0 };
static struct mem_kern_band kb[3] = { { 1e-4, -0.1, 1, 0 }, { 1e-4, -0.1, 1, 0 },
	{ 1e-4, -0.1, 1, 0 } };
static struct mem_expr *ex;
static struct mem_kern_model model;
#define NZONES 400
static struct mem_kern_zonal_acc *acc;
static struct mem_kern_zone zall[NZONES], (*zthr)[NZONES];

/* the classifier is compute-bound and slow on a CPU: it runs on the first CLS_ROWS rows */
#define CLS_ROWS 256

static int
rows_of(int s)
{
	return s == CLASSIFY && H > CLS_ROWS ? CLS_ROWS : H;
}

/* Gives the buffers of the tile's zones (and their chains) back to the threads, emptied. */
static void
reclaim_zones(void)
{
	int nt = omp_get_max_threads();

	for (int z = 0; z < NZONES; z++) {
		struct mem_kern_zone *p = zall[z].more;
		int t = 0;

		for (int k = 0; k < nt; k++)
			if (zthr[k][z].v == NULL && zall[z].v != NULL) {
				zthr[k][z] = zall[z];
				zthr[k][z].more = NULL;
				zall[z].v = NULL;
			}
		while (p) {
			struct mem_kern_zone *next = p->more;

			while (t < nt && zthr[t][z].v != NULL)
				t++;
			if (t < nt) {
				zthr[t][z] = *p;
				zthr[t][z].more = NULL;
			} else
				free(p->v);
			free(p);
			p = next;
		}
		free(zall[z].v);
		memset(&zall[z], 0, sizeof zall[z]);
		for (int k = 0; k < nt; k++)
			zthr[k][z].n = 0;
	}
}

static void
cpu_run(int s)
{
	int h = rows_of(s), nstrips = (h + STRIP - 1) / STRIP;

	if (s == ZONAL) {
		/*
		 * As mem-infer does on the CPU: each thread gathers its strips'
		 * values per zone (exact percentiles need them all: 4 bytes
		 * written a pixel), then its zones join the tile's by
		 * mem_kern_zonal_merge (a move or a link, no copy).  The buffers
		 * go back to the threads between rounds (not timed), as a run's
		 * keep their size from tile to tile; the sort that makes the
		 * statistics is per zone, after the pixels, and not timed here.
		 */
		reclaim_zones();
#pragma omp parallel
		{
			struct mem_kern_zone *zt = zthr[omp_get_thread_num()];

#pragma omp for schedule(dynamic, 1)
			for (int k = 0; k < nstrips; k++) {
				int y0 = k * STRIP, rows = h - y0 < STRIP ? h - y0 : STRIP;
				size_t off = (size_t)y0 * W;

				if (mem_kern_zonal_add(zt, NZONES, ids + off, a + off,
				    (size_t)rows * W) < 0)
					abort();
			}
#pragma omp critical
			for (int z = 0; z < NZONES; z++)
				if (mem_kern_zonal_merge(&zall[z], &zt[z]) < 0)
					abort();
		}
		return;
	}
#pragma omp parallel
	{
		unsigned char *scratch = malloc(2 * (size_t)W * (STRIP + 4));

#pragma omp for schedule(dynamic, 1)
		for (int k = 0; k < nstrips; k++) {
			int y0 = k * STRIP, rows = h - y0 < STRIP ? h - y0 : STRIP;
			size_t off = (size_t)y0 * W, n = (size_t)rows * W;

			switch (s) {
			case ND: mem_kern_ndvi_f32(a + off, b + off, o + off, n, &np); break;
			case EVI: mem_kern_evi_f32(b + off, a + off, c + off, o + off, n, kb); break;
			case SAVI: mem_kern_savi_f32(b + off, a + off, o + off, n, kb, 0.5); break;
			case REFL: mem_kern_reflectance_f32(a + off, o + off, n, kb); break;
			case MASK: mem_kern_apply_mask_f32(o + off, mk + off, n); break;
			case DIFF: mem_kern_diff_f32(a + off, b + off, o + off, n); break;
			case THRESH: mem_kern_threshold_f32(a + off, o + off, n, -0.2); break;
			case EXPR: {
				const float *v[2] = { a + off, b + off };

				mem_expr_eval(ex, v, o + off, n);
				break;
			}
			case CLOUD: case CLASSIFY: {
				int halo = s == CLOUD ? 2 : 1;
				int top = y0 < halo ? y0 : halo, bot = h - y0 - rows < halo ? h - y0 - rows : halo;

				if (s == CLOUD)
					mem_kern_cloudmask_f32(c + off - (size_t)top * W, o + off, W,
					    rows + top + bot, top, rows, 1ULL << 8 | 1ULL << 9, 1, 0, 2, scratch);
				else {
					const float *in[2] = { a + off - (size_t)top * W, b + off - (size_t)top * W };

					mem_kern_classify_f32(&model, in, W, rows + top + bot, top, rows, o + off,
					    NULL);
				}
				break;
			}
			}
		}
		free(scratch);
	}
}

static int
gpu_run(int s)
{
	const float *v[2] = { a, b };

	switch (s) {
	case ND: return mem_kern_ndvi_cuda(a, b, oc, N, &np);
	case EVI: return mem_kern_evi_cuda(b, a, c, oc, N, kb);
	case SAVI: return mem_kern_savi_cuda(b, a, oc, N, kb, 0.5);
	case REFL: return mem_kern_reflectance_cuda(a, oc, N, kb);
	case MASK: return mem_kern_apply_mask_cuda(oc, mk, N);
	case DIFF: return mem_kern_diff_cuda(a, b, oc, N);
	case THRESH: return mem_kern_threshold_cuda(a, oc, N, -0.2);
	case EXPR: return mem_expr_eval_cuda(ex, v, oc, N);
	case CLOUD: return mem_kern_cloudmask_cuda(c, oc, W, H, 0, H, 1ULL << 8 | 1ULL << 9, 1, 0, 2);
	case CLASSIFY: return mem_kern_classify_cuda(&model, v, W, rows_of(s), 0, rows_of(s), oc, NULL);
	case ZONAL:
		mem_kern_zonal_acc_init(acc, NZONES);
		return mem_kern_zonal_moments_cuda(acc, NZONES, ids, a, N);
	}
	return -1;
}

static double
best_of(int s, int gpu)
{
	double best = INFINITY;

	for (int r = 0; r < 4; r++) {
		double t0 = omp_get_wtime(), t;

		if (gpu) {
			if (gpu_run(s) < 0)
				return NAN;
		} else
			cpu_run(s);
		t = omp_get_wtime() - t0;
		if (r > 0 && t < best)
			best = t;
	}
	return best;
}

/* 1 when name is one of the comma-separated list */
static int
listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return 1;
	return 0;
}

static float *
alloc_plane(int pinned)
{
	float *p = pinned ? mem_kern_cuda_host_alloc(N * sizeof *p) : malloc(N * sizeof *p);

	if (p == NULL) {
		fprintf(stderr, "kern-bench: out of memory\n");
		exit(1);
	}
	return p;
}

int
main(int argc, char **argv)
{
	int gpu = mem_kern_cuda_available();
	double copy_gbps = 0, h2d = 0, d2h = 0, d2d = 0;
	struct mem_expr_error err;
	static float w0[2 * 8 * 9], b0[8], w1[8 * 5], b1[5];
	static double mean[2] = { 0.1, 0.3 }, sd[2] = { 0.05, 0.1 };
	static struct mem_kern_layer L[2];

	W = argc > 1 ? atoi(argv[1]) : 10980;
	H = argc > 2 ? atoi(argv[2]) : 2048;
	if (W < 16 || H < 16) {
		fprintf(stderr, "usage: kern-bench [WIDTH [ROWS [STAGE,...]]] (at least 16 each)\n");
		return 2;
	}
	N = (size_t)W * H;
	a = alloc_plane(gpu);
	b = alloc_plane(gpu);
	c = alloc_plane(gpu);
	mk = alloc_plane(gpu);
	o = alloc_plane(0);
	oc = alloc_plane(gpu);
	ids = (int *)alloc_plane(gpu);
	acc = calloc(NZONES, sizeof *acc);
	zthr = calloc(omp_get_max_threads(), sizeof *zthr);
	srand(20240715);
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < N; i++) {
		unsigned h = (unsigned)(i * 2654435761u);

		a[i] = (float)(300 + h % 3000);
		b[i] = (float)(1500 + (h >> 8) % 4000);
		c[i] = (h >> 4) % 50 == 0 ? 8.0f : 4.0f;
		mk[i] = (h >> 12) % 5 == 0 ? 1.0f : 0.0f;
		o[i] = oc[i] = 0.5f;
		/* fields: runs of 40 pixels of one zone, 0 between */
		ids[i] = ((i % W) / 40 + (i / W) / 40 * 7) % (NZONES + 40);
	}
	ex = mem_expr_compile("(b - a) / (b + a)", &err);
	for (size_t i = 0; i < sizeof w0 / sizeof *w0; i++)
		w0[i] = (float)((i * 37 % 17) - 8) / 20;
	for (size_t i = 0; i < sizeof w1 / sizeof *w1; i++)
		w1[i] = (float)((i * 53 % 13) - 6) / 10;
	L[0] = (struct mem_kern_layer){ MEM_KERN_CONV3, MEM_KERN_RELU, 2, 8, w0, b0 };
	L[1] = (struct mem_kern_layer){ MEM_KERN_DENSE, MEM_KERN_SOFTMAX, 8, 5, w1, b1 };
	model = (struct mem_kern_model){ 2, mean, sd, 2, L, 5 };

	/* the CPU's limit: an OpenMP copy of one plane into another, read + write */
	{
		double best = INFINITY;

		for (int r = 0; r < 4; r++) {
			double t0 = omp_get_wtime(), t;

#pragma omp parallel for schedule(static)
			for (size_t i = 0; i < N; i++)
				o[i] = a[i];
			t = omp_get_wtime() - t0;
			if (r > 0 && t < best)
				best = t;
		}
		copy_gbps = 8.0 * N / best / 1e9;
	}
	if (gpu)
		mem_kern_cuda_copy_bw(N * sizeof(float), &h2d, &d2h, &d2d);
	printf("kern-bench: %dx%d pixels (%.1f Mpx), %d CPU threads, GPU: %s\n", W, H, N / 1e6,
	    omp_get_max_threads(), gpu ? "yes" : "none");
	printf("limit cpu_copy_GBps %.1f\n", copy_gbps);
	if (gpu)
		printf("limit gpu_h2d_GBps %.1f gpu_d2h_GBps %.1f gpu_d2d_GBps %.1f\n", h2d, d2h, d2d);
	printf("%-12s %5s %8s %8s %6s", "stage", "B/px", "cpu_s", "cpu_GBps", "cpu_lim");
	if (gpu)
		printf(" %8s %8s %6s %7s", "gpu_s", "gpu_GBps", "gpu_lim", "speedup");
	printf("\n");
	for (int s = 0; s < NSTAGE; s++) {
		if (argc > 3 && !listed(argv[3], names[s]))
			continue;
		double npx = (double)W * rows_of(s), bytes = (double)(bin[s] + bout[s]) * npx;
		double tc = best_of(s, 0), tg;

		printf("%-12s %5d %8.4f %8.1f %6.2f", names[s], bin[s] + bout[s], tc, bytes / tc / 1e9,
		    bytes / tc / 1e9 / copy_gbps);
		if (gpu) {
			/* the GPU's zonal sums moments on the device: no value comes back */
			double bo = s == ZONAL ? 0 : bout[s];
			double tl = fmax(bin[s] * npx / (h2d * 1e9), bo * npx / (d2h * 1e9));

			tg = best_of(s, 1);
			printf(" %8.4f %8.1f %6.2f %7.1f", tg, bytes / tg / 1e9, tl / tg, tc / tg);
		}
		printf("\n");
		if (s == CLASSIFY) {
			printf("classify_cpu_Mpx_per_s %.2f (conv 3x3 2->8 relu, dense 8->5 softmax)\n",
			    npx / tc / 1e6);
			if (gpu)
				printf("classify_gpu_Mpx_per_s %.2f\n", npx / tg / 1e6);
		}
	}
	mem_expr_free(ex);
	mem_kern_cuda_release();
	return 0;
}
