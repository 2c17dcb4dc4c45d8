/*
 * mem-run - run a recipe: fetch | tile | infer | store on this host with a
 * manifest per stage in a run directory, as one worker of a consensus run
 * (--ledger: the tools share the items through etcd), or as a Slurm array
 * job.
 *
 * Written in C over libmemories rather than as a shell script so that the
 * recipe is checked by the very parsers the programs use (grid, composite,
 * stages), with libyaml instead of a YAML reader made of sed.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "files.h"
#include "recipe.h"
#include "run.h"

static const char usage[] =
"Usage: mem-run [OPTION]... RECIPE\n"
"       mem-run --slurm [--tasks N] [OPTION]... RECIPE\n"
"       mem-run --slurm --resubmit-failed RUN_DIR\n"
"       mem-run --ledger URL [--worker ID] [OPTION]... RECIPE\n"
"Run the recipe RECIPE (a YAML file: area, dates, source, grid, stages,\n"
"outputs) as mem-fetch | mem-tile | mem-infer | mem-store, each stage\n"
"writing its manifest in the run directory, so that a rerun skips the\n"
"stages whose inputs did not change and the programs skip finished items.\n"
"The run record, run.json, names the commands, versions and input items.\n"
"\n"
"  -n, --dry-run           check the recipe and print the commands; run nothing\n"
"      --run-dir DIR       the run directory (default: the recipe's run.dir,\n"
"                          else runs/NAME)\n"
"      --wait              wait for another run of the recipe to end (by\n"
"                          default a second run exits 75 at once)\n"
"      --force             run every stage, even those whose inputs are unchanged\n"
"      --slurm             fetch here, then submit the tiling and inference as\n"
"                          a Slurm array job (sbatch --array) and the storing\n"
"                          as a job that depends on it (afterok)\n"
"      --tasks N           array tasks (default: slurm.tasks, else a task per\n"
"                          16 tile cells)\n"
"      --resubmit-failed   with --slurm: submit again the tasks of RUN_DIR that\n"
"                          did not finish, and a new merge job\n"
"      --task I/N          (job scripts) run array task I of N of RUN_DIR\n"
"      --merge             (job scripts) store the results of RUN_DIR's tasks\n"
"      --metrics FILE      write the run's progress and results as Prometheus\n"
"                          text (node_exporter's textfile collector): items\n"
"                          read, done and failed, bytes and seconds per stage,\n"
"                          exit status, last success; with --slurm the merge\n"
"                          job writes it, summed over the tasks\n"
"      --summary FILE      write the run record (commands, versions, input ids)\n"
"                          with each stage's totals as JSON\n"
"      --ledger URL        run as one worker of a consensus run: every stage\n"
"                          gets --ledger URL (etcd://H:P[,H:P...]/PREFIX, or\n"
"                          etcds:// for TLS), so the workers sharing the run\n"
"                          directory and URL do each item once; default\n"
"                          $MEM_LEDGER, else the recipe's run.ledger\n"
"      --worker ID         this worker's name: its manifests, stamps, record and\n"
"                          lock go to RUN_DIR/workers/ID/ (default: the short\n"
"                          host name); a second process with the same ID exits 75\n"
"      --ledger-cacert FILE, --ledger-cert FILE, --ledger-key FILE\n"
"                          passed to every stage (by name; also\n"
"                          $MEM_LEDGER_CACERT, _CERT, _KEY)\n"
"      --ledger-ttl S      passed to every stage: lease seconds (default 10)\n"
"      --ledger-timeout S  passed to every stage: give up (exit 75) when no etcd\n"
"                          member answers for S seconds (default 60)\n"
"  -q, --quiet             no notes on standard error\n"
"  -h, --help              show this help and exit\n"
"  -V, --version           show the version and exit\n"
"\n"
"Exit status: 0 all done, 1 some items failed, 2 usage error or bad recipe,\n"
"75 temporary failure (another run or worker holds the lock, a stage could\n"
"not reach its source or the ledger, a Slurm command failed). See mem-run(1).\n";

enum { O_RUN_DIR = 2000, O_WAIT, O_FORCE, O_SLURM, O_TASKS, O_RESUBMIT, O_TASK, O_MERGE, O_METRICS,
	O_SUMMARY, O_WORKER };

static const struct option longopts[] = {
	{ "dry-run", no_argument, NULL, 'n' },
	{ "run-dir", required_argument, NULL, O_RUN_DIR },
	{ "wait", no_argument, NULL, O_WAIT },
	{ "force", no_argument, NULL, O_FORCE },
	{ "slurm", no_argument, NULL, O_SLURM },
	{ "tasks", required_argument, NULL, O_TASKS },
	{ "resubmit-failed", no_argument, NULL, O_RESUBMIT },
	{ "task", required_argument, NULL, O_TASK },
	{ "merge", no_argument, NULL, O_MERGE },
	{ "metrics", required_argument, NULL, O_METRICS },
	{ "summary", required_argument, NULL, O_SUMMARY },
	{ "ledger", required_argument, NULL, OPT_LEDGER },
	{ "ledger-cacert", required_argument, NULL, OPT_LEDGER_CACERT },
	{ "ledger-cert", required_argument, NULL, OPT_LEDGER_CERT },
	{ "ledger-key", required_argument, NULL, OPT_LEDGER_KEY },
	{ "ledger-ttl", required_argument, NULL, OPT_LEDGER_TTL },
	{ "ledger-timeout", required_argument, NULL, OPT_LEDGER_TIMEOUT },
	{ "worker", required_argument, NULL, O_WORKER },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

struct say_ctx {
	int dry_run, quiet;
};

static void
say(void *ctx, const char *line)
{
	struct say_ctx *s = ctx;

	if (s->dry_run)
		printf("%s\n", line);
	else if (!s->quiet)
		fprintf(stderr, "mem-run: %s\n", line);
}

/* The directory of this program when the other programs are beside it. */
static char *
find_bindir(char **self)
{
	char exe[PATH_MAX], *dir, *fetch;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

	*self = NULL;
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	*self = mem_xstrdup(exe);
	dir = mem_path_dirname(exe);
	fetch = mem_path_join(dir, "mem-fetch");
	if (access(fetch, X_OK) != 0) {
		free(dir);
		dir = NULL;
	}
	free(fetch);
	return dir;
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct mem_recipe r;
	struct mem_run run;
	struct mem_err err;
	struct say_ctx sc = { 0, 0 };
	const char *run_dir = NULL, *worker = NULL, *ledger_opt = NULL;
	char *bindir, *self, *recipe_path = NULL, *metrics = NULL, *summary = NULL;
	int opt, wait = 0, force = 0, slurm = 0, tasks = 0, resubmit = 0, merge = 0;
	int shard = -1, nshards = 0, rc;

	mem_cli_init(&cli, "mem-run", argc, argv);
	while ((opt = getopt_long(argc, argv, "hVqn", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			mem_cli_version(&cli);
		case 'q':
			cli.quiet = sc.quiet = 1;
			break;
		case 'n':
			sc.dry_run = 1;
			break;
		case O_RUN_DIR:
			run_dir = optarg;
			break;
		case O_WAIT:
			wait = 1;
			break;
		case O_FORCE:
			force = 1;
			break;
		case O_SLURM:
			slurm = 1;
			break;
		case O_TASKS:
			tasks = (int)mem_cli_number(&cli, "--tasks", optarg, 1, 1000);
			break;
		case O_RESUBMIT:
			resubmit = 1;
			break;
		case O_TASK: {
			char *end;
			long i = strtol(optarg, &end, 10), n = *end == '/' ? strtol(end + 1, &end, 10) : 0;

			if (*end || n < 1 || i < 0 || i >= n)
				mem_cli_usage_error(&cli, "invalid --task '%s': expected I/N with 0 <= I < N",
				    optarg);
			shard = (int)i;
			nshards = (int)n;
			break;
		}
		case O_MERGE:
			merge = 1;
			break;
		case O_METRICS:
			free(metrics);
			metrics = mem_path_absolute(optarg);
			break;
		case O_SUMMARY:
			free(summary);
			summary = mem_path_absolute(optarg);
			break;
		case OPT_LEDGER: {
			struct mem_err e;

			if (mem_ledger_parse(optarg, &e) < 0)
				mem_cli_usage_error(&cli, "--ledger: %s", e.msg);
			cli.ledger_opts.url = optarg;
			ledger_opt = "--ledger";
			break;
		}
		case OPT_LEDGER_CACERT:
		case OPT_LEDGER_CERT:
		case OPT_LEDGER_KEY:
		case OPT_LEDGER_TTL:
		case OPT_LEDGER_TIMEOUT:
			mem_cli_common_option(&cli, opt, optarg);
			if (ledger_opt == NULL)
				ledger_opt = opt == OPT_LEDGER_CACERT ? "--ledger-cacert" :
					     opt == OPT_LEDGER_CERT ? "--ledger-cert" :
					     opt == OPT_LEDGER_KEY ? "--ledger-key" :
					     opt == OPT_LEDGER_TTL ? "--ledger-ttl" : "--ledger-timeout";
			break;
		case O_WORKER: {
			struct mem_err e;

			if (mem_run_worker_check(optarg, &e) < 0)
				mem_cli_usage_error(&cli, "--worker: %s", e.msg);
			worker = optarg;
			break;
		}
		default:
			fprintf(stderr, "Try 'mem-run --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (optind != argc - 1)
		mem_cli_usage_error(&cli, optind < argc ? "one recipe at a time" :
		    resubmit || merge || nshards ? "no run directory given" : "no recipe given");
	if (resubmit && !slurm)
		mem_cli_usage_error(&cli, "--resubmit-failed goes with --slurm");
	if ((resubmit || merge || nshards) && run_dir)
		mem_cli_usage_error(&cli, "--run-dir does not go with --task, --merge or --resubmit-failed");
	if ((ledger_opt || worker) && (slurm || merge || nshards))
		mem_cli_usage_error(&cli, "%s does not go with --slurm, --task or --merge",
		    ledger_opt ? ledger_opt : "--worker");
	if (resubmit || merge || nshards) {
		/* the argument is a run directory: its recipe.yaml is the recipe as submitted */
		run_dir = argv[optind];
		recipe_path = mem_path_join(run_dir, "recipe.yaml");
	} else {
		recipe_path = mem_xstrdup(argv[optind]);
	}
	mem_err_clear(&err);
	if (mem_recipe_load(&r, recipe_path, &err) < 0) {
		mem_cli_error(&cli, &err);
		free(recipe_path);
		free(metrics);
		free(summary);
		mem_recipe_release(&r);
		return mem_cli_exit(&cli);
	}
	free(recipe_path);
	/* the ledger: --ledger, else $MEM_LEDGER, else the recipe's run.ledger */
	if (cli.ledger_opts.url == NULL && !(slurm || merge || nshards))
		cli.ledger_opts.url = r.ledger;
	if (cli.ledger_opts.url && mem_ledger_parse(cli.ledger_opts.url, &err) < 0)
		mem_cli_usage_error(&cli, "MEM_LEDGER: %s", err.msg); /* the others are checked */
	if (cli.ledger_opts.url == NULL && (worker || ledger_opt))
		mem_cli_usage_error(&cli, "%s goes with --ledger", worker ? "--worker" : ledger_opt);
	bindir = find_bindir(&self);
	mem_run_init(&run, &r, run_dir);
	if (cli.ledger_opts.url && !(slurm || merge || nshards)) {
		run.ledger = cli.ledger_opts;
		if (mem_run_worker(&run, worker, &err) < 0)
			mem_cli_usage_error(&cli, "%s", err.msg);
	}
	run.bindir = bindir;
	run.self = self;
	run.dry_run = sc.dry_run;
	run.force = force;
	run.wait = wait;
	run.say = say;
	run.say_ctx = &sc;
	run.argv = argv;
	run.metrics = metrics;
	run.summary = summary;
	if (nshards) {
		rc = mem_run_task(&run, shard, nshards, &err);
	} else if (resubmit) {
		rc = mem_run_slurm_resubmit(&run, &err);
	} else if (run.dry_run) {
		rc = slurm ? mem_run_slurm_submit(&run, tasks, &err) : mem_run_all(&run, &err);
	} else {
		if (merge)
			run.wait = 1;
		rc = mem_run_lock(&run, &err);
		if (rc == 0)
			rc = merge ? mem_run_merge(&run, &err) :
			     slurm ? mem_run_slurm_submit(&run, tasks, &err) :
				     mem_run_all(&run, &err);
	}
	if (rc < 0)
		mem_cli_error(&cli, &err);
	else if (rc > 0)
		cli.worst = rc;
	mem_run_release(&run);
	mem_recipe_release(&r);
	free(bindir);
	free(self);
	free(metrics);
	free(summary);
	return mem_cli_exit(&cli);
}
