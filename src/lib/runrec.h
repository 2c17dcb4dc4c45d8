/*
 * runrec.h - the record of a run: counts, times, versions and input ids, and
 * the two files that carry them out of a batch job.
 *
 * --metrics FILE: Prometheus text exposition format, as node_exporter's
 * textfile collector reads it (written by temporary name and rename, so the
 * collector never sees half a file).  --summary FILE: one JSON document,
 * the run's reproducibility record (command line, tool, GDAL and PROJ
 * versions, input item ids, counts, exit status).
 */
#ifndef MEM_RUNREC_H
#define MEM_RUNREC_H

#include <jansson.h>

#include "memories.h"
#include "shard.h"

struct mem_runrec {
	const char *tool;		/* borrowed: "mem-fetch" */
	json_t *argv;			/* the command line, an array of strings */
	struct mem_shard shard;		/* count <= 1: not sharded */
	double start;			/* seconds since the epoch */
	double mono0;			/* CLOCK_MONOTONIC at the start */
	long read, skipped, done, failed;	/* items read, outside the shard, emitted, failed */
	long long bytes;		/* the file:size of the emitted items' assets */
	int keep_ids;			/* whether mem_runrec_input keeps the ids */
	json_t *ids;			/* the ids of the items taken as input, in order, or NULL */
};

/* Starts a record for tool (borrowed) with its command line (copied). */
void mem_runrec_init(struct mem_runrec *r, const char *tool, int argc, char **argv);
/* Returns a new JSON array of the strings of argv (bytes outside UTF-8 become '?'). */
json_t *mem_runrec_argv(int argc, char **argv);
/* Frees what the record holds. */
void mem_runrec_release(struct mem_runrec *r);

/* Counts an item taken as input (in the shard) and, with keep_ids, keeps its id. */
void mem_runrec_input(struct mem_runrec *r, const json_t *item);
/* Counts an emitted item and the sizes of its assets. */
void mem_runrec_output(struct mem_runrec *r, const json_t *item);
/* Seconds since the run started. */
double mem_runrec_seconds(const struct mem_runrec *r);

/*
 * Returns the metrics as Prometheus text (a new string).  While the run goes
 * on (exit_status < 0) memories_run_in_progress is 1; at its end the exit
 * status is given and, when 0, memories_last_success_timestamp_seconds is
 * now.  last_success (> 0) is an earlier success to keep reporting.
 */
char *mem_runrec_metrics(const struct mem_runrec *r, int exit_status, double last_success);
/*
 * Writes the metrics to path by temporary name and rename, keeping the
 * last-success time the file already held; at the end (exit_status >= 0)
 * also fsyncs, so the record survives a crash.
 */
int mem_runrec_write_metrics(const struct mem_runrec *r, const char *path, int exit_status,
    struct mem_err *err);
/* Returns the JSON run summary (a new reference). */
json_t *mem_runrec_summary(const struct mem_runrec *r, int exit_status);
/* Writes the summary to path atomically. */
int mem_runrec_write_summary(const struct mem_runrec *r, const char *path, int exit_status,
    struct mem_err *err);

#endif
