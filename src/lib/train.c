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
#include <cpl_string.h>
#include <errno.h>
#include <gdalwarper.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "item.h"
#include "kern.h"
#include "model.h"
#include "raster.h"
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

/* --- labels from a class band ---------------------------------------------- */

struct valmap {
	long v;
	int cls;
};

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/* --label-classes VALUE=NAME,...: the names, sorted, and each value's class. */
static int
parse_label_classes(char *const *list, struct valmap **map, int *nmap, char ***names, int *ncl,
    struct mem_err *err)
{
	char **v = NULL;
	int m = 0, n = 0;

	*map = NULL;
	for (char *const *p = list; *p; p++) {
		const char *eq = strchr(*p, '=');
		char *end;
		long k;
		int j;

		errno = 0;
		k = strtol(*p, &end, 10);
		if (eq == NULL || end != eq || end == *p || errno || eq[1] == '\0') {
			mem_err_set(err, MEM_EUSAGE, "--label-classes: expected VALUE=NAME, not '%s'", *p);
			goto fail;
		}
		for (int i = 0; i < n; i++)
			if ((*map)[i].v == k) {
				mem_err_set(err, MEM_EUSAGE, "--label-classes: value %ld named twice", k);
				goto fail;
			}
		*map = mem_xrealloc(*map, (n + 1) * sizeof **map);
		(*map)[n].v = k;
		(*map)[n].cls = -1;
		n++;
		for (j = 0; j < m; j++)
			if (strcmp(v[j], eq + 1) == 0)
				break;
		if (j == m) {
			v = mem_xrealloc(v, (m + 1) * sizeof *v);
			v[m++] = mem_xstrdup(eq + 1);
		}
	}
	if (m < 2 || m > 255) {
		mem_err_set(err, MEM_EUSAGE, "--label-classes: %d class names (2 to 255 needed)", m);
		goto fail;
	}
	qsort(v, m, sizeof *v, cmp_str);
	for (char *const *p = list; *p; p++) {
		const char *name = strchr(*p, '=') + 1;
		char *const *hit = bsearch(&name, v, m, sizeof *v, cmp_str);

		(*map)[p - list].cls = (int)(hit - v);
	}
	*names = v;
	*ncl = m;
	*nmap = n;
	return 0;
fail:
	for (int i = 0; i < m; i++)
		free(v[i]);
	free(v);
	free(*map);
	*map = NULL;
	return -1;
}

/* FILE, FILE:BAND, or a band of the item: its href (the caller frees it) and band index. */
static int
label_source(const json_t *item, const char *spec, char **href, int *band, struct mem_err *err)
{
	const char *colon = strrchr(spec, ':');
	struct mem_band b;
	VSIStatBufL st;

	*band = 1;
	*href = NULL;
	if (VSIStatL(spec, &st) == 0) {
		*href = mem_xstrdup(spec);
		return 0;
	}
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
		char *file = mem_xasprintf("%.*s", (int)(colon - spec), spec);

		if (VSIStatL(file, &st) == 0) {
			*href = file;
			*band = atoi(colon + 1);
			return 0;
		}
		free(file);
	}
	if (mem_item_find_band(item, spec, &b, NULL) == 0 && mem_asset_href(b.asset)) {
		*href = mem_xstrdup(mem_asset_href(b.asset));
		*band = b.index;
		return 0;
	}
	return mem_err_set(err, MEM_EUSAGE,
	    "--labels-band '%s': no such file, and item '%s' has no band '%s'", spec,
	    mem_item_id(item), spec);
}

/*
 * The class band on the item's grid (w x h, gt, srs), nearest neighbour:
 * a new buffer of doubles (VSIFree), NaN where the band has no value.
 */
static double *
read_labels(const char *spec, const char *href, int band, int w, int h, const double gt[6],
    OGRSpatialReferenceH srs, struct mem_err *err)
{
	GDALDatasetH src = mem_raster_open(href, err), dst = NULL;
	GDALWarpOptions *wo = NULL;
	GDALWarpOperationH op = NULL;
	double *out = NULL, dgt[6];
	CPLErr e = CE_Failure;
	int has = 0;
	double nd;

	if (src == NULL)
		return NULL;
	if (band < 1 || band > GDALGetRasterCount(src)) {
		mem_err_set(err, MEM_EUSAGE, "--labels-band '%s': '%s' has %d bands, not %d", spec,
		    href, GDALGetRasterCount(src), band);
		goto done;
	}
	dst = GDALCreate(GDALGetDriverByName("MEM"), "", w, h, 1, GDT_Float64, NULL);
	if (dst == NULL) {
		mem_err_set(err, MEM_EITEM, "out of memory for the labels of a %dx%d grid", w, h);
		goto done;
	}
	memcpy(dgt, gt, sizeof dgt);
	GDALSetGeoTransform(dst, dgt);
	if (srs)
		GDALSetSpatialRef(dst, srs);
	nd = GDALGetRasterNoDataValue(GDALGetRasterBand(src, band), &has);
	wo = GDALCreateWarpOptions();
	wo->hSrcDS = src;
	wo->hDstDS = dst;
	wo->nBandCount = 1;
	wo->panSrcBands = CPLMalloc(sizeof(int));
	wo->panDstBands = CPLMalloc(sizeof(int));
	wo->panSrcBands[0] = band;
	wo->panDstBands[0] = 1;
	wo->eResampleAlg = GRA_NearestNeighbour;	/* classes are never blended */
	wo->pTransformerArg = GDALCreateGenImgProjTransformer2(src, dst, NULL);
	wo->pfnTransformer = GDALGenImgProjTransform;
	wo->padfDstNoDataReal = CPLMalloc(sizeof(double));
	wo->padfDstNoDataReal[0] = NAN;
	if (has) {
		wo->padfSrcNoDataReal = CPLMalloc(sizeof(double));
		wo->padfSrcNoDataReal[0] = nd;
	}
	wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
	CPLErrorReset();
	if (wo->pTransformerArg && (op = GDALCreateWarpOperation(wo)) != NULL)
		e = GDALChunkAndWarpImage(op, 0, 0, w, h);
	if (e == CE_None && (out = VSI_MALLOC_VERBOSE((size_t)w * h * sizeof *out)) != NULL &&
	    GDALRasterIO(GDALGetRasterBand(dst, 1), GF_Read, 0, 0, w, h, out, w, h, GDT_Float64, 0,
	    0) != CE_None) {
		VSIFree(out);
		out = NULL;
	}
	if (out == NULL)
		mem_err_set(err, MEM_EITEM, "--labels-band '%s': cannot read '%s' onto the grid: %s",
		    spec, href, CPLGetLastErrorMsg()[0] ? CPLGetLastErrorMsg() : "out of memory");
done:
	if (op)
		GDALDestroyWarpOperation(op);
	if (wo) {
		if (wo->pTransformerArg)
			GDALDestroyGenImgProjTransformer(wo->pTransformerArg);
		GDALDestroyWarpOptions(wo);
	}
	if (dst)
		GDALClose(dst);
	GDALClose(src);
	return out;
}

/*
 * The labelled pixels of one item from a class band: y is the class when
 * map names the values, else the value itself (classes are made after).
 */
static int
band_samples(const json_t *item, const struct mem_train_opts *o, int nb,
    const struct valmap *map, int nmap, struct samples *s, struct mem_err *err)
{
	float *b[32];
	int w, h, rc = -1, band;
	double gt[6], *lab = NULL;
	OGRSpatialReferenceH srs = NULL;
	char *href = NULL;

	if (label_source(item, o->labels_band, &href, &band, err) < 0)
		return -1;
	if (mem_infer_read_bands(item, o->bands, nb, b, &w, &h, gt, &srs, err) < 0) {
		free(href);
		return -1;
	}
	lab = read_labels(o->labels_band, href, band, w, h, gt, srs, err);
	if (lab == NULL)
		goto done;
	for (int py = 0; py < h; py++)
		for (int px = 0; px < w; px++) {
			size_t p = (size_t)py * w + px;
			double v = lab[p];
			int ok = v == v && v == floor(v) && fabs(v) < 1e9, cls = -1;

			if (ok && map) {
				for (int i = 0; i < nmap; i++)
					if (map[i].v == (long)v)
						cls = map[i].cls;
				ok = cls >= 0;
			} else if (ok)
				cls = (int)v;
			for (int i = 0; ok && i < nb; i++)
				ok = b[i][p] == b[i][p];
			if (ok)
				add_sample(s, b, nb, w, h, px, py, o->conv, cls);
		}
	rc = 0;
done:
	if (srs)
		OSRDestroySpatialReference(srs);
	for (int i = 0; i < nb; i++)
		VSIFree(b[i]);
	VSIFree(lab);
	free(href);
	return rc;
}

/* Without --label-classes: the distinct values are the classes, in numeric order. */
static int
classes_of_values(struct samples *s, const char *spec, char ***names, int *ncl,
    struct mem_err *err)
{
	long *v = mem_xcalloc(s->n ? s->n : 1, sizeof *v);
	size_t m = 0;

	for (size_t i = 0; i < s->n; i++)
		v[i] = s->y[i];
	qsort(v, s->n, sizeof *v, cmp_long);
	for (size_t i = 0; i < s->n; i++)
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	if (m < 2 || m > 255) {
		free(v);
		return mem_err_set(err, MEM_EUSAGE,
		    "--labels-band '%s': %zu distinct values where the bands are valid (2 to 255 "
		    "classes needed; name them with --label-classes)", spec, m);
	}
	for (size_t i = 0; i < s->n; i++) {
		long k = s->y[i];

		s->y[i] = (int)((long *)bsearch(&k, v, m, sizeof *v, cmp_long) - v);
	}
	*names = mem_xcalloc(m, sizeof **names);
	for (size_t i = 0; i < m; i++)
		(*names)[i] = mem_xasprintf("%ld", v[i]);
	*ncl = (int)m;
	free(v);
	return 0;
}

int
mem_train(json_t *const *items, size_t n, const struct mem_train_opts *o,
    struct mem_train_result *res, struct mem_err *err)
{
	struct samples s;
	struct mem_model *m = NULL;
	struct mem_kern_train_opts ko;
	char **classes = NULL;
	struct valmap *map = NULL;
	int nb = 0, ncl = 0, rc = -1, per, nmap = 0;
	const char *lname = o->labels_band ? o->labels_band : o->labels;
	uint64_t seed = o->seed;

	memset(&s, 0, sizeof s);
	memset(res, 0, sizeof *res);
	while (o->bands && o->bands[nb])
		nb++;
	if (nb < 1 || nb > 32)
		return mem_err_set(err, MEM_EUSAGE, "--bands: 1 to 32 bands, not %d", nb);
	if (n == 0)
		return mem_err_set(err, MEM_EUSAGE, "--train: no items to train on");
	if (o->labels_band) {
		if (o->label_classes && parse_label_classes(o->label_classes, &map, &nmap, &classes,
		    &ncl, err) < 0)
			return -1;
	} else if (class_names(o, &classes, &ncl, err) < 0)
		return -1;
	per = o->conv ? 9 : 1;
	s.nf = nb * per;
	for (size_t i = 0; i < n; i++)
		if ((o->labels_band ? band_samples(items[i], o, nb, map, nmap, &s, err) :
		    item_samples(items[i], o, nb, classes, ncl, &s, err)) < 0)
			goto done;
	if (o->labels_band && !o->label_classes &&
	    classes_of_values(&s, o->labels_band, &classes, &ncl, err) < 0)
		goto done;
	if (s.n < (size_t)ncl) {
		mem_err_set(err, MEM_EUSAGE, "--labels%s '%s': %zu labelled pixels with valid bands",
		    o->labels_band ? "-band" : "", lname, s.n);
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
	free(map);
	free(s.x);
	free(s.y);
	mem_model_free(m);
	return rc;
}
