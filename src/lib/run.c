/*
 * run.c - run a recipe: each stage a child process whose standard output
 * becomes the stage's manifest (temp name, fsync, rename), so a killed run
 * leaves whole manifests or none; a stamp beside each manifest (a hash of
 * the command line and of the input lines, order aside) lets a rerun skip
 * a stage whose inputs did not change, and the programs themselves skip
 * the finished items of a stage that does run.  The lock is an flock(2)
 * on RUN/lock that the children inherit, so a run killed with SIGKILL
 * holds it until its last child is gone.
 *
 * Slurm runs the same stages cut by mem-tile --shard: the array tasks tile
 * and infer their share into RUN/shards/I/, the merge job stores them all.
 *
 * A consensus run (--ledger) runs the same stages as one worker of a group:
 * the tools claim each item in etcd, so the workers share RUN/work and the
 * outputs, while each keeps its manifests, stamps and lock in
 * RUN/workers/ID/: a worker restarted under its id resumes as a plain run
 * does, and workers with other ids run beside it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gdal.h>
#include <jansson.h>
#include <proj.h>

#include "files.h"
#include "run.h"
#include "sha256.h"
#include "stage.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
wallclock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const manifests[] = { "scenes.ndjson", "tiles.ndjson", "results.ndjson",
	"stored.ndjson" };

void
mem_run_init(struct mem_run *run, const struct mem_recipe *r, const char *dir)
{
	memset(run, 0, sizeof *run);
	run->r = r;
	run->dir = mem_path_absolute(dir ? dir : r->run_dir);
	run->state = mem_xstrdup(run->dir);
	run->lock_fd = -1;
	run->shared_fd = -1;
	run->t0 = now();
	run->start = wallclock();
}

void
mem_run_release(struct mem_run *run)
{
	if (run->lock_fd >= 0)
		close(run->lock_fd);
	if (run->shared_fd >= 0)
		close(run->shared_fd);
	free(run->dir);
	free(run->state);
	free(run->worker);
	run->dir = run->state = run->worker = NULL;
}

int
mem_run_worker_check(const char *id, struct mem_err *err)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-' ||
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return mem_err_set(err, MEM_EUSAGE,
		    "invalid worker id '%s': expected 1-64 letters, digits, '.', '_' or '-', "
		    "not starting with '.' or '-'", id);
	return 0;
}

int
mem_run_worker(struct mem_run *run, const char *id, struct mem_err *err)
{
	char host[256], *rel;

	if (id == NULL) {
		/* the short host name: a node restarted under its name finds its own state */
		if (gethostname(host, sizeof host) < 0)
			return mem_err_set(err, MEM_EUSAGE, "cannot get the host name: %s (use --worker)",
			    strerror(errno));
		host[sizeof host - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		id = host;
		if (mem_run_worker_check(id, err) < 0)
			return mem_err_set(err, MEM_EUSAGE,
			    "the host name '%s' cannot name a worker: give one with --worker", host);
	} else if (mem_run_worker_check(id, err) < 0) {
		return -1;
	}
	free(run->worker);
	free(run->state);
	run->worker = mem_xstrdup(id);
	rel = mem_xasprintf("workers/%s", id);
	run->state = mem_path_join(run->dir, rel);
	free(rel);
	return 0;
}

static void __attribute__((format(printf, 2, 3)))
say(struct mem_run *run, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	if (run->say == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	run->say(run->say_ctx, line);
}

/* A file of the run's state: in the run directory, or a worker's own. */
static char *
in_dir(const struct mem_run *run, const char *name)
{
	return mem_path_join(run->state, name);
}

/* The programs' --workdir, shared by the workers of a consensus run. */
static char *
work_dir(const struct mem_run *run)
{
	return mem_path_join(run->dir, "work");
}

/* flock(2)s path (mode LOCK_EX or LOCK_SH); the descriptor, or -1 with errno. */
static int
lock_file(const char *path, int mode, int wait)
{
	/* no O_CLOEXEC: the stages hold the lock as long as they live */
	int fd = open(path, O_RDWR | O_CREAT, 0644), e;

	if (fd < 0)
		return -1;
	while (flock(fd, wait ? mode : mode | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
mem_run_lock(struct mem_run *run, struct mem_err *err)
{
	char *path;
	int fd;

	if (mem_mkdir_p(run->dir, err) < 0 || mem_mkdir_p(run->state, err) < 0)
		return -1;
	path = mem_path_join(run->dir, "lock");
	if (run->worker) {
		/* workers share the run directory; a plain run of it waits for them all */
		fd = lock_file(path, LOCK_SH, run->wait);
		if (fd < 0) {
			if (errno == EWOULDBLOCK)
				mem_err_set(err, MEM_ETEMP,
				    "'%s': a run without --ledger holds the lock (use --wait to wait for it)",
				    run->dir);
			else
				mem_err_set(err, MEM_ETEMP, "cannot lock '%s': %s", path, strerror(errno));
			free(path);
			return -1;
		}
		run->shared_fd = fd;
		free(path);
		path = in_dir(run, "lock");
	}
	fd = lock_file(path, LOCK_EX, run->wait);
	if (fd < 0) {
		if (errno != EWOULDBLOCK)
			mem_err_set(err, errno == ENOENT || errno == EACCES ? MEM_EUSAGE : MEM_ETEMP,
			    "cannot lock '%s': %s", path, strerror(errno));
		else if (run->worker)
			mem_err_set(err, MEM_ETEMP,
			    "'%s': worker '%s' runs already (another process holds '%s'; give this one "
			    "another --worker, or --wait)", run->dir, run->worker, path);
		else
			mem_err_set(err, MEM_ETEMP,
			    "'%s': another run of this recipe holds the lock (use --wait to wait for it)",
			    run->dir);
		free(path);
		return -1;
	}
	free(path);
	run->lock_fd = fd;
	return 0;
}

/* ---- command lines ------------------------------------------------------ */

/* A word quoted for sh when it needs it: a new string. */
static char *
sh_quote(const char *s)
{
	const char *p;
	size_t n = 3;
	char *q, *o;

	if (*s) {
		for (p = s; *p; p++)
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
				    "-_./:,=+@%", *p))
				break;
		if (*p == '\0')
			return mem_xstrdup(s);
	}
	for (p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	q = o = mem_xmalloc(n);
	*o++ = '\'';
	for (p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

/* The command as one sh line, with "> out" when out is not NULL: a new string. */
static char *
command_line(char *const *argv, const char *out)
{
	size_t n = 1, k;
	char *line = mem_xstrdup(""), *w;

	for (k = 0; argv[k]; k++) {
		w = sh_quote(argv[k]);
		n += strlen(w) + 1;
		line = mem_xrealloc(line, n);
		if (k)
			strcat(line, " ");
		strcat(line, w);
		free(w);
	}
	if (out) {
		w = sh_quote(out);
		line = mem_xrealloc(line, n + strlen(w) + 4);
		strcat(line, " > ");
		strcat(line, w);
		free(w);
	}
	return line;
}

static char *
prog_path(const struct mem_run *run, const char *prog)
{
	return run->bindir ? mem_path_join(run->bindir, prog) : mem_xstrdup(prog);
}

/*
 * Runs argv (argv[0] a program name) with stdout to the file out (or
 * inherited when NULL) and stdin from /dev/null; returns its exit status,
 * or -1 with err when it could not be started or died of a signal.
 */
static int
spawn(const struct mem_run *run, char *const *argv, const char *out, struct mem_err *err)
{
	char *path = prog_path(run, argv[0]);
	int status, fd = -1;
	pid_t pid;

	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		mem_err_set(err, MEM_EUSAGE, "cannot write '%s': %s", out, strerror(errno));
		free(path);
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		mem_err_set(err, MEM_ETEMP, "cannot start %s: %s", argv[0], strerror(errno));
		free(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);

		if (in >= 0 && in != 0) {
			dup2(in, 0);
			close(in);
		}
		if (fd >= 0 && fd != 1)
			dup2(fd, 1);
		if (strchr(path, '/'))
			execv(path, argv);
		else
			execvp(path, argv);
		dprintf(2, "mem-run: cannot run '%s': %s\n", path, strerror(errno));
		_exit(127);
	}
	if (fd >= 0)
		close(fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			free(path);
			return mem_err_set(err, MEM_ETEMP, "waiting for %s: %s", argv[0], strerror(errno));
		}
	free(path);
	if (WIFSIGNALED(status))
		return mem_err_set(err, MEM_ETEMP, "%s killed by signal %d", argv[0], WTERMSIG(status));
	if (WEXITSTATUS(status) == 127)
		return mem_err_set(err, MEM_EUSAGE, "cannot run '%s'", argv[0]);
	return WEXITSTATUS(status);
}

/* The first line a program prints with --version: a new string, or NULL. */
static char *
tool_version(const struct mem_run *run, const char *prog)
{
	char *path = prog_path(run, prog), *cmd, *q, line[512];
	FILE *p;

	q = sh_quote(path);
	cmd = mem_xasprintf("%s --version 2>/dev/null", q);
	free(q);
	free(path);
	p = popen(cmd, "r");
	free(cmd);
	if (p == NULL)
		return NULL;
	if (fgets(line, sizeof line, p) == NULL)
		line[0] = '\0';
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	return line[0] ? mem_xstrdup(line) : NULL;
}

/* ---- stamps -------------------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Feeds the lines of a manifest to h as a set: each line's hash, sorted,
 * so that the same items in another order give the same stamp.
 */
static int
hash_manifest(struct mem_sha256 *h, const char *path, struct mem_err *err)
{
	size_t len, n = 0, cap = 64, k;
	char *buf = mem_read_file(path, &len, err), *line, *p, **hex;
	unsigned char d[32];

	if (buf == NULL)
		return -1;
	hex = mem_xmalloc(cap * sizeof *hex);
	for (p = buf; (line = strsep(&p, "\n")) != NULL;) {
		struct mem_sha256 lh;

		if (*line == '\0')
			continue;
		mem_sha256_init(&lh);
		mem_sha256_update(&lh, line, strlen(line));
		mem_sha256_final(&lh, d);
		if (n == cap)
			hex = mem_xrealloc(hex, (cap *= 2) * sizeof *hex);
		hex[n] = mem_xmalloc(65);
		for (k = 0; k < 32; k++)
			sprintf(hex[n] + 2 * k, "%02x", d[k]);
		n++;
	}
	qsort(hex, n, sizeof *hex, cmp_str);
	for (k = 0; k < n; k++) {
		mem_sha256_update(h, hex[k], 64);
		free(hex[k]);
	}
	free(hex);
	free(buf);
	return 0;
}

/* The stamp of a stage: its command and its inputs' lines. */
static char *
stamp_of(char *const *argv, char *const *inputs, struct mem_err *err)
{
	struct mem_sha256 h;
	unsigned char d[32];
	char *s = mem_xmalloc(66);
	size_t k;

	mem_sha256_init(&h);
	for (k = 0; argv[k]; k++)
		mem_sha256_update(&h, argv[k], strlen(argv[k]) + 1);
	for (k = 0; inputs && inputs[k]; k++)
		if (hash_manifest(&h, inputs[k], err) < 0) {
			free(s);
			return NULL;
		}
	mem_sha256_final(&h, d);
	for (k = 0; k < 32; k++)
		sprintf(s + 2 * k, "%02x", d[k]);
	s[64] = '\n';
	s[65] = '\0';
	return s;
}

static int
stamp_matches(const char *out, const char *stamp)
{
	char *path = mem_xasprintf("%s.stamp", out), *old;
	size_t len;
	struct mem_err e;
	int same;

	mem_err_clear(&e);
	old = mem_path_exists(out) ? mem_read_file(path, &len, &e) : NULL;
	same = old && strcmp(old, stamp) == 0;
	free(old);
	free(path);
	return same;
}

static size_t
count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int ch;

	if (f == NULL)
		return 0;
	while ((ch = getc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/*
 * The counts of a stage program's --summary file into the stage's record:
 * items read, done and failed, and the bytes of the assets it wrote.
 */
static void
stage_counts(json_t *st, const char *summary)
{
	json_t *s = json_load_file(summary, 0, NULL), *items = json_object_get(s, "items");

	if (json_is_object(items)) {
		json_object_set(st, "read", json_object_get(items, "read"));
		json_object_set(st, "done", json_object_get(items, "done"));
		json_object_set(st, "failed", json_object_get(items, "failed"));
		json_object_set(st, "bytes_written", json_object_get(s, "bytes_written"));
	}
	json_decref(s);
}

/*
 * Runs one stage into the manifest out, unless its stamp says it is done;
 * appends what happened to the record's stages.  Returns the program's exit
 * status (0 or 1) or -1 with err.
 */
static int
run_stage(struct mem_run *run, json_t *rec, enum mem_run_stage s, char **argv, char *const *inputs,
    const char *out, struct mem_err *err)
{
	const char *name = mem_run_stage_name(s);
	char *line = command_line(argv, out), *stamp = NULL, *tmp, *sp, *sumpath;
	json_t *st = json_object(), *av = json_array();
	char cksum[69];
	double t0;
	int rc, k, skip = 0;

	for (k = 0; argv[k]; k++)
		json_array_append_new(av, json_string(argv[k]));
	json_object_set_new(st, "stage", json_string(name));
	json_object_set_new(st, "argv", av);
	json_object_set_new(st, "command", json_string(line));
	json_object_set_new(st, "output", json_string(out));
	if (run->dry_run) {
		say(run, "%s", line);
		free(line);
		json_decref(st);
		return 0;
	}
	free(line);
	if ((stamp = stamp_of(argv, inputs, err)) == NULL) {
		json_decref(st);
		return -1;
	}
	sumpath = mem_xasprintf("%s.summary.json", out);
	/* fetch always asks the source again: that is how new scenes come in */
	skip = !run->force && s != MEM_RUN_FETCH && stamp_matches(out, stamp) &&
	       (s != MEM_RUN_STORE || mem_path_exists(run->r->out_dir));
	t0 = now();
	if (skip) {
		say(run, "%s: inputs unchanged since the last run, skipped", name);
		rc = 0;
	} else {
		size_t n;
		char **full;

		/* --summary is left out of the stamp and the command shown: it is ours */
		for (n = 0; argv[n]; n++)
			;
		full = mem_xcalloc(n + 3, sizeof *full);
		memcpy(full, argv, n * sizeof *full);
		full[n] = "--summary";
		full[n + 1] = sumpath;
		unlink(sumpath);
		tmp = mem_tmp_name(out);
		rc = spawn(run, full, tmp, err);
		free(full);
		/* 0 all done, 1 some items failed: the manifest holds what was done */
		if ((rc == 0 || rc == 1) && mem_commit_file(tmp, out, err) < 0)
			rc = -1;
		else if (rc != 0 && rc != 1)
			unlink(tmp);
		free(tmp);
		if (rc > 1) {
			/* a stage's usage error (2) comes from the recipe's settings: a bad recipe */
			mem_err_set(err, rc == MEM_ETEMP ? MEM_ETEMP : rc == MEM_EUSAGE ? MEM_EUSAGE : MEM_EITEM,
			    "%s: %s exited with status %d", name, argv[0], rc);
			rc = -1;
		}
		sp = mem_xasprintf("%s.stamp", out);
		if (rc == 0) {
			if (mem_write_file_atomic(sp, stamp, strlen(stamp), err) < 0)
				rc = -1;
		} else {
			unlink(sp); /* a stage with failures runs again */
		}
		free(sp);
	}
	json_object_set_new(st, "skipped", json_boolean(skip));
	json_object_set_new(st, "status", json_integer(rc < 0 ? (json_int_t)err->status : rc));
	json_object_set_new(st, "seconds", json_real(now() - t0));
	if (rc >= 0) {
		struct mem_err e;

		mem_err_clear(&e);
		json_object_set_new(st, "items", json_integer((json_int_t)count_lines(out)));
		if (mem_file_checksum(out, cksum, NULL, &e) == 0)
			json_object_set_new(st, "file:checksum", json_string(cksum));
	}
	/* a skipped stage's summary is that of the run that made its outputs */
	stage_counts(st, sumpath);
	json_array_append_new(json_object_get(rec, "stages"), st);
	free(sumpath);
	free(stamp);
	return rc;
}

/* ---- the run record ------------------------------------------------------ */

static char *
utc_now(void)
{
	time_t t = time(NULL);
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return mem_xstrdup(buf);
}

static json_t *
record_new(struct mem_run *run, const char *mode)
{
	json_t *rec = json_object(), *tools = json_object(), *av = json_array();
	char host[256], cwd[4096], cksum[69], *t = utc_now(), *v;
	struct mem_err e;
	PJ_INFO pi = proj_info();
	int k;

	mem_err_clear(&e);
	json_object_set_new(rec, "type", json_string("memories-run"));
	json_object_set_new(rec, "version", json_integer(1));
	json_object_set_new(rec, "recipe", json_string(run->r->path));
	json_object_set_new(rec, "name", json_string(run->r->name));
	if (mem_file_checksum(run->r->path, cksum, NULL, &e) == 0)
		json_object_set_new(rec, "recipe_checksum", json_string(cksum));
	json_object_set_new(rec, "mode", json_string(mode));
	json_object_set_new(rec, "started", json_string(t));
	free(t);
	if (gethostname(host, sizeof host) == 0) {
		host[sizeof host - 1] = '\0';
		json_object_set_new(rec, "host", json_string(host));
	}
	if (getcwd(cwd, sizeof cwd))
		json_object_set_new(rec, "cwd", json_string(cwd));
	for (k = 0; run->argv && run->argv[k]; k++)
		json_array_append_new(av, json_string(run->argv[k]));
	json_object_set_new(rec, "argv", av);
	json_object_set_new(rec, "run_dir", json_string(run->dir));
	if (run->worker) {
		json_object_set_new(rec, "worker", json_string(run->worker));
		json_object_set_new(rec, "ledger", json_string(run->ledger.url));
	}
	json_object_set_new(tools, "mem-run", json_sprintf("mem-run (memories) %s", mem_version()));
	for (k = 0; k < MEM_RUN_NSTAGES; k++)
		if ((v = tool_version(run, mem_run_stage_prog(k))) != NULL) {
			json_object_set_new(tools, mem_run_stage_prog(k), json_string(v));
			free(v);
		}
	json_object_set_new(rec, "tools", tools);
	json_object_set_new(rec, "gdal", json_string(GDALVersionInfo("RELEASE_NAME")));
	json_object_set_new(rec, "proj", json_string(pi.release));
	json_object_set_new(rec, "stages", json_array());
	return rec;
}

/* The ids of the items in a manifest, as a JSON array. */
static json_t *
manifest_ids(const char *path)
{
	json_t *ids = json_array();
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL)
		return ids;
	while (getline(&line, &cap, f) > 0) {
		json_t *it = json_loads(line, 0, NULL);
		const char *id = json_string_value(json_object_get(it, "id"));

		if (id)
			json_array_append_new(ids, json_string(id));
		json_decref(it);
	}
	free(line);
	fclose(f);
	return ids;
}

static int
record_write(struct mem_run *run, json_t *rec, const char *name, int status, struct mem_err *err)
{
	char *t = utc_now(), *path, *text;
	int rc;

	json_object_set_new(rec, "finished", json_string(t));
	json_object_set_new(rec, "status", json_integer(status));
	free(t);
	path = in_dir(run, name);
	text = json_dumps(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	rc = mem_write_file_atomic(path, text, strlen(text), err);
	free(text);
	free(path);
	return rc;
}

/* ---- metrics and summary --------------------------------------------------- */

/* A label value escaped as the text format asks (\\, \", \n): a new string. */
static char *
label_value(const char *v)
{
	char *q = mem_xmalloc(2 * strlen(v) + 1), *o = q;

	for (; *v; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			*o++ = '\\';
		*o++ = *v == '\n' ? 'n' : *v;
	}
	*o = '\0';
	return q;
}

static json_int_t
get_int(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* t[key] += st[key], for integers. */
static void
add_int(json_t *t, json_t *st, const char *key)
{
	json_object_set_new(t, key, json_integer(get_int(t, key) + get_int(st, key)));
}

/* Adds the stage record st (an entry of run.json's stages) to the totals t. */
static void
add_stage(json_t *t, json_t *st)
{
	add_int(t, st, "read");
	add_int(t, st, "done");
	add_int(t, st, "failed");
	add_int(t, st, "bytes_written");
	json_object_set_new(t, "seconds", json_real(json_number_value(json_object_get(t, "seconds")) +
	    json_number_value(json_object_get(st, "seconds"))));
	json_object_set_new(t, "runs", json_integer(get_int(t, "runs") + 1));
	json_object_set_new(t, "skipped",
	    json_integer(get_int(t, "skipped") + json_is_true(json_object_get(st, "skipped"))));
	if (json_object_get(t, "status") == NULL || get_int(st, "status") > get_int(t, "status"))
		json_object_set_new(t, "status", json_integer(get_int(st, "status")));
}

/*
 * The stages of recs (run records, as run.json holds them) summed by stage
 * name, in the order of the four stages: an object of objects { read,
 * done, failed, bytes_written, seconds, runs, skipped, status }.  A Slurm
 * merge passes the plan's, every task's and its own record.
 */
static json_t *
stage_totals(json_t *const *recs, size_t nrecs)
{
	json_t *tot = json_object(), *st;
	size_t k, i;
	int s;

	for (s = 0; s < MEM_RUN_NSTAGES; s++) {
		json_t *t = NULL;

		for (k = 0; k < nrecs; k++)
			json_array_foreach(json_object_get(recs[k], "stages"), i, st) {
				const char *name = json_string_value(json_object_get(st, "stage"));

				if (name == NULL || strcmp(name, mem_run_stage_name(s)) != 0)
					continue;
				if (t == NULL)
					t = json_object();
				add_stage(t, st);
			}
		if (t)
			json_object_set_new(tot, mem_run_stage_name(s), t);
	}
	return tot;
}

/* The last-success time a metrics file holds for the series that starts with want, or 0. */
static double
old_success(const char *path, const char *want)
{
	char *text, *p;
	size_t len;
	double v = 0;
	struct mem_err e;

	mem_err_clear(&e);
	if (!mem_path_exists(path) || (text = mem_read_file(path, &len, &e)) == NULL)
		return 0;
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, want, strlen(want)) == 0) {
			v = strtod(p + strlen(want), NULL);
			break;
		}
	free(text);
	return v > 0 ? v : 0;
}

static void
help(FILE *fp, const char *name, const char *type, const char *text)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/*
 * Writes run->metrics (when set): the totals of each stage and of the run,
 * as node_exporter's textfile collector reads them, by temporary name and
 * rename.  exit_status < 0: the run goes on (progress, after each stage).
 * shard is "I/N" for a Slurm task, else NULL.
 */
static int
write_metrics(struct mem_run *run, json_t *const *recs, size_t nrecs, const char *shard,
    int exit_status, struct mem_err *err)
{
	static const char *const outcome[] = { "read", "done", "failed" };
	char *name = label_value(run->r->name), l[600], *text = NULL, *want;
	json_t *tot, *t;
	const char *stage;
	double last;
	size_t len = 0, k;
	FILE *fp;
	int rc;

	if (run->metrics == NULL || run->dry_run) {
		free(name);
		return 0;
	}
	if (shard) {
		snprintf(l, sizeof l, "recipe=\"%s\",shard=\"%s\"", name, shard);
	} else if (run->worker) {
		char *w = label_value(run->worker);

		snprintf(l, sizeof l, "recipe=\"%s\",worker=\"%s\"", name, w);
		free(w);
	} else {
		snprintf(l, sizeof l, "recipe=\"%s\"", name);
	}
	free(name);
	want = mem_xasprintf("memories_run_last_success_timestamp_seconds{%s} ", l);
	last = old_success(run->metrics, want);
	free(want);
	tot = stage_totals(recs, nrecs);
	if ((fp = open_memstream(&text, &len)) == NULL)
		abort();
	help(fp, "memories_run_stage_items_total", "counter",
	    "Items of a stage of a mem-run recipe by outcome: read (its input), done (emitted), failed.");
	json_object_foreach(tot, stage, t)
		for (k = 0; k < 3; k++)
			fprintf(fp, "memories_run_stage_items_total{%s,stage=\"%s\",status=\"%s\"} %lld\n", l,
			    stage, outcome[k], (long long)get_int(t, outcome[k]));
	help(fp, "memories_run_stage_bytes_written_total", "counter",
	    "Bytes of the assets a stage's items hold (their file:size).");
	json_object_foreach(tot, stage, t)
		fprintf(fp, "memories_run_stage_bytes_written_total{%s,stage=\"%s\"} %lld\n", l, stage,
		    (long long)get_int(t, "bytes_written"));
	help(fp, "memories_run_stage_seconds", "gauge",
	    "Seconds a stage took (summed over the tasks of a Slurm run; 0 when skipped).");
	json_object_foreach(tot, stage, t)
		fprintf(fp, "memories_run_stage_seconds{%s,stage=\"%s\"} %.3f\n", l, stage,
		    json_number_value(json_object_get(t, "seconds")));
	help(fp, "memories_run_stage_skipped", "gauge",
	    "1 when a stage did not run because its inputs were unchanged (Slurm: tasks that skipped it).");
	json_object_foreach(tot, stage, t)
		fprintf(fp, "memories_run_stage_skipped{%s,stage=\"%s\"} %lld\n", l, stage,
		    (long long)get_int(t, "skipped"));
	help(fp, "memories_run_stage_exit_status", "gauge",
	    "The worst exit status of a stage's program: 0, 1 some items failed.");
	json_object_foreach(tot, stage, t)
		fprintf(fp, "memories_run_stage_exit_status{%s,stage=\"%s\"} %lld\n", l, stage,
		    (long long)get_int(t, "status"));
	help(fp, "memories_run_seconds", "gauge", "Seconds the run has taken so far.");
	fprintf(fp, "memories_run_seconds{%s} %.3f\n", l, now() - run->t0);
	help(fp, "memories_run_start_timestamp_seconds", "gauge", "When the run started.");
	fprintf(fp, "memories_run_start_timestamp_seconds{%s} %.3f\n", l, run->start);
	help(fp, "memories_run_in_progress", "gauge", "1 while the run goes on, 0 once it ended.");
	fprintf(fp, "memories_run_in_progress{%s} %d\n", l, exit_status < 0);
	if (exit_status >= 0) {
		help(fp, "memories_run_exit_status", "gauge",
		    "mem-run's exit status: 0 all done, 1 some items failed, 2 bad recipe, 75 temporary.");
		fprintf(fp, "memories_run_exit_status{%s} %d\n", l, exit_status);
		if (exit_status == 0)
			last = wallclock();
	}
	if (last > 0) {
		help(fp, "memories_run_last_success_timestamp_seconds", "gauge",
		    "When a run of the recipe last ended with exit status 0.");
		fprintf(fp, "memories_run_last_success_timestamp_seconds{%s} %.3f\n", l, last);
	}
	if (fclose(fp) != 0)
		abort();
	json_decref(tot);
	/* progress need not reach the disk; the final record must */
	rc = exit_status >= 0 ? mem_write_file_atomic(run->metrics, text, len, err) :
				mem_write_file_renamed(run->metrics, text, len, err);
	free(text);
	return rc;
}

/* Writes run->summary (when set): the run record with each stage's totals. */
static int
write_summary(struct mem_run *run, json_t *rec, json_t *const *recs, size_t nrecs,
    struct mem_err *err)
{
	json_t *s;
	char *text;
	int rc;

	if (run->summary == NULL || run->dry_run)
		return 0;
	s = json_deep_copy(rec);
	json_object_set_new(s, "seconds", json_real(now() - run->t0));
	json_object_set_new(s, "totals", stage_totals(recs, nrecs));
	text = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(s);
	text = mem_xrealloc(text, strlen(text) + 2);
	strcat(text, "\n");
	rc = mem_write_file_atomic(run->summary, text, strlen(text), err);
	free(text);
	return rc;
}

/* Copies the recipe into the run directory (what the Slurm jobs read). */
static int
keep_recipe(struct mem_run *run, struct mem_err *err)
{
	char *dst = in_dir(run, "recipe.yaml"), *src = mem_path_absolute(run->r->path);
	int rc = strcmp(src, dst) == 0 ? 0 : mem_copy_file(run->r->path, dst, err);

	free(src);
	free(dst);
	return rc;
}

static int
worse(int a, int b)
{
	if (a < 0 || b < 0)
		return -1;
	return a > b ? a : b;
}

/* ---- single host --------------------------------------------------------- */

/*
 * argv with the ledger options after the program name, when run is a
 * worker: a new vector (argv is freed).  Files are named, never read.
 */
static char **
ledger_argv(const struct mem_run *run, char **argv)
{
	const struct mem_ledger_opts *o = &run->ledger;
	char **v;
	size_t n, k = 0, i;

	if (run->ledger.url == NULL)
		return argv;
	for (n = 0; argv[n]; n++)
		;
	v = mem_xcalloc(n + 14, sizeof *v);
	v[k++] = argv[0];
	v[k++] = mem_xstrdup("--ledger");
	v[k++] = mem_xstrdup(o->url);
	if (o->cacert) {
		v[k++] = mem_xstrdup("--ledger-cacert");
		v[k++] = mem_path_absolute(o->cacert);
	}
	if (o->cert) {
		v[k++] = mem_xstrdup("--ledger-cert");
		v[k++] = mem_path_absolute(o->cert);
	}
	if (o->key) {
		v[k++] = mem_xstrdup("--ledger-key");
		v[k++] = mem_path_absolute(o->key);
	}
	if (o->ttl > 0) {
		v[k++] = mem_xstrdup("--ledger-ttl");
		v[k++] = mem_xasprintf("%d", o->ttl);
	}
	if (o->deadline > 0) {
		v[k++] = mem_xstrdup("--ledger-timeout");
		v[k++] = mem_xasprintf("%.0f", o->deadline);
	}
	for (i = 1; i < n; i++)
		v[k++] = argv[i];
	v[k] = NULL;
	free(argv);
	return v;
}

int
mem_run_all(struct mem_run *run, struct mem_err *err)
{
	char *work = work_dir(run), *m[MEM_RUN_NSTAGES], **argv, *in[2] = { NULL, NULL };
	char *done = in_dir(run, "done");
	json_t *rec = NULL;
	int s, rc = 0, worst = 0;

	for (s = 0; s < MEM_RUN_NSTAGES; s++)
		m[s] = in_dir(run, manifests[s]);
	if (!run->dry_run) {
		if (mem_workdir(run->dir, err) < 0 || mem_workdir(run->state, err) < 0 ||
		    keep_recipe(run, err) < 0) {
			worst = -1;
			goto out;
		}
		if (run->worker)
			unlink(done);
		rec = record_new(run, run->worker ? "consensus-worker" : "single-host");
	}
	for (s = 0; s < MEM_RUN_NSTAGES; s++) {
		if (s == MEM_RUN_INFER && run->r->stages == NULL)
			continue;
		in[0] = s == MEM_RUN_FETCH ? NULL :
			s == MEM_RUN_STORE && run->r->stages == NULL ? m[MEM_RUN_TILE] : m[s - 1];
		argv = ledger_argv(run, mem_recipe_argv(run->r, s, work, in, 0, 1));
		rc = run_stage(run, rec, s, argv, in[0] ? in : NULL, m[s], err);
		mem_recipe_argv_free(argv);
		worst = worse(worst, rc);
		if (rc < 0)
			break;
		if (rec && s + 1 < MEM_RUN_NSTAGES) {
			struct mem_err e;

			mem_err_clear(&e);
			write_metrics(run, &rec, 1, NULL, -1, &e); /* progress: best effort */
		}
	}
	if (rec) {
		struct mem_err e;
		int st;

		mem_err_clear(&e);
		json_object_set_new(rec, "inputs", manifest_ids(m[MEM_RUN_FETCH]));
		st = worst < 0 ? (int)err->status : worst;
		if ((record_write(run, rec, "run.json", st, worst < 0 ? &e : err) < 0 ||
			write_summary(run, rec, &rec, 1, worst < 0 ? &e : err) < 0 ||
			write_metrics(run, &rec, 1, NULL, st, worst < 0 ? &e : err) < 0) &&
		    worst >= 0)
			worst = -1;
		json_decref(rec);
		/* a worker's stages all ended well: what deployments read as finished */
		if (run->worker && worst == 0 && mem_write_file_atomic(done, run->worker,
		    strlen(run->worker), err) < 0)
			worst = -1;
	}
out:
	free(done);
	for (s = 0; s < MEM_RUN_NSTAGES; s++)
		free(m[s]);
	free(work);
	return worst;
}

/* ---- Slurm --------------------------------------------------------------- */

/* Runs a command and returns its first output line (a job id): a new string or NULL. */
static char *
capture(char *const *argv, struct mem_err *err)
{
	char *line = command_line(argv, NULL), *cmd = mem_xasprintf("%s 2>&1", line), buf[1024];
	char *out = NULL;
	FILE *p;
	int st;

	free(line);
	fflush(NULL);
	if ((p = popen(cmd, "r")) == NULL) {
		mem_err_set(err, MEM_ETEMP, "cannot run %s: %s", argv[0], strerror(errno));
		free(cmd);
		return NULL;
	}
	buf[0] = '\0';
	if (fgets(buf, sizeof buf, p) == NULL)
		buf[0] = '\0';
	while (getc(p) != EOF)
		;
	st = pclose(p);
	buf[strcspn(buf, "\n")] = '\0';
	if (st != 0 || buf[0] == '\0')
		mem_err_set(err, MEM_ETEMP, "%s failed%s%s", argv[0], buf[0] ? ": " : "", buf);
	else
		out = mem_xstrdup(buf);
	free(cmd);
	return out;
}

static char *
shard_file(const struct mem_run *run, int i, const char *name)
{
	char *rel = mem_xasprintf("shards/%d/%s", i, name), *p = in_dir(run, rel);

	free(rel);
	return p;
}

/* Writes an executable job script. */
static int
write_script(const char *path, const char *text, struct mem_err *err)
{
	if (mem_write_file_atomic(path, text, strlen(text), err) < 0)
		return -1;
	if (chmod(path, 0755) < 0)
		return mem_err_set(err, MEM_EUSAGE, "cannot chmod '%s': %s", path, strerror(errno));
	return 0;
}

/* sbatch the script with an array list (or NULL) and a dependency (or NULL); the job id. */
static char *
sbatch(struct mem_run *run, const char *script, const char *array, const char *after,
    const char *log, struct mem_err *err)
{
	char *av[64], *job, cwd[4096];
	int n = 0, k;
	char *const *p;

	av[n++] = mem_xstrdup("sbatch");
	av[n++] = mem_xstrdup("--parsable");
	av[n++] = mem_xasprintf("--job-name=mem-%s", run->r->name);
	if (getcwd(cwd, sizeof cwd))
		av[n++] = mem_xasprintf("--chdir=%s", cwd);
	av[n++] = mem_xasprintf("--output=%s", log);
	if (array)
		av[n++] = mem_xasprintf("--array=%s", array);
	if (after)
		av[n++] = mem_xasprintf("--dependency=afterok:%s", after);
	if (run->r->slurm_partition)
		av[n++] = mem_xasprintf("--partition=%s", run->r->slurm_partition);
	if (run->r->slurm_time)
		av[n++] = mem_xasprintf("--time=%s", run->r->slurm_time);
	for (p = run->r->sbatch_args; p && *p && n < 60; p++)
		av[n++] = mem_xstrdup(*p);
	av[n++] = mem_xstrdup(script);
	av[n] = NULL;
	if (run->dry_run) {
		char *line = command_line(av, NULL);

		say(run, "%s", line);
		free(line);
		job = mem_xstrdup(after ? "MERGE_JOB" : "ARRAY_JOB");
	} else {
		job = capture(av, err);
		/* --parsable prints "jobid[;cluster]" */
		if (job)
			job[strcspn(job, ";")] = '\0';
	}
	for (k = 0; k < n; k++)
		free(av[k]);
	return job;
}

static int
count_cells(struct mem_run *run, const char *scenes, struct mem_err *err)
{
	char *work = work_dir(run), *in[2] = { (char *)scenes, NULL }, **argv, *cells;
	char **a;
	int n, rc;

	argv = mem_recipe_argv(run->r, MEM_RUN_TILE, work, in, 0, 1);
	/* insert --list-cells after the program name */
	for (n = 0; argv[n]; n++)
		;
	a = mem_xcalloc((size_t)n + 2, sizeof *a);
	a[0] = argv[0];
	a[1] = "--list-cells";
	memcpy(a + 2, argv + 1, (size_t)n * sizeof *a);
	cells = in_dir(run, "cells.txt");
	rc = spawn(run, a, cells, err);
	n = rc == 0 ? (int)count_lines(cells) : -1;
	if (rc > 0)
		mem_err_set(err, MEM_EUSAGE, "mem-tile --list-cells exited with status %d", rc);
	free(a);
	mem_recipe_argv_free(argv);
	free(cells);
	free(work);
	return n;
}

static int
write_plan(struct mem_run *run, json_t *plan, struct mem_err *err)
{
	char *path = in_dir(run, "slurm/plan.json");
	char *text = json_dumps(plan, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int rc = mem_write_file_atomic(path, text, strlen(text), err);

	free(text);
	free(path);
	return rc;
}

/* Submits the array (all tasks, or the list given) and the merge job. */
static int
submit(struct mem_run *run, json_t *plan, int ntasks, const char *list, struct mem_err *err)
{
	char *task_sh = in_dir(run, "slurm/task.sh"), *merge_sh = in_dir(run, "slurm/merge.sh");
	char *tlog = in_dir(run, "slurm/task-%a.log"), *mlog = in_dir(run, "slurm/merge-%j.log");
	char *array = list ? mem_xstrdup(list) : mem_xasprintf("0-%d", ntasks - 1);
	char *job = NULL, *merge = NULL;
	int rc = -1;

	if ((job = sbatch(run, task_sh, array, NULL, tlog, err)) == NULL)
		goto out;
	if ((merge = sbatch(run, merge_sh, NULL, job, mlog, err)) == NULL)
		goto out;
	json_object_set_new(plan, "array_job", json_string(job));
	json_object_set_new(plan, "merge_job", json_string(merge));
	json_object_set_new(plan, "submitted", json_string(array));
	if (!run->dry_run)
		say(run, "submitted array job %s (tasks %s) and merge job %s", job, array, merge);
	rc = run->dry_run ? 0 : write_plan(run, plan, err);
out:
	free(job);
	free(merge);
	free(array);
	free(task_sh);
	free(merge_sh);
	free(tlog);
	free(mlog);
	return rc;
}

int
mem_run_slurm_submit(struct mem_run *run, int ntasks, struct mem_err *err)
{
	char *work = work_dir(run), *scenes = in_dir(run, manifests[MEM_RUN_FETCH]);
	char *sdir = in_dir(run, "slurm"), *self_q, *dir_q, *text, *p, **argv;
	json_t *rec = NULL, *plan = NULL;
	int rc = -1, cells = 0;

	if (!run->dry_run && (mem_workdir(sdir, err) < 0 || keep_recipe(run, err) < 0))
		goto out;
	if (!run->dry_run)
		rec = record_new(run, "slurm-plan");
	argv = mem_recipe_argv(run->r, MEM_RUN_FETCH, work, NULL, 0, 1);
	rc = run_stage(run, rec, MEM_RUN_FETCH, argv, NULL, scenes, err);
	mem_recipe_argv_free(argv);
	if (rc < 0)
		goto out;
	if (!run->dry_run) {
		if ((cells = count_cells(run, scenes, err)) < 0) {
			rc = -1;
			goto out;
		}
		if (ntasks <= 0)
			ntasks = run->r->slurm_tasks;
		if (ntasks <= 0)
			ntasks = cells > 0 ? (cells + 15) / 16 : 1;
		if (ntasks > 1000)
			ntasks = 1000;
	} else if (ntasks <= 0) {
		ntasks = run->r->slurm_tasks > 0 ? run->r->slurm_tasks : 1;
	}
	self_q = sh_quote(run->self ? run->self : "mem-run");
	dir_q = sh_quote(run->dir);
	text = mem_xasprintf("#!/bin/sh\n"
			     "# mem-run --slurm: task I of the array tiles shard I/%d and infers it\n"
			     "# (stages that read neighbouring pixels run in the merge job).\n"
			     "exec %s --task \"$SLURM_ARRAY_TASK_ID/%d\" %s\n",
	    ntasks, self_q, ntasks, dir_q);
	p = in_dir(run, "slurm/task.sh");
	rc = run->dry_run ? 0 : write_script(p, text, err);
	free(p);
	free(text);
	if (rc == 0) {
		char *mq = run->metrics ? sh_quote(run->metrics) : NULL;
		char *sq = run->summary ? sh_quote(run->summary) : NULL;

		text = mem_xasprintf("#!/bin/sh\n"
				     "# mem-run --slurm: store the results of all %d shards.\n"
				     "exec %s --merge%s%s%s%s %s\n",
		    ntasks, self_q, mq ? " --metrics " : "", mq ? mq : "", sq ? " --summary " : "",
		    sq ? sq : "", dir_q);
		free(mq);
		free(sq);
		p = in_dir(run, "slurm/merge.sh");
		rc = run->dry_run ? 0 : write_script(p, text, err);
		free(p);
		free(text);
	}
	free(self_q);
	free(dir_q);
	if (rc < 0)
		goto out;
	plan = json_object();
	json_object_set_new(plan, "tasks", json_integer(ntasks));
	json_object_set_new(plan, "cells", json_integer(cells));
	json_object_set_new(plan, "scenes", json_integer((json_int_t)count_lines(scenes)));
	if (run->dry_run)
		say(run, "# plan: %d array tasks (counted from the tile cells when run)", ntasks);
	else
		say(run, "plan: %d scenes, %d cells, %d array tasks", (int)count_lines(scenes), cells,
		    ntasks);
	rc = submit(run, plan, ntasks, NULL, err);
	if (rec) {
		struct mem_err e;

		mem_err_clear(&e);
		json_object_set(rec, "slurm", plan);
		json_object_set_new(rec, "inputs", manifest_ids(scenes));
		record_write(run, rec, "plan.json", rc < 0 ? (int)err->status : 0, &e);
	}
out:
	json_decref(plan);
	json_decref(rec);
	free(work);
	free(scenes);
	free(sdir);
	return rc;
}

/*
 * The recipe's stages read pixels around each one (a dilated cloud mask, a
 * convolution): mem-infer then reads each tile's neighbours, which a task's
 * shard of cells does not hold, so such a chain runs in the merge step over
 * every shard's tiles (as one host runs it) and the tasks only tile.
 */
static int
recipe_halo(const struct mem_recipe *r)
{
	struct mem_chain ch;
	struct mem_err e;
	int h = 0;

	if (r->stages == NULL)
		return 0;
	memset(&ch, 0, sizeof ch);
	mem_err_clear(&e);
	if (mem_chain_parse(&ch, r->stages, &e) == 0)
		h = ch.halo;
	mem_chain_release(&ch);
	return h;
}

int
mem_run_task(struct mem_run *run, int shard, int nshards, struct mem_err *err)
{
	char *work = work_dir(run), *scenes = in_dir(run, manifests[MEM_RUN_FETCH]);
	char *tiles = shard_file(run, shard, "tiles.ndjson");
	char *results = shard_file(run, shard, "results.ndjson");
	char *done = shard_file(run, shard, "done"), *dir = mem_path_dirname(done);
	char *in[2] = { NULL, NULL }, **argv;
	json_t *rec = record_new(run, "slurm-task");
	int rc, worst = 0;

	unlink(done);
	if (mem_workdir(dir, err) < 0) {
		worst = -1;
		goto out;
	}
	in[0] = scenes;
	argv = mem_recipe_argv(run->r, MEM_RUN_TILE, work, in, shard, nshards);
	rc = run_stage(run, rec, MEM_RUN_TILE, argv, in, tiles, err);
	mem_recipe_argv_free(argv);
	worst = worse(worst, rc);
	if (rc >= 0 && run->r->stages && !recipe_halo(run->r)) {
		in[0] = tiles;
		argv = mem_recipe_argv(run->r, MEM_RUN_INFER, work, in, 0, 1);
		rc = run_stage(run, rec, MEM_RUN_INFER, argv, in, results, err);
		mem_recipe_argv_free(argv);
		worst = worse(worst, rc);
	} else if (rc >= 0 && mem_copy_file(tiles, results, err) < 0) {
		worst = -1;
	}
	json_object_set_new(rec, "shard", json_sprintf("%d/%d", shard, nshards));
	if (worst == 0) {
		char *t = mem_xasprintf("%d/%d\n", shard, nshards);

		if (mem_write_file_atomic(done, t, strlen(t), err) < 0)
			worst = -1;
		free(t);
	}
	{
		struct mem_err e;

		mem_err_clear(&e);
		/* each task's record beside its manifests */
		char *name = mem_xasprintf("shards/%d/run.json", shard);

		record_write(run, rec, name, worst < 0 ? (int)err->status : worst, &e);
		free(name);
		name = mem_xasprintf("%d/%d", shard, nshards);
		write_summary(run, rec, &rec, 1, &e);
		write_metrics(run, &rec, 1, name, worst < 0 ? (int)err->status : worst, &e);
		free(name);
	}
out:
	json_decref(rec);
	free(work);
	free(scenes);
	free(tiles);
	free(results);
	free(done);
	free(dir);
	return worst;
}

static json_t *
read_plan(struct mem_run *run, struct mem_err *err)
{
	char *path = in_dir(run, "slurm/plan.json");
	json_error_t je;
	json_t *plan = json_load_file(path, 0, &je);

	if (plan == NULL || json_integer_value(json_object_get(plan, "tasks")) < 1) {
		mem_err_set(err, MEM_EUSAGE, "'%s': not a Slurm run directory (no plan)", run->dir);
		json_decref(plan);
		plan = NULL;
	}
	free(path);
	return plan;
}

int
mem_run_merge(struct mem_run *run, struct mem_err *err)
{
	char *work = work_dir(run), *stored = in_dir(run, manifests[MEM_RUN_STORE]);
	char *scenes = in_dir(run, manifests[MEM_RUN_FETCH]), **in, **argv, *missing = NULL;
	json_t *plan = read_plan(run, err), *rec;
	int n, i, rc;

	if (plan == NULL) {
		free(work);
		free(stored);
		free(scenes);
		return -1;
	}
	n = (int)json_integer_value(json_object_get(plan, "tasks"));
	in = mem_xcalloc((size_t)n + 1, sizeof *in);
	for (i = 0; i < n; i++) {
		char *done = shard_file(run, i, "done");

		if (!mem_path_exists(done)) {
			char *m = mem_xasprintf("%s%s%d", missing ? missing : "", missing ? "," : "", i);

			free(missing);
			missing = m;
		}
		free(done);
		in[i] = shard_file(run, i, "results.ndjson");
	}
	rec = record_new(run, "slurm-merge");
	if (missing) {
		rc = mem_err_set(err, MEM_ETEMP,
		    "'%s': tasks %s are not done (mem-run --slurm --resubmit-failed %s)", run->dir,
		    missing, run->dir);
	} else {
		rc = 0;
		if (run->r->stages && recipe_halo(run->r)) {
			/* the tasks only tiled: infer over all of them, neighbours included */
			char *results = in_dir(run, manifests[MEM_RUN_INFER]);

			argv = mem_recipe_argv(run->r, MEM_RUN_INFER, work, in, 0, 1);
			rc = run_stage(run, rec, MEM_RUN_INFER, argv, in, results, err);
			mem_recipe_argv_free(argv);
			mem_recipe_argv_free(in);
			in = mem_xcalloc(2, sizeof *in);
			in[0] = results;
		}
		if (rc >= 0) {
			argv = mem_recipe_argv(run->r, MEM_RUN_STORE, work, in, 0, 1);
			rc = worse(rc, run_stage(run, rec, MEM_RUN_STORE, argv, in, stored, err));
			mem_recipe_argv_free(argv);
		}
	}
	{
		struct mem_err e;
		json_t **recs = mem_xcalloc((size_t)n + 2, sizeof *recs);
		char *p = in_dir(run, "plan.json");
		size_t nr = 0;
		int st = rc < 0 ? (int)err->status : rc;

		mem_err_clear(&e);
		json_object_set(rec, "slurm", plan);
		json_object_set_new(rec, "inputs", manifest_ids(scenes));
		record_write(run, rec, "run.json", st, &e);
		/* the totals: the fetch of the submission, each task's, the store here */
		if ((recs[nr] = json_load_file(p, 0, NULL)) != NULL)
			nr++;
		free(p);
		for (i = 0; i < n; i++) {
			p = shard_file(run, i, "run.json");
			if ((recs[nr] = json_load_file(p, 0, NULL)) != NULL)
				nr++;
			free(p);
		}
		recs[nr++] = json_incref(rec);
		if ((write_summary(run, rec, recs, nr, rc < 0 ? &e : err) < 0 ||
			write_metrics(run, recs, nr, NULL, st, rc < 0 ? &e : err) < 0) && rc >= 0)
			rc = -1;
		while (nr > 0)
			json_decref(recs[--nr]);
		free(recs);
	}
	json_decref(rec);
	json_decref(plan);
	mem_recipe_argv_free(in);
	free(missing);
	free(work);
	free(stored);
	free(scenes);
	return rc;
}

int
mem_run_slurm_resubmit(struct mem_run *run, struct mem_err *err)
{
	json_t *plan = read_plan(run, err);
	char *list = NULL, *av[3];
	const char *merge;
	int n, i, rc;

	if (plan == NULL)
		return -1;
	n = (int)json_integer_value(json_object_get(plan, "tasks"));
	for (i = 0; i < n; i++) {
		char *done = shard_file(run, i, "done");

		if (!mem_path_exists(done)) {
			char *m = mem_xasprintf("%s%s%d", list ? list : "", list ? "," : "", i);

			free(list);
			list = m;
		}
		free(done);
	}
	if (list == NULL) {
		say(run, "all %d tasks are done; nothing to resubmit", n);
		json_decref(plan);
		return 0;
	}
	/* the old merge job waits on a failed array for ever: cancel it */
	if ((merge = json_string_value(json_object_get(plan, "merge_job"))) != NULL && !run->dry_run) {
		struct mem_err e;
		char *out;

		mem_err_clear(&e);
		av[0] = "scancel";
		av[1] = (char *)merge;
		av[2] = NULL;
		out = capture(av, &e);
		free(out);
	}
	rc = submit(run, plan, n, list, err);
	free(list);
	json_decref(plan);
	return rc;
}
