/*
 * cli.h - what the programs share: messages, exit status, reading item
 * streams, writing items, and the options every tool has.
 */
#ifndef MEM_CLI_H
#define MEM_CLI_H

#include <getopt.h>
#include <jansson.h>

#include "ledger.h"
#include "memories.h"
#include "runrec.h"
#include "shard.h"

/* Long-option values shared by the programs (above any short option). */
enum {
	OPT_WORKDIR = 1000, OPT_STRICT, OPT_BBOX, OPT_DATETIME, OPT_COLLECTION, OPT_MAX_CLOUD,
	OPT_ASSETS, OPT_MAX_DEPTH, OPT_MAX_ITEMS, OPT_TIMEOUT, OPT_RETRIES, OPT_DRY_RUN,
	OPT_BANDS, OPT_DEVICE, OPT_CO, OPT_CATALOG_ID, OPT_TITLE, OPT_SIZE, OPT_CAFILE,
	OPT_API, OPT_SOURCE, OPT_AOI, OPT_LIMIT, OPT_SORTBY, OPT_QUERY, OPT_FILTER, OPT_GET, OPT_SIGN, OPT_WHOLE,
	OPT_VECTOR, OPT_LAYERS, OPT_T_SRS, OPT_PER_HOST, OPT_OVERPASS, OPT_OVERPASS_URL,
	OPT_SHARD, OPT_LIST_CELLS, OPT_COMPOSITE, OPT_MEM, OPT_METRICS, OPT_SUMMARY, OPT_PLAN,
	OPT_PLAN_PER_TASK, OPT_LEDGER, OPT_LEDGER_CACERT, OPT_LEDGER_CERT, OPT_LEDGER_KEY, OPT_LEDGER_TTL,
	OPT_LEDGER_TIMEOUT
};

/* The long options every program that reads items has; end a longopts table with it. */
#define MEM_CLI_COMMON_OPTIONS \
	{ "shard", required_argument, NULL, OPT_SHARD }, \
	{ "metrics", required_argument, NULL, OPT_METRICS }, \
	{ "summary", required_argument, NULL, OPT_SUMMARY }, \
	{ "ledger", required_argument, NULL, OPT_LEDGER }, \
	{ "ledger-cacert", required_argument, NULL, OPT_LEDGER_CACERT }, \
	{ "ledger-cert", required_argument, NULL, OPT_LEDGER_CERT }, \
	{ "ledger-key", required_argument, NULL, OPT_LEDGER_KEY }, \
	{ "ledger-ttl", required_argument, NULL, OPT_LEDGER_TTL }, \
	{ "ledger-timeout", required_argument, NULL, OPT_LEDGER_TIMEOUT }, \
	{ "workdir", required_argument, NULL, OPT_WORKDIR }, \
	{ "jobs", required_argument, NULL, 'j' }, \
	{ "strict", no_argument, NULL, OPT_STRICT }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }, \
	{ NULL, 0, NULL, 0 }

/* The --shard line in --help of the tools that shard their items by id (mem-tile shards cells). */
#define MEM_CLI_SHARD_HELP \
"      --shard I/N         only the items of shard I of N (0 <= I < N), a stable\n" \
"                          split by a hash of the item id, for job arrays\n"

/* Their lines in --help, and the exit status paragraph. */
#define MEM_CLI_COMMON_HELP(tool) \
"      --metrics FILE      write Prometheus text metrics to FILE (atomically,\n" \
"                          every 10 s and at exit)\n" \
"      --summary FILE      write a JSON run summary to FILE at exit\n" \
"      --ledger URL        etcd://H:P[,H:P...]/PREFIX (etcds:// for TLS): claim\n" \
"                          each item in this etcd work ledger before working on\n" \
"                          it, mark it done once its output is durable; items\n" \
"                          of other live workers are waited for (also\n" \
"                          $MEM_LEDGER)\n" \
"      --ledger-cacert FILE, --ledger-cert FILE, --ledger-key FILE\n" \
"                          etcds:// CA, client certificate and key (also\n" \
"                          $MEM_LEDGER_CACERT, _CERT, _KEY)\n" \
"      --ledger-ttl S      lease seconds: a dead worker's items are taken over\n" \
"                          this long after (default 10)\n" \
"      --ledger-timeout S  give up (exit 75) when no etcd member answers for S\n" \
"                          seconds (default 60)\n" \
"      --workdir DIR       work directory (default $MEM_WORKDIR or ./mem-work)\n" \
"  -j, --jobs N            threads (default: all CPUs)\n" \
"      --strict            a malformed input line is fatal (exit 2)\n" \
"  -q, --quiet             no warnings\n" \
"  -h, --help              show this help and exit\n" \
"  -V, --version           show the version and exit\n" \
"\n" \
"Exit status: 0 all done, 1 some items failed, 2 usage error or bad input,\n" \
"75 temporary failure (network, HTTP 5xx or 429). See " tool "(1).\n"

struct mem_cli {
	const char *prog;
	int quiet;
	int strict;
	const char *workdir;
	int jobs;
	int nfailed;		/* items that failed */
	int worst;		/* the worst status seen (exit code) */
	struct mem_shard shard;	/* --shard I/N (count <= 1: all) */
	int shard_items;	/* mem_cli_take skips the items of other shards (default 1) */
	int shard_reads;	/* with shard_items 0: other shards' items are read (their
				 * pixels are needed) but counted as skipped, not as input */
	const char *metrics;	/* --metrics FILE */
	const char *summary;	/* --summary FILE */
	struct mem_runrec run;	/* counts, times and input ids for those two */
	double metrics_at;	/* when the metrics were last written (run seconds) */
	int metrics_warned, finished;
	struct mem_ledger_opts ledger_opts;	/* --ledger URL (NULL: none) and its settings */
	struct mem_ledger *ledger;	/* opened by the first claim */
	int ledger_failed;		/* it could not be opened: claims fail at once */
	json_t *pending;		/* items claimed by other live workers, to offer again */
	long ledger_won, ledger_others, ledger_lost; /* items done here, by others; claims lost */
	int plan_leader;		/* mem_cli_lead: this process plans; its items are the plan */
	json_t *plan;			/* the plan's lines (strings) */
};

/* Starts the run record too: argv is the command line it keeps. */
void mem_cli_init(struct mem_cli *c, const char *prog, int argc, char **argv);
/* Prints "prog: message" on stderr and records the status. */
void mem_cli_error(struct mem_cli *c, const struct mem_err *err);
/* Prints "prog: message" on stderr (unless quiet). */
void mem_cli_warn(struct mem_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the usage error and the hint, then exits 2. */
void mem_cli_usage_error(struct mem_cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Prints "prog (memories) VERSION" and the library versions, then exits 0. */
void mem_cli_version(struct mem_cli *c) __attribute__((noreturn));
/*
 * Handles an option every program has (-q, -j, --workdir, --strict, --shard,
 * --metrics, --summary); returns 1 when it was one.
 */
int mem_cli_common_option(struct mem_cli *c, int opt, const char *arg);
/* Parses a positive integer option or exits 2. */
long mem_cli_number(struct mem_cli *c, const char *opt, const char *arg, long lo, long hi);
/* Parses a comma list into a new NULL-terminated vector (appended to v). */
char **mem_cli_list(char **v, const char *arg);
void mem_cli_list_free(char **v);

/*
 * The work ledger (--ledger).  mem_cli_claim claims "TOOL/key" (TOOL being
 * the program's name without "mem-"): MEM_LEDGER_WON (always, without a
 * ledger), _DONE or _TAKEN; for _TAKEN a reference to item (when not
 * NULL) is kept, and mem_cli_each_item offers it again, after the input
 * ends, until it is done.  -1 with err (MEM_ETEMP: no member answered
 * before --ledger-timeout).  Safe to call from several threads.
 */
int mem_cli_claim(struct mem_cli *c, const char *key, const json_t *item, struct mem_err *err);
/* Marks "TOOL/key" done (call it once the outputs are durable); a lost claim is a warning. */
int mem_cli_done(struct mem_cli *c, const char *key, struct mem_err *err);
/*
 * The planning step under the ledger's election: returns 1 when this
 * process is to do it (no ledger, or it leads: its emitted items become
 * the plan at exit), 0 when another did and its items were emitted here.
 */
int mem_cli_lead(struct mem_cli *c);

/* Called with each item read; returns 0, or -1 to stop reading. */
typedef int (*mem_cli_item_fn)(struct mem_cli *c, json_t *item, void *ctx);
/*
 * Takes an input item into the run: 0 when it belongs to another shard
 * (counted as skipped; the caller drops it), else 1 (counted as read and its
 * id recorded).  mem_cli_each_item calls it for each item it reads.
 */
int mem_cli_take(struct mem_cli *c, const json_t *item);
/*
 * Reads items from each of the files (or stdin when none, or "-") and calls
 * fn for each.  Malformed lines are reported and skipped, or end the run
 * with status 2 under --strict.
 */
int mem_cli_each_item(struct mem_cli *c, int argc, char **argv, mem_cli_item_fn fn, void *ctx);
/*
 * Offers again the items mem_cli_claim found taken, until each is done:
 * for a caller that claims after mem_cli_each_item has returned (a tool
 * that reads all its input first).
 */
int mem_cli_each_pending(struct mem_cli *c, mem_cli_item_fn fn, void *ctx);
/* Writes an item on stdout as one line and counts it; exits quietly when stdout is gone. */
void mem_cli_emit(struct mem_cli *c, const json_t *item);
/*
 * The exit status for the run: 0, or the worst failure seen.  Writes the
 * --metrics and --summary files (a failure to write them makes 0 into 1).
 */
int mem_cli_exit(struct mem_cli *c);

#endif
