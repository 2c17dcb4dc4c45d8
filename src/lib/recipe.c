/*
 * recipe.c - read a YAML recipe (libyaml's document API), check each key
 * against what the programs accept, and build the programs' argument
 * vectors.  The checks call the same parsers the programs use (grid,
 * composite, bbox, infer stages), so a recipe that loads runs.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "grid.h"
#include "item.h"
#include "ledger.h"
#include "recipe.h"
#include "stage.h"
#include "tile.h"
#include "warp.h"

static const char *const stage_names[] = { "fetch", "tile", "infer", "store" };
static const char *const stage_progs[] = { "mem-fetch", "mem-tile", "mem-infer", "mem-store" };

const char *
mem_run_stage_name(enum mem_run_stage s)
{
	return stage_names[s];
}

const char *
mem_run_stage_prog(enum mem_run_stage s)
{
	return stage_progs[s];
}

struct ctx {
	yaml_document_t *doc;
	const char *path;
	struct mem_err *err;
};

/* "PATH: KEY: message" (key may be "area.bbox"). */
static int __attribute__((format(printf, 3, 4)))
bad(struct ctx *c, const char *key, const char *fmt, ...)
{
	char msg[MEM_ERR_MSG];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return mem_err_set(c->err, MEM_EUSAGE, "%s: %s: %s", c->path, key, msg);
}

static const char *
scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int
get_string(struct ctx *c, const char *key, yaml_node_t *n, char **out)
{
	const char *s = scalar(n);

	if (s == NULL || *s == '\0')
		return bad(c, key, "expected a non-empty string");
	free(*out);
	*out = mem_xstrdup(s);
	return 0;
}

/* A list of strings: a YAML sequence of scalars, or one scalar with commas. */
static int
get_list(struct ctx *c, const char *key, yaml_node_t *n, char ***out, int split_commas)
{
	size_t k = 0, cap = 8;
	char **v = mem_xcalloc(cap + 1, sizeof *v);

	if (n->type == YAML_SCALAR_NODE) {
		char *s = mem_xstrdup(scalar(n)), *p = s, *tok;

		while ((tok = split_commas ? strsep(&p, ",") : p) != NULL) {
			if (*tok) {
				if (k == cap)
					v = mem_xrealloc(v, ((cap *= 2) + 1) * sizeof *v);
				v[k++] = mem_xstrdup(tok);
			}
			if (!split_commas)
				break;
		}
		free(s);
	} else if (n->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *i;

		for (i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			const char *s = scalar(yaml_document_get_node(c->doc, *i));

			if (s == NULL || *s == '\0') {
				mem_recipe_argv_free(v);
				return bad(c, key, "expected a list of strings");
			}
			if (k == cap)
				v = mem_xrealloc(v, ((cap *= 2) + 1) * sizeof *v);
			v[k++] = mem_xstrdup(s);
		}
	} else {
		mem_recipe_argv_free(v);
		return bad(c, key, "expected a string or a list of strings");
	}
	v[k] = NULL;
	mem_recipe_argv_free(*out);
	*out = v;
	return 0;
}

static int
get_number(struct ctx *c, const char *key, yaml_node_t *n, double lo, double hi, double *out)
{
	const char *s = scalar(n);
	char *end;
	double v;

	if (s == NULL)
		return bad(c, key, "expected a number");
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi)
		return bad(c, key, "expected a number from %g to %g, not '%s'", lo, hi, s);
	*out = v;
	return 0;
}

static int
get_bbox(struct ctx *c, const char *key, yaml_node_t *n, double bbox[4])
{
	char **v = NULL, *joined;
	struct mem_err e;
	int rc;

	if (get_list(c, key, n, &v, 0) < 0)
		return -1;
	if (v[0] && v[1] == NULL)
		joined = mem_xstrdup(v[0]);
	else if (v[0] && v[1] && v[2] && v[3] && !v[4])
		joined = mem_xasprintf("%s,%s,%s,%s", v[0], v[1], v[2], v[3]);
	else
		joined = mem_xstrdup("");
	mem_recipe_argv_free(v);
	mem_err_clear(&e);
	rc = mem_bbox_parse(joined, bbox, &e);
	free(joined);
	return rc < 0 ? bad(c, key, "%s", e.msg) : 0;
}

/* Calls fn for each key of a mapping; unknown keys fail in fn. */
typedef int (*key_fn)(struct ctx *c, struct mem_recipe *r, const char *key, yaml_node_t *v);

static int
each_key(struct ctx *c, struct mem_recipe *r, const char *where, yaml_node_t *n, key_fn fn)
{
	yaml_node_pair_t *p;

	if (n == NULL || n->type != YAML_MAPPING_NODE)
		return where ? bad(c, where, "expected a mapping of keys") :
			       mem_err_set(c->err, MEM_EUSAGE, "%s: expected a mapping of keys", c->path);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(c->doc, p->key));

		if (k == NULL)
			return mem_err_set(c->err, MEM_EUSAGE, "%s: keys must be strings", c->path);
		if (fn(c, r, k, yaml_document_get_node(c->doc, p->value)) < 0)
			return -1;
	}
	return 0;
}

static int
unknown(struct ctx *c, const char *where, const char *k)
{
	if (where)
		return mem_err_set(c->err, MEM_EUSAGE, "%s: %s: unknown key '%s'", c->path, where, k);
	return mem_err_set(c->err, MEM_EUSAGE, "%s: unknown key '%s'", c->path, k);
}

static int
source_key(struct ctx *c, struct mem_recipe *r, const char *k, yaml_node_t *v)
{
	if (strcmp(k, "catalog") == 0)
		return get_list(c, "source.catalog", v, &r->catalogs, 0);
	if (strcmp(k, "api") == 0)
		return get_string(c, "source.api", v, &r->api);
	if (strcmp(k, "name") == 0) {
		if (get_string(c, "source.name", v, &r->source) < 0)
			return -1;
		if (strcmp(r->source, "earth-search") && strcmp(r->source, "planetary-computer"))
			return bad(c, "source.name", "unknown source '%s' (earth-search, planetary-computer)",
			    r->source);
		return 0;
	}
	return unknown(c, "source", k);
}

static int
area_key(struct ctx *c, struct mem_recipe *r, const char *k, yaml_node_t *v)
{
	if (strcmp(k, "bbox") == 0) {
		r->has_bbox = 1;
		return get_bbox(c, "area.bbox", v, r->bbox);
	}
	if (strcmp(k, "aoi") == 0)
		return get_string(c, "area.aoi", v, &r->aoi);
	return unknown(c, "area", k);
}

static int
outputs_key(struct ctx *c, struct mem_recipe *r, const char *k, yaml_node_t *v)
{
	if (strcmp(k, "dir") == 0)
		return get_string(c, "outputs.dir", v, &r->out_dir);
	if (strcmp(k, "title") == 0)
		return get_string(c, "outputs.title", v, &r->title);
	return unknown(c, "outputs", k);
}

static int
run_key(struct ctx *c, struct mem_recipe *r, const char *k, yaml_node_t *v)
{
	double d;

	if (strcmp(k, "dir") == 0)
		return get_string(c, "run.dir", v, &r->run_dir);
	if (strcmp(k, "jobs") == 0) {
		if (get_number(c, "run.jobs", v, 1, 4096, &d) < 0)
			return -1;
		r->jobs = (int)d;
		return 0;
	}
	if (strcmp(k, "mem") == 0)
		return get_string(c, "run.mem", v, &r->mem);
	if (strcmp(k, "ledger") == 0) {
		struct mem_err e;

		if (get_string(c, "run.ledger", v, &r->ledger) < 0)
			return -1;
		if (mem_ledger_parse(r->ledger, &e) < 0)
			return bad(c, "run.ledger", "%s", e.msg);
		return 0;
	}
	return unknown(c, "run", k);
}

static int
slurm_key(struct ctx *c, struct mem_recipe *r, const char *k, yaml_node_t *v)
{
	double d;

	if (strcmp(k, "tasks") == 0) {
		if (get_number(c, "slurm.tasks", v, 1, 10000, &d) < 0)
			return -1;
		r->slurm_tasks = (int)d;
		return 0;
	}
	if (strcmp(k, "partition") == 0)
		return get_string(c, "slurm.partition", v, &r->slurm_partition);
	if (strcmp(k, "time") == 0)
		return get_string(c, "slurm.time", v, &r->slurm_time);
	if (strcmp(k, "sbatch") == 0)
		return get_list(c, "slurm.sbatch", v, &r->sbatch_args, 0);
	return unknown(c, "slurm", k);
}

static int
top_key(struct ctx *c, struct mem_recipe *r, const char *k, yaml_node_t *v)
{
	if (strcmp(k, "version") == 0) {
		const char *s = scalar(v);

		if (s == NULL || strcmp(s, "1") != 0)
			return bad(c, "version", "unsupported recipe version '%s' (this mem-run reads 1)",
			    s ? s : "");
		return 0;
	}
	if (strcmp(k, "name") == 0) {
		if (get_string(c, "name", v, &r->name) < 0)
			return -1;
		if (strchr(r->name, '/') || strcmp(r->name, ".") == 0 || strcmp(r->name, "..") == 0)
			return bad(c, "name", "'%s' is not a file name", r->name);
		return 0;
	}
	if (strcmp(k, "description") == 0)
		return 0;
	if (strcmp(k, "source") == 0)
		return each_key(c, r, "source", v, source_key);
	if (strcmp(k, "area") == 0)
		return each_key(c, r, "area", v, area_key);
	if (strcmp(k, "dates") == 0)
		return get_string(c, "dates", v, &r->datetime);
	if (strcmp(k, "collections") == 0)
		return get_list(c, "collections", v, &r->collections, 1);
	if (strcmp(k, "max_cloud") == 0)
		return get_number(c, "max_cloud", v, 0, 100, &r->max_cloud);
	if (strcmp(k, "assets") == 0)
		return get_list(c, "assets", v, &r->assets, 1);
	if (strcmp(k, "grid") == 0)
		return get_string(c, "grid", v, &r->grid);
	if (strcmp(k, "composite") == 0)
		return get_string(c, "composite", v, &r->composite);
	if (strcmp(k, "resampling") == 0)
		return get_string(c, "resampling", v, &r->resampling);
	if (strcmp(k, "stages") == 0)
		return get_list(c, "stages", v, &r->stages, 0);
	if (strcmp(k, "outputs") == 0)
		return each_key(c, r, "outputs", v, outputs_key);
	if (strcmp(k, "run") == 0)
		return each_key(c, r, "run", v, run_key);
	if (strcmp(k, "slurm") == 0)
		return each_key(c, r, "slurm", v, slurm_key);
	return unknown(c, NULL, k);
}

/* The checks that need more than one key, and those the programs' parsers make. */
static int
check(struct ctx *c, struct mem_recipe *r)
{
	struct mem_err e;
	int nsrc = (r->catalogs != NULL) + (r->api != NULL) + (r->source != NULL);

	mem_err_clear(&e);
	if (nsrc == 0)
		return mem_err_set(c->err, MEM_EUSAGE,
		    "%s: source: missing (catalog, api or name)", c->path);
	if (nsrc > 1)
		return bad(c, "source", "give one of catalog, api and name");
	if (r->grid == NULL)
		return mem_err_set(c->err, MEM_EUSAGE, "%s: grid: missing (e.g. webmercator:13)", c->path);
	{
		struct mem_grid g;

		memset(&g, 0, sizeof g);
		if (mem_grid_parse(r->grid, &g, &e) < 0)
			return bad(c, "grid", "%s", e.msg);
		mem_grid_free(&g);
	}
	if (r->composite) {
		struct mem_tile_opts o;

		memset(&o, 0, sizeof o);
		if (mem_tile_composite_parse(r->composite, &o, &e) < 0)
			return bad(c, "composite", "%s", e.msg);
	}
	if (r->resampling && !mem_warp_known_resampling(r->resampling))
		return bad(c, "resampling", "unknown resampling '%s'", r->resampling);
	if (r->stages) {
		struct mem_chain ch;

		memset(&ch, 0, sizeof ch);
		if (mem_chain_parse(&ch, r->stages, &e) < 0)
			return bad(c, "stages", "%s", e.msg);
		mem_chain_release(&ch);
	}
	if (r->out_dir == NULL)
		return mem_err_set(c->err, MEM_EUSAGE, "%s: outputs.dir: missing", c->path);
	if (r->mem) {
		char *end;
		double v = strtod(r->mem, &end);

		if (end == r->mem || !(v > 0) || (*end && strchr("kKmMgGtT", *end) == NULL) ||
		    (*end && end[1] && strcmp(end + 1, "B") && strcmp(end + 1, "b")))
			return bad(c, "run.mem", "expected a size such as 512M or 2G, not '%s'", r->mem);
	}
	return 0;
}

int
mem_recipe_load(struct mem_recipe *r, const char *path, struct mem_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct ctx c = { &doc, path, err };
	FILE *f;
	int rc;

	memset(r, 0, sizeof *r);
	r->max_cloud = -1;
	r->path = mem_xstrdup(path);
	if ((f = fopen(path, "rb")) == NULL)
		return mem_err_set(err, MEM_EUSAGE, "cannot open '%s': %s", path, strerror(errno));
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = mem_err_set(err, MEM_EUSAGE, "%s: line %lu: %s", path,
		    (unsigned long)parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "malformed YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return rc;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	rc = each_key(&c, r, NULL, yaml_document_get_root_node(&doc), top_key);
	yaml_document_delete(&doc);
	if (rc == 0)
		rc = check(&c, r);
	if (rc == 0 && r->name == NULL) {
		const char *b = strrchr(path, '/');
		char *dot;

		r->name = mem_xstrdup(b ? b + 1 : path);
		if ((dot = strrchr(r->name, '.')) != NULL && dot != r->name &&
		    (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0))
			*dot = '\0';
	}
	if (rc == 0 && r->run_dir == NULL)
		r->run_dir = mem_xasprintf("runs/%s", r->name);
	return rc;
}

void
mem_recipe_release(struct mem_recipe *r)
{
	free(r->path);
	free(r->name);
	mem_recipe_argv_free(r->catalogs);
	free(r->api);
	free(r->source);
	free(r->aoi);
	free(r->datetime);
	mem_recipe_argv_free(r->collections);
	mem_recipe_argv_free(r->assets);
	free(r->grid);
	free(r->composite);
	free(r->resampling);
	mem_recipe_argv_free(r->stages);
	free(r->out_dir);
	free(r->title);
	free(r->run_dir);
	free(r->mem);
	free(r->ledger);
	free(r->slurm_partition);
	free(r->slurm_time);
	mem_recipe_argv_free(r->sbatch_args);
	memset(r, 0, sizeof *r);
}

void
mem_recipe_argv_free(char **v)
{
	char **p;

	if (v == NULL)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

struct vec {
	char **v;
	size_t n, cap;
};

static void
push(struct vec *a, char *s)
{
	if (a->n + 1 >= a->cap)
		a->v = mem_xrealloc(a->v, (a->cap = a->cap ? 2 * a->cap : 16) * sizeof *a->v);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void
push2(struct vec *a, const char *opt, const char *val)
{
	push(a, mem_xstrdup(opt));
	push(a, mem_xstrdup(val));
}

/* Joins a list with commas: a new string. */
static char *
join(char *const *v)
{
	size_t n = 1;
	char *s, *const *p;

	for (p = v; *p; p++)
		n += strlen(*p) + 1;
	s = mem_xcalloc(1, n);
	for (p = v; *p; p++) {
		if (p != v)
			strcat(s, ",");
		strcat(s, *p);
	}
	return s;
}

char **
mem_recipe_argv(const struct mem_recipe *r, enum mem_run_stage s, const char *workdir,
    char *const *inputs, int shard, int nshards)
{
	struct vec a = { NULL, 0, 0 };
	char *const *p;

	push(&a, mem_xstrdup(mem_run_stage_prog(s)));
	switch (s) {
	case MEM_RUN_FETCH:
		if (r->api)
			push2(&a, "--api", r->api);
		if (r->source)
			push2(&a, "--source", r->source);
		if (r->aoi)
			push2(&a, "--aoi", r->aoi);
		if (r->has_bbox) {
			push(&a, mem_xstrdup("--bbox"));
			push(&a, mem_xasprintf("%.17g,%.17g,%.17g,%.17g", r->bbox[0], r->bbox[1],
			    r->bbox[2], r->bbox[3]));
		}
		if (r->datetime)
			push2(&a, "--datetime", r->datetime);
		if (r->collections) {
			push(&a, mem_xstrdup("--collection"));
			push(&a, join(r->collections));
		}
		if (r->max_cloud >= 0) {
			push(&a, mem_xstrdup("--max-cloud"));
			push(&a, mem_xasprintf("%g", r->max_cloud));
		}
		if (r->assets) {
			push(&a, mem_xstrdup("--assets"));
			push(&a, join(r->assets));
		}
		break;
	case MEM_RUN_TILE:
		push2(&a, "-g", r->grid);
		if (r->composite)
			push2(&a, "--composite", r->composite);
		if (r->resampling)
			push2(&a, "-r", r->resampling);
		if (r->has_bbox) {
			push(&a, mem_xstrdup("--bbox"));
			push(&a, mem_xasprintf("%.17g,%.17g,%.17g,%.17g", r->bbox[0], r->bbox[1],
			    r->bbox[2], r->bbox[3]));
		}
		if (r->mem)
			push2(&a, "--mem", r->mem);
		if (nshards > 1) {
			push(&a, mem_xstrdup("--shard"));
			push(&a, mem_xasprintf("%d/%d", shard, nshards));
		}
		break;
	case MEM_RUN_INFER:
		for (p = r->stages; p && *p; p++)
			push2(&a, "-s", *p);
		break;
	case MEM_RUN_STORE:
		push2(&a, "-o", r->out_dir);
		if (r->title)
			push2(&a, "--title", r->title);
		break;
	default:
		break;
	}
	if (r->jobs > 0) {
		push(&a, mem_xstrdup("-j"));
		push(&a, mem_xasprintf("%d", r->jobs));
	}
	push2(&a, "--workdir", workdir);
	if (s == MEM_RUN_FETCH) {
		for (p = r->catalogs; p && *p; p++)
			push(&a, mem_xstrdup(*p));
	} else {
		for (p = inputs; p && *p; p++)
			push(&a, mem_xstrdup(*p));
	}
	return a.v;
}
