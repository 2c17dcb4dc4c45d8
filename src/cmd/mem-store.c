/*
 * mem-store - write items durably: COGs and a STAC catalog, a netCDF
 * datacube, and verify what a catalog holds.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cube.h"
#include "files.h"
#include "item.h"
#include "objstore.h"
#include "raster.h"
#include "store.h"

static const char usage[] =
"Usage: mem-store -o DIR [--mosaic] [OPTION]... [MANIFEST]...\n"
"       mem-store --cube FILE.nc [--append] [OPTION]... [MANIFEST]...\n"
"       mem-store verify DIR\n"
"Write the items read from MANIFEST files (standard input when none, or -)\n"
"into DIR: each raster asset as a Cloud Optimized GeoTIFF, each item as STAC\n"
"JSON with relative hrefs, and a STAC catalog (DIR/catalog.json) over all the\n"
"items in DIR.  Write the stored items on standard output.\n"
"With --cube, write the items' single-band rasters (one grid) into a netCDF-4\n"
"CF-1.8 datacube (time, y, x; one variable per asset), and a STAC item for it\n"
"on standard output.  verify checks a stored catalog's links, sizes and\n"
"checksums, and exits 1 when it finds any problem.\n"
"\n"
"  -o, --output DIR        the output directory (required without --cube), or\n"
"                          s3://BUCKET/PREFIX to store into an object store\n"
"      --cube FILE         write a netCDF-4 CF-1.8 datacube to FILE\n"
"      --append            add the items' new dates to the cube in FILE\n"
"                          (dates already in it are left alone)\n"
"      --mosaic            store one item per collection and date, each\n"
"                          raster asset one COG over all its tiles\n"
"      --endpoint URL      the S3-compatible server of -o s3://BUCKET/PREFIX\n"
"                          (http[s]://HOST[:PORT]; keys from AWS_ACCESS_KEY_ID\n"
"                          and AWS_SECRET_ACCESS_KEY)\n"
"      --co KEY=VALUE      COG creation option (repeatable; default\n"
"                          COMPRESS=DEFLATE, OVERVIEWS=AUTO, BLOCKSIZE=512)\n"
"      --catalog-id ID     the catalog's id (default memories)\n"
"      --title TEXT        the catalog's title\n"
MEM_CLI_SHARD_HELP
MEM_CLI_COMMON_HELP("mem-store");

/* mem-store's own long options, above cli.h's shared ones */
enum { OPT_CUBE = 2000, OPT_APPEND, OPT_MOSAIC, OPT_ENDPOINT };

static const struct option longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "cube", required_argument, NULL, OPT_CUBE },
	{ "append", no_argument, NULL, OPT_APPEND },
	{ "mosaic", no_argument, NULL, OPT_MOSAIC },
	{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
	{ "co", required_argument, NULL, OPT_CO },
	{ "catalog-id", required_argument, NULL, OPT_CATALOG_ID },
	{ "title", required_argument, NULL, OPT_TITLE },
	MEM_CLI_COMMON_OPTIONS
};

struct run {
	struct mem_store_opts store;
	struct mem_cube *cube;		/* with --cube */
	struct mem_mosaic *mosaic;	/* with --mosaic */
};

static int
on_item(struct mem_cli *c, json_t *item, void *ctx)
{
	struct run *r = ctx;
	struct mem_err err;
	json_t *out;
	int skipped, won;

	mem_err_clear(&err);
	if (r->cube && mem_cube_add(r->cube, item, &err) < 0) {
		/* off the cube's grid, but still worth storing with -o */
		mem_cli_error(c, &err);
		c->nfailed++;
	}
	if (r->store.outdir == NULL)
		return 0;
	mem_err_clear(&err);
	if (r->mosaic && mem_mosaic_wants(item)) {
		if (mem_mosaic_add(r->mosaic, item, &err) < 0) {
			mem_cli_error(c, &err);
			c->nfailed++;
		}
		return 0;
	}
	/* --ledger: the item is the unit (--cube and --mosaic are refused with it) */
	if ((skipped = mem_cli_claim(c, mem_item_id(item), item, &err)) < 0) {
		mem_cli_error(c, &err);
		return -1;
	}
	if (skipped == MEM_LEDGER_TAKEN)
		return 0;
	won = skipped == MEM_LEDGER_WON;
	out = mem_store_item(item, &r->store, &skipped, &err);
	if (out == NULL) {
		mem_cli_error(c, &err);
		c->nfailed++;
		return 0;
	}
	mem_cli_emit(c, out);
	json_decref(out);
	if (c->ledger_opts.url && won) {
		mem_sync_fs(r->store.outdir, NULL);
		if (mem_cli_done(c, mem_item_id(item), &err) < 0) {
			mem_cli_error(c, &err);
			return -1;
		}
	}
	return 0;
}

static void
on_problem(void *ctx, const char *path, const char *problem)
{
	fprintf(stderr, "mem-store: verify: '%s': %s\n", path, problem);
}

/* mem-store verify DIR: 0 when the catalog is whole, 1 when anything is wrong. */
static int
verify(struct mem_cli *cli, int argc, char **argv)
{
	struct mem_store_verified n;
	struct mem_err err;

	if (argc != 1)
		mem_cli_usage_error(cli, "verify takes one directory (mem-store verify DIR)");
	mem_err_clear(&err);
	if (mem_store_verify(argv[0], on_problem, NULL, &n, &err) < 0) {
		mem_cli_error(cli, &err);
		return mem_cli_exit(cli);
	}
	if (!cli->quiet)
		fprintf(stderr, "mem-store: verify: '%s': %d documents, %d files, %d problem%s\n",
		    argv[0], n.documents, n.files, n.problems, n.problems == 1 ? "" : "s");
	return n.problems ? MEM_EITEM : MEM_OK;
}

/* Writes the cube collected from the items, and its item on stdout. */
static void
finish_cube(struct mem_cli *cli, struct mem_cube *cube)
{
	struct mem_err err;
	json_t *it;
	int changed;

	mem_err_clear(&err);
	if (mem_cube_commit(cube, &changed, &err) < 0) {
		mem_cli_error(cli, &err);
		return;
	}
	if ((it = mem_cube_item(cube, &err)) == NULL) {
		mem_cli_error(cli, &err);
		return;
	}
	mem_cli_emit(cli, it);
	json_decref(it);
}

/* Writes each collection and date's mosaic, and its item on stdout. */
static void
finish_mosaic(struct mem_cli *cli, struct run *r)
{
	for (size_t i = 0; i < mem_mosaic_count(r->mosaic); i++) {
		struct mem_err err;
		json_t *out;
		int skipped;

		mem_err_clear(&err);
		if ((out = mem_mosaic_store(r->mosaic, i, &r->store, &skipped, &err)) == NULL) {
			mem_cli_error(cli, &err);
			cli->nfailed++;
			continue;
		}
		mem_cli_emit(cli, out);
		json_decref(out);
	}
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct run run;
	struct mem_store_opts *o = &run.store;
	struct mem_cube_opts co;
	struct mem_err err;
	int opt, mosaic = 0;
	const char *endpoint = NULL;
	char *staging = NULL;

	mem_cli_init(&cli, "mem-store", argc, argv);
	memset(&run, 0, sizeof run);
	memset(&co, 0, sizeof co);
	while ((opt = getopt_long(argc, argv, "hVqj:o:", longopts, NULL)) != -1) {
		if (mem_cli_common_option(&cli, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			mem_cli_version(&cli);
		case 'o':
			o->outdir = optarg;
			break;
		case OPT_CUBE:
			co.path = optarg;
			break;
		case OPT_APPEND:
			co.append = 1;
			break;
		case OPT_MOSAIC:
			mosaic = 1;
			break;
		case OPT_ENDPOINT:
			endpoint = optarg;
			break;
		case OPT_CO:
			if (strchr(optarg, '=') == NULL)
				mem_cli_usage_error(&cli, "invalid --co '%s': expected KEY=VALUE", optarg);
			o->co = mem_cli_list(o->co, optarg);
			break;
		case OPT_CATALOG_ID:
			o->catalog_id = optarg;
			break;
		case OPT_TITLE:
			o->title = optarg;
			break;
		default:
			fprintf(stderr, "Try 'mem-store --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (optind < argc && strcmp(argv[optind], "verify") == 0)
		return verify(&cli, argc - optind - 1, argv + optind + 1);
	if (o->outdir == NULL && co.path == NULL)
		mem_cli_usage_error(&cli, "no output directory given (-o DIR)");
	if (co.append && co.path == NULL)
		mem_cli_usage_error(&cli, "--append needs --cube FILE");
	if (mosaic && o->outdir == NULL)
		mem_cli_usage_error(&cli, "--mosaic needs -o DIR");
	if (cli.ledger_opts.url && (mosaic || co.path))
		mem_cli_usage_error(&cli, "--ledger does not go with --mosaic or --cube");
	if (mosaic)
		run.mosaic = mem_mosaic_new();
	if (endpoint && !mem_objstore_is_url(o->outdir))
		mem_cli_usage_error(&cli, "--endpoint needs -o s3://BUCKET/PREFIX");
	mem_raster_init();
	mem_raster_set_threads(cli.jobs);
	mem_err_clear(&err);
	if (o->outdir && mem_objstore_is_url(o->outdir)) {
		/* everything is written to a staging copy under the workdir, then uploaded */
		char *safe = mem_path_safe_name(o->outdir + 5);

		if (mem_objstore_configure(endpoint, &err) < 0) {
			free(safe);
			mem_cli_error(&cli, &err);
			mem_raster_done();
			return mem_cli_exit(&cli);
		}
		o->remote = o->outdir;
		staging = mem_xasprintf("%s/s3/%s", cli.workdir, safe);
		o->outdir = staging;
		free(safe);
	}
	if (o->outdir && mem_mkdir_p(o->outdir, &err) < 0) {
		mem_cli_error(&cli, &err);
		mem_raster_done();
		return mem_cli_exit(&cli);
	}
	if (co.path && (run.cube = mem_cube_new(&co, &err)) == NULL) {
		mem_cli_error(&cli, &err);
		mem_raster_done();
		return mem_cli_exit(&cli);
	}
	mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, &run);
	if (run.mosaic) {
		finish_mosaic(&cli, &run);
		mem_mosaic_free(run.mosaic);
	}
	if (run.cube) {
		finish_cube(&cli, run.cube);
		mem_cube_free(run.cube);
	}
	/* the catalog describes whatever is stored, even after a failed item */
	mem_err_clear(&err);
	if (o->outdir && mem_store_finish(o, &err) < 0)
		mem_cli_error(&cli, &err);
	mem_cli_list_free(o->co);
	free(staging);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
