/*
 * mem-store - write items durably: COGs and a STAC catalog.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "files.h"
#include "item.h"
#include "raster.h"
#include "store.h"

static const char usage[] =
"Usage: mem-store -o DIR [OPTION]... [MANIFEST]...\n"
"Write the items read from MANIFEST files (standard input when none, or -)\n"
"into DIR: each raster asset as a Cloud Optimized GeoTIFF, each item as STAC\n"
"JSON with relative hrefs, and a STAC catalog (DIR/catalog.json) over all the\n"
"items in DIR.  Write the stored items on standard output.\n"
"\n"
"  -o, --output DIR        the output directory (required)\n"
"      --co KEY=VALUE      COG creation option (repeatable; default\n"
"                          COMPRESS=DEFLATE, OVERVIEWS=AUTO, BLOCKSIZE=512)\n"
"      --catalog-id ID     the catalog's id (default memories)\n"
"      --title TEXT        the catalog's title\n"
MEM_CLI_SHARD_HELP
MEM_CLI_COMMON_HELP("mem-store");

static const struct option longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "co", required_argument, NULL, OPT_CO },
	{ "catalog-id", required_argument, NULL, OPT_CATALOG_ID },
	{ "title", required_argument, NULL, OPT_TITLE },
	MEM_CLI_COMMON_OPTIONS
};

static int
on_item(struct mem_cli *c, json_t *item, void *ctx)
{
	struct mem_err err;
	json_t *out;
	int skipped;

	mem_err_clear(&err);
	out = mem_store_item(item, ctx, &skipped, &err);
	if (out == NULL) {
		mem_cli_error(c, &err);
		c->nfailed++;
		return 0;
	}
	mem_cli_emit(c, out);
	json_decref(out);
	return 0;
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct mem_store_opts o;
	struct mem_err err;
	int opt;

	mem_cli_init(&cli, "mem-store", argc, argv);
	memset(&o, 0, sizeof o);
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
			o.outdir = optarg;
			break;
		case OPT_CO:
			if (strchr(optarg, '=') == NULL)
				mem_cli_usage_error(&cli, "invalid --co '%s': expected KEY=VALUE", optarg);
			o.co = mem_cli_list(o.co, optarg);
			break;
		case OPT_CATALOG_ID:
			o.catalog_id = optarg;
			break;
		case OPT_TITLE:
			o.title = optarg;
			break;
		default:
			fprintf(stderr, "Try 'mem-store --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (o.outdir == NULL)
		mem_cli_usage_error(&cli, "no output directory given (-o DIR)");
	mem_raster_init();
	mem_raster_set_threads(cli.jobs);
	mem_err_clear(&err);
	if (mem_mkdir_p(o.outdir, &err) < 0) {
		mem_cli_error(&cli, &err);
		return mem_cli_exit(&cli);
	}
	mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, &o);
	/* the catalog describes whatever is stored, even after a failed item */
	mem_err_clear(&err);
	if (mem_store_finish(&o, &err) < 0)
		mem_cli_error(&cli, &err);
	mem_cli_list_free(o.co);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
