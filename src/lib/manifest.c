/*
 * manifest.c - the streaming reader and writer of item manifests.
 *
 * One JSON document per line.  Reading is done in chunks with fgets into a
 * buffer that grows to at most max_line bytes; an over-long line is skipped
 * to its newline and reported, so that a runaway producer cannot make a
 * consumer allocate without bound.  Unknown members are kept as they are:
 * items are parsed into jansson values and written back whole.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

void
mem_manifest_reader_init(struct mem_manifest_reader *r, FILE *fp, const char *name,
    size_t max_line)
{
	memset(r, 0, sizeof *r);
	r->fp = fp;
	r->name = mem_xstrdup(name ? name : "<stdin>");
	r->max_line = max_line ? max_line : MEM_MANIFEST_MAX_LINE_DEFAULT;
}

void
mem_manifest_reader_release(struct mem_manifest_reader *r)
{
	free(r->name);
	free(r->buf);
	r->buf = NULL;
	r->name = NULL;
	r->cap = 0;
}

/*
 * Reads one line without its newline into r->buf.  Returns its length, -1 at
 * end of file, -2 when the line exceeded max_line (consumed to its end), -3
 * on a read error.  getc_unlocked keeps embedded NUL bytes, which the JSON
 * parser then rejects with a position.
 */
static long
read_line(struct mem_manifest_reader *r)
{
	size_t len = 0;
	int c, toolong = 0;

	if (r->buf == NULL) {
		r->cap = 4096;
		r->buf = mem_xmalloc(r->cap);
	}
	while ((c = getc_unlocked(r->fp)) != EOF && c != '\n') {
		if (toolong)
			continue;
		/* one byte of slack: the CR of a CRLF ending does not count */
		if (len >= r->max_line + (c == '\r')) {
			toolong = 1;
			continue;
		}
		if (len == r->max_line && c != '\r') {
			toolong = 1;
			continue;
		}
		if (len + 2 > r->cap) {
			r->cap = r->cap * 2 > r->max_line + 2 ? r->max_line + 2 : r->cap * 2;
			r->buf = mem_xrealloc(r->buf, r->cap);
		}
		r->buf[len++] = (char)c;
	}
	if (c == EOF && ferror(r->fp))
		return -3;
	if (len > r->max_line && r->buf[len - 1] != '\r')
		toolong = 1;
	if (c == EOF && len == 0 && !toolong)
		return -1;
	if (toolong)
		return -2;
	if (len > 0 && r->buf[len - 1] == '\r')
		len--;
	r->buf[len] = '\0';
	return (long)len;
}

int
mem_manifest_check_item(const json_t *v, struct mem_err *err)
{
	const json_t *t, *id, *props, *assets;

	if (!json_is_object(v))
		return mem_err_set(err, MEM_EUSAGE, "not a JSON object");
	t = json_object_get(v, "type");
	if (!json_is_string(t))
		return mem_err_set(err, MEM_EUSAGE, "no \"type\" member");
	if (strcmp(json_string_value(t), "Feature") != 0)
		return mem_err_set(err, MEM_EUSAGE, "type is '%s', not 'Feature'",
		    json_string_value(t));
	id = json_object_get(v, "id");
	if (!json_is_string(id) || json_string_length(id) == 0)
		return mem_err_set(err, MEM_EUSAGE, "no string \"id\"");
	props = json_object_get(v, "properties");
	if (!json_is_object(props))
		return mem_err_set(err, MEM_EUSAGE, "item '%s' has no \"properties\" object",
		    json_string_value(id));
	assets = json_object_get(v, "assets");
	if (assets != NULL && !json_is_object(assets))
		return mem_err_set(err, MEM_EUSAGE, "item '%s': \"assets\" is not an object",
		    json_string_value(id));
	return 0;
}

int
mem_manifest_read(struct mem_manifest_reader *r, json_t **item, struct mem_err *err)
{
	*item = NULL;
	for (;;) {
		json_error_t jerr;
		json_t *v;
		long n;
		const char *p;

		if (r->failed)
			return 0;
		n = read_line(r);
		if (n == -1)
			return 0;
		r->lineno++;
		if (n == -3) {
			r->failed = 1;
			return mem_err_set(err, MEM_EITEM, "%s:%lu: read error: %s", r->name,
			    r->lineno, strerror(errno));
		}
		if (n == -2)
			return mem_err_set(err, MEM_EUSAGE, "%s:%lu: line longer than %zu bytes",
			    r->name, r->lineno, r->max_line);
		for (p = r->buf; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '\0')
			continue;
		v = json_loadb(r->buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
		if (v == NULL)
			return mem_err_set(err, MEM_EUSAGE, "%s:%lu: malformed JSON at column %d: %s",
			    r->name, r->lineno, jerr.column, jerr.text);
		if (mem_manifest_check_item(v, err) < 0) {
			json_decref(v);
			mem_err_prefix(err, "%s:%lu", r->name, r->lineno);
			if (err != NULL)
				err->status = MEM_EUSAGE;
			return -1;
		}
		*item = v;
		return 1;
	}
}

int
mem_manifest_write(FILE *fp, const json_t *item, struct mem_err *err)
{
	char *s = json_dumps(item, JSON_COMPACT);

	if (s == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot serialise item");
	if (fputs(s, fp) == EOF || fputc('\n', fp) == EOF || fflush(fp) == EOF) {
		free(s);
		return mem_err_set(err, MEM_EITEM, "cannot write item: %s", strerror(errno));
	}
	free(s);
	return 0;
}
