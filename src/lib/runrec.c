/*
 * runrec.c - the record of a run and its metrics and summary files.
 *
 * Batch schedulers (cron, Slurm) run the tools unattended; what a person or
 * an alert needs afterwards is in two files.  The metrics follow
 * node_exporter's textfile convention for batch jobs: a counter per outcome,
 * the run's duration, and the time of the last success, which a failed run
 * keeps from the file it replaces so that "no success for a day" can be
 * alerted on.  When the run is sharded every series carries shard="I/N", so
 * the files of the tasks of one job array never clash in one collector.
 */
#include "config.h"

#include <gdal.h>
#include <proj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "item.h"
#include "runrec.h"

static double
realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

json_t *
mem_runrec_argv(int argc, char **argv)
{
	json_t *a = json_array();

	for (int i = 0; i < argc && argv && argv[i]; i++) {
		json_t *v = json_string(argv[i]);

		if (v == NULL) {
			/* not UTF-8: JSON cannot hold it as is */
			char *s = mem_xstrdup(argv[i]);

			for (char *p = s; *p; p++)
				if ((unsigned char)*p >= 0x80)
					*p = '?';
			v = json_string(s);
			free(s);
		}
		json_array_append_new(a, v);
	}
	return a;
}

void
mem_runrec_init(struct mem_runrec *r, const char *tool, int argc, char **argv)
{
	memset(r, 0, sizeof *r);
	r->tool = tool;
	r->argv = mem_runrec_argv(argc, argv);
	r->start = realtime();
	r->mono0 = monotonic();
}

void
mem_runrec_release(struct mem_runrec *r)
{
	json_decref(r->argv);
	json_decref(r->ids);
	r->argv = r->ids = NULL;
}

void
mem_runrec_input(struct mem_runrec *r, const json_t *item)
{
	const char *id = mem_item_id(item);

	r->read++;
	if (!r->keep_ids)
		return;
	if (r->ids == NULL)
		r->ids = json_array();
	json_array_append_new(r->ids, id ? json_string(id) : json_null());
}

void
mem_runrec_output(struct mem_runrec *r, const json_t *item)
{
	const char *key;
	json_t *a;

	r->done++;
	json_object_foreach(json_object_get(item, "assets"), key, a) {
		json_t *s = json_object_get(a, "file:size");

		if (json_is_integer(s) && json_integer_value(s) > 0)
			r->bytes += json_integer_value(s);
	}
}

double
mem_runrec_seconds(const struct mem_runrec *r)
{
	return monotonic() - r->mono0;
}

/* The label set {tool="...",shard="I/N"} with the extra label, escaped as the format asks. */
static void
labels(const struct mem_runrec *r, const char *extra, char *buf, size_t n)
{
	char tool[128], *p = tool;

	for (const char *s = r->tool; *s && p < tool + sizeof tool - 3; s++) {
		if (*s == '\\' || *s == '"')
			*p++ = '\\';
		if (*s == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else
			*p++ = *s;
	}
	*p = '\0';
	if (r->shard.count > 1)
		snprintf(buf, n, "{tool=\"%s\",shard=\"%d/%d\"%s%s}", tool, r->shard.index,
		    r->shard.count, extra ? "," : "", extra ? extra : "");
	else
		snprintf(buf, n, "{tool=\"%s\"%s%s}", tool, extra ? "," : "", extra ? extra : "");
}

static void
metric(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *
mem_runrec_metrics(const struct mem_runrec *r, int exit_status, double last_success)
{
	static const char *const status[] = { "read", "skipped", "done", "failed" };
	long count[] = { r->read, r->skipped, r->done, r->failed };
	char *buf = NULL, l[256];
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		abort();
	metric(fp, "memories_items_total", "counter",
	    "Items by outcome: read (taken as input), skipped (another shard's), done (emitted), failed.");
	for (size_t i = 0; i < sizeof count / sizeof count[0]; i++) {
		char st[32];

		snprintf(st, sizeof st, "status=\"%s\"", status[i]);
		labels(r, st, l, sizeof l);
		fprintf(fp, "memories_items_total%s %ld\n", l, count[i]);
	}
	labels(r, NULL, l, sizeof l);
	metric(fp, "memories_bytes_written_total", "counter",
	    "Bytes of the assets of the emitted items (their file:size).");
	fprintf(fp, "memories_bytes_written_total%s %lld\n", l, r->bytes);
	metric(fp, "memories_run_seconds", "gauge", "Seconds the run has taken so far.");
	fprintf(fp, "memories_run_seconds%s %.3f\n", l, mem_runrec_seconds(r));
	metric(fp, "memories_run_start_timestamp_seconds", "gauge", "When the run started.");
	fprintf(fp, "memories_run_start_timestamp_seconds%s %.3f\n", l, r->start);
	metric(fp, "memories_run_in_progress", "gauge", "1 while the run goes on, 0 once it ended.");
	fprintf(fp, "memories_run_in_progress%s %d\n", l, exit_status < 0);
	if (exit_status >= 0) {
		metric(fp, "memories_run_exit_status", "gauge",
		    "The exit status of the run: 0 all done, 1 some items failed, 2 usage, 75 temporary.");
		fprintf(fp, "memories_run_exit_status%s %d\n", l, exit_status);
		if (exit_status == 0)
			last_success = realtime();
	}
	if (last_success > 0) {
		metric(fp, "memories_last_success_timestamp_seconds", "gauge",
		    "When a run last ended with exit status 0.");
		fprintf(fp, "memories_last_success_timestamp_seconds%s %.3f\n", l, last_success);
	}
	if (fclose(fp) != 0)
		abort();
	return buf;
}

/* The last-success time the metrics file at path holds for these labels, or 0. */
static double
old_success(const struct mem_runrec *r, const char *path)
{
	char want[300], l[256], *text, *p;
	size_t len;
	double v = 0;

	labels(r, NULL, l, sizeof l);
	snprintf(want, sizeof want, "memories_last_success_timestamp_seconds%s ", l);
	if (!mem_path_exists(path) || (text = mem_read_file(path, &len, NULL)) == NULL)
		return 0;
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, want, strlen(want)) == 0) {
			v = strtod(p + strlen(want), NULL);
			break;
		}
	free(text);
	return v > 0 ? v : 0;
}

int
mem_runrec_write_metrics(const struct mem_runrec *r, const char *path, int exit_status,
    struct mem_err *err)
{
	char *text = mem_runrec_metrics(r, exit_status, old_success(r, path));
	int rc;

	/* progress updates need not reach the disk; the final record must */
	rc = exit_status >= 0 ? mem_write_file_atomic(path, text, strlen(text), err) :
	    mem_write_file_renamed(path, text, strlen(text), err);
	free(text);
	return rc;
}

json_t *
mem_runrec_summary(const struct mem_runrec *r, int exit_status)
{
	char t0[40], t1[40], host[256] = "", shard[32], *cwd = getcwd(NULL, 0);
	double secs = mem_runrec_seconds(r);
	PJ_INFO pi = proj_info();
	json_t *s;

	mem_time_format(r->start, t0, sizeof t0);
	mem_time_format(r->start + secs, t1, sizeof t1);
	gethostname(host, sizeof host - 1);
	snprintf(shard, sizeof shard, "%d/%d", r->shard.index, r->shard.count);
	s = json_pack("{s:s, s:s, s:O, s:s?, s:s, s:{s:s, s:s, s:s}, s:s?, s:s, s:s, s:f, "
	    "s:{s:I, s:I, s:I, s:I}, s:I, s:o, s:i}",
	    "tool", r->tool,
	    "version", mem_version(),
	    "argv", r->argv,
	    "cwd", cwd,
	    "host", host,
	    "libraries", "gdal", GDALVersionInfo("RELEASE_NAME"), "proj", pi.release,
	    "jansson", JANSSON_VERSION,
	    "shard", r->shard.count > 1 ? shard : NULL,
	    "start", t0,
	    "end", t1,
	    "seconds", secs,
	    "items", "read", (json_int_t)r->read, "skipped", (json_int_t)r->skipped,
	    "done", (json_int_t)r->done, "failed", (json_int_t)r->failed,
	    "bytes_written", (json_int_t)r->bytes,
	    "input_ids", r->ids ? json_incref(r->ids) : json_array(),
	    "exit_status", exit_status);
	free(cwd);
	if (s == NULL)
		abort();
	return s;
}

int
mem_runrec_write_summary(const struct mem_runrec *r, const char *path, int exit_status,
    struct mem_err *err)
{
	json_t *s = mem_runrec_summary(r, exit_status);
	char *text = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	size_t n;
	int rc;

	json_decref(s);
	if (text == NULL)
		abort();
	n = strlen(text);
	text = mem_xrealloc(text, n + 2);
	text[n++] = '\n';
	text[n] = '\0';
	rc = mem_write_file_atomic(path, text, n, err);
	free(text);
	return rc;
}
