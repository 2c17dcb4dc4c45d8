/*
 * train.c - mem-infer --train: labelled pixels from polygons and items,
 * then the kernel's gradient descent, then the model file.
 *
 * Inputs are normalised by the mean and standard deviation of the pixels
 * trained on, which the model stores, so that classify sees what training
 * saw.  For a first 3x3 convolution a sample is the pixel's 3x3 patch,
 * zero (the mean) beyond the image and for nodata neighbours, as the
 * kernel pads at inference.
 */
#include "config.h"

#include <cpl_conv.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "item.h"
#include "kern.h"
#include "model.h"
#include "train.h"
#include "zonal.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted distinct values of the field: the class names. */
static int
class_names(const struct mem_train_opts *o, char ***names, int *n, struct mem_err *err)
{
	struct mem_zones z;
	char **v = NULL;
	int m = 0;

	if (mem_zones_load(&z, o->labels, o->layer, NULL, err) < 0)
		return mem_err_prefix(err, "--labels");
	if (z.n > 0 && OGR_F_GetFieldIndex(z.feat[0], o->field) < 0) {
		mem_zones_release(&z);
		return mem_err_set(err, MEM_EUSAGE, "--labels '%s': no field '%s'", o->labels,
		    o->field);
	}
	for (size_t i = 0; i < z.n; i++) {
		int fi = OGR_F_GetFieldIndex(z.feat[i], o->field), j;
		const char *s;

		if (!OGR_F_IsFieldSetAndNotNull(z.feat[i], fi))
			continue;
		s = OGR_F_GetFieldAsString(z.feat[i], fi);
		for (j = 0; j < m; j++)
			if (strcmp(v[j], s) == 0)
				break;
		if (j < m)
			continue;
		v = mem_xrealloc(v, (m + 1) * sizeof *v);
		v[m++] = mem_xstrdup(s);
	}
	mem_zones_release(&z);
	if (m < 2 || m > 255) {
		for (int i = 0; i < m; i++)
			free(v[i]);
		free(v);
		return mem_err_set(err, MEM_EUSAGE,
		    "--labels '%s': field '%s' has %d distinct values (2 to 255 classes needed)",
		    o->labels, o->field, m);
	}
	qsort(v, m, sizeof *v, cmp_str);
	*names = v;
	*n = m;
	return 0;
}

struct samples {
	float *x;	/* raw reflectance, nf per sample (NaN beyond the image) */
	int *y;
	size_t n, cap;
	int nf;
};

static void
add_sample(struct samples *s, float *const *b, int nb, int w, int h, int px, int py, int conv,
    int cls)
{
	float *x;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->x = mem_xrealloc(s->x, s->cap * s->nf * sizeof *s->x);
		s->y = mem_xrealloc(s->y, s->cap * sizeof *s->y);
	}
	x = s->x + s->n * s->nf;
	for (int i = 0; i < nb; i++) {
		if (!conv) {
			x[i] = b[i][(size_t)py * w + px];
			continue;
		}
		for (int dy = -1; dy <= 1; dy++)
			for (int dx = -1; dx <= 1; dx++) {
				int yy = py + dy, xx = px + dx;

				x[i * 9 + (dy + 1) * 3 + dx + 1] = yy < 0 || yy >= h || xx < 0 || xx >= w ?
				    NAN : b[i][(size_t)yy * w + xx];
			}
	}
	s->y[s->n++] = cls;
}

/* The labelled pixels of one item. */
static int
item_samples(const json_t *item, const struct mem_train_opts *o, int nb, char **classes,
    int ncl, struct samples *s, struct mem_err *err)
{
	float *b[32];
	int w, h, rc = -1, *ids = NULL, *cls = NULL;
	double gt[6];
	OGRSpatialReferenceH srs = NULL;
	struct mem_zones z;
	OGRGeometryH *g = NULL;

	memset(&z, 0, sizeof z);
	if (mem_infer_read_bands(item, o->bands, nb, b, &w, &h, gt, &srs, err) < 0)
		return -1;
	if (mem_zones_load(&z, o->labels, o->layer, srs, err) < 0)
		goto done;
	cls = mem_xcalloc(z.n ? z.n : 1, sizeof *cls);
	for (size_t i = 0; i < z.n; i++) {
		int fi = OGR_F_GetFieldIndex(z.feat[i], o->field);
		const char *v;
		char *const *hit;

		cls[i] = -1;
		if (fi < 0 || !OGR_F_IsFieldSetAndNotNull(z.feat[i], fi))
			continue;
		v = OGR_F_GetFieldAsString(z.feat[i], fi);
		hit = bsearch(&v, classes, ncl, sizeof *classes, cmp_str);
		cls[i] = hit ? (int)(hit - classes) : -1;
	}
	ids = VSI_MALLOC_VERBOSE((size_t)w * h * sizeof *ids);
	if (ids == NULL) {
		mem_err_set(err, MEM_EITEM, "out of memory for item '%s'", mem_item_id(item));
		goto done;
	}
	g = mem_zones_geoms(&z);
	if (mem_zones_rasterize(g, z.n, gt, w, 0, h, ids, err) < 0)
		goto done;
	for (int py = 0; py < h; py++)
		for (int px = 0; px < w; px++) {
			size_t p = (size_t)py * w + px;
			int ok = ids[p] > 0 && cls[ids[p] - 1] >= 0;

			for (int i = 0; ok && i < nb; i++)
				ok = b[i][p] == b[i][p];
			if (ok)
				add_sample(s, b, nb, w, h, px, py, o->conv, cls[ids[p] - 1]);
		}
	rc = 0;
done:
	if (g)
		mem_zones_geoms_free(g, z.n);
	mem_zones_release(&z);
	if (srs)
		OSRDestroySpatialReference(srs);
	for (int i = 0; i < nb; i++)
		VSIFree(b[i]);
	VSIFree(ids);
	free(cls);
	return rc;
}

int
mem_train(json_t *const *items, size_t n, const struct mem_train_opts *o,
    struct mem_train_result *res, struct mem_err *err)
{
	struct samples s;
	struct mem_model *m = NULL;
	struct mem_kern_train_opts ko;
	char **classes = NULL;
	int nb = 0, ncl = 0, rc = -1, per;
	uint64_t seed = o->seed;

	memset(&s, 0, sizeof s);
	memset(res, 0, sizeof *res);
	while (o->bands && o->bands[nb])
		nb++;
	if (nb < 1 || nb > 32)
		return mem_err_set(err, MEM_EUSAGE, "--bands: 1 to 32 bands, not %d", nb);
	if (n == 0)
		return mem_err_set(err, MEM_EUSAGE, "--train: no items to train on");
	if (class_names(o, &classes, &ncl, err) < 0)
		return -1;
	per = o->conv ? 9 : 1;
	s.nf = nb * per;
	for (size_t i = 0; i < n; i++)
		if (item_samples(items[i], o, nb, classes, ncl, &s, err) < 0)
			goto done;
	if (s.n < (size_t)ncl) {
		mem_err_set(err, MEM_EUSAGE, "--labels '%s': %zu labelled pixels with valid bands",
		    o->labels, s.n);
		goto done;
	}
	/* a seeded random subset: a partial Fisher-Yates shuffle */
	if (o->max_samples > 0 && s.n > o->max_samples) {
		for (size_t i = 0; i < o->max_samples; i++) {
			size_t j, r = i + (size_t)(((seed += 0x9e3779b97f4a7c15ULL) >> 11) %
			    (s.n - i));
			int t = s.y[i];

			s.y[i] = s.y[r];
			s.y[r] = t;
			for (j = 0; j < (size_t)s.nf; j++) {
				float f = s.x[i * s.nf + j];

				s.x[i * s.nf + j] = s.x[r * s.nf + j];
				s.x[r * s.nf + j] = f;
			}
		}
		s.n = o->max_samples;
	}
	m = mem_model_new(nb, o->bands, ncl, classes, o->hidden, o->conv);
	/* the centre pixel's mean and standard deviation per band */
	for (int i = 0; i < nb; i++) {
		double sum = 0, sq = 0;
		int c = i * per + (o->conv ? 4 : 0);

		for (size_t k = 0; k < s.n; k++)
			sum += s.x[k * s.nf + c];
		m->k.mean[i] = sum / s.n;
		for (size_t k = 0; k < s.n; k++) {
			double d = s.x[k * s.nf + c] - m->k.mean[i];

			sq += d * d;
		}
		m->k.std[i] = sqrt(sq / s.n) > 1e-12 ? sqrt(sq / s.n) : 1;
	}
	for (size_t k = 0; k < s.n; k++)
		for (int j = 0; j < s.nf; j++) {
			float *v = &s.x[k * s.nf + j];
			int i = j / per;

			*v = *v == *v ? (float)((*v - m->k.mean[i]) / m->k.std[i]) : 0.0f;
		}
	ko.epochs = o->epochs;
	ko.batch = o->batch;
	ko.lr = o->lr;
	ko.l2 = 1e-4;
	ko.seed = o->seed;
	if (mem_kern_train(&m->k, s.x, s.y, s.n, &ko, &res->loss) < 0) {
		mem_err_set(err, MEM_EITEM, "out of memory training on %zu pixels", s.n);
		goto done;
	}
	res->samples = s.n;
	res->nclasses = ncl;
	res->accuracy = mem_kern_accuracy(&m->k, s.x, s.y, s.n);
	rc = mem_model_save(m, o->out, err);
done:
	for (int i = 0; i < ncl; i++)
		free(classes[i]);
	free(classes);
	free(s.x);
	free(s.y);
	mem_model_free(m);
	return rc;
}
