/*
 * mem-tile - reproject and mosaic scenes into the cells of a tile grid.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli.h"
#include "item.h"
#include "raster.h"
#include "tile.h"
#include "warp.h"

static const char usage[] =
"Usage: mem-tile -g GRID [OPTION]... [MANIFEST]...\n"
"Reproject, mosaic and composite the scene items read from MANIFEST files\n"
"(standard input when none, or -) into the cells of GRID, and write one tile\n"
"item per cell and date (or composite period) on standard output.  Scenes of\n"
"one date are mosaicked, the latest on top; cells without a valid pixel are\n"
"skipped.  Tiles are made when the input ends, in parallel, and emitted in a\n"
"fixed order; a rerun emits finished tiles without remaking them.\n"
"\n"
"  -g, --grid GRID         webmercator:Z[:SIZE]  WebMercatorQuad zoom Z, SIZE px\n"
"                                                tiles (default 256); Z0-Z1 makes\n"
"                                                a pyramid from Z1 down to Z0\n"
"                          utm[:RES[:SIZE]]      the scene's UTM zone, RES metres\n"
"                                                (default: finest band), SIZE px\n"
"                                                tiles (default 1024)\n"
"                          tms:FILE:LEVEL[-LEVEL] an OGC TileMatrixSet JSON file,\n"
"                                                tile matrices by id\n"
"      --composite METHOD[:PERIOD]\n"
"                          combine the scenes of each PERIOD (P1D, P10D, P2W,\n"
"                          P1M, P1Y; default: the whole input) per pixel:\n"
"                          latest, first, least-cloudy (clear pixels by SCL,\n"
"                          then scene cloud cover), median (of clear values),\n"
"                          max-ndvi (all bands from the scene of highest NDVI)\n"
"      --mem SIZE          memory budget (e.g. 512M, 2G): sets GDAL's cache,\n"
"                          the number of workers and the rows made at once\n"
"      --bbox W,S,E,N      only cells meeting this lon/lat box\n"
"      --bands LIST        asset keys or band names (default: all raster assets)\n"
"      --shard I/N         only the cells of shard I of N (0 <= I < N), a stable\n"
"                          split by a hash of the cell name, for job arrays\n"
"  -r, --resampling ALG    near, bilinear, cubic, cubicspline, lanczos, average,\n"
"                          mode (default bilinear; classification assets such\n"
"                          as scl always use near)\n"
MEM_CLI_COMMON_HELP("mem-tile");

static const struct option longopts[] = {
	{ "grid", required_argument, NULL, 'g' },
	{ "bbox", required_argument, NULL, OPT_BBOX },
	{ "bands", required_argument, NULL, OPT_BANDS },
	{ "resampling", required_argument, NULL, 'r' },
	{ "list-cells", no_argument, NULL, OPT_LIST_CELLS },
	{ "composite", required_argument, NULL, OPT_COMPOSITE },
	{ "mem", required_argument, NULL, OPT_MEM },
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
claim(void *ctx, const char *id, struct mem_err *err)
{
	return mem_cli_claim(ctx, id, NULL, err);
}

static int
done(void *ctx, const char *id, struct mem_err *err)
{
	struct mem_cli *c = ctx;

	if (mem_cli_done(c, id, err) == 0)
		return 0;
	mem_cli_error(c, err);
	return -1;
}

/* A size in bytes: a number with an optional K, M, G or T (powers of 1024). */
static double
parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k': case 'K': v *= 1024; end++; break;
	case 'm': case 'M': v *= 1024.0 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; end++; break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	return end == s || *end != '\0' || !(v > 0) || !isfinite(v) ? -1 : v;
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

	mem_cli_init(&cli, "mem-tile", argc, argv);
	cli.shard_items = 0;	/* every scene is read: shards split the cells */
#ifdef __GLIBC__
	/*
	 * GDAL allocates and frees its warp buffers (hundreds of kB) for every
	 * window; above glibc's mmap threshold each is a fresh mapping, its
	 * page faults and, on unmap, a TLB shootdown across CPUs: 10-15 % of a
	 * tiling run.  Kept in the heap they are reused.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
#endif
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
		case OPT_LIST_CELLS:
			o.list_cells = 1;
			break;
		case OPT_COMPOSITE:
			if (mem_tile_composite_parse(optarg, &o, &err) < 0)
				mem_cli_usage_error(&cli, "%s", err.msg);
			break;
		case OPT_MEM:
			if ((o.mem = parse_size(optarg)) < 0)
				mem_cli_usage_error(&cli, "invalid --mem '%s': expected a size such as 512M or 2G",
				    optarg);
			break;
		case 'r':
			if (!mem_warp_known_resampling(optarg))
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
	o.shard = cli.shard.index;
	o.nshards = cli.shard.count;
	o.workdir = cli.workdir;
	o.jobs = cli.jobs > 0 ? cli.jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
	mem_raster_init();
	/* a TileMatrixSet gives its corners in its CRS's axis order: ask PROJ */
	if (mem_grid_tms_crs(&o.grid) && !mem_grid_tms_axes_known(&o.grid)) {
		OGRSpatialReferenceH sr = mem_raster_srs_epsg(o.grid.epsg);

		mem_grid_set_axes(&o.grid, sr && (OSREPSGTreatsAsLatLong(sr) ||
		    OSREPSGTreatsAsNorthingEasting(sr)));
		OSRDestroySpatialReference(sr);
	}
	mem_err_clear(&err);
	if (mem_tile_plan_memory(&o, &err) < 0)
		mem_cli_usage_error(&cli, "%s", err.msg);
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
		mem_grid_free(&o.grid);
		mem_raster_done();
		return mem_cli_exit(&cli);
	}
	mem_raster_set_threads(1);	/* the cells are the parallelism */
	if (cli.ledger_opts.url) {
		o.claim = claim;
		o.done = done;
		o.ledger_ctx = &cli;
	}
	t = mem_tiler_new(&o, emit, fail, &cli);
	mem_cli_each_item(&cli, argc - optind, argv + optind, on_item, t);
	mem_err_clear(&err);
	if (mem_tiler_flush(t, &err) < 0)
		mem_cli_error(&cli, &err);
	mem_tiler_free(t);
	mem_cli_list_free(o.bands);
	mem_grid_free(&o.grid);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
