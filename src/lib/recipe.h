/*
 * recipe.h - declarative run files: a YAML recipe read, checked and turned
 * into the command lines of the four programs.
 *
 * A recipe names an area, dates, a source, a grid, stages and an output
 * directory (mem-run(1) lists the keys).  Loading checks every key and
 * value, so a bad recipe fails before any work, with the key named:
 * "recipe.yaml: grid: unknown grid 'foo'".
 */
#ifndef MEM_RECIPE_H
#define MEM_RECIPE_H

#include "memories.h"

struct mem_recipe {
	char *path;	   /* the file read */
	char *name;	   /* name: (default: the file's name without .yaml) */
	char **catalogs;   /* source: catalog: paths or URLs (NULL-terminated) */
	char *api;	   /* source: api: a STAC API URL */
	char *source;	   /* source: name: a named API (earth-search, ...) */
	int has_bbox;
	double bbox[4];	   /* area: bbox: */
	char *aoi;	   /* area: aoi: a vector file */
	char *datetime;	   /* dates: */
	char **collections;
	double max_cloud;  /* max_cloud: (< 0: none) */
	char **assets;
	char *grid;	   /* grid: a mem-tile -g spec */
	char *composite;   /* composite: a mem-tile --composite spec, or NULL */
	char *resampling;
	char **stages;	   /* stages: mem-infer -s specs; none: no infer stage */
	char *out_dir;	   /* outputs: dir: */
	char *title;	   /* outputs: title: */
	char *run_dir;	   /* run: dir: (default runs/NAME) */
	int jobs;	   /* run: jobs: (0: the programs' default) */
	char *mem;	   /* run: mem: a mem-tile --mem budget */
	char *ledger;	   /* run: ledger: an etcd[s]:// work ledger (mem-run --ledger) */
	int slurm_tasks;   /* slurm: tasks: (0: from the plan) */
	char *slurm_partition;
	char *slurm_time;
	char **sbatch_args; /* slurm: sbatch: extra options */
};

/* The stages of a run, in order. */
enum mem_run_stage { MEM_RUN_FETCH, MEM_RUN_TILE, MEM_RUN_INFER, MEM_RUN_STORE, MEM_RUN_NSTAGES };

/* "fetch", "tile", ... */
const char *mem_run_stage_name(enum mem_run_stage s);
/* The program of a stage: "mem-fetch", ... */
const char *mem_run_stage_prog(enum mem_run_stage s);

/*
 * Reads and checks the recipe at path into r.  Returns 0, or -1 with err
 * (MEM_EUSAGE) as "PATH: KEY: problem".  Release with mem_recipe_release().
 */
int mem_recipe_load(struct mem_recipe *r, const char *path, struct mem_err *err);
void mem_recipe_release(struct mem_recipe *r);

/*
 * The arguments (after the program name) of stage s: a new NULL-terminated
 * vector the caller frees with mem_recipe_argv_free().  inputs are the
 * manifests the stage reads (NULL-terminated; ignored by fetch); workdir
 * the work directory; shard/nshards a mem-tile shard (nshards <= 1: all).
 */
char **mem_recipe_argv(const struct mem_recipe *r, enum mem_run_stage s, const char *workdir,
    char *const *inputs, int shard, int nshards);
void mem_recipe_argv_free(char **v);

#endif
