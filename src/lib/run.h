/*
 * run.h - running a recipe: the stages as child processes with a manifest
 * file each in a run directory, a lock against overlapping runs, a run
 * record, and the same run cut into a Slurm array job.
 *
 * The run directory holds:
 *   lock                   flock(2)ed by a run, held by its children too
 *   recipe.yaml            the recipe as run
 *   scenes.ndjson ...      one manifest per stage, written atomically,
 *   *.stamp                with a stamp of the command line and inputs that
 *                          made it: a stage whose stamp matches is skipped
 *   work/                  the programs' --workdir
 *   run.json               the run record (commands, versions, input ids)
 *   *.summary.json         each stage program's --summary (counts, bytes)
 *   shards/I/              a Slurm task's tiles and results, and "done"
 *   slurm/                 job scripts, logs and plan.json
 *   workers/ID/            a worker of a consensus run (--ledger): its lock,
 *                          recipe.yaml, manifests, stamps, summaries, run.json,
 *                          and "done" once all its stages ended with 0; the
 *                          workers share work/ and the outputs, and each holds
 *                          RUN/lock shared, so a plain run waits for them all
 */
#ifndef MEM_RUN_H
#define MEM_RUN_H

#include "ledger.h"
#include "recipe.h"

/* Called with each line a run has to say: a command (dry run) or a note. */
typedef void (*mem_run_say_fn)(void *ctx, const char *line);

struct mem_run {
	const struct mem_recipe *r;
	char *dir;	     /* the run directory, absolute */
	char *state;	     /* manifests, stamps, record, lock: dir, or dir/workers/ID */
	char *worker;	     /* the worker id of a consensus run, or NULL */
	struct mem_ledger_opts ledger; /* the tools' --ledger options (url NULL: none) */
	int shared_fd;	     /* a worker's shared lock on dir/lock */
	const char *bindir;  /* where the programs are; NULL: search PATH */
	const char *self;    /* mem-run's own path, for the Slurm job scripts */
	int dry_run;	     /* say the commands, run nothing */
	int force;	     /* run every stage, stamps or not */
	int wait;	     /* wait for the lock instead of failing */
	int lock_fd;
	mem_run_say_fn say;
	void *say_ctx;
	char **argv;	     /* mem-run's own command line, for the record */
	const char *metrics; /* --metrics FILE: Prometheus text, or NULL */
	const char *summary; /* --summary FILE: the run record as JSON, or NULL */
	double t0;	     /* CLOCK_MONOTONIC and wall clock at the start */
	double start;
};

/* Sets up run for recipe r in its run directory (or dir when not NULL). */
void mem_run_init(struct mem_run *run, const struct mem_recipe *r, const char *dir);
void mem_run_release(struct mem_run *run);

/*
 * Makes run one worker of a consensus run under the ledger run->ledger.url:
 * its state goes to DIR/workers/ID (ID: id, else this host's short name)
 * and every stage gets the ledger options.  Returns 0, or -1 with err
 * (MEM_EUSAGE) when the id is not a plain file name.
 */
int mem_run_worker(struct mem_run *run, const char *id, struct mem_err *err);

/* 0 when id can name a worker (letters, digits, '.', '_', '-'; 1-64, no leading '.' or '-'). */
int mem_run_worker_check(const char *id, struct mem_err *err);

/*
 * Takes the run directory's lock (a worker's: its own exclusively, the run
 * directory's shared).  Returns 0; or -1 with MEM_ETEMP when
 * another run holds it (and run->wait is 0).
 */
int mem_run_lock(struct mem_run *run, struct mem_err *err);

/*
 * The whole recipe on this host: fetch, tile, infer, store (as a worker,
 * each with the ledger options).  Returns the worst status of the stages
 * (0, 1 some items failed) or -1 with err.
 */
int mem_run_all(struct mem_run *run, struct mem_err *err);

/*
 * Slurm: fetch here, plan N tasks (ntasks > 0, else the recipe's or one per
 * 16 cells), write the job scripts and submit the array job and its merge
 * job.  Returns 0, or -1 with err.
 */
int mem_run_slurm_submit(struct mem_run *run, int ntasks, struct mem_err *err);
/* One array task: tile shard I of N and infer its tiles. */
int mem_run_task(struct mem_run *run, int shard, int nshards, struct mem_err *err);
/* The merge job: store every shard's results; fails when a shard is missing. */
int mem_run_merge(struct mem_run *run, struct mem_err *err);
/* Submits again the tasks without a done marker, and a new merge job. */
int mem_run_slurm_resubmit(struct mem_run *run, struct mem_err *err);

#endif
