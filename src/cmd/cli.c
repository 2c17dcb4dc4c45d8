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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	c->ledger_opts.url = getenv("MEM_LEDGER") && *getenv("MEM_LEDGER") ? getenv("MEM_LEDGER") : NULL;
	c->ledger_opts.cacert = getenv("MEM_LEDGER_CACERT");
	c->ledger_opts.cert = getenv("MEM_LEDGER_CERT");
	c->ledger_opts.key = getenv("MEM_LEDGER_KEY");
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

/* The ledger at exit: the leader publishes its plan (when all went well), the lease goes. */
static void
ledger_end(struct mem_cli *c, int *status)
{
	struct mem_err err;

	if (c->ledger == NULL) {
		json_decref(c->pending);
		json_decref(c->plan);
		c->pending = c->plan = NULL;
		return;
	}
	mem_err_clear(&err);
	if (c->plan_leader && *status == MEM_OK) {
		size_t i, n = 0;
		json_t *v;
		char *text = NULL;

		json_array_foreach(c->plan, i, v) {
			size_t k = json_string_length(v);

			text = mem_xrealloc(text, n + k + 2);
			memcpy(text + n, json_string_value(v), k);
			n += k;
			text[n++] = '\n';
		}
		if (mem_ledger_publish(c->ledger, text ? text : "", n, &err) < 0) {
			fprintf(stderr, "%s: %s\n", c->prog, err.msg);
			record(c, MEM_ETEMP);
			*status = c->worst;
		}
		free(text);
	}
	if (!c->quiet && !c->plan_leader && (c->ledger_won || c->ledger_others || c->ledger_lost))
		fprintf(stderr, "%s: ledger: %ld items done here, %ld by other workers, %ld claims lost\n",
		    c->prog, c->ledger_won, c->ledger_others, c->ledger_lost);
	mem_ledger_close(c->ledger);
	c->ledger = NULL;
	json_decref(c->pending);
	json_decref(c->plan);
	c->pending = c->plan = NULL;
}

/* Ends the run record with status; returns the status to exit with. */
static int
finish(struct mem_cli *c, int status)
{
	if (c->finished)
		return status;
	c->finished = 1;
	ledger_end(c, &status);
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
	case OPT_LEDGER: {
		struct mem_err err;

		if (mem_ledger_parse(arg, &err) < 0)
			mem_cli_usage_error(c, "%s", err.msg);
		c->ledger_opts.url = arg;
		return 1;
	}
	case OPT_LEDGER_CACERT:
	case OPT_LEDGER_CERT:
	case OPT_LEDGER_KEY:
		if (access(arg, R_OK) < 0)
			mem_cli_usage_error(c, "cannot read --%s '%s': %s", opt == OPT_LEDGER_CACERT ?
			    "ledger-cacert" : opt == OPT_LEDGER_CERT ? "ledger-cert" : "ledger-key", arg,
			    strerror(errno));
		*(opt == OPT_LEDGER_CACERT ? &c->ledger_opts.cacert : opt == OPT_LEDGER_CERT ?
		    &c->ledger_opts.cert : &c->ledger_opts.key) = arg;
		return 1;
	case OPT_LEDGER_TTL:
		c->ledger_opts.ttl = (int)mem_cli_number(c, "--ledger-ttl", arg, 1, 3600);
		return 1;
	case OPT_LEDGER_TIMEOUT:
		c->ledger_opts.deadline = (double)mem_cli_number(c, "--ledger-timeout", arg, 1, 86400);
		return 1;
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

	if ((c->shard_items || c->shard_reads) &&
	    !mem_shard_has(id ? id : "", c->shard.index, c->shard.count)) {
		c->run.skipped++;
		tick(c);
		return c->shard_reads;
	}
	mem_runrec_input(&c->run, item);
	tick(c);
	return 1;
}

/* Offers again the items other workers held, until each is done (by them, or here after their lease). */
static int
each_pending(struct mem_cli *c, mem_cli_item_fn fn, void *ctx)
{
	while (c->pending && json_array_size(c->pending) > 0) {
		json_t *p = c->pending, *item;
		double s = c->ledger ? mem_ledger_ttl(c->ledger) / 4.0 : 0.5;
		struct timespec ts;
		size_t i;

		if (s > 1)
			s = 1;
		ts.tv_sec = (time_t)s;
		ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
		c->pending = json_array();
		json_array_foreach(p, i, item) {
			if (fn(c, item, ctx) < 0) {
				json_decref(p);
				return -1;
			}
		}
		json_decref(p);
	}
	return 0;
}

int
mem_cli_each_pending(struct mem_cli *c, mem_cli_item_fn fn, void *ctx)
{
	return each_pending(c, fn, ctx);
}

int
mem_cli_each_item(struct mem_cli *c, int argc, char **argv, mem_cli_item_fn fn, void *ctx)
{
	int i;

	if (argc == 0)
		return each_in(c, stdin, "<stdin>", fn, ctx) < 0 ? -1 : each_pending(c, fn, ctx);
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
	return each_pending(c, fn, ctx);
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
	if (c->plan_leader) {
		char *line = json_dumps(item, JSON_COMPACT);

		json_array_append_new(c->plan, json_string(line ? line : "{}"));
		free(line);
	}
	tick(c);
}

/* ---- the work ledger ---------------------------------------------------------- */

static pthread_mutex_t ledger_mu = PTHREAD_MUTEX_INITIALIZER;

/* Opens the ledger on first use (any thread); -1 with err when it cannot be. */
static int
ledger_get(struct mem_cli *c, struct mem_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&ledger_mu);
	if (c->ledger == NULL && !c->ledger_failed) {
		c->ledger = mem_ledger_open(&c->ledger_opts, err);
		c->ledger_failed = c->ledger == NULL;
		rc = c->ledger ? 0 : -1;
	} else if (c->ledger == NULL) {
		rc = mem_err_set(err, MEM_ETEMP, "ledger '%s': unreachable", c->ledger_opts.url);
	}
	pthread_mutex_unlock(&ledger_mu);
	return rc;
}

static char *
ledger_key(const struct mem_cli *c, const char *key)
{
	return mem_xasprintf("%s/%s", strncmp(c->prog, "mem-", 4) == 0 ? c->prog + 4 : c->prog, key);
}

int
mem_cli_claim(struct mem_cli *c, const char *key, const json_t *item, struct mem_err *err)
{
	char *k;
	int st;

	if (c->ledger_opts.url == NULL)
		return MEM_LEDGER_WON;
	if (ledger_get(c, err) < 0)
		return -1;
	k = ledger_key(c, key);
	st = mem_ledger_claim(c->ledger, k, err);
	free(k);
	pthread_mutex_lock(&ledger_mu);
	if (st == MEM_LEDGER_TAKEN && item) {
		if (c->pending == NULL)
			c->pending = json_array();
		json_array_append(c->pending, (json_t *)item);
	}
	if (st == MEM_LEDGER_DONE)
		c->ledger_others++;
	pthread_mutex_unlock(&ledger_mu);
	return st;
}

int
mem_cli_done(struct mem_cli *c, const char *key, struct mem_err *err)
{
	char *k;
	int rc;

	if (c->ledger_opts.url == NULL)
		return 0;
	if (ledger_get(c, err) < 0)
		return -1;
	k = ledger_key(c, key);
	rc = mem_ledger_done(c->ledger, k, err);
	free(k);
	pthread_mutex_lock(&ledger_mu);
	if (rc == 0)
		c->ledger_won++;
	else if (err->status == MEM_EITEM)
		c->ledger_lost++;
	pthread_mutex_unlock(&ledger_mu);
	if (rc < 0 && err->status == MEM_EITEM) {
		/* another worker makes it again; what we wrote is the same and whole */
		mem_cli_warn(c, "%s", err->msg);
		return 0;
	}
	return rc;
}

int
mem_cli_lead(struct mem_cli *c)
{
	struct mem_err err;
	int announced = 0;

	if (c->ledger_opts.url == NULL)
		return 1;
	mem_err_clear(&err);
	if (ledger_get(c, &err) < 0)
		goto fail;
	for (;;) {
		char *plan = NULL;
		size_t len = 0;
		int leader = 0, rc;

		mem_err_clear(&err);
		rc = mem_ledger_plan(c->ledger, &plan, &len, &leader, &err);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			/* the plan: the leader's items, one a line */
			char *line = plan, *nl;

			for (; line < plan + len; line = nl + 1) {
				json_t *item;

				nl = memchr(line, '\n', (size_t)(plan + len - line));
				if (nl == NULL)
					nl = plan + len;
				if (nl == line)
					continue;
				if ((item = json_loadb(line, (size_t)(nl - line), 0, NULL)) != NULL) {
					mem_runrec_input(&c->run, item);
					mem_cli_emit(c, item);
					json_decref(item);
				}
			}
			free(plan);
			return 0;
		}
		if (!leader) {
			mem_err_clear(&err);
			rc = mem_ledger_lead(c->ledger, &err);
			if (rc < 0)
				goto fail;
			if (rc == 1) {
				c->plan_leader = 1;
				c->plan = json_array();
				return 1;
			}
		}
		if (!announced && !c->quiet)
			fprintf(stderr, "%s: ledger: another worker plans; waiting for its plan\n", c->prog);
		announced = 1;
		{
			struct timespec ts = { 0, 300000000L };

			nanosleep(&ts, NULL);
		}
	}
fail:
	fprintf(stderr, "%s: %s\n", c->prog, err.msg);
	record(c, err.status == MEM_OK ? MEM_ETEMP : (int)err.status);
	return 0;
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
