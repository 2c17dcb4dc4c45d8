/*
 * mem-fetch - find scenes in STAC catalogs and bring their assets home.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cpl_conv.h>

#include "cli.h"
#include "fetch.h"
#include "raster.h"
#include "search.h"
#include "stac.h"
#include "vector.h"

static const char usage[] =
"Usage: mem-fetch [OPTION]... SOURCE...\n"
"       mem-fetch --api URL | --source NAME [OPTION]...\n"
"Find STAC items in SOURCE (a catalog, collection, item, item collection or\n"
"item manifest; a path, file:// or http(s):// URL, or - for standard input)\n"
"or with a STAC API search, bring the requested assets into the work\n"
"directory and write one scene item per match on standard output.\n"
"\n"
"STAC API search:\n"
"      --api URL           search the STAC API at URL (its root or /search)\n"
"      --source NAME       a named API: earth-search, planetary-computer\n"
"                          (whose asset hrefs are signed for download);\n"
"                          its collection sentinel-2-l2a unless --collection\n"
"      --aoi FILE          search items meeting the geometry in FILE (GeoJSON,\n"
"                          GeoPackage, Shapefile; any CRS)\n"
"      --limit N           items per page asked of the server\n"
"      --sortby FIELDS     e.g. -properties.datetime (- for descending)\n"
"      --query JSON        query extension object, e.g. '{\"eo:cloud_cover\":{\"lt\":20}}'\n"
"      --filter JSON       CQL2-JSON filter\n"
"      --get               search with GET instead of POST\n"
"      --sign pc[=URL]     sign asset hrefs with Planetary Computer SAS tokens\n"
"                          from URL (default: its token service)\n"
"Vector layers:\n"
"      --vector            SOURCEs are vector files (GeoJSON, GeoPackage,\n"
"                          Shapefile, OSM PBF): each layer is cut to --aoi or\n"
"                          --bbox and written as GeoPackage, one item a layer\n"
"      --layers LIST       only these layers\n"
"      --t-srs EPSG:N      reproject the features\n"
"      --overpass QUERY    OSM data from an Overpass API query ({{bbox}} is\n"
"                          replaced by the box), as vector layers\n"
"      --overpass-url URL  the Overpass API (default overpass-api.de)\n"
"Filters (applied to search answers again, and to catalogs):\n"
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
"      --whole             copy whole assets; by default, with --bbox or --aoi,\n"
"                          only the window of a GeoTIFF covering it is read\n"
"      --dry-run           list item, asset, href and bytes; fetch nothing\n"
"      --plan              fetch nothing; print a JSON summary of the run: items,\n"
"                          assets, bytes, and tasks, a job array size\n"
"      --plan-per-task K   items a task of that array should do (default 50)\n"
"      --timeout SEC       HTTP timeout per transfer (default 60)\n"
"      --retries N         retries on timeouts, 429 and 5xx (default 3)\n"
"      --per-host N        transfers at once to one host (default 4)\n"
"      --cafile FILE       verify HTTPS servers against the CAs in FILE\n"
"Common (-j: transfers at once, default 4):\n"
MEM_CLI_SHARD_HELP
"                          (--max-items counts before the split)\n"
MEM_CLI_COMMON_HELP("mem-fetch");

/* Items a job-array task does, by default, in the --plan rule. */
#define PLAN_PER_TASK 50

#define PC_SAS_URL "https://planetarycomputer.microsoft.com/api/sas/v1/token"

static const struct option longopts[] = {
	{ "api", required_argument, NULL, OPT_API },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "aoi", required_argument, NULL, OPT_AOI },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "sortby", required_argument, NULL, OPT_SORTBY },
	{ "query", required_argument, NULL, OPT_QUERY },
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "get", no_argument, NULL, OPT_GET },
	{ "whole", no_argument, NULL, OPT_WHOLE },
	{ "per-host", required_argument, NULL, OPT_PER_HOST },
	{ "overpass", required_argument, NULL, OPT_OVERPASS },
	{ "overpass-url", required_argument, NULL, OPT_OVERPASS_URL },
	{ "vector", no_argument, NULL, OPT_VECTOR },
	{ "layers", required_argument, NULL, OPT_LAYERS },
	{ "t-srs", required_argument, NULL, OPT_T_SRS },
	{ "sign", required_argument, NULL, OPT_SIGN },
	{ "bbox", required_argument, NULL, OPT_BBOX },
	{ "datetime", required_argument, NULL, OPT_DATETIME },
	{ "collection", required_argument, NULL, OPT_COLLECTION },
	{ "max-cloud", required_argument, NULL, OPT_MAX_CLOUD },
	{ "max-items", required_argument, NULL, OPT_MAX_ITEMS },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "assets", required_argument, NULL, OPT_ASSETS },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "plan", no_argument, NULL, OPT_PLAN },
	{ "plan-per-task", required_argument, NULL, OPT_PLAN_PER_TASK },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	MEM_CLI_COMMON_OPTIONS
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct run {
	struct mem_cli *cli;
	int tty;		/* progress on stderr */
	long done;
	long long bytes;
	double t0;
	struct mem_fetch_opts o;
	long max_items, found;
	int dry_run;
	int plan;		/* --plan: count, fetch nothing */
	long per_task;		/* --plan-per-task */
	long plan_items, plan_assets, plan_unknown;	/* assets of unknown size */
	long long plan_bytes;
};

static void
warn_cb(const struct mem_err *err, void *ctx)
{
	struct run *r = ctx;

	mem_cli_error(r->cli, err);
	r->cli->nfailed++;
}

/* A line on stderr when it is a terminal: items, bytes, rate.  Quiet otherwise. */
static void
progress(struct run *r, const json_t *scene)
{
	json_t *a;
	const char *key;
	double dt;

	if (!r->tty)
		return;
	json_object_foreach(json_object_get(scene, "assets"), key, a) {
		json_t *w = json_object_get(a, "mem:window");

		r->bytes += w ? json_integer_value(json_object_get(w, "bytes_read")) :
		    json_integer_value(json_object_get(a, "file:size"));
	}
	r->done++;
	dt = now() - r->t0;
	fprintf(stderr, "\rmem-fetch: %ld items, %.1f MB, %.1f MB/s%s", r->done, r->bytes / 1e6,
	    dt > 0 ? r->bytes / 1e6 / dt : 0.0, "   ");
	if (r->max_items > 0 && r->done > 0 && r->done < r->max_items)
		fprintf(stderr, "ETA %.0f s ", dt / r->done * (r->max_items - r->done));
	fflush(stderr);
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
	/* counted before the shard split: the shards of a run share its --max-items */
	r->found++;
	if (!mem_cli_take(r->cli, item))
		return 0;
	mem_err_clear(&ierr);
	if (r->plan) {
		json_t *keys = mem_fetch_select(item, &r->o, &ierr), *k;
		size_t i;

		if (keys == NULL) {
			mem_cli_error(r->cli, &ierr);
			r->cli->nfailed++;
			return 0;
		}
		r->plan_items++;
		json_array_foreach(keys, i, k) {
			long long size = mem_fetch_asset_size(json_object_get(json_object_get(item,
			    "assets"), json_string_value(k)));

			r->plan_assets++;
			if (size >= 0)
				r->plan_bytes += size;
			else
				r->plan_unknown++;
		}
		json_decref(keys);
		return 0;
	}
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

			long long size = mem_fetch_asset_size(a);

			if (size >= 0)
				printf("%s\t%s\t%s\t%lld\n", mem_item_id(item), json_string_value(k),
				    mem_asset_href(a), size);
			else
				printf("%s\t%s\t%s\t-\n", mem_item_id(item), json_string_value(k),
				    mem_asset_href(a));
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
	progress(r, scene);
	json_decref(scene);
	(void)err;
	return 0;
}

static int
emit_vector(json_t *item, void *ctx)
{
	/* a layer is the item here: sharded by its id like any other */
	if (mem_cli_take(ctx, item))
		mem_cli_emit(ctx, item);
	return 0;
}

/*
 * The --plan summary.  tasks = ceil(items / per_task): each task of a job
 * array run with --shard I/tasks gets about per_task items (the hash split
 * is even on average, not exact).
 */
static void
print_plan(const struct run *r)
{
	long tasks = (r->plan_items + r->per_task - 1) / r->per_task;
	json_t *p;

	p = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
	    "items", (json_int_t)r->plan_items,
	    "assets", (json_int_t)r->plan_assets,
	    "bytes", (json_int_t)r->plan_bytes,
	    "assets_unknown_size", (json_int_t)r->plan_unknown,
	    "per_task", (json_int_t)r->per_task,
	    "tasks", (json_int_t)tasks);
	json_dumpf(p, stdout, JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(p);
}

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct run r;
	struct mem_err err;
	struct mem_fetch_stats stats = { 0, 0, 0 };
	int opt, depth = 8, i, use_get = 0, vector = 0, t_epsg = 0;
	char **layers = NULL;
	const char *source = NULL, *overpass = NULL, *overpass_url = "https://overpass-api.de/api/interpreter";
	const char *api = NULL, *aoi = NULL, *sortby = NULL;
	json_t *query = NULL, *filter = NULL;
	long limit = 0;
	char *end;

	mem_cli_init(&cli, "mem-fetch", argc, argv);
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
		case OPT_API:
			api = optarg;
			break;
		case OPT_SOURCE:
			source = optarg;
			api = mem_search_named_url(optarg);
			if (api == NULL)
				mem_cli_usage_error(&cli,
				    "unknown source '%s' (earth-search, planetary-computer, or --api URL)",
				    optarg);
			if (strcmp(optarg, "planetary-computer") == 0 && r.o.sas_url == NULL)
				r.o.sas_url = PC_SAS_URL;
			break;
		case OPT_SIGN:
			if (strcmp(optarg, "pc") == 0)
				r.o.sas_url = PC_SAS_URL;
			else if (strncmp(optarg, "pc=", 3) == 0 && optarg[3])
				r.o.sas_url = optarg + 3;
			else
				mem_cli_usage_error(&cli, "unknown --sign '%s' (pc or pc=TOKEN_URL)", optarg);
			break;
		case OPT_AOI:
			aoi = optarg;
			break;
		case OPT_LIMIT:
			limit = mem_cli_number(&cli, "--limit", optarg, 1, 10000);
			break;
		case OPT_SORTBY:
			sortby = optarg;
			break;
		case OPT_QUERY:
		case OPT_FILTER: {
			json_error_t jerr;
			json_t *v = json_loads(optarg, 0, &jerr);

			if (!json_is_object(v))
				mem_cli_usage_error(&cli, "invalid --%s: %s", opt == OPT_QUERY ? "query" :
				    "filter", v ? "not a JSON object" : jerr.text);
			if (opt == OPT_QUERY) {
				json_decref(query);
				query = v;
			} else {
				json_decref(filter);
				filter = v;
			}
			break;
		}
		case OPT_GET:
			use_get = 1;
			break;
		case OPT_WHOLE:
			r.o.whole = 1;
			break;
		case OPT_OVERPASS:
			overpass = optarg;
			vector = 1;
			break;
		case OPT_OVERPASS_URL:
			overpass_url = optarg;
			break;
		case OPT_PER_HOST:
			r.o.per_host = (int)mem_cli_number(&cli, "--per-host", optarg, 1, 256);
			break;
		case OPT_VECTOR:
			vector = 1;
			break;
		case OPT_LAYERS:
			layers = mem_cli_list(layers, optarg);
			break;
		case OPT_T_SRS:
			if (strncasecmp(optarg, "EPSG:", 5) != 0 ||
			    (t_epsg = (int)strtol(optarg + 5, &end, 10)) <= 0 || *end)
				mem_cli_usage_error(&cli, "invalid --t-srs '%s': expected EPSG:CODE", optarg);
			break;
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
		case OPT_PLAN:
			r.plan = 1;
			break;
		case OPT_PLAN_PER_TASK:
			r.per_task = mem_cli_number(&cli, "--plan-per-task", optarg, 1, 1L << 40);
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
	if (optind >= argc && api == NULL && overpass == NULL)
		mem_cli_usage_error(&cli, "no SOURCE given (or --api URL, --source NAME)");
	if (optind < argc && api != NULL)
		mem_cli_usage_error(&cli, "a SOURCE and --api/--source are not used together");
	if (r.plan && (r.dry_run || vector))
		mem_cli_usage_error(&cli, "--plan is not used with --dry-run, --vector or --overpass");
	if (r.per_task > 0 && !r.plan)
		mem_cli_usage_error(&cli, "--plan-per-task goes with --plan");
	if (r.per_task == 0)
		r.per_task = PLAN_PER_TASK;
	r.o.workdir = cli.workdir;
	r.o.jobs = cli.jobs;
	r.tty = !cli.quiet && isatty(STDERR_FILENO);
	r.t0 = now();
	r.o.sas_tokens = json_object();
	r.o.stats = &stats;
	mem_raster_init();
	mem_raster_set_threads(cli.jobs);
	mem_http_global_init();
	{
		/* window reads go through GDAL's HTTP: the same timeout and retries */
		char v[32];

		snprintf(v, sizeof v, "%ld", r.o.http.timeout);
		CPLSetConfigOption("GDAL_HTTP_TIMEOUT", v);
		snprintf(v, sizeof v, "%d", r.o.http.retries);
		CPLSetConfigOption("GDAL_HTTP_MAX_RETRY", v);
		CPLSetConfigOption("GDAL_HTTP_RETRY_DELAY", "0.5");
		if (r.o.http.cafile)
			CPLSetConfigOption("CURL_CA_BUNDLE", r.o.http.cafile);
	}
	/* --ledger: one worker (the election's leader) fetches, the others emit its items */
	if (!mem_cli_lead(&cli))
		goto out;
	if (aoi) {
		double ab[4];

		mem_err_clear(&err);
		r.o.aoi = mem_vector_aoi(aoi, ab, &err);
		if (r.o.aoi == NULL)
			mem_cli_usage_error(&cli, "%s", err.msg);
		if (!r.o.has_bbox) {
			/* items are kept when they meet the AOI's box */
			memcpy(r.o.bbox, ab, sizeof ab);
			r.o.has_bbox = 1;
		}
	}
	if (vector) {
		struct mem_vector_opts vo;

		memset(&vo, 0, sizeof vo);
		vo.aoi = r.o.aoi;
		vo.has_bbox = r.o.has_bbox;
		memcpy(vo.bbox, r.o.bbox, sizeof vo.bbox);
		vo.t_epsg = t_epsg;
		vo.layers = layers;
		vo.workdir = cli.workdir;
		if (overpass) {
			char *osm;

			mem_err_clear(&err);
			osm = mem_fetch_overpass(overpass_url, overpass, &r.o, &err);
			if (osm == NULL)
				mem_cli_error(&cli, &err);
			else {
				mem_err_clear(&err);
				if (mem_vector_fetch(osm, &vo, emit_vector, &cli, &err) < 0)
					mem_cli_error(&cli, &err);
				free(osm);
			}
		}
		for (i = optind; i < argc; i++) {
			mem_err_clear(&err);
			if (mem_vector_fetch(argv[i], &vo, emit_vector, &cli, &err) < 0)
				mem_cli_error(&cli, &err);
		}
		optind = argc;	/* the sources are done */
	}
	if (api) {
		struct mem_search_opts so;

		/* a named source without --collection searches its usual one */
		if (source && r.o.collections == NULL)
			r.o.collections = mem_cli_list(NULL, mem_search_named_collection(source));

		memset(&so, 0, sizeof so);
		so.url = api;
		so.use_get = use_get;
		so.http = r.o.http;
		so.max_items = r.max_items;
		so.body = mem_fetch_search_body(&r.o, limit, sortby, query, filter);
		mem_err_clear(&err);
		if (mem_search_run(&so, on_item, &r, &err) < 0)
			mem_cli_error(&cli, &err);
		json_decref(so.body);
	}
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
	if (r.tty && r.done > 0)
		fputc('\n', stderr);
	if (r.plan)
		print_plan(&r);
out:
	if (stats.windows > 0 && r.tty)
		fprintf(stderr, "mem-fetch: read %.1f MB for %d windows of assets of %.1f MB (%.1f %%)\n",
		    stats.fetched / 1e6, stats.windows, stats.full / 1e6,
		    stats.full > 0 ? 100.0 * stats.fetched / stats.full : 0);
	mem_cli_list_free(layers);
	json_decref(query);
	json_decref(filter);
	json_decref(r.o.aoi);
	json_decref(r.o.sas_tokens);
	mem_cli_list_free(r.o.collections);
	mem_cli_list_free(r.o.assets);
	mem_http_global_done();
	mem_raster_done();
	return mem_cli_exit(&cli);
}
