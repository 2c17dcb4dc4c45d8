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
	return "Stages (-s NAME[:KEY=VALUE,...]); each writes one float32 band, NaN = nodata:\n"
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
	       "  cloudmask  1 where the scl band's class is in CLASSES, 0 elsewhere;\n"
	       "             params classes=3,8,9,10, dilate=0 (pixels), band=scl, as=NAME\n"
	       "  expr:OUT=EXPRESSION\n"
	       "             band math into output OUT: numbers, bands (as reflectance) and\n"
	       "             earlier stages by name, + - * / < <= > >= == != && || ! ?:\n"
	       "             ( ), min max abs sqrt log exp pow\n";
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
		s->band = mem_xstrdup("scl");
		s->nbands = 1;
		s->bands[0] = s->band;
	}
}

static void
push(struct mem_chain *c, struct mem_stage *s)
{
	c->st = mem_xrealloc(c->st, (c->n + 1) * sizeof *c->st);
	c->st[c->n++] = *s;
	if (s->kind == MEM_STAGE_CLOUDMASK && s->dilate > c->halo)
		c->halo = s->dilate;
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
	if (s->kind != MEM_STAGE_CLOUDMASK && strcmp(key, "mask") == 0) {
		s->mask = find_stage(c, v);
		if (s->mask < 0 && strcmp(v, "cloudmask") == 0)
			s->mask = dependency(c, v);
		if (s->mask < 0)
			return mem_err_set(err, MEM_EUSAGE,
			    "stage '%s': mask '%s' is not an earlier stage (give -s %s first)",
			    spec, v, v);
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
	}
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

int
mem_chain_parse(struct mem_chain *c, char *const *specs, struct mem_err *err)
{
	memset(c, 0, sizeof *c);
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
