/*
 * mem-fetch - find scenes in STAC catalogs and bring their assets home.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fetch.h"
#include "raster.h"
#include "stac.h"

static const char usage[] =
"Usage: mem-fetch [OPTION]... SOURCE...\n"
"Find STAC items in SOURCE (a catalog, collection, item, item collection or\n"
"item manifest; a path, file:// or http(s):// URL, or - for standard input),\n"
"bring the requested assets into the work directory and write one scene item\n"
"per match on standard output.\n"
"\n"
"Filters:\n"
"      --bbox W,S,E,N      keep items meeting this lon/lat box\n"
"      --datetime DT       RFC 3339 instant, date (whole day) or interval A/B\n"
"                          (.. or empty for an open end)\n"
"      --collection ID     keep items of collection ID (repeatable, or a list)\n"
"      --max-cloud PCT     keep items with eo:cloud_cover <= PCT\n"
"      --max-items N       stop after N matching items\n"
"      --max-depth N       follow catalog links N levels deep (default 8)\n"
"Fetching:\n"
"      --assets LIST       asset keys or band names, e.g. red,nir,scl\n"
"                          (default: every asset with role \"data\")\n"
"      --dry-run           list the matches, fetch nothing\n"
"      --timeout SEC       HTTP timeout per transfer (default 60)\n"
"      --retries N         retries on timeouts, 429 and 5xx (default 3)\n"
"      --cafile FILE       verify HTTPS servers against the CAs in FILE\n"
"Common:\n"
MEM_CLI_COMMON_HELP("mem-fetch");

static const struct option longopts[] = {
	{ "bbox", required_argument, NULL, OPT_BBOX },
	{ "datetime", required_argument, NULL, OPT_DATETIME },
	{ "collection", required_argument, NULL, OPT_COLLECTION },
	{ "max-cloud", required_argument, NULL, OPT_MAX_CLOUD },
	{ "max-items", required_argument, NULL, OPT_MAX_ITEMS },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "assets", required_argument, NULL, OPT_ASSETS },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	MEM_CLI_COMMON_OPTIONS
};

struct run {
	struct mem_cli *cli;
	struct mem_fetch_opts o;
	long max_items, found;
	int dry_run;
};

static void
warn_cb(const struct mem_err *err, void *ctx)
{
	struct run *r = ctx;

	mem_cli_error(r->cli, err);
	r->cli->nfailed++;
}

static int
on_item(json_t *item, void *ctx, struct mem_err *err)
{
	struct run *r = ctx;
	struct mem_err ierr;
	json_t *scene;

	if (!mem_fetch_match(item, &r->o))
		return 0;
	if (r->max_items > 0 && r->found >= r->max_items)
		return 1;
	r->found++;
	mem_err_clear(&ierr);
	if (r->dry_run) {
		json_t *keys = mem_fetch_select(item, &r->o, &ierr), *k;
		size_t i;

		if (keys == NULL) {
			mem_cli_error(r->cli, &ierr);
			r->cli->nfailed++;
			return 0;
		}
		json_array_foreach(keys, i, k) {
			json_t *a = json_object_get(json_object_get(item, "assets"), json_string_value(k));

			printf("%s\t%s\t%s\n", mem_item_id(item), json_string_value(k), mem_asset_href(a));
		}
		fflush(stdout);
		json_decref(keys);
		return 0;
	}
	scene = mem_fetch_item(item, &r->o, &ierr);
	if (scene == NULL) {
		mem_cli_error(r->cli, &ierr);
		r->cli->nfailed++;
		return 0;
	}
	mem_cli_emit(r->cli, scene);
	json_decref(scene);
	(void)err;
	return 0;
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct run r;
	struct mem_err err;
	int opt, depth = 8, i;
	char *end;

	mem_cli_init(&cli, "mem-fetch");
	memset(&r, 0, sizeof r);
	r.cli = &cli;
	r.o.http.retries = 3;
	r.o.http.timeout = 60;
	while ((opt = getopt_long(argc, argv, "hVqj:", longopts, NULL)) != -1) {
		if (mem_cli_common_option(&cli, opt, optarg))
			continue;
		mem_err_clear(&err);
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			mem_cli_version(&cli);
		case OPT_BBOX:
			if (mem_bbox_parse(optarg, r.o.bbox, &err) < 0)
				mem_cli_usage_error(&cli, "%s", err.msg);
			r.o.has_bbox = 1;
			break;
		case OPT_DATETIME:
			if (mem_interval_parse(optarg, &r.o.datetime, &err) < 0)
				mem_cli_usage_error(&cli, "%s", err.msg);
			r.o.has_datetime = 1;
			break;
		case OPT_COLLECTION:
			r.o.collections = mem_cli_list(r.o.collections, optarg);
			break;
		case OPT_MAX_CLOUD:
			r.o.max_cloud = strtod(optarg, &end);
			if (end == optarg || *end || r.o.max_cloud < 0 || r.o.max_cloud > 100)
				mem_cli_usage_error(&cli, "invalid --max-cloud '%s': expected 0-100", optarg);
			r.o.has_max_cloud = 1;
			break;
		case OPT_MAX_ITEMS:
			r.max_items = mem_cli_number(&cli, "--max-items", optarg, 1, 1L << 40);
			break;
		case OPT_MAX_DEPTH:
			depth = (int)mem_cli_number(&cli, "--max-depth", optarg, 0, 100);
			break;
		case OPT_ASSETS:
			r.o.assets = mem_cli_list(r.o.assets, optarg);
			break;
		case OPT_DRY_RUN:
			r.dry_run = 1;
			break;
		case OPT_TIMEOUT:
			r.o.http.timeout = mem_cli_number(&cli, "--timeout", optarg, 1, 86400);
			break;
		case OPT_RETRIES:
			r.o.http.retries = (int)mem_cli_number(&cli, "--retries", optarg, 0, 100);
			break;
		case OPT_CAFILE:
			r.o.http.cafile = optarg;
			break;
		default:
			fprintf(stderr, "Try 'mem-fetch --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (optind >= argc)
		mem_cli_usage_error(&cli, "no SOURCE given");
	r.o.workdir = cli.workdir;
	mem_raster_init();
	mem_raster_set_threads(cli.jobs);
	mem_http_global_init();
	for (i = optind; i < argc; i++) {
		const char *src = argv[i];

		mem_err_clear(&err);
		if (strcmp(src, "-") == 0)
			src = "/dev/stdin";
		if (mem_stac_walk(src, depth, &r.o.http, on_item, &r, warn_cb, &err) < 0)
			mem_cli_error(&cli, &err);
		if (r.max_items > 0 && r.found >= r.max_items)
			break;
	}
	mem_cli_list_free(r.o.collections);
	mem_cli_list_free(r.o.assets);
	mem_http_global_done();
	mem_raster_done();
	return mem_cli_exit(&cli);
}
