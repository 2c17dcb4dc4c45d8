# pipelines/ndvi.mk - fetch | tile | infer | store with each stage's manifest
# a make target.  Include it from a Makefile that sets SOURCES:
#
#   SOURCES = 2024-06 2024-07        # catalogs CATALOGS/2024-06/catalog.json, ...
#   include /usr/share/memories/pipelines/ndvi.mk   (or the path in a checkout)
#
# then `make -j2`: each source's chain (RUN/SRC/scenes.ndjson, tiles, results)
# is built on its own, so -j runs chains side by side, and mem-store gathers
# them into OUT.  A second `make` does nothing; touching one source's catalog
# (or changing it) redoes that source's chain and the store, not the others.
# Each manifest is written to a temporary name and renamed, so a killed make
# leaves no half-written target; the programs skip the items they finished.
#
# Variables (defaults after ?=):
CATALOGS ?= .
RUN ?= run
OUT ?= out
GRID ?= webmercator:14
ASSETS ?= red,nir,scl
STAGES ?= -s ndvi
# extra options for each program, e.g. FETCH_OPTS = --datetime 2024-07-01/2024-07-31
FETCH_OPTS ?=
TILE_OPTS ?=
INFER_OPTS ?=
STORE_OPTS ?=
WORK ?= $(RUN)/work
MEM_FETCH ?= mem-fetch
MEM_TILE ?= mem-tile
MEM_INFER ?= mem-infer
MEM_STORE ?= mem-store

.DELETE_ON_ERROR:
.SECONDARY:

all: $(RUN)/stored.ndjson

$(RUN)/%/scenes.ndjson: $(CATALOGS)/%/catalog.json
	@mkdir -p $(@D)
	$(MEM_FETCH) --assets $(ASSETS) $(FETCH_OPTS) --workdir $(WORK) $< > $@.tmp && mv $@.tmp $@

$(RUN)/%/tiles.ndjson: $(RUN)/%/scenes.ndjson
	$(MEM_TILE) -g $(GRID) $(TILE_OPTS) --workdir $(WORK) $< > $@.tmp && mv $@.tmp $@

$(RUN)/%/results.ndjson: $(RUN)/%/tiles.ndjson
	$(MEM_INFER) $(STAGES) $(INFER_OPTS) --workdir $(WORK) $< > $@.tmp && mv $@.tmp $@

$(RUN)/stored.ndjson: $(SOURCES:%=$(RUN)/%/results.ndjson)
	$(MEM_STORE) -o $(OUT) $(STORE_OPTS) --workdir $(WORK) $^ > $@.tmp && mv $@.tmp $@

.PHONY: all
