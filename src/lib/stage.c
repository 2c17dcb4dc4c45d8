/*
 * stage.c - what each stage of mem-infer is, and the chain -s builds.
 *
 * The table of indices is the one place that says which bands an index
 * reads and how: adding an index is a line here (and a kernel when it is
 * not a normalized difference).  Parsing happens once, before any item is
 * read, so a bad parameter or a syntax error in an expression is a usage
 * error (exit 2) rather than a failure of every item.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "files.h"
#include "model.h"
#include "sha256.h"
#include "stage.h"

static const struct index_def {
	const char *name;
	enum mem_stage_kind kind;
	const char *bands[3];	/* a, b (and blue for EVI); the formulas are in mem_stage_help() */
} indices[] = {
	{ "ndvi", MEM_STAGE_ND, { "nir", "red" } },
	{ "ndwi", MEM_STAGE_ND, { "green", "nir" } },
	{ "mndwi", MEM_STAGE_ND, { "green", "swir16" } },
	{ "nbr", MEM_STAGE_ND, { "nir", "swir22" } },
	{ "ndbi", MEM_STAGE_ND, { "swir16", "nir" } },
	{ "ndsi", MEM_STAGE_ND, { "green", "swir16" } },
	{ "evi", MEM_STAGE_EVI, { "nir", "red", "blue" } },
	{ "savi", MEM_STAGE_SAVI, { "nir", "red" } },
};
#define NINDICES (sizeof indices / sizeof *indices)

/* Sentinel-2 SCL: cloud shadow, cloud medium and high probability, thin cirrus */
#define SCL_CLOUDS (1ULL << 3 | 1ULL << 8 | 1ULL << 9 | 1ULL << 10)
#define MAX_DILATE 100

const char *
mem_stage_help(void)
{
	return "Stages (-s NAME[:KEY=VALUE,...]); each writes one float32 band, NaN = nodata\n"
	       "(masks and classify: UInt8, 255 = nodata):\n"
	       "  ndvi       (nir - red) / (nir + red)\n"
	       "  ndwi       (green - nir) / (green + nir)\n"
	       "  mndwi      (green - swir16) / (green + swir16)\n"
	       "  nbr        (nir - swir22) / (nir + swir22)\n"
	       "  ndbi       (swir16 - nir) / (swir16 + nir)\n"
	       "  ndsi       (green - swir16) / (green + swir16)\n"
	       "  evi        2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1)\n"
	       "  savi       (1 + L) (nir - red) / (nir + red + L)\n"
	       "             indices: on reflectance; params mask=STAGE (NaN where that\n"
	       "             stage is not 0), as=NAME (output name), savi: L=0.5\n"
	       "  cloudmask  1 where clouds or shadows are, 0 elsewhere, then dilate=0 pixels\n"
	       "             (UInt8, 255 where the band is nodata):\n"
	       "             Sentinel-2 and others: the scl band's class is in classes=3,8,9,10;\n"
	       "             Landsat C2 (by its collection, platform or id): a bit of\n"
	       "             qa_pixel in bits=dilated,cirrus,cloud,shadow (also snow, water;\n"
	       "             or 1-5,7) is set, or a confidence is at least cloud_conf=,\n"
	       "             shadow_conf=, snow_conf=, cirrus_conf= (low medium high; none),\n"
	       "             fill (bit 0) is nodata; source=auto|scl|qa_pixel, band=scl\n"
	       "             (Landsat: band=qa_pixel), as=NAME\n"
	       "  expr:OUT=EXPRESSION\n"
	       "             band math into output OUT: numbers, bands (as reflectance) and\n"
	       "             earlier stages by name, + - * / < <= > >= == != && || ! ?:\n"
	       "             ( ), min max abs sqrt log exp pow\n"
	       "  zonal:zones=FILE[,layer=L][,of=STAGE|BAND][,stats=LIST]\n"
	       "             statistics of OF (default: the stage before) over the polygons\n"
	       "             of FILE (GeoJSON, GeoPackage..., any CRS), pixel centres inside;\n"
	       "             stats=count,mean,std,min,max,p10,p50,p90 (any pNN); output\n"
	       "             zonal_OF.gpkg (one table OF: polygons + stats) and mem:zonal\n"
	       "  change[:index=ndvi,threshold=-0.2][,mask=cloudmask]\n"
	       "             pairs items of the same cell (mem:grid) by date: the index after\n"
	       "             minus before (dndvi, float32) and change (UInt8: 1 where the\n"
	       "             difference is <= a negative threshold, >= a positive one; 0\n"
	       "             elsewhere; 255 where either date is nodata),\n"
	       "             with change-polygons.gpkg: its polygons and their areas;\n"
	       "             index: ndvi ndwi mndwi nbr ndbi ndsi; as=NAME names the mask;\n"
	       "             mask=CLOUDMASK: pixels it masks on either date are nodata in\n"
	       "             both outputs and in no polygon\n"
	       "  classify:model=FILE.h5[,as=class][,prob=0]\n"
	       "             a small network (mem-model(5): dense and 3x3 convolution layers,\n"
	       "             relu, softmax) run on each pixel of the model's bands: the class\n"
	       "             index as a UInt8 band (255 = nodata), its names in the item;\n"
	       "             prob=1: NAME_prob, the last layer's outputs, a band per class;\n"
	       "             mem-infer --train fits one\n"
	       "  llm:PROVIDER/MODEL[,prompt=FILE][,scope=tile|run]\n"
	       "             asks a hosted model about a JSON summary of each result (or of\n"
	       "             the run) and stores the answer in mem:llm; PROVIDER deepseek,\n"
	       "             mistral, openai (chat completions) or cohere (v2 chat); the\n"
	       "             prompt's {{summary}} is replaced by the summary\n";
}

static const struct index_def *
find_index(const char *name)
{
	for (size_t i = 0; i < NINDICES; i++)
		if (strcmp(indices[i].name, name) == 0)
			return &indices[i];
	return NULL;
}

static int
is_builtin(const char *name)
{
	return find_index(name) != NULL || strcmp(name, "cloudmask") == 0;
}

static int
valid_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static int
find_stage(const struct mem_chain *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->st[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void
stage_release(struct mem_stage *s)
{
	free(s->spec);
	free(s->name);
	free(s->band);
	free(s->refs);
	free(s->zones);
	free(s->layer);
	free(s->of);
	free(s->index);
	free(s->provider);
	free(s->model);
	free(s->prompt);
	free(s->model_path);
	mem_model_free(s->clf);
	mem_expr_free(s->expr);
	memset(s, 0, sizeof *s);
}

/* A built-in stage with its defaults. */
static void
stage_default(struct mem_stage *s, const char *name)
{
	const struct index_def *d = find_index(name);

	memset(s, 0, sizeof *s);
	s->name = mem_xstrdup(name);
	s->mask = -1;
	if (d) {
		s->kind = d->kind;
		for (s->nbands = 0; s->nbands < 3 && d->bands[s->nbands]; s->nbands++)
			s->bands[s->nbands] = d->bands[s->nbands];
		s->L = 0.5;
	} else {
		s->kind = MEM_STAGE_CLOUDMASK;
		s->classes = SCL_CLOUDS;
		s->qa.bits = MEM_CLOUD_QA_BITS;
		s->source = MEM_CLOUD_AUTO;
		s->nbands = 1;
		s->bands[0] = "scl"; /* or qa_pixel: the item decides (infer.c) */
	}
}

static void
push(struct mem_chain *c, struct mem_stage *s)
{
	c->st = mem_xrealloc(c->st, (c->n + 1) * sizeof *c->st);
	c->st[c->n++] = *s;
	if (s->kind == MEM_STAGE_CLOUDMASK && s->dilate > c->halo)
		c->halo = s->dilate;
	if (s->kind == MEM_STAGE_CLASSIFY && mem_kern_model_halo(&s->clf->k) > c->halo)
		c->halo = mem_kern_model_halo(&s->clf->k);
	memset(s, 0, sizeof *s);
}

/* The chain index of an earlier stage called name, adding a built-in one; -1 if none. */
static int
dependency(struct mem_chain *c, const char *name)
{
	int i = find_stage(c, name);
	struct mem_stage s;

	if (i >= 0 || !is_builtin(name))
		return i;
	stage_default(&s, name);
	push(c, &s);
	return (int)c->n - 1;
}

static int
parse_number(const char *spec, const char *key, const char *v, double lo, double hi, double *out,
    struct mem_err *err)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || errno || !(d >= lo && d <= hi))
		return mem_err_set(err, MEM_EUSAGE,
		    "stage '%s': %s must be a number from %g to %g, not '%s'", spec, key, lo, hi,
		    v);
	*out = d;
	return 0;
}

static int
parse_classes(const char *spec, const char *v, unsigned long long *out, struct mem_err *err)
{
	const char *p = v;

	*out = 0;
	while (*p) {
		char *end;
		long k;

		errno = 0;
		k = strtol(p, &end, 10);
		if (end == p || errno || k < 0 || k > 63 || (*end != ',' && *end != '\0'))
			return mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': classes must be numbers 0-63 separated by commas, not "
			    "'%s'",
			    spec, v);
		*out |= 1ULL << k;
		p = *end ? end + 1 : end;
	}
	if (*out == 0)
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': classes is empty", spec);
	return 0;
}

/* QA_PIXEL bits by name, in bit order from 1; 6 (clear) is no reason to mask */
static const char *const qa_bit_names[] = { "fill", "dilated", "cirrus", "cloud", "shadow", "snow",
	"clear", "water" };
/* the confidence pairs, as MEM_KERN_QA_* */
static const char *const qa_conf_keys[] = { "cloud_conf", "shadow_conf", "snow_conf",
	"cirrus_conf" };

static int
parse_qa_bits(const char *spec, const char *v, unsigned *out, struct mem_err *err)
{
	char *dup = mem_xstrdup(v), *save = NULL;
	int rc = 0;

	*out = 0;
	for (char *t = strtok_r(dup, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
		int k = -1;

		for (int i = 1; i < 8; i++)
			if (strcmp(t, qa_bit_names[i]) == 0 || (t[0] == '0' + i && t[1] == '\0'))
				k = i;
		if (k < 0 || k == 6)
			rc = mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': bits must be QA_PIXEL bits 1-5 or 7 (dilated cirrus cloud "
			    "shadow snow water) separated by commas, not '%s'",
			    spec, t);
		else
			*out |= 1u << k;
	}
	free(dup);
	return rc;
}

static int
parse_conf(const char *spec, const char *key, const char *v, unsigned char *out,
    struct mem_err *err)
{
	static const char *const levels[] = { "none", "low", "medium", "high" };

	for (int i = 0; i < 4; i++)
		if (strcmp(v, levels[i]) == 0) {
			*out = (unsigned char)i;
			return 0;
		}
	return mem_err_set(err, MEM_EUSAGE,
	    "stage '%s': %s must be none, low, medium or high, not '%s'", spec, key, v);
}

static int zonal_param(struct mem_chain *c, struct mem_stage *s, const char *spec,
    const char *key, const char *v, struct mem_err *err);

static int
set_param(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *key,
    const char *v, struct mem_err *err)
{
	double d;

	if (strcmp(key, "as") == 0) {
		if (!valid_name(v))
			return mem_err_set(err, MEM_EUSAGE, "stage '%s': invalid output name '%s'",
			    spec, v);
		free(s->name);
		s->name = mem_xstrdup(v);
		return 0;
	}
	if (s->kind != MEM_STAGE_CLOUDMASK && s->kind <= MEM_STAGE_EXPR && strcmp(key, "mask") == 0) {
		s->mask = find_stage(c, v);
		if (s->mask < 0 && strcmp(v, "cloudmask") == 0)
			s->mask = dependency(c, v);
		if (s->mask < 0)
			return mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': mask '%s' is not an earlier stage (give -s %s first)",
			    spec, v, v);
		return 0;
	}
	if (s->kind == MEM_STAGE_ZONAL)
		return zonal_param(c, s, spec, key, v, err);
	if (s->kind == MEM_STAGE_CHANGE) {
		if (strcmp(key, "mask") == 0) {
			/* a cloudmask stage: the diff recomputes it on the date before */
			s->mask = dependency(c, v);
			if (s->mask < 0 || c->st[s->mask].kind != MEM_STAGE_CLOUDMASK)
				return mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': mask '%s' must be a cloudmask stage (given with -s "
				    "first, or cloudmask itself): it is computed on both dates",
				    spec, v);
			return 0;
		}
		if (strcmp(key, "threshold") == 0) {
			if (parse_number(spec, key, v, -2, 2, &s->threshold, err) < 0)
				return -1;
			if (s->threshold == 0)
				return mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': threshold must not be 0 (its sign says loss or gain)",
				    spec);
			return 0;
		}
		if (strcmp(key, "index") == 0) {
			const struct index_def *d = find_index(v);

			if (d == NULL || d->kind != MEM_STAGE_ND)
				return mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': index must be a normalized difference (ndvi, ndwi, "
				    "mndwi, nbr, ndbi, ndsi), not '%s'",
				    spec, v);
			free(s->index);
			s->index = mem_xstrdup(v);
			return 0;
		}
	}
	if (s->kind == MEM_STAGE_LLM) {
		if (strcmp(key, "scope") == 0) {
			if (strcmp(v, "tile") != 0 && strcmp(v, "run") != 0)
				return mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': scope must be tile or run, not '%s'", spec, v);
			s->scope_run = strcmp(v, "run") == 0;
			return 0;
		}
		if (strcmp(key, "prompt") == 0) {
			struct mem_err e;

			free(s->prompt);
			s->prompt = mem_read_file(v, NULL, &e);
			if (s->prompt == NULL)
				return mem_err_set(err, MEM_EUSAGE, "stage '%s': %s", spec, e.msg);
			return 0;
		}
	}
	if (s->kind == MEM_STAGE_CLASSIFY && strcmp(key, "model") == 0) {
		free(s->model_path);
		s->model_path = mem_xstrdup(v);
		return 0;
	}
	if (s->kind == MEM_STAGE_CLASSIFY && strcmp(key, "prob") == 0) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			return mem_err_set(err, MEM_EUSAGE, "stage '%s': prob must be 0 or 1, not '%s'",
			    spec, v);
		s->prob = *v == '1';
		return 0;
	}
	if (s->kind == MEM_STAGE_SAVI && strcmp(key, "L") == 0)
		return parse_number(spec, key, v, 0, 100, &s->L, err);
	if (s->kind == MEM_STAGE_CLOUDMASK) {
		if (strcmp(key, "classes") == 0)
			return parse_classes(spec, v, &s->classes, err);
		if (strcmp(key, "dilate") == 0) {
			if (parse_number(spec, key, v, 0, MAX_DILATE, &d, err) < 0)
				return -1;
			if (d != (int)d)
				return mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': dilate must be a whole number", spec);
			s->dilate = (int)d;
			return 0;
		}
		if (strcmp(key, "band") == 0) {
			free(s->band);
			s->band = mem_xstrdup(v);
			s->bands[0] = s->band;
			return 0;
		}
		if (strcmp(key, "source") == 0) {
			if (strcmp(v, "auto") == 0)
				s->source = MEM_CLOUD_AUTO;
			else if (strcmp(v, "scl") == 0)
				s->source = MEM_CLOUD_SCL;
			else if (strcmp(v, "qa_pixel") == 0)
				s->source = MEM_CLOUD_QA;
			else
				return mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': source must be auto, scl or qa_pixel, not '%s'", spec,
				    v);
			return 0;
		}
		if (strcmp(key, "bits") == 0)
			return parse_qa_bits(spec, v, &s->qa.bits, err);
		for (int p = 0; p < 4; p++)
			if (strcmp(key, qa_conf_keys[p]) == 0)
				return parse_conf(spec, key, v, &s->qa.conf[p], err);
	}
	return mem_err_set(err, MEM_EUSAGE,
	    "stage '%s': unknown parameter '%s' (see --list-stages)", spec, key);
}

static int
parse_stats(const char *spec, const char *v, struct mem_stage *s, struct mem_err *err)
{
	char *dup = mem_xstrdup(v), *save = NULL;
	int rc = 0;

	s->stats = 0;
	s->npct = 0;
	for (char *t = strtok_r(dup, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
		static const char *names[] = { "count", "mean", "std", "min", "max" };
		size_t i;

		for (i = 0; i < 5; i++)
			if (strcmp(t, names[i]) == 0)
				break;
		if (i < 5)
			s->stats |= 1u << i;
		else if (t[0] == 'p' && t[1] && s->npct < MEM_ZONAL_MAXP) {
			char *end;
			double p;

			errno = 0;
			p = strtod(t + 1, &end);
			if (*end || errno || !(p >= 0 && p <= 100))
				rc = mem_err_set(err, MEM_EUSAGE,
				    "stage '%s': percentile '%s' must be p0 to p100", spec, t);
			s->pct[s->npct++] = p;
		} else
			rc = mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': unknown statistic '%s' (count mean std min max pNN, at "
			    "most %d percentiles)",
			    spec, t, MEM_ZONAL_MAXP);
	}
	free(dup);
	if (rc == 0 && s->stats == 0 && s->npct == 0)
		rc = mem_err_set(err, MEM_EUSAGE, "stage '%s': stats is empty", spec);
	return rc;
}

static int
zonal_param(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *key,
    const char *v, struct mem_err *err)
{
	if (strcmp(key, "zones") == 0) {
		free(s->zones);
		s->zones = mem_xstrdup(v);
		return 0;
	}
	if (strcmp(key, "layer") == 0) {
		free(s->layer);
		s->layer = mem_xstrdup(v);
		return 0;
	}
	if (strcmp(key, "of") == 0) {
		if (!valid_name(v))
			return mem_err_set(err, MEM_EUSAGE, "stage '%s': invalid name '%s'", spec, v);
		free(s->of);
		s->of = mem_xstrdup(v);
		/* a stage (an implied built-in one too), else a band of the item */
		s->of_stage = dependency(c, v);
		return 0;
	}
	if (strcmp(key, "stats") == 0)
		return parse_stats(spec, v, s, err);
	return mem_err_set(err, MEM_EUSAGE,
	    "stage '%s': unknown parameter '%s' (see --list-stages)", spec, key);
}

/* NAME:K=V,K=V where a piece without '=' continues the value before it. */
static int
parse_params(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *params,
    struct mem_err *err)
{
	char *dup = mem_xstrdup(params), *p = dup, *key = NULL, *val = NULL;
	int rc = 0;

	while (rc == 0 && p) {
		char *comma = strchr(p, ','), *eq;

		if (comma)
			*comma = '\0';
		eq = strchr(p, '=');
		if (eq == NULL && key == NULL) {
			rc = mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': expected KEY=VALUE, not '%s'", spec, p);
			break;
		}
		if (eq) {
			if (key)
				rc = set_param(c, s, spec, key, val, err);
			*eq = '\0';
			key = p;
			val = eq + 1;
		} else
			p[-1] = ','; /* undo the cut: the value goes on */
		p = comma ? comma + 1 : NULL;
	}
	if (rc == 0 && key)
		rc = set_param(c, s, spec, key, val, err);
	free(dup);
	return rc;
}

static int
parse_expr(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *rest,
    struct mem_err *err)
{
	const char *eq = strchr(rest, '=');
	struct mem_expr_error e;
	size_t n;

	if (eq == NULL || eq == rest)
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': expected expr:NAME=EXPRESSION",
		    spec);
	s->name = mem_xasprintf("%.*s", (int)(eq - rest), rest);
	if (!valid_name(s->name))
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': invalid output name '%s'", spec,
		    s->name);
	s->expr = mem_expr_compile(eq + 1, &e);
	if (s->expr == NULL) {
		if (e.column > 0)
			return mem_err_set(err, MEM_EUSAGE, "expr: column %d: %s", e.column, e.msg);
		return mem_err_set(err, MEM_EUSAGE, "expr: %s", e.msg);
	}
	n = mem_expr_nvars(s->expr);
	s->refs = mem_xcalloc(n ? n : 1, sizeof *s->refs);
	for (size_t i = 0; i < n; i++)
		s->refs[i] = dependency(c, mem_expr_var(s->expr, i));
	return 0;
}

static const char default_prompt[] =
    "You are a remote-sensing analyst. The JSON below summarises the results of a "
    "satellite image analysis (statistics of each output raster, zonal statistics over "
    "field polygons, areas of change between two dates). In at most five sentences, say "
    "what it shows: vegetation state, clouds, changes, and the zones that stand out.\n\n"
    "{{summary}}\n";

static int
parse_zonal(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *params,
    struct mem_err *err)
{
	s->kind = MEM_STAGE_ZONAL;
	s->mask = -1;
	s->of_stage = -1;
	s->stats = MEM_ZONAL_COUNT | MEM_ZONAL_MEAN | MEM_ZONAL_STD | MEM_ZONAL_MIN |
	    MEM_ZONAL_MAX;
	s->npct = 3;
	s->pct[0] = 10;
	s->pct[1] = 50;
	s->pct[2] = 90;
	if (params && parse_params(c, s, spec, params, err) < 0)
		return -1;
	if (s->zones == NULL)
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': zones=FILE is required", spec);
	if (s->of == NULL) {
		/* the stage before: what a chain such as -s ndvi -s zonal:... means */
		for (size_t i = c->n; i-- > 0;)
			if (c->st[i].write && (c->st[i].kind <= MEM_STAGE_EXPR ||
			    c->st[i].kind == MEM_STAGE_DIFF || c->st[i].kind == MEM_STAGE_CHANGE)) {
				s->of = mem_xstrdup(c->st[i].name);
				s->of_stage = (int)i;
				break;
			}
		if (s->of == NULL)
			return mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': of=STAGE is required when no stage comes before", spec);
	}
	if (s->of_stage >= 0 && (c->st[s->of_stage].kind == MEM_STAGE_ZONAL ||
	    c->st[s->of_stage].kind == MEM_STAGE_LLM))
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': '%s' is not a raster", spec, s->of);
	if (s->name == NULL)
		s->name = mem_xasprintf("zonal_%s", s->of);
	return 0;
}

static int
parse_change(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *params,
    struct mem_err *err)
{
	const struct index_def *d;
	struct mem_stage diff;

	memset(&diff, 0, sizeof diff);
	s->kind = MEM_STAGE_CHANGE;
	s->mask = -1;
	s->threshold = -0.2;
	s->index = mem_xstrdup("ndvi");
	s->name = mem_xstrdup("change");
	if (params && parse_params(c, s, spec, params, err) < 0)
		return -1;
	if (c->pairs)
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': only one change stage per run",
		    spec);
	d = find_index(s->index);
	diff.kind = MEM_STAGE_DIFF;
	diff.mask = -1;
	diff.index = mem_xstrdup(s->index);
	diff.name = mem_xasprintf("d%s", s->index);
	diff.nbands = 2;
	diff.bands[0] = d->bands[0];
	diff.bands[1] = d->bands[1];
	diff.write = 1;
	/* cloudy on either date: out of the difference, so out of the mask and polygons */
	diff.mask = s->mask;
	s->mask = -1;
	if (find_stage(c, diff.name) >= 0 || strcmp(diff.name, s->name) == 0) {
		mem_err_set(err, MEM_EUSAGE, "stage '%s': output '%s' is already made", spec,
		    diff.name);
		stage_release(&diff);
		return -1;
	}
	push(c, &diff);
	s->diff = (int)c->n - 1;
	c->pairs = 1;
	return 0;
}

static int
parse_llm(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *rest,
    struct mem_err *err)
{
	const char *comma = rest ? strchr(rest, ',') : NULL;
	char *pm = rest ? mem_xasprintf("%.*s", (int)(comma ? comma - rest : (long)strlen(rest)),
	    rest) : NULL;
	char *slash = pm ? strchr(pm, '/') : NULL;

	s->kind = MEM_STAGE_LLM;
	s->mask = -1;
	s->name = mem_xstrdup("llm");
	if (slash == NULL || slash == pm || slash[1] == '\0' || strchr(pm, '=')) {
		free(pm);
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': expected llm:PROVIDER/MODEL",
		    spec);
	}
	s->provider = mem_xasprintf("%.*s", (int)(slash - pm), pm);
	s->model = mem_xstrdup(slash + 1);
	free(pm);
	for (char *p = s->provider; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return mem_err_set(err, MEM_EUSAGE, "stage '%s': invalid provider '%s'",
			    spec, s->provider);
	if (c->llm >= 0)
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': only one llm stage per run", spec);
	if (comma && parse_params(c, s, spec, comma + 1, err) < 0)
		return -1;
	if (s->prompt == NULL)
		s->prompt = mem_xstrdup(default_prompt);
	return 0;
}

static int
parse_classify(struct mem_chain *c, struct mem_stage *s, const char *spec, const char *params,
    struct mem_err *err)
{
	s->kind = MEM_STAGE_CLASSIFY;
	s->mask = -1;
	s->name = mem_xstrdup("class");
	if (params && parse_params(c, s, spec, params, err) < 0)
		return -1;
	if (s->model_path == NULL)
		return mem_err_set(err, MEM_EUSAGE, "stage '%s': model=FILE is required", spec);
	/* read once, before any item: a broken model is a usage error */
	s->clf = mem_model_load(s->model_path, err);
	if (s->clf == NULL)
		return -1;
	{
		size_t len;
		char *data = mem_read_file(s->model_path, &len, err);

		if (data == NULL)
			return -1;
		mem_sha256_hex(data, len, s->model_sum);
		free(data);
	}
	return 0;
}

int
mem_chain_parse(struct mem_chain *c, char *const *specs, struct mem_err *err)
{
	memset(c, 0, sizeof *c);
	c->llm = -1;
	for (char *const *sp = specs; sp && *sp; sp++) {
		const char *spec = *sp, *colon = strchr(spec, ':');
		char *name =
		    colon ? mem_xasprintf("%.*s", (int)(colon - spec), spec) : mem_xstrdup(spec);
		struct mem_stage s;
		int rc, prev;

		memset(&s, 0, sizeof s);
		if (strcmp(name, "expr") == 0) {
			s.kind = MEM_STAGE_EXPR;
			s.mask = -1;
			rc = colon ? parse_expr(c, &s, spec, colon + 1, err) :
				     mem_err_set(err, MEM_EUSAGE,
					 "stage 'expr': expected expr:NAME=EXPRESSION");
		} else if (strcmp(name, "zonal") == 0) {
			rc = parse_zonal(c, &s, spec, colon ? colon + 1 : NULL, err);
		} else if (strcmp(name, "change") == 0) {
			rc = parse_change(c, &s, spec, colon ? colon + 1 : NULL, err);
		} else if (strcmp(name, "classify") == 0) {
			rc = parse_classify(c, &s, spec, colon ? colon + 1 : NULL, err);
		} else if (strcmp(name, "llm") == 0) {
			rc = parse_llm(c, &s, spec, colon ? colon + 1 : NULL, err);
		} else if (is_builtin(name)) {
			stage_default(&s, name);
			rc = colon ? parse_params(c, &s, spec, colon + 1, err) : 0;
		} else
			rc = mem_err_set(err, MEM_EUSAGE, "unknown stage '%s' (see --list-stages)",
			    name);
		free(name);
		if (rc == 0 && (prev = find_stage(c, s.name)) >= 0)
			rc = mem_err_set(err, MEM_EUSAGE,
			    c->st[prev].write ? "stage '%s': output '%s' is already made by an "
						"earlier stage (rename it with as=)" :
						"stage '%s': output '%s' is used before it is "
						"given (give it first)",
			    spec, s.name);
		if (rc < 0) {
			stage_release(&s);
			mem_chain_release(c);
			return -1;
		}
		s.spec = mem_xstrdup(spec);
		s.write = 1;
		if (s.kind == MEM_STAGE_LLM)
			c->llm = (int)c->n;
		push(c, &s);
	}
	if (c->n == 0)
		return mem_err_set(err, MEM_EUSAGE, "no stage given (-s ndvi)");
	return 0;
}

void
mem_chain_release(struct mem_chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		stage_release(&c->st[i]);
	free(c->st);
	memset(c, 0, sizeof *c);
}
