#!/bin/sh
# pipelines/ndvi.sh - the pipeline of ndvi.mk as one shell pipe, the stages
# running at the same time, no manifest kept:
#
#   GRID=webmercator:14 OUT=out pipelines/ndvi.sh demo/catalog.json ...
#
# Variables as in ndvi.mk: GRID, ASSETS, STAGES, OUT, WORK, FETCH_OPTS,
# TILE_OPTS, INFER_OPTS, STORE_OPTS.  The stored items go to standard output.
set -eu
: "${GRID:=webmercator:14}" "${ASSETS:=red,nir,scl}" "${STAGES:=-s ndvi}"
: "${OUT:=out}" "${WORK:=mem-work}"
: "${FETCH_OPTS:=}" "${TILE_OPTS:=}" "${INFER_OPTS:=}" "${STORE_OPTS:=}"
[ $# -gt 0 ] || { echo "usage: ndvi.sh CATALOG..." >&2; exit 2; }
# shellcheck disable=SC2086 # the option variables hold several words
mem-fetch --assets "$ASSETS" $FETCH_OPTS --workdir "$WORK" "$@" |
	mem-tile -g "$GRID" $TILE_OPTS --workdir "$WORK" |
	mem-infer $STAGES $INFER_OPTS --workdir "$WORK" |
	mem-store -o "$OUT" $STORE_OPTS --workdir "$WORK"
