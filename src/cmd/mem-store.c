/*
 * mem-store - write items durably: COGs and a STAC catalog, a netCDF
 * datacube, and verify what a catalog holds.
 */
#include "config.h"

#include <math.h>
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
#include "tier.h"

static const char usage[] =
"Usage: mem-store -o DIR [--mosaic] [OPTION]... [MANIFEST]...\n"
"       mem-store --cube FILE.nc [--append] [OPTION]... [MANIFEST]...\n"
"       mem-store tier DIR --to hot|warm|cold|s3://BUCKET/PREFIX [--endpoint URL]\n"
"                          [--older-than AGE] [--accessed-before DATE] [--dry-run]\n"
"       mem-store verify DIR|s3://BUCKET/PREFIX [--endpoint URL]\n"
"Write the items read from MANIFEST files (standard input when none, or -)\n"
"into DIR: each raster asset as a Cloud Optimized GeoTIFF, each item as STAC\n"
"JSON with relative hrefs, and a STAC catalog (DIR/catalog.json) over all the\n"
"items in DIR.  Write the stored items on standard output.\n"
"With --cube, write the items' single-band rasters (one grid) into a netCDF-4\n"
"CF-1.8 datacube (time, y, x; one variable per asset), and a STAC item for it\n"
"on standard output.  verify checks a stored catalog's links, sizes and\n"
"checksums, and exits 1 when it finds any problem.  tier moves stored items\n"
"between the hot tier (COGs in DIR), the warm one (time slices of one\n"
"netCDF datacube per collection, DIR/COLLECTION/cube.nc), the cold one (one\n"
"uncompressed tar per collection and month, read in place through /vsitar/)\n"
"or an object store, keeping the catalog true.\n"
"\n"
"  -o, --output DIR        the output directory (required without --cube), or\n"
"                          s3://BUCKET/PREFIX to store into an object store\n"
"      --cube FILE         write a netCDF-4 CF-1.8 datacube to FILE\n"
"      --append            add the items' new dates to the cube in FILE\n"
"                          (dates already in it are left alone)\n"
"      --mosaic            store one item per collection and date, each\n"
"                          raster asset one COG over all its tiles\n"
"      --endpoint URL      the S3-compatible server of -o s3://BUCKET/PREFIX\n"
"                          (and of tier and verify; verify DIR then checks\n"
"                          the items' s3:// assets too)\n"
"                          (http[s]://HOST[:PORT]; keys from AWS_ACCESS_KEY_ID\n"
"                          and AWS_SECRET_ACCESS_KEY)\n"
"      --co KEY=VALUE      COG creation option (repeatable; default\n"
"                          COMPRESS=DEFLATE, OVERVIEWS=AUTO, BLOCKSIZE=512;\n"
"                          COMPRESS=ZSTD|LERC|LERC_DEFLATE|LERC_ZSTD, LEVEL=N,\n"
"                          MAX_Z_ERROR=E for LERC, PREDICTOR=1|2|3)\n"
"      --tier hot|warm|cold  the tier to store into: hot (the default), warm\n"
"                          (appended to the collection's cube) or cold (moved\n"
"                          into the month's archive) at the end of the run;\n"
"                          each asset gets storage:tier\n"
"\n"
"tier options:\n"
"      --to TIER           the tier to move the items to (required): hot, warm,\n"
"                          cold\n"
"                          or s3://BUCKET/PREFIX (an object store, --endpoint)\n"
"      --older-than AGE    only items whose date ends more than AGE ago\n"
"                          (N[smhdw], e.g. 30d)\n"
"      --accessed-before DATE\n"
"                          only items whose files were last read before DATE\n"
"                          (YYYY-MM-DD[THH:MM:SSZ]; the file system's atime)\n"
"      --dry-run           say what would move, change nothing\n"
"      --catalog-id ID     the catalog's id (default memories)\n"
"      --title TEXT        the catalog's title\n"
MEM_CLI_SHARD_HELP
MEM_CLI_COMMON_HELP("mem-store");

/* mem-store's own long options, above cli.h's shared ones */
enum { OPT_CUBE = 2000, OPT_APPEND, OPT_MOSAIC, OPT_ENDPOINT, OPT_TIER, OPT_TO, OPT_OLDER,
	OPT_ACCESSED };

static const struct option longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "cube", required_argument, NULL, OPT_CUBE },
	{ "append", no_argument, NULL, OPT_APPEND },
	{ "mosaic", no_argument, NULL, OPT_MOSAIC },
	{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
	{ "tier", required_argument, NULL, OPT_TIER },
	{ "to", required_argument, NULL, OPT_TO },
	{ "older-than", required_argument, NULL, OPT_OLDER },
	{ "accessed-before", required_argument, NULL, OPT_ACCESSED },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	
	{ "co", required_argument, NULL, OPT_CO },
	{ "catalog-id", required_argument, NULL, OPT_CATALOG_ID },
	{ "title", required_argument, NULL, OPT_TITLE },
	MEM_CLI_COMMON_OPTIONS
};

struct run {
	struct mem_store_opts store;
	struct mem_cube *cube;		/* with --cube */
	struct mem_mosaic *mosaic;	/* with --mosaic */
	json_t *cold;			/* with --tier cold|warm: "COLLECTION/ID" -> [collection, id] stored */
	int cold_to;			/* that tier */
};

/* With --tier cold the stored items are emitted after the move; else now. */
static void
emit_stored(struct mem_cli *c, struct run *r, json_t *out)
{
	if (r->cold) {
		const char *coll = json_string_value(json_object_get(out, "collection"));
		char *sc = mem_path_safe_name(coll ? coll : "items");
		char *si = mem_path_safe_name(mem_item_id(out));
		char *k = mem_xasprintf("%s/%s", sc, si);

		json_object_set_new(r->cold, k, json_pack("[ss]", coll ? coll : "items",
		    mem_item_id(out)));
		free(k);
		free(sc);
		free(si);
		return;
	}
	mem_cli_emit(c, out);
}

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
	emit_stored(c, r, out);
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
verify(struct mem_cli *cli, int argc, char **argv, const char *endpoint)
{
	struct mem_store_verified n;
	struct mem_err err;

	if (argc != 1)
		mem_cli_usage_error(cli, "verify takes one directory (mem-store verify DIR)");
	mem_err_clear(&err);
	mem_raster_init();	/* warm assets are read through GDAL */
	if (mem_objstore_is_url(argv[0]) || endpoint) {
		if (mem_objstore_configure(endpoint, &err) < 0) {
			mem_cli_error(cli, &err);
			return mem_cli_exit(cli);
		}
	}
	/* s3:// assets of a local catalog only when told where the store is */
	if (mem_store_verify(argv[0], endpoint != NULL, on_problem, NULL, &n, &err) < 0) {
		mem_cli_error(cli, &err);
		return mem_cli_exit(cli);
	}
	if (!cli->quiet)
		fprintf(stderr, "mem-store: verify: '%s': %d documents, %d files, %d problem%s\n",
		    argv[0], n.documents, n.files, n.problems, n.problems == 1 ? "" : "s");
	return n.problems ? MEM_EITEM : MEM_OK;
}

static int cli_told;	/* failures on_fail reported */

static void
on_move(void *ctx, const char *collection, const char *id, enum mem_tier from,
    enum mem_tier to)
{
	const int *dry = ctx;

	if (dry[1])
		return;
	fprintf(stderr, "mem-store: tier: '%s/%s': %s -> %s%s\n", collection, id,
	    mem_tier_name(from), mem_tier_name(to), dry[0] ? " (dry run)" : "");
}

/* mem-store tier DIR --to TIER: 0 when every chosen item moved, 1 when some could not. */
/* An item that cannot move to or from warm: each is named, not only the last. */
static void
on_fail(void *ctx, const struct mem_err *err)
{
	struct mem_cli *cli = ctx;

	mem_cli_error(cli, err);
	cli_told++;
}

static int
tier(struct mem_cli *cli, int argc, char **argv, struct mem_tier_opts *t, const char *endpoint)
{
	struct mem_tier_moved n;
	struct mem_err err;
	int ctx[2] = { t->dry_run, cli->quiet };

	if (argc != 1)
		mem_cli_usage_error(cli, "tier takes one directory (mem-store tier DIR --to TIER)");
	if ((int)t->to < 0)
		mem_cli_usage_error(cli, "tier needs --to hot, warm, cold or s3://BUCKET/PREFIX");
	t->dir = argv[0];
	mem_err_clear(&err);
	mem_raster_init();	/* the warm tier reads and writes rasters */
	if (t->remote || endpoint) {
		if (mem_objstore_configure(endpoint, &err) < 0) {
			mem_cli_error(cli, &err);
			return mem_cli_exit(cli);
		}
	}
	t->failed = on_fail;
	t->failed_ctx = cli;
	if (mem_tier_move(t, on_move, ctx, &n, &err) < 0) {
		mem_cli_error(cli, &err);
		return mem_cli_exit(cli);
	}
	if (n.failed > cli_told)
		mem_cli_error(cli, &err);
	if (!cli->quiet)
		fprintf(stderr, "mem-store: tier: '%s': %d item%s %s to %s, %d archive%s written, "
		    "%d file%s removed, %d failed\n", argv[0], n.items, n.items == 1 ? "" : "s",
		    t->dry_run ? "would move" : "moved", mem_tier_name(t->to), n.archives,
		    n.archives == 1 ? "" : "s", n.removed, n.removed == 1 ? "" : "s", n.failed);
	return n.failed ? MEM_EITEM : MEM_OK;
}

/* --tier cold: the items stored by this run go to the cold tier, then out. */
static void
finish_cold(struct mem_cli *cli, struct run *r)
{
	struct mem_tier_opts t;
	struct mem_tier_moved n;
	struct mem_err err;
	const char *k;
	json_t *v;

	memset(&t, 0, sizeof t);
	t.dir = r->store.outdir;
	t.to = (enum mem_tier)r->cold_to;
	t.older_than = -1;
	t.accessed_before = NAN;
	t.only = r->cold;
	mem_err_clear(&err);
	if (mem_tier_move(&t, NULL, NULL, &n, &err) < 0 || n.failed) {
		mem_cli_error(cli, &err);
		cli->nfailed++;
	}
	json_object_foreach(r->cold, k, v) {
		json_t *out;

		mem_err_clear(&err);
		out = mem_store_load(r->store.outdir, json_string_value(json_array_get(v, 0)),
		    json_string_value(json_array_get(v, 1)), &err);
		if (out == NULL) {
			mem_cli_error(cli, &err);
			cli->nfailed++;
			continue;
		}
		mem_cli_emit(cli, out);
		json_decref(out);
	}
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
		emit_stored(cli, r, out);
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
	int opt, mosaic = 0, store_tier = -1;
	const char *endpoint = NULL;
	struct mem_tier_opts to;
	char *staging = NULL;

	mem_cli_init(&cli, "mem-store", argc, argv);
	memset(&run, 0, sizeof run);
	memset(&co, 0, sizeof co);
	memset(&to, 0, sizeof to);
	to.to = (enum mem_tier)-1;
	to.older_than = -1;
	to.accessed_before = NAN;
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
		case OPT_TIER:
			if ((store_tier = mem_tier_parse(optarg)) < 0)
				mem_cli_usage_error(&cli, "invalid --tier '%s': expected hot, warm or cold", optarg);
			break;
		case OPT_TO:
			if (mem_objstore_is_url(optarg)) {
				to.to = MEM_TIER_OBJECT;
				to.remote = optarg;
			} else if ((int)(to.to = (enum mem_tier)mem_tier_parse(optarg)) < 0)
				mem_cli_usage_error(&cli,
				    "invalid --to '%s': expected hot, warm, cold or s3://BUCKET/PREFIX", optarg);
			break;
		case OPT_OLDER:
			if (mem_tier_parse_age(optarg, &to.older_than, &err) < 0)
				mem_cli_usage_error(&cli, "%s", err.msg);
			break;
		case OPT_ACCESSED:
			if (mem_time_parse(optarg, &to.accessed_before, NULL, &err) < 0)
				mem_cli_usage_error(&cli, "invalid --accessed-before '%s': %s", optarg,
				    err.msg);
			break;
		case OPT_DRY_RUN:
			to.dry_run = 1;
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
		return verify(&cli, argc - optind - 1, argv + optind + 1, endpoint);
	if (optind < argc && strcmp(argv[optind], "tier") == 0)
		return tier(&cli, argc - optind - 1, argv + optind + 1, &to, endpoint);
	if ((int)to.to >= 0 || to.dry_run || to.older_than >= 0 || !isnan(to.accessed_before))
		mem_cli_usage_error(&cli, "--to, --older-than, --accessed-before and --dry-run "
		    "belong to mem-store tier");
	if (store_tier >= 0 && o->outdir == NULL)
		mem_cli_usage_error(&cli, "--tier needs -o DIR");
	if (store_tier == MEM_TIER_COLD && mem_objstore_is_url(o->outdir))
		mem_cli_usage_error(&cli, "--tier cold needs a local -o DIR, not an object store");
	if (store_tier == MEM_TIER_WARM && mem_objstore_is_url(o->outdir))
		mem_cli_usage_error(&cli, "--tier warm needs a local -o DIR, not an object store");
	if (store_tier >= 0)
		o->tier = mem_tier_name(store_tier == MEM_TIER_WARM ? MEM_TIER_HOT :
		    (enum mem_tier)store_tier);
	if (store_tier == MEM_TIER_COLD || store_tier == MEM_TIER_WARM) {
		run.cold = json_object();
		run.cold_to = store_tier;
	}
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
	if (o->co && mem_raster_check_cog_options(o->co, &err) < 0) {
		mem_cli_error(&cli, &err);
		mem_cli_list_free(o->co);
		mem_raster_done();
		return mem_cli_exit(&cli);
	}
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
	if (run.cold) {
		finish_cold(&cli, &run);
		json_decref(run.cold);
	}
	mem_cli_list_free(o->co);
	free(staging);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
