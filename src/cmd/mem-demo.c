/*
 * mem-demo - write the demo scene, a static STAC catalog of COGs.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo.h"
#include "raster.h"

static const char usage[] =
"Usage: mem-demo [-o DIR] [--size N]\n"
"Write a deterministic synthetic scene with the look of a Sentinel-2 L2A tile\n"
"(water, vegetation, bare ground, a cloud and its shadow, a nodata edge) as a\n"
"static STAC catalog of COGs: DIR/catalog.json, bands B02 B03 B04 B08 at 10 m\n"
"and SCL at 20 m.  The same bytes every run.\n"
"\n"
"  -o, --output DIR        where to write (default demo)\n"
"      --size N            pixels per side at 10 m (default 1024)\n"
"  -q, --quiet             no warnings\n"
"  -h, --help              show this help and exit\n"
"  -V, --version           show the version and exit\n"
"\n"
"Exit status: 0 done, 1 a file could not be written, 2 usage error.\n"
"See mem-demo(1).\n";

static const struct option longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

int
main(int argc, char **argv)
{
	struct mem_cli cli;
	struct mem_err err;
	const char *dir = "demo";
	int opt, size = 1024;

	mem_cli_init(&cli, "mem-demo", argc, argv);
	while ((opt = getopt_long(argc, argv, "hVqo:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			mem_cli_version(&cli);
		case 'q':
			cli.quiet = 1;
			break;
		case 'o':
			dir = optarg;
			break;
		case OPT_SIZE:
			size = (int)mem_cli_number(&cli, "--size", optarg, 64, 20000);
			break;
		default:
			fprintf(stderr, "Try 'mem-demo --help' for more information.\n");
			return MEM_EUSAGE;
		}
	}
	if (optind < argc)
		mem_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
	mem_raster_init();
	mem_err_clear(&err);
	if (mem_demo_write(dir, size, &err) < 0)
		mem_cli_error(&cli, &err);
	mem_raster_done();
	return mem_cli_exit(&cli);
}
