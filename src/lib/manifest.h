/*
 * manifest.h - newline-delimited STAC Items (see mem-manifest(5)).
 *
 * The reader holds one line at a time, so memory is bounded by the longest
 * accepted line whatever the number of lines.  A line longer than max_line
 * is consumed and reported, never buffered whole.
 */
#ifndef MEM_MANIFEST_H
#define MEM_MANIFEST_H

#include <jansson.h>
#include <stdio.h>

#include "memories.h"

#define MEM_MANIFEST_VERSION "1"
#define MEM_MANIFEST_MAX_LINE_DEFAULT (64UL << 20)

struct mem_manifest_reader {
	FILE *fp;		/* not owned */
	char *name;		/* for messages: a path or "<stdin>" */
	unsigned long lineno;	/* line of the last item or error */
	size_t max_line;
	char *buf;
	size_t cap;
	int failed;		/* a read error ended the stream */
};

/* Prepares r to read fp; name labels messages.  max_line 0 means the default. */
void mem_manifest_reader_init(struct mem_manifest_reader *r, FILE *fp,
    const char *name, size_t max_line);
/* Frees what r holds (not fp). */
void mem_manifest_reader_release(struct mem_manifest_reader *r);

/*
 * Reads the next item.  Returns 1 with *item a new reference the caller
 * drops with json_decref(); 0 at the end; -1 for a malformed line (err says
 * "NAME:LINE: why", status MEM_EUSAGE; the reader goes on at the next line)
 * or a read error (status MEM_EITEM; further reads return 0).
 * Blank lines are skipped.  A FeatureCollection line is not an item: it is
 * reported as malformed (mem-fetch reads collections, the stream does not).
 */
int mem_manifest_read(struct mem_manifest_reader *r, json_t **item, struct mem_err *err);

/* Checks that v is an item the stream accepts; err says what is missing. */
int mem_manifest_check_item(const json_t *v, struct mem_err *err);

/* Writes item as one line and flushes, so the next stage sees it at once. */
int mem_manifest_write(FILE *fp, const json_t *item, struct mem_err *err);

#endif
