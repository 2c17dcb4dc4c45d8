/*
 * mem-tile - reproject and mosaic scenes into the cells of a tile grid.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "item.h"
#include "raster.h"
#include "tile.h"

static const char usage[] =
"Usage: mem-tile -g GRID [OPTION]... [MANIFEST]...\n"
"Reproject and mosaic the scene items read from MANIFEST files (standard input\n"
"when none, or -) into the cells of GRID, and write one tile item per cell and\n"
"date on standard output.  Scenes of one date that arrive together are\n"
"mosaicked; cells without a valid pixel are skipped.\n"
"\n"
"  -g, --grid GRID         webmercator:Z[:SIZE]  WebMercatorQuad zoom Z, SIZE px\n"
"                                                tiles (default 256)\n"
"                          utm[:RES[:SIZE]]      the scene's UTM zone, RES metres\n"
"                                                (default: finest band), SIZE px\n"
"                                                tiles (default 1024)\n"
"      --bbox W,S,E,N      only cells meeting this lon/lat box\n"
"      --bands LIST        asset keys or band names (default: all raster assets)\n"
"  -r, --resampling ALG    near, bilinear, cubic, cubicspline, lanczos, average,\n"
"                          mode (default bilinear; classification assets such\n"
"                          as scl always use near)\n"
MEM_CLI_COMMON_HELP("mem-tile");

static const struct option longopts[] = {
	{ "grid", required_argument, NULL, 'g' },
	{ "bbox", required_argument, NULL, OPT_BBOX },
	{ "bands", required_argument, NULL, OPT_BANDS },
	{ "resampling", required_argument, NULL, 'r' },
	{ "shard", required_argument, NULL, OPT_SHARD },
	{ "list-cells", no_argument, NULL, OPT_LIST_CELLS },
	MEM_CLI_COMMON_OPTIONS
};

static int
emit(json_t *tile, void *ctx)
{
	mem_cli_emit(ctx, tile);
	return 0;
}

static void
fail(const struct mem_err *err, void *ctx)
{
	struct mem_cli *c = ctx;

	mem_cli_error(c, err);
	c->nfailed++;
}

static int
on_item(struct mem_cli *c, json_t *item, void *ctx)
{
	struct mem_err err;

	mem_err_clear(&err);
	if (mem_tiler_add(ctx, item, &err) < 0) {
		mem_cli_error(c, &err);
		c->nfailed++;
	}
	return 0;
}

static int
known_resampling(const char *s)
{
	static const char *ok[] = { "near", "bilinear", "cubic", "cubicspline", "lanczos",
		"average", "rms", "mode", "max", "min", "med", "q1", "q3", "sum", NULL };

	for (const char **p = ok; *p; p++)
		if (strcmp(*p, s) == 0)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct mem_tile_opts o;
	struct mem_tiler *t;
	struct mem_err err;
	const char *grid = NULL;
	int opt;

	mem_cli_init(&cli, "mem-tile");
	memset(&o, 0, sizeof o);
	o.resample = "bilinear";
	while ((opt = getopt_long(argc, argv, "hVqj:g:r:", longopts, NULL)) != -1) {
		if (mem_cli_common_option(&cli, opt, optarg))
			continue;
		mem_err_clear(&err);
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			mem_cli_version(&cli);
		case 'g':
			grid = optarg;
			if (mem_grid_parse(optarg, &o.grid, &err) < 0)
				mem_cli_usage_error(&cli, "%s", err.msg);
			break;
		case OPT_BBOX:
			if (mem_bbox_parse(optarg, o.bbox, &err) < 0)
				mem_cli_usage_error(&cli, "%s", err.msg);
			o.has_bbox = 1;
			break;
		case OPT_BANDS:
			o.bands = mem_cli_list(o.bands, optarg);
			break;
		case OPT_SHARD: {
			char *end;
			long i = strtol(optarg, &end, 10), n = *end == '/' ? strtol(end + 1, &end, 10) : 0;

			if (*end || n < 1 || i < 0 || i >= n)
				mem_cli_usage_error(&cli, "invalid --shard '%s': expected I/N with 0 <= I < N",
				    optarg);
			o.shard = (int)i;
			o.nshards = (int)n;
			break;
		}
		case OPT_LIST_CELLS:
			o.list_cells = 1;
			break;
		case 'r':
			if (!known_resampling(optarg))
				mem_cli_usage_error(&cli, "unknown resampling '%s'", optarg);
			o.resample = optarg;
			break;
		default:
			fprintf(stderr, "Try 'mem-tile --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (grid == NULL)
		mem_cli_usage_error(&cli, "no grid given (-g webmercator:Z or -g utm)");
	o.grid_spec = grid;
	o.workdir = cli.workdir;
	mem_raster_init();
	if (o.list_cells) {
		const char *name;
		json_t *v;

		o.cells = json_object();
		mem_err_clear(&err);
		/* a box and no manifest: the cells of the box, no input read */
		if (optind >= argc && o.has_bbox) {
			if (mem_tile_list_box(&o, o.cells, &err) < 0)
				mem_cli_error(&cli, &err);
		} else {
			t = mem_tiler_new(&o, emit, fail, &cli);
			mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, t);
			if (mem_tiler_flush(t, &err) < 0)
				mem_cli_error(&cli, &err);
			mem_tiler_free(t);
		}
		json_object_foreach(o.cells, name, v)
			printf("%s\n", name);
		json_decref(o.cells);
		mem_cli_list_free(o.bands);
		mem_raster_done();
		return mem_cli_exit(&cli);
	}
	mem_raster_set_threads(cli.jobs);
	t = mem_tiler_new(&o, emit, fail, &cli);
	mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, t);
	mem_err_clear(&err);
	if (mem_tiler_flush(t, &err) < 0)
		mem_cli_error(&cli, &err);
	mem_tiler_free(t);
	mem_cli_list_free(o.bands);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
