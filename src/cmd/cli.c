/*
 * cli.c - what the programs share.
 *
 * The library returns statuses; here they become messages and exit codes.
 * Exit status: 0 all done, 1 some items failed (the rest done and emitted),
 * 2 usage or bad input, 75 temporary failure worth retrying.  The worst
 * wins, in that order of severity: 2 over 75 over 1.
 */
#include "config.h"

#include <errno.h>
#include <gdal.h>
#include <curl/curl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "files.h"
#include "item.h"
#include "manifest.h"

/* Seconds between two writes of the --metrics file during a run. */
#define METRICS_EVERY 10.0

/*
 * The command line the run record holds, also from here: a main that
 * returns early (--help) leaves it reachable rather than leaked.
 */
static json_t *volatile cmdline;

static int
severity(int status)
{
	switch (status) {
	case MEM_EUSAGE: return 3;
	case MEM_ETEMP: return 2;
	case MEM_EITEM: return 1;
	default: return 0;
	}
}

static void
record(struct mem_cli *c, int status)
{
	if (severity(status) > severity(c->worst))
		c->worst = status;
}

void
mem_cli_init(struct mem_cli *c, const char *prog, int argc, char **argv)
{
	const char *w = getenv("MEM_WORKDIR");

	memset(c, 0, sizeof *c);
	c->prog = prog;
	c->workdir = w && *w ? w : "mem-work";
	c->shard_items = 1;
	mem_runrec_init(&c->run, prog, argc, argv);
	cmdline = c->run.argv;
	/* items flow to the next stage as soon as they are written */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
}

/* Writes the run's files: the metrics while it goes on (status < 0), both at its end. */
static int
write_run(struct mem_cli *c, int status)
{
	struct mem_err err;
	int rc = 0;

	c->run.failed = c->nfailed;
	c->run.shard = c->shard;
	mem_err_clear(&err);
	if (c->metrics && mem_runrec_write_metrics(&c->run, c->metrics, status, &err) < 0) {
		if (status >= 0 || !c->metrics_warned)
			fprintf(stderr, "%s: --metrics: %s\n", c->prog, err.msg);
		c->metrics_warned = 1;
		rc = -1;
	}
	mem_err_clear(&err);
	if (status >= 0 && c->summary && mem_runrec_write_summary(&c->run, c->summary, status, &err) < 0) {
		fprintf(stderr, "%s: --summary: %s\n", c->prog, err.msg);
		rc = -1;
	}
	return rc;
}

/* Rewrites the metrics when METRICS_EVERY seconds have passed since the last time. */
static void
tick(struct mem_cli *c)
{
	double t;

	if (c->metrics == NULL || c->finished)
		return;
	t = mem_runrec_seconds(&c->run);
	if (c->metrics_at > 0 && t - c->metrics_at < METRICS_EVERY)
		return;
	c->metrics_at = t > 0 ? t : 1e-9;
	write_run(c, -1);
}

/* Ends the run record with status; returns the status to exit with. */
static int
finish(struct mem_cli *c, int status)
{
	if (c->finished)
		return status;
	c->finished = 1;
	if (write_run(c, status) < 0 && status == MEM_OK)
		status = MEM_EITEM;
	mem_runrec_release(&c->run);
	cmdline = NULL;
	return status;
}

void
mem_cli_error(struct mem_cli *c, const struct mem_err *err)
{
	fprintf(stderr, "%s: %s\n", c->prog, err->msg[0] ? err->msg : "unknown error");
	record(c, err->status == MEM_OK ? MEM_EITEM : (int)err->status);
}

void
mem_cli_warn(struct mem_cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	fprintf(stderr, "%s: ", c->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
mem_cli_usage_error(struct mem_cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", c->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", c->prog);
	exit(finish(c, MEM_EUSAGE));
}

void
mem_cli_version(struct mem_cli *c)
{
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("%s (memories) %s\n", c->prog, mem_version());
	printf("GDAL %s, libcurl %s, jansson %s\n", GDALVersionInfo("RELEASE_NAME"), cv->version,
	    JANSSON_VERSION);
#ifdef HAVE_CUDA
	printf("CUDA kernels: built\n");
#else
	printf("CUDA kernels: not built\n");
#endif
	exit(0);
}

long
mem_cli_number(struct mem_cli *c, const char *opt, const char *arg, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end != '\0' || v < lo || v > hi)
		mem_cli_usage_error(c, "invalid value '%s' for %s: expected an integer %ld-%ld", arg, opt,
		    lo, hi);
	return v;
}

int
mem_cli_common_option(struct mem_cli *c, int opt, const char *arg)
{
	switch (opt) {
	case 'q':
		c->quiet = 1;
		return 1;
	case 'j':
		c->jobs = (int)mem_cli_number(c, "--jobs", arg, 1, 1024);
		return 1;
	case OPT_WORKDIR:
		c->workdir = arg;
		return 1;
	case OPT_STRICT:
		c->strict = 1;
		return 1;
	case OPT_SHARD: {
		struct mem_err err;

		if (mem_shard_parse(arg, &c->shard, &err) < 0)
			mem_cli_usage_error(c, "%s", err.msg);
		return 1;
	}
	case OPT_METRICS:
	case OPT_SUMMARY: {
		/* find out now, not after hours of work, that the file cannot be written */
		char *dir = mem_path_dirname(arg);
		int bad = *arg == '\0' || access(dir, W_OK) < 0;

		if (bad)
			mem_cli_usage_error(c, "cannot write --%s '%s': %s", opt == OPT_METRICS ?
			    "metrics" : "summary", arg, *arg ? strerror(errno) : "empty name");
		free(dir);
		if (opt == OPT_METRICS)
			c->metrics = arg;
		else
			c->summary = arg;
		c->run.keep_ids = c->summary != NULL;
		return 1;
	}
	}
	return 0;
}

char **
mem_cli_list(char **v, const char *arg)
{
	size_t n = 0;
	char *s = mem_xstrdup(arg), *tok, *save;

	while (v && v[n])
		n++;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*tok == '\0')
			continue;
		v = mem_xrealloc(v, (n + 2) * sizeof *v);
		v[n++] = mem_xstrdup(tok);
		v[n] = NULL;
	}
	free(s);
	return v;
}

void
mem_cli_list_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

static int
each_in(struct mem_cli *c, FILE *fp, const char *name, mem_cli_item_fn fn, void *ctx)
{
	struct mem_manifest_reader r;
	struct mem_err err;
	json_t *item;
	int rc, stop = 0;

	mem_manifest_reader_init(&r, fp, name, 0);
	for (;;) {
		mem_err_clear(&err);
		rc = mem_manifest_read(&r, &item, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", c->prog, err.msg);
			if (err.status != MEM_EUSAGE) {
				record(c, MEM_EITEM);
				break;	/* a read error: nothing more to read */
			}
			c->nfailed++;
			/* a malformed line is bad input under --strict, a failed item otherwise */
			record(c, c->strict ? MEM_EUSAGE : MEM_EITEM);
			if (c->strict) {
				stop = 1;
				break;
			}
			continue;
		}
		if (!mem_cli_take(c, item)) {
			json_decref(item);
			continue;
		}
		rc = fn(c, item, ctx);
		json_decref(item);
		if (rc < 0) {
			stop = 1;
			break;
		}
	}
	mem_manifest_reader_release(&r);
	return stop ? -1 : 0;
}

int
mem_cli_take(struct mem_cli *c, const json_t *item)
{
	const char *id = mem_item_id(item);

	if (c->shard_items && !mem_shard_has(id ? id : "", c->shard.index, c->shard.count)) {
		c->run.skipped++;
		tick(c);
		return 0;
	}
	mem_runrec_input(&c->run, item);
	tick(c);
	return 1;
}

int
mem_cli_each_item(struct mem_cli *c, int argc, char **argv, mem_cli_item_fn fn, void *ctx)
{
	int i;

	if (argc == 0)
		return each_in(c, stdin, "<stdin>", fn, ctx);
	for (i = 0; i < argc; i++) {
		FILE *fp;
		int rc;

		if (strcmp(argv[i], "-") == 0) {
			if (each_in(c, stdin, "<stdin>", fn, ctx) < 0)
				return -1;
			continue;
		}
		fp = fopen(argv[i], "r");
		if (fp == NULL) {
			fprintf(stderr, "%s: cannot open '%s': %s\n", c->prog, argv[i], strerror(errno));
			record(c, MEM_EUSAGE);
			continue;
		}
		rc = each_in(c, fp, argv[i], fn, ctx);
		fclose(fp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

void
mem_cli_emit(struct mem_cli *c, const json_t *item)
{
	struct mem_err err;

	if (mem_manifest_write(stdout, item, &err) < 0) {
		if (errno == EPIPE)
			exit(mem_cli_exit(c));
		mem_cli_error(c, &err);
		exit(finish(c, MEM_EITEM));
	}
	mem_runrec_output(&c->run, item);
	tick(c);
}

int
mem_cli_exit(struct mem_cli *c)
{
	if (fflush(stdout) == EOF && errno != EPIPE) {
		fprintf(stderr, "%s: cannot write to standard output: %s\n", c->prog, strerror(errno));
		record(c, MEM_EITEM);
	}
	return finish(c, c->worst);
}
