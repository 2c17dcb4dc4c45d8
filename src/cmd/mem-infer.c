/*
 * mem-infer - run a chain of inference stages (spectral indices, masks,
 * band math) on items, fused in one pass over each item's bands.
 */
#include "config.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "infer.h"
#include "item.h"
#include "raster.h"
#include "stage.h"

static const char usage[] =
"Usage: mem-infer -s STAGE [-s STAGE]... [OPTION]... [MANIFEST]...\n"
"Run the chain of stages, fused in one pass over the bands, on each item read\n"
"from MANIFEST files (standard input when none, or -), scenes and tiles alike,\n"
"and write one result item per input on standard output.  Stages: ndvi ndwi\n"
"mndwi nbr ndbi ndsi evi savi cloudmask expr (see --list-stages).\n"
"\n"
"  -s, --stage SPEC        a stage to run (repeatable), in order; SPEC is\n"
"                          NAME[:KEY=VALUE,...] or expr:OUT=EXPRESSION, e.g.\n"
"                          -s cloudmask:dilate=2 -s ndvi:mask=cloudmask\n"
"                          -s 'expr:water=ndwi > 0.2 && nir < 0.15'\n"
"      --list-stages       list the stages, their parameters and outputs\n"
"      --device DEV        auto, cpu or cuda (default auto)\n"
"      --co KEY=VALUE      GeoTIFF creation option for results (repeatable;\n"
"                          default COMPRESS=ZSTD, ZSTD_LEVEL=1, PREDICTOR=3,\n"
"                          256x256 tiles)\n"
MEM_CLI_SHARD_HELP
MEM_CLI_COMMON_HELP("mem-infer");

/* local to mem-infer, above the shared OPT_* values */
enum { OPT_LIST_STAGES = 2000 };

static const struct option longopts[] = {
	{ "stage", required_argument, NULL, 's' },
	{ "list-stages", no_argument, NULL, OPT_LIST_STAGES },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "co", required_argument, NULL, OPT_CO },
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

static int
on_item(struct mem_cli *c, json_t *item, void *ctx)
{
	struct mem_err err;
	json_t *out;

	mem_err_clear(&err);
	out = mem_infer_item(item, ctx, &err);
	if (out == NULL) {
		mem_cli_error(c, &err);
		c->nfailed++;
		/* a device asked for and missing is a usage error: stop at once */
		return err.status == MEM_EUSAGE ? -1 : 0;
	}
	mem_cli_emit(c, out);
	json_decref(out);
	return 0;
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct mem_infer_opts o;
	struct mem_chain chain;
	struct mem_err err;
	int opt;

	mem_cli_init(&cli, "mem-infer", argc, argv);
	memset(&o, 0, sizeof o);
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
			o.stages = add_stage(o.stages, optarg);
			break;
		case OPT_LIST_STAGES:
			fputs(mem_stage_help(), stdout);
			return 0;
		case OPT_DEVICE:
			if (strcmp(optarg, "auto") == 0)
				o.device = MEM_DEVICE_AUTO;
			else if (strcmp(optarg, "cpu") == 0)
				o.device = MEM_DEVICE_CPU;
			else if (strcmp(optarg, "cuda") == 0)
				o.device = MEM_DEVICE_CUDA;
			else
				mem_cli_usage_error(&cli, "unknown device '%s' (auto, cpu, cuda)", optarg);
			break;
		case OPT_CO:
			if (strchr(optarg, '=') == NULL)
				mem_cli_usage_error(&cli, "invalid --co '%s': expected KEY=VALUE", optarg);
			o.co = mem_cli_list(o.co, optarg);
			break;
		default:
			fprintf(stderr, "Try 'mem-infer --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (mem_chain_parse(&chain, o.stages, &err) < 0)
		mem_cli_usage_error(&cli, "%s", err.msg);
	o.chain = &chain;
	o.workdir = cli.workdir;
	o.threads = cli.jobs;
	if (cli.jobs > 0)
		omp_set_num_threads(cli.jobs);
	mem_raster_init();
	mem_raster_set_threads(cli.jobs);
	mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, &o);
	mem_chain_release(&chain);
	mem_cli_list_free(o.stages);
	mem_cli_list_free(o.co);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
