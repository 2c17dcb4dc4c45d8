/*
 * mem-infer - run a chain of inference stages (spectral indices, masks,
 * band math) on items, fused in one pass over each item's bands.
 */
#include "config.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "files.h"
#include "halo.h"
#include "http.h"
#include "infer.h"
#include "item.h"
#include "kern.h"
#include "llm.h"
#include "raster.h"
#include "stage.h"
#include "train.h"

static const char usage[] =
"Usage: mem-infer -s STAGE [-s STAGE]... [OPTION]... [MANIFEST]...\n"
"  or:  mem-infer --train OUT.h5 --labels FILE --label-field F [OPTION]... [MANIFEST]...\n"
"  or:  mem-infer --train OUT.h5 --labels-band FILE[:BAND]|BAND [OPTION]... [MANIFEST]...\n"
"Run the chain of stages, fused in one pass over the bands, on each item read\n"
"from MANIFEST files (standard input when none, or -), scenes and tiles alike,\n"
"and write one result item per input on standard output.  Stages: ndvi ndwi\n"
"mndwi nbr ndbi ndsi evi savi cloudmask expr zonal change classify llm (see\n"
"--list-stages).  With a change stage, items are read to the end and paired\n"
"by cell (mem:grid) and date: one result per pair of consecutive dates.\n"
"With a halo (cloudmask:dilate=N, a classify model's 3x3 convolutions), items\n"
"are read to the end too, and each tile reads across its seams from its\n"
"neighbours: items of the same CRS, aligned grid and acquisition.\n"
"\n"
"  -s, --stage SPEC        a stage to run (repeatable), in order; SPEC is\n"
"                          NAME[:KEY=VALUE,...] or expr:OUT=EXPRESSION, e.g.\n"
"                          -s cloudmask:dilate=2 -s ndvi:mask=cloudmask\n"
"                          -s 'expr:water=ndwi > 0.2 && nir < 0.15'\n"
"      --list-stages       list the stages, their parameters and outputs\n"
"      --device DEV        auto, cpu, cuda, or cuda:N for GPU N from 0\n"
"                          (default auto)\n"
"      --co KEY=VALUE      GeoTIFF creation option for results (repeatable;\n"
"                          default COMPRESS=ZSTD, ZSTD_LEVEL=1, PREDICTOR=3,\n"
"                          256x256 tiles)\n"
"      --llm-endpoint URL  base URL of the llm stage's API (default: the\n"
"                          provider's, e.g. https://api.deepseek.com/v1)\n"
"      --llm-timeout S     seconds per llm request (default 120)\n"
"      --max-requests N    at most N llm requests in this run; items beyond\n"
"                          are emitted without an answer and the exit status\n"
"                          is 1 (answers given are cached: a rerun asks the rest)\n"
"\n"
"Training a classifier for -s classify (mem-model(5)), from the items read:\n"
"      --train OUT.h5      fit a model and write it (atomically); no items out\n"
"      --labels FILE       polygons with a class field (GeoPackage, GeoJSON...,\n"
"                          any CRS), rasterized onto each item's grid\n"
"      --labels-layer L    their layer (default: the first)\n"
"      --label-field F     the field that names the class\n"
"      --labels-band SPEC  or labels from a class band: FILE[:BAND] (any grid\n"
"                          and CRS, nearest neighbour; nodata: no label) or\n"
"                          the name of a band of each item (e.g. scl)\n"
"      --label-classes LIST  VALUE=NAME,... names the band's values (several\n"
"                          values may share a name; others are left out);\n"
"                          default: each value is a class named by its number\n"
"      --bands LIST        input bands (default red,nir)\n"
"      --hidden N          hidden ReLU units (default 0: softmax regression)\n"
"      --conv              the first layer is a 3x3 convolution\n"
"      --epochs E          passes over the pixels (default 20)\n"
"      --batch N           pixels per gradient step (default 64)\n"
"      --learning-rate R   Adam's step size (default 0.01)\n"
"      --seed S            the seed of weights and shuffles (default 1)\n"
"      --max-samples N     at most N labelled pixels, a seeded subset\n"
"                          (default 200000)\n"
MEM_CLI_SHARD_HELP
MEM_CLI_COMMON_HELP("mem-infer");

/* local to mem-infer, above the shared OPT_* values */
enum { OPT_LIST_STAGES = 2000, OPT_LLM_ENDPOINT, OPT_LLM_TIMEOUT, OPT_MAX_REQUESTS, OPT_TRAIN,
	OPT_LABELS, OPT_LABELS_LAYER, OPT_LABEL_FIELD, OPT_TRAIN_BANDS, OPT_HIDDEN, OPT_CONV, OPT_EPOCHS,
	OPT_BATCH, OPT_LR, OPT_SEED, OPT_MAX_SAMPLES, OPT_LABELS_BAND, OPT_LABEL_CLASSES };

static const struct option longopts[] = {
	{ "stage", required_argument, NULL, 's' },
	{ "list-stages", no_argument, NULL, OPT_LIST_STAGES },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "co", required_argument, NULL, OPT_CO },
	{ "llm-endpoint", required_argument, NULL, OPT_LLM_ENDPOINT },
	{ "llm-timeout", required_argument, NULL, OPT_LLM_TIMEOUT },
	{ "max-requests", required_argument, NULL, OPT_MAX_REQUESTS },
	{ "train", required_argument, NULL, OPT_TRAIN },
	{ "labels", required_argument, NULL, OPT_LABELS },
	{ "labels-layer", required_argument, NULL, OPT_LABELS_LAYER },
	{ "label-field", required_argument, NULL, OPT_LABEL_FIELD },
	{ "labels-band", required_argument, NULL, OPT_LABELS_BAND },
	{ "label-classes", required_argument, NULL, OPT_LABEL_CLASSES },
	{ "bands", required_argument, NULL, OPT_TRAIN_BANDS },
	{ "hidden", required_argument, NULL, OPT_HIDDEN },
	{ "conv", no_argument, NULL, OPT_CONV },
	{ "epochs", required_argument, NULL, OPT_EPOCHS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "learning-rate", required_argument, NULL, OPT_LR },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "max-samples", required_argument, NULL, OPT_MAX_SAMPLES },
	MEM_CLI_COMMON_OPTIONS
};

/* Appends one stage spec whole: unlike mem_cli_list, commas belong to its parameters. */
static char **
add_stage(char **v, const char *spec)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	v = mem_xrealloc(v, (n + 2) * sizeof *v);
	v[n] = mem_xstrdup(spec);
	v[n + 1] = NULL;
	return v;
}

struct run {
	struct mem_infer_opts o;
	struct mem_llm_opts llm;
	long llm_failed;	/* llm failures already reported */
	int hold;		/* read every item first (change), or every result (llm scope=run) */
	json_t **items, **results;
	size_t nitems, nresults;
	struct mem_halo_index *tiles; /* a chain with a halo: the items' neighbours */
	int stop;
};

static void
append(json_t ***v, size_t *n, json_t *j)
{
	*v = mem_xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = j;
}

/* Reports an llm failure once: the item is still emitted, without an answer. */
static void
llm_report(struct mem_cli *c, struct run *r)
{
	if (r->llm.failed > r->llm_failed) {
		mem_cli_error(c, &r->llm.last);
		r->llm_failed = r->llm.failed;
	}
}

/* The items beside items[i], into v (nitems entries). */
static size_t
neighbours(const struct run *r, size_t i, json_t **v)
{
	size_t *idx, n;

	if (r->tiles == NULL)
		return 0;
	idx = mem_xcalloc(r->nitems ? r->nitems : 1, sizeof *idx);
	n = mem_halo_neighbours(r->tiles, i, r->o.chain->halo, idx);
	for (size_t k = 0; k < n; k++)
		v[k] = r->items[idx[k]];
	free(idx);
	return n;
}

/* Runs the chain on one item (or a pair) and emits or keeps the result. */
static int
run_one(struct mem_cli *c, struct run *r, const json_t *before, const json_t *item,
    const struct mem_infer_near *near)
{
	struct mem_err err;
	json_t *out;
	int st;

	mem_err_clear(&err);
	/* --ledger: the input item is the unit (pairs and run-wide llm are refused with it) */
	if ((st = before ? MEM_LEDGER_WON : mem_cli_claim(c, mem_item_id(item), item, &err)) < 0) {
		mem_cli_error(c, &err);
		return -1;
	}
	if (st == MEM_LEDGER_TAKEN)
		return 0;
	out = mem_infer_near(before, item, near, &r->o, &err);
	llm_report(c, r);
	if (out == NULL) {
		mem_cli_error(c, &err);
		c->nfailed++;
		/* a device asked for and missing, a key not set: usage errors stop at once */
		return err.status == MEM_EUSAGE ? -1 : 0;
	}
	if (r->o.chain->llm >= 0 && r->o.chain->st[r->o.chain->llm].scope_run) {
		append(&r->results, &r->nresults, out);
		return 0;
	}
	mem_cli_emit(c, out);
	json_decref(out);
	if (c->ledger_opts.url && st == MEM_LEDGER_WON && !before) {
		mem_sync_fs(c->workdir, NULL);
		if (mem_cli_done(c, mem_item_id(item), &err) < 0) {
			mem_cli_error(c, &err);
			return -1;
		}
	}
	return 0;
}

static int
on_item(struct mem_cli *c, json_t *item, void *ctx)
{
	struct run *r = ctx;

	/* a halo: the neighbours may come later in the input, so read it all first */
	if (r->o.chain == NULL || r->o.chain->pairs || r->o.chain->halo > 0) {
		append(&r->items, &r->nitems, json_incref(item));
		return 0;
	}
	return run_one(c, r, NULL, item, NULL);
}

/* A chain with a halo: items[i] with its neighbours. */
static int
run_at(struct mem_cli *c, struct run *r, size_t i)
{
	json_t **v = mem_xcalloc(r->nitems ? r->nitems : 1, sizeof *v);
	struct mem_infer_near near = { v, 0, NULL, 0 };
	int rc;

	near.nitem = neighbours(r, i, v);
	rc = run_one(c, r, NULL, r->items[i], &near);
	free(v);
	return rc;
}

/* --ledger: an item another worker held, offered again, with its neighbours. */
static int
on_pending(struct mem_cli *c, json_t *item, void *ctx)
{
	struct run *r = ctx;

	for (size_t i = 0; i < r->nitems; i++)
		if (r->items[i] == item)
			return run_at(c, r, i);
	return run_one(c, r, NULL, item, NULL);
}

/* A chain with a halo: every item with its neighbours, in input order. */
static void
run_near(struct mem_cli *c, struct run *r)
{
	for (size_t i = 0; i < r->nitems; i++) {
		const char *id = mem_item_id(r->items[i]);

		/* --shard: every item was read, for its pixels; this shard's are run */
		if (!mem_shard_has(id ? id : "", c->shard.index, c->shard.count))
			continue;
		if (run_at(c, r, i) < 0)
			return;
	}
	/* claimed here, after the input: the items held elsewhere are offered again */
	mem_cli_each_pending(c, on_pending, r);
}

/* change: every item with the date before it in its cell. */
static void
run_pairs(struct mem_cli *c, struct run *r)
{
	struct mem_infer_pair *p = mem_xcalloc(r->nitems ? r->nitems : 1, sizeof *p);
	size_t *lonely = mem_xcalloc(r->nitems ? r->nitems : 1, sizeof *lonely), nl, np;

	np = mem_infer_pairs(r->items, r->nitems, p, lonely, &nl);
	for (size_t i = 0; i < nl; i++)
		mem_cli_warn(c, "item '%s': no other date of its cell (mem:grid) to compare with",
		    mem_item_id(r->items[lonely[i]]));
	for (size_t i = 0; i < np; i++) {
		json_t **v = mem_xcalloc(r->nitems ? r->nitems : 1, sizeof *v);
		json_t **bv = mem_xcalloc(r->nitems ? r->nitems : 1, sizeof *bv);
		struct mem_infer_near near = { v, 0, bv, 0 };
		int rc;

		near.nitem = neighbours(r, p[i].after, v);
		near.nbefore = neighbours(r, p[i].before, bv);
		rc = run_one(c, r, r->items[p[i].before], r->items[p[i].after], &near);
		free(v);
		free(bv);
		if (rc < 0)
			break;
	}
	free(p);
	free(lonely);
}

/* --train: every item read, then one model. */
static int
train(struct mem_cli *c, struct run *r, struct mem_train_opts *tr, char **bands, int argc,
    char **argv)
{
	struct mem_train_result res;
	struct mem_err err;
	char *dflt[] = { "red", "nir", NULL };

	if (tr->labels_band && (tr->labels || tr->field))
		mem_cli_usage_error(c, "--labels-band and --labels are two kinds of labels: give one");
	if (!tr->labels_band && (tr->labels == NULL || tr->field == NULL))
		mem_cli_usage_error(c, "--train needs --labels FILE and --label-field F, or "
		    "--labels-band");
	if (tr->label_classes && !tr->labels_band)
		mem_cli_usage_error(c, "--label-classes goes with --labels-band");
	if (r->o.stages)
		mem_cli_usage_error(c, "--train runs no stage: give -s to a later mem-infer");
	tr->bands = bands ? bands : dflt;
	mem_raster_init();
	mem_cli_each_item(c, argc, argv, on_item, r);
	mem_err_clear(&err);
	if (mem_train(r->items, r->nitems, tr, &res, &err) < 0)
		mem_cli_error(c, &err);
	else if (!c->quiet)
		fprintf(stderr, "mem-infer: %s: %d classes, %zu pixels, loss %.4f, training accuracy "
		    "%.4f\n", tr->out, res.nclasses, res.samples, res.loss, res.accuracy);
	for (size_t i = 0; i < r->nitems; i++)
		json_decref(r->items[i]);
	free(r->items);
	mem_cli_list_free(bands);
	mem_cli_list_free(tr->label_classes);
	mem_raster_done();
	return mem_cli_exit(c);
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct run run;
	struct mem_chain chain;
	struct mem_err err;
	struct mem_train_opts tr;
	char **bands = NULL;
	int opt, cuda_index = -1;

	mem_cli_init(&cli, "mem-infer", argc, argv);
	memset(&run, 0, sizeof run);
	memset(&tr, 0, sizeof tr);
	tr.epochs = 20;
	tr.batch = 64;
	tr.lr = 0.01;
	tr.seed = 1;
	tr.max_samples = 200000;
	run.llm.max_requests = -1;
	while ((opt = getopt_long(argc, argv, "hVqj:s:", longopts, NULL)) != -1) {
		if (mem_cli_common_option(&cli, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			mem_cli_version(&cli);
		case 's':
			run.o.stages = add_stage(run.o.stages, optarg);
			break;
		case OPT_LIST_STAGES:
			fputs(mem_stage_help(), stdout);
			return 0;
		case OPT_DEVICE:
			if (strcmp(optarg, "auto") == 0)
				run.o.device = MEM_DEVICE_AUTO;
			else if (strcmp(optarg, "cpu") == 0)
				run.o.device = MEM_DEVICE_CPU;
			else if (strcmp(optarg, "cuda") == 0)
				run.o.device = MEM_DEVICE_CUDA;
			else if (strncmp(optarg, "cuda:", 5) == 0) {
				char *end;
				long n;

				errno = 0;
				n = strtol(optarg + 5, &end, 10);
				if (optarg[5] < '0' || optarg[5] > '9' || *end || errno || n > 1023)
					mem_cli_usage_error(&cli, "invalid --device '%s': expected "
					    "cuda:N with N a device number from 0", optarg);
				run.o.device = MEM_DEVICE_CUDA;
				cuda_index = (int)n;
			} else
				mem_cli_usage_error(&cli, "unknown device '%s' (auto, cpu, cuda, "
				    "cuda:N)", optarg);
			break;
		case OPT_LLM_ENDPOINT:
			if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0)
				mem_cli_usage_error(&cli, "invalid --llm-endpoint '%s': expected an "
				    "http(s) URL", optarg);
			run.llm.endpoint = optarg;
			break;
		case OPT_LLM_TIMEOUT:
			run.llm.timeout = mem_cli_number(&cli, "--llm-timeout", optarg, 1, 3600);
			break;
		case OPT_MAX_REQUESTS:
			run.llm.max_requests = mem_cli_number(&cli, "--max-requests", optarg, 0,
			    1000000000);
			break;
		case OPT_TRAIN:
			tr.out = optarg;
			break;
		case OPT_LABELS:
			tr.labels = optarg;
			break;
		case OPT_LABELS_LAYER:
			tr.layer = optarg;
			break;
		case OPT_LABEL_FIELD:
			tr.field = optarg;
			break;
		case OPT_LABELS_BAND:
			tr.labels_band = optarg;
			break;
		case OPT_LABEL_CLASSES:
			tr.label_classes = mem_cli_list(tr.label_classes, optarg);
			break;
		case OPT_TRAIN_BANDS:
			bands = mem_cli_list(bands, optarg);
			break;
		case OPT_HIDDEN:
			tr.hidden = (int)mem_cli_number(&cli, "--hidden", optarg, 0, 1024);
			break;
		case OPT_CONV:
			tr.conv = 1;
			break;
		case OPT_EPOCHS:
			tr.epochs = (int)mem_cli_number(&cli, "--epochs", optarg, 1, 100000);
			break;
		case OPT_BATCH:
			tr.batch = (int)mem_cli_number(&cli, "--batch", optarg, 1, 1000000);
			break;
		case OPT_LR: {
			char *end;

			tr.lr = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(tr.lr > 0 && tr.lr <= 10))
				mem_cli_usage_error(&cli, "invalid --learning-rate '%s': expected a "
				    "number in (0, 10]", optarg);
			break;
		}
		case OPT_SEED:
			tr.seed = (unsigned long long)mem_cli_number(&cli, "--seed", optarg, 0,
			    2147483647);
			break;
		case OPT_MAX_SAMPLES:
			tr.max_samples = (size_t)mem_cli_number(&cli, "--max-samples", optarg, 1,
			    100000000);
			break;
		case OPT_CO:
			if (strchr(optarg, '=') == NULL)
				mem_cli_usage_error(&cli, "invalid --co '%s': expected KEY=VALUE", optarg);
			run.o.co = mem_cli_list(run.o.co, optarg);
			break;
		default:
			fprintf(stderr, "Try 'mem-infer --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (tr.out)
		return train(&cli, &run, &tr, bands, argc - optind, argv + optind);
	if (tr.labels || tr.field || bands || tr.labels_band || tr.label_classes)
		mem_cli_usage_error(&cli, "--labels, --label-field, --labels-band, --label-classes "
		    "and --bands go with --train");
	if (mem_chain_parse(&chain, run.o.stages, &err) < 0)
		mem_cli_usage_error(&cli, "%s", err.msg);
	if (cli.ledger_opts.url && (chain.pairs || (chain.llm >= 0 && chain.st[chain.llm].scope_run)))
		mem_cli_usage_error(&cli, "--ledger does not go with stages over pairs or the whole run");
	run.o.chain = &chain;
	run.o.workdir = cli.workdir;
	run.o.threads = cli.jobs;
	run.llm.workdir = cli.workdir;
	if (chain.llm >= 0) {
		run.o.llm = &run.llm;
		mem_http_global_init();
	}
	/* cuda:N with no GPU at all fails as cuda does, when the first item runs */
	if (cuda_index >= 0 && mem_kern_cuda_available() && mem_kern_cuda_select(cuda_index) < 0)
		mem_cli_usage_error(&cli, "--device cuda:%d: this machine has %d CUDA device(s), "
		    "numbered from 0", cuda_index, mem_kern_cuda_count());
#ifdef HAVE_CUDA
	/* built for the GPU but none here: say so once, then use the CPU */
	if (run.o.device == MEM_DEVICE_AUTO && !mem_kern_cuda_available())
		mem_cli_warn(&cli, "--device auto: no CUDA device found, computing on the CPU");
#endif
	if (cli.jobs > 0)
		omp_set_num_threads(cli.jobs);
	mem_raster_init();
	mem_raster_set_threads(cli.jobs);
	mem_err_clear(&err);
	/* a halo reads the neighbours of this shard's items, whatever their shard */
	if (chain.halo > 0 && !chain.pairs) {
		cli.shard_items = 0;
		cli.shard_reads = 1;	/* read, counted as skipped */
	}
	/* GDAL would warn about a bad option and write the files without it */
	if (run.o.co && mem_raster_check_options("GTiff", run.o.co, &err) < 0)
		mem_cli_error(&cli, &err);
	else
		mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, &run);
	if (chain.halo > 0)
		run.tiles = mem_halo_index_new(run.items, run.nitems);
	if (chain.pairs)
		run_pairs(&cli, &run);
	else if (chain.halo > 0)
		run_near(&cli, &run);
	mem_halo_index_free(run.tiles);
	if (run.nresults > 0) {
		mem_err_clear(&err);
		if (mem_infer_llm_run(run.results, run.nresults, &run.o, &err) < 0)
			mem_cli_error(&cli, &err);
		llm_report(&cli, &run);
		for (size_t i = 0; i < run.nresults; i++)
			mem_cli_emit(&cli, run.results[i]);
	}
	if (run.llm.skipped > 0) {
		/* work left undone: a rerun finishes it, paying only for what is missing */
		mem_err_set(&err, MEM_EITEM,
		    "%ld item%s emitted without an llm answer: --max-requests %ld reached",
		    run.llm.skipped, run.llm.skipped == 1 ? "" : "s", run.llm.max_requests);
		mem_cli_error(&cli, &err);
	}
	for (size_t i = 0; i < run.nitems; i++)
		json_decref(run.items[i]);
	for (size_t i = 0; i < run.nresults; i++)
		json_decref(run.results[i]);
	free(run.items);
	free(run.results);
	if (chain.llm >= 0)
		mem_http_global_done();
	mem_chain_release(&chain);
	mem_cli_list_free(run.o.stages);
	mem_cli_list_free(run.o.co);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
