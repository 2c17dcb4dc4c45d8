/*
 * tier.c - moves stored items between the hot tier (files in the item's
 * folder) and the cold one (members of a per-collection, per-month ustar
 * archive); see tier.h for the layout and the order of the steps that
 * keeps the catalog true when a move is killed.
 *
 * The archive of a group (collection and month) is derived from the set of
 * items that are to be cold in it: any change of that set writes a new
 * archive with all of them, points each item at it, then removes the old
 * archive.  Members keep their bytes, so an item already cold only has its
 * href and offsets changed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cpl_vsi.h>
#include <gdal.h>

#include "cube.h"
#include "files.h"
#include "item.h"
#include "objstore.h"
#include "raster.h"
#include "sha256.h"
#include "tar.h"
#include "tier.h"

static int asset_is_warm(const json_t *a);

static const char *const tier_names[] = { "hot", "warm", "cold", "object" };

int
mem_tier_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (s && strcmp(s, tier_names[i]) == 0)
			return i;
	return -1;
}

const char *
mem_tier_name(enum mem_tier t)
{
	return (unsigned)t < 4 ? tier_names[t] : "?";
}

int
mem_tier_parse_age(const char *s, double *seconds, struct mem_err *err)
{
	char *end;
	double v = strtod(s, &end), unit = 1;

	if (end == s || v < 0 || !isfinite(v))
		goto bad;
	if (*end && end[1] == '\0') {
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: goto bad;
		}
	} else if (*end)
		goto bad;
	*seconds = v * unit;
	return 0;
bad:
	return mem_err_set(err, MEM_EUSAGE, "invalid age '%s': expected a number and s, m, h, d or w",
	    s);
}

/* One stored item of a collection. */
struct entry {
	char *id, *dir, *jpath;
	json_t *item;		/* as stored, relative hrefs */
	int cold, selected, movable;
	int object;		/* has assets moved to the object store */
	int warm;		/* has assets in the collection's cube */
	char period[8];		/* YYYY-MM */
};

static int
is_local(const char *href)
{
	return href && !mem_href_is_url(href) && href[0] != '/';
}

static int
asset_is_cold(const json_t *a)
{
	return json_object_get(a, "archive:href") != NULL;
}

/* 1 when any of the item's assets is one pred accepts. */
static int
any_asset(const json_t *item, int (*pred)(const json_t *))
{
	const char *key;
	json_t *a;

	json_object_foreach(json_object_get((json_t *)item, "assets"), key, a)
		if (pred(a))
			return 1;
	return 0;
}

static int
is_object(const json_t *a)
{
	const char *h = mem_asset_href(a);

	return h && mem_objstore_is_url(h) &&
	    strcmp(json_string_value(json_object_get(a, "storage:tier")) ?
	    json_string_value(json_object_get(a, "storage:tier")) : "", "object") == 0;
}

static int
has_local_assets(const json_t *item)
{
	const char *key;
	json_t *a;

	json_object_foreach(json_object_get((json_t *)item, "assets"), key, a)
		if (is_local(mem_asset_href(a)))
			return 1;
	return 0;
}

/* The latest access time of the item's files (its archive when cold). */
static double
item_atime(const struct entry *e)
{
	const char *key;
	json_t *a;
	double t = -INFINITY;

	json_object_foreach(json_object_get(e->item, "assets"), key, a) {
		const char *h = mem_asset_href(a);
		struct stat st;
		char *p;

		if (!is_local(h))
			continue;
		p = mem_path_join(e->dir, h);
		if (stat(p, &st) == 0)
			t = fmax(t, (double)st.st_atim.tv_sec + st.st_atim.tv_nsec * 1e-9);
		free(p);
	}
	return t;
}




static void
entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].id);
		free(e[i].dir);
		free(e[i].jpath);
		json_decref(e[i].item);
	}
	free(e);
}

/* The items of DIR/COLL, with the filters of o applied. */
static size_t
load_collection(const struct mem_tier_opts *o, const char *coll, const char *cdir,
    struct entry **out)
{
	char **ids;
	size_t nid = mem_list_dir(cdir, 1, &ids), n = 0;
	struct entry *es = NULL;
	double now = (double)time(NULL);

	for (size_t i = 0; i < nid; i++) {
		char *dir = mem_path_join(cdir, ids[i]);
		char *jpath = mem_xasprintf("%s/%s.json", dir, ids[i]);
		json_t *item;
		struct entry *e;
		char date[11];

		/* a killed move's temporary item file or download */
		if (!o->dry_run)
			mem_sweep_tmp(dir);
		item = json_load_file(jpath, 0, NULL);
		if (item == NULL) {
			free(dir);
			free(jpath);
			continue;
		}
		es = mem_xrealloc(es, (n + 1) * sizeof *es);
		e = &es[n++];
		memset(e, 0, sizeof *e);
		e->id = mem_xstrdup(ids[i]);
		e->dir = dir;
		e->jpath = jpath;
		e->item = item;
		e->cold = any_asset(item, asset_is_cold);
		e->object = any_asset(item, is_object);
		e->warm = any_asset(item, asset_is_warm);
		e->movable = !e->warm && has_local_assets(item) && mem_item_date(item, date, NULL) == 0;
		if (e->movable)
			snprintf(e->period, sizeof e->period, "%.7s", date);
		e->selected = 1;
		if (e->selected && o->only) {
			char *k = mem_xasprintf("%s/%s", coll, ids[i]);

			e->selected = json_object_get(o->only, k) != NULL;
			free(k);
		}
		if (e->selected && o->older_than >= 0) {
			struct mem_interval tv;

			e->selected = mem_item_time(item, &tv, NULL) == 0 &&
			    tv.end < now - o->older_than;
		}
		if (e->selected && !isnan(o->accessed_before))
			e->selected = item_atime(e) < o->accessed_before;
	}
	mem_free_names(ids, nid);
	*out = es;
	return n;
}

/* One file of a group's archive: where its bytes are now, and its asset. */
struct member {
	char *name;		/* ID/FILE */
	char *src;		/* the hot file, or the archive holding it */
	off_t from, size;
	const char *checksum;
	struct entry *e;
	const char *key;	/* the asset */
};

static int
cmp_member(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->name, ((const struct member *)b)->name);
}

static void
members_free(struct member *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].src);
	}
	free(m);
}

static int
write_item(const char *path, const json_t *v, struct mem_err *err)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	size_t n;
	int rc;

	if (s == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot serialise '%s'", path);
	n = strlen(s);
	s = mem_xrealloc(s, n + 2);
	s[n] = '\n';
	s[n + 1] = '\0';
	rc = mem_write_file_atomic(path, s, n + 1, err);
	free(s);
	return rc;
}

/*
 * Writes next as e's item (atomically) and makes it e's: 0, or -1 with next
 * freed and e left as it was.  With drop_local, the files the old item named
 * in its folder go once the new one is in place (n->removed counts them).
 */
static int
replace_item(struct entry *e, json_t *next, int drop_local, struct mem_tier_moved *n,
    struct mem_err *err)
{
	const char *key;
	json_t *a;

	if (write_item(e->jpath, next, err) < 0) {
		json_decref(next);
		return -1;
	}
	if (drop_local)
		json_object_foreach(json_object_get(e->item, "assets"), key, a) {
			const char *h = mem_asset_href(a);
			char *p;

			if (!is_local(h))
				continue;
			p = mem_path_join(e->dir, h);
			if (unlink(p) == 0)
				n->removed++;
			free(p);
		}
	json_decref(e->item);
	e->item = next;
	return 0;
}

/*
 * The members of the group's items, checked against the checksums their
 * items state; an item whose file is missing or changed is left out of
 * the group (and counted failed), so no broken file goes cold.
 */
static size_t
group_members(struct entry **g, size_t ng, struct member **out, struct mem_tier_moved *n,
    struct mem_err *err)
{
	struct member *m = NULL;
	size_t nm = 0;

	for (size_t i = 0; i < ng; i++) {
		struct entry *e = g[i];
		size_t first = nm;
		const char *key;
		json_t *a;
		int bad = 0;

		json_object_foreach(json_object_get(e->item, "assets"), key, a) {
			const char *h = mem_asset_href(a), *ah, *want;
			json_t *js = json_object_get(a, "file:size"), *jst;
			struct member *mm;

			if (!is_local(h))
				continue;
			want = json_string_value(json_object_get(a, "file:checksum"));
			m = mem_xrealloc(m, (nm + 1) * sizeof *m);
			mm = &m[nm++];
			memset(mm, 0, sizeof *mm);
			mm->e = e;
			mm->key = key;
			mm->checksum = want;
			mm->src = mem_path_join(e->dir, h);
			if ((ah = json_string_value(json_object_get(a, "archive:href"))) != NULL) {
				jst = json_object_get(a, "archive:start");
				mm->name = mem_xstrdup(ah);
				mm->from = (off_t)json_integer_value(jst);
				mm->size = (off_t)json_integer_value(js);
				if (!json_is_integer(jst) || !json_is_integer(js) || want == NULL) {
					mem_err_set(err, MEM_EITEM, "item '%s' asset '%s': archive:start or file:size missing",
					    e->id, key);
					bad = 1;
				}
			} else {
				char sum[69];
				off_t size;

				mm->name = mem_xasprintf("%s/%s", e->id, mem_path_basename(h));
				if (mem_file_checksum(mm->src, sum, &size, err) < 0) {
					mem_err_prefix(err, "item '%s' asset '%s'", e->id, key);
					bad = 1;
				} else if (want && strcasecmp(want, sum) != 0) {
					mem_err_set(err, MEM_EITEM,
					    "item '%s' asset '%s': '%s' does not match its file:checksum; not moved",
					    e->id, key, mm->src);
					bad = 1;
				}
				mm->size = size;
				mm->from = 0;
			}
		}
		if (bad) {
			for (size_t k = first; k < nm; k++) {
				free(m[k].name);
				free(m[k].src);
			}
			nm = first;
			n->failed++;
			e->movable = 0;
		}
	}
	if (nm)
		qsort(m, nm, sizeof *m, cmp_member);
	*out = m;
	return nm;
}

/* archive-PERIOD-HASH.tar, HASH from the members' names and checksums */
static char *
archive_name(const char *period, struct member *m, size_t nm)
{
	struct mem_sha256 s;
	unsigned char dig[32];
	char hex[65];

	mem_sha256_init(&s);
	for (size_t i = 0; i < nm; i++) {
		mem_sha256_update(&s, m[i].name, strlen(m[i].name) + 1);
		if (m[i].checksum)
			mem_sha256_update(&s, m[i].checksum, strlen(m[i].checksum));
		mem_sha256_update(&s, "\n", 1);
	}
	mem_sha256_final(&s, dig);
	mem_hex(dig, 32, hex);
	return mem_xasprintf("archive-%s-%.12s.tar", period, hex);
}

/* The asset of a cold item, pointing at member mm of archive aname at start. */
static void
set_cold(json_t *a, const struct member *mm, const char *aname, off_t start, off_t size)
{
	const char *type = json_string_value(json_object_get(a, "type"));
	char *href = mem_xasprintf("../%s", aname);

	if (json_object_get(a, "archive:type") == NULL && type)
		json_object_set_new(a, "archive:type", json_string(type));
	json_object_set_new(a, "href", json_string(href));
	json_object_set_new(a, "type", json_string("application/x-tar"));
	json_object_set_new(a, "archive:href", json_string(mm->name));
	json_object_set_new(a, "archive:format", json_string("application/x-tar"));
	json_object_set_new(a, "archive:start", json_integer((json_int_t)start));
	json_object_set_new(a, "archive:end", json_integer((json_int_t)(start + size - 1)));
	json_object_set_new(a, "file:size", json_integer((json_int_t)size));
	json_object_set_new(a, "storage:tier", json_string("cold"));
	free(href);
}

/* 1 when some asset is a file in the item's own folder. */
static int
has_local_assets_here(const json_t *item)
{
	const char *key;
	json_t *a;

	json_object_foreach(json_object_get((json_t *)item, "assets"), key, a) {
		const char *h = mem_asset_href(a);

		if (is_local(h) && strchr(h, '/') == NULL)
			return 1;
	}
	return 0;
}

/* Removes the files of a cold item's folder other than its JSON: an interrupted move's. */
static void
clean_cold_dir(struct entry *e, struct mem_tier_moved *n)
{
	char **files;
	size_t nf = mem_list_dir(e->dir, 0, &files);
	char *jname = mem_xasprintf("%s.json", e->id);

	for (size_t i = 0; i < nf; i++) {
		char *p;

		if (strcmp(files[i], jname) == 0)
			continue;
		p = mem_path_join(e->dir, files[i]);
		if (unlink(p) == 0)
			n->removed++;
		free(p);
	}
	free(jname);
	mem_free_names(files, nf);
}

/*
 * Makes the group's archive hold exactly the items of g (all to be cold),
 * and points them at it.
 */
static int
pack(const struct mem_tier_opts *o, const char *coll, const char *cdir, const char *period,
    struct entry **g, size_t ng, mem_tier_fn fn, void *ctx, struct mem_tier_moved *n,
    struct mem_err *err)
{
	struct member *m;
	size_t nm = group_members(g, ng, &m, n, err), i;
	char *aname, *apath;
	off_t *starts;
	int current = 1, rc = 0;

	if (nm == 0) {
		free(m);
		return 0;
	}
	aname = archive_name(period, m, nm);
	apath = mem_path_join(cdir, aname);
	for (i = 0; i < nm && current; i++) {
		const char *h = mem_asset_href(json_object_get(json_object_get(m[i].e->item, "assets"),
		    m[i].key));

		current = m[i].e->cold && h && strcmp(mem_path_basename(h), aname) == 0;
	}
	if (current || o->dry_run) {
		for (i = 0; i < ng && o->dry_run; i++)
			if (!g[i]->cold && g[i]->movable) {
				n->items++;
				if (fn)
					fn(ctx, coll, g[i]->id, MEM_TIER_HOT, MEM_TIER_COLD);
			}
		goto out;
	}
	starts = mem_xcalloc(nm, sizeof *starts);
	if (mem_path_exists(apath)) {
		/* a previous move wrote it and was stopped: its members are these */
		struct mem_tar_member *tm;
		ssize_t nt = mem_tar_list(apath, &tm, err);

		for (i = 0; i < nm && nt >= 0; i++) {
			ssize_t k;

			for (k = 0; k < nt && strcmp(tm[k].name, m[i].name); k++)
				;
			if (k == nt || tm[k].size != m[i].size) {
				mem_err_set(err, MEM_EITEM, "'%s' lacks '%s'", apath, m[i].name);
				nt = -1;
			} else
				starts[i] = tm[k].start;
		}
		if (nt >= 0)
			mem_tar_members_free(tm, (size_t)nt);
		if (nt < 0 && unlink(apath) == 0)
			n->removed++;	/* not ours after all: written again below */
		else if (nt >= 0)
			goto point;
	}
	{
		struct mem_tar *t = mem_tar_create(apath, err);

		if (t == NULL) {
			rc = -1;
			free(starts);
			goto out;
		}
		for (i = 0; i < nm; i++)
			if (mem_tar_add(t, m[i].name, m[i].src, m[i].from, m[i].size, &starts[i],
			    err) < 0)
				break;
		if (i < nm) {
			mem_tar_abort(t);
			rc = -1;
			free(starts);
			goto out;
		}
		if (mem_tar_commit(t, err) < 0) {
			rc = -1;
			free(starts);
			goto out;
		}
		n->archives++;
	}
point:
	/* each item now points at the new archive, one atomic replace each */
	for (i = 0; i < ng; i++) {
		struct entry *e = g[i];
		json_t *next = json_deep_copy(e->item);
		int was_cold = e->cold;

		if (!e->movable) {
			json_decref(next);
			continue;
		}
		for (size_t k = 0; k < nm; k++) {
			if (m[k].e != e)
				continue;
			set_cold(json_object_get(json_object_get(next, "assets"), m[k].key), &m[k],
			    aname, starts[k], m[k].size);
		}
		mem_item_add_extension(next, MEM_EXT_STORAGE);
		if (replace_item(e, next, 0, n, err) < 0) {
			n->failed++;
			continue;
		}
		e->cold = 1;
		if (!was_cold) {
			n->items++;
			if (fn)
				fn(ctx, coll, e->id, MEM_TIER_HOT, MEM_TIER_COLD);
		}
	}
	free(starts);
out:
	members_free(m, nm);
	free(aname);
	free(apath);
	return rc;
}

/* Brings a cold item's members back into its folder, then points the item at them. */
static int
restore(struct entry *e, struct mem_err *err)
{
	json_t *next = json_deep_copy(e->item), *a;
	const char *key;

	json_object_foreach(json_object_get(next, "assets"), key, a) {
		const char *h = mem_asset_href(a);
		const char *ah = json_string_value(json_object_get(a, "archive:href"));
		const char *type = json_string_value(json_object_get(a, "archive:type"));
		json_t *js = json_object_get(a, "file:size"), *jst = json_object_get(a, "archive:start");
		const char *fname;
		char *apath, *dst;
		int rc;

		if (!is_local(h) || ah == NULL)
			continue;
		if (!json_is_integer(js) || !json_is_integer(jst)) {
			mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s': archive:start or file:size missing", e->id, key);
			json_decref(next);
			return -1;
		}
		fname = mem_path_basename(ah);
		apath = mem_path_join(e->dir, h);
		dst = mem_path_join(e->dir, fname);
		rc = mem_tar_extract(apath, (off_t)json_integer_value(jst),
		    (off_t)json_integer_value(js),
		    json_string_value(json_object_get(a, "file:checksum")), dst, err);
		free(apath);
		free(dst);
		if (rc < 0) {
			mem_err_prefix(err, "item '%s' asset '%s'", e->id, key);
			json_decref(next);	/* key is next's */
			return -1;
		}
		json_object_set_new(a, "href", json_string(fname));
		if (type)
			json_object_set_new(a, "type", json_string(type));
		json_object_del(a, "archive:href");
		json_object_del(a, "archive:type");
		json_object_del(a, "archive:format");
		json_object_del(a, "archive:start");
		json_object_del(a, "archive:end");
		json_object_set_new(a, "storage:tier", json_string("hot"));
	}
	mem_item_add_extension(next, MEM_EXT_STORAGE);
	if (replace_item(e, next, 0, NULL, err) < 0)
		return -1;
	e->cold = 0;
	return 0;
}

/* Uploads a hot item's files to the bucket, points the item at them, removes them here. */
static int
to_object(const struct mem_tier_opts *o, const char *coll, struct entry *e,
    struct mem_tier_moved *n, struct mem_err *err)
{
	json_t *next = json_deep_copy(e->item), *a;
	const char *key;

	json_object_foreach(json_object_get(next, "assets"), key, a) {
		const char *h = mem_asset_href(a), *want;
		char *local, *rel, *v, *u, sum[69];
		VSIStatBufL st;
		off_t size;
		int rc;

		if (!is_local(h))
			continue;
		local = mem_path_join(e->dir, h);
		want = json_string_value(json_object_get(a, "file:checksum"));
		rc = mem_file_checksum(local, sum, &size, err);
		if (rc == 0 && want && strcasecmp(want, sum) != 0)
			rc = mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s': '%s' does not match its file:checksum; not moved",
			    e->id, key, local);
		rel = mem_xasprintf("%s/%s/%s", coll, e->id, mem_path_basename(h));
		v = mem_objstore_path(o->remote, rel);
		u = mem_xasprintf("%s/%s", o->remote, rel);
		if (rc == 0)
			rc = mem_objstore_put(local, v, u, err);
		/* what the store says it holds is what was sent */
		if (rc == 0 && (VSIStatL(v, &st) != 0 || (off_t)st.st_size != size))
			rc = mem_err_set(err, MEM_ETEMP, "'%s' is not in the store after its upload", u);
		if (rc == 0) {
			json_object_set_new(a, "href", json_string(u));
			json_object_set_new(a, "storage:tier", json_string("object"));
		}
		free(local);
		free(rel);
		free(v);
		free(u);
		if (rc < 0) {
			json_decref(next);
			return mem_err_prefix(err, "item '%s'", e->id);
		}
	}
	mem_item_add_extension(next, MEM_EXT_STORAGE);
	if (replace_item(e, next, 1, n, err) < 0)
		return -1;
	e->object = 1;
	return 0;
}

/* Downloads an item's objects into its folder, points the item at them, deletes the objects. */
static int
from_object(struct entry *e, struct mem_tier_moved *n, struct mem_err *err)
{
	json_t *next = json_deep_copy(e->item), *a, *gone = json_array(), *v;
	const char *key;
	size_t i;

	json_object_foreach(json_object_get(next, "assets"), key, a) {
		const char *h = mem_asset_href(a), *want;
		const char *fname = h ? mem_path_basename(h) : NULL;
		char *vsi, *dst, sum[69];
		int rc;

		if (!is_object(a))
			continue;
		want = json_string_value(json_object_get(a, "file:checksum"));
		vsi = mem_objstore_path(h, NULL);
		dst = mem_path_join(e->dir, fname);
		rc = mem_objstore_get(vsi, dst, err);
		if (rc == 0 && want && (mem_file_checksum(dst, sum, NULL, err) < 0 ||
		    strcasecmp(want, sum) != 0)) {
			rc = mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s': '%s' does not match its file:checksum; not moved",
			    e->id, key, h);
			unlink(dst);
		}
		free(dst);
		if (rc < 0) {
			free(vsi);
			json_decref(next);
			json_decref(gone);
			return -1;
		}
		json_array_append_new(gone, json_string(vsi));
		free(vsi);
		json_object_set_new(a, "href", json_string(fname));
		json_object_set_new(a, "storage:tier", json_string("hot"));
	}
	if (replace_item(e, next, 0, n, err) < 0) {
		json_decref(gone);
		return -1;
	}
	json_array_foreach(gone, i, v)
		if (VSIUnlink(json_string_value(v)) == 0)
			n->removed++;
	json_decref(gone);
	e->object = 0;
	return 0;
}

/*
 * The warm tier: single-band raster assets as time slices of the
 * collection's datacube, DIR/COLLECTION/cube.nc (see tier.h).
 */

static int
asset_is_warm(const json_t *a)
{
	const char *t = json_string_value(json_object_get(a, "storage:tier"));

	return t && strcmp(t, "warm") == 0 && json_object_get(a, "warm:variable");
}

/* Reads the band's window as its data type, little-endian, row-major (north up). */
static void *
read_window(GDALRasterBandH b, int x, int y, int w, int h, size_t *len)
{
	GDALDataType t = GDALGetRasterDataType(b);
	int sz = GDALGetDataTypeSizeBytes(t);
	void *buf = mem_xmalloc((size_t)w * (size_t)h * (size_t)sz);

	if (GDALRasterIO(b, GF_Read, x, y, w, h, buf, w, h, t, 0, 0) != CE_None) {
		free(buf);
		return NULL;
	}
#if !CPL_IS_LSB
	GDALSwapWords(buf, sz, w * h, sz);
#endif
	*len = (size_t)w * (size_t)h * (size_t)sz;
	return buf;
}

static void
slice_sum(const void *buf, size_t len, char out[69])
{
	struct mem_sha256 s;
	unsigned char dig[32];

	mem_sha256_init(&s);
	mem_sha256_update(&s, buf, len);
	mem_sha256_final(&s, dig);
	memcpy(out, "1220", 4);
	mem_hex(dig, 32, out + 4);
}

/*
 * Opens variable var of the cube and finds the band (time step) of the UTC
 * day of t and the pixel window of the geotransform gt, w x h.
 */
static GDALDatasetH
open_slice(const char *cube, const char *var, double t, const double gt[6], int w, int h,
    int *band, int win[2], struct mem_err *err)
{
	char *p = mem_xasprintf("NETCDF:\"%s\":%s", cube, var);
	GDALDatasetH ds = GDALOpenEx(p, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
	double cg[6];
	long day = (long)floor(t / 86400);
	int nb;

	free(p);
	if (ds == NULL) {
		mem_err_set(err, MEM_EITEM, "'%s': GDAL cannot open its variable '%s'", cube, var);
		return NULL;
	}
	nb = GDALGetRasterCount(ds);
	*band = 0;
	for (int i = 1; i <= nb && *band == 0; i++) {
		const char *v = GDALGetMetadataItem(GDALGetRasterBand(ds, i), "NETCDF_DIM_time", NULL);

		if (v && (long)floor(strtod(v, NULL) / 86400) == day)
			*band = i;
	}
	if (*band == 0 || GDALGetGeoTransform(ds, cg) != CE_None) {
		mem_err_set(err, MEM_EITEM, "'%s' variable '%s': no time step for this item's date",
		    cube, var);
		GDALClose(ds);
		return NULL;
	}
	win[0] = (int)lround((gt[0] - cg[0]) / cg[1]);
	win[1] = (int)lround((gt[3] - cg[3]) / cg[5]);
	if (win[0] < 0 || win[1] < 0 || win[0] + w > GDALGetRasterXSize(ds) ||
	    win[1] + h > GDALGetRasterYSize(ds) || fabs(cg[1] - gt[1]) > 1e-9 * fabs(gt[1])) {
		mem_err_set(err, MEM_EITEM, "'%s' variable '%s': the item's window is not in the cube",
		    cube, var);
		GDALClose(ds);
		return NULL;
	}
	return ds;
}

/* The warm asset's fields: where its slice is. */
static int
warm_where(const json_t *a, double gt[6], int *w, int *h, double *t, const char **var)
{
	json_t *jgt = json_object_get(a, "warm:transform"), *js = json_object_get(a, "warm:shape");
	const char *dt = json_string_value(json_object_get(a, "warm:datetime"));
	struct mem_interval iv;
	json_t *it;

	*var = json_string_value(json_object_get(a, "warm:variable"));
	if (*var == NULL || json_array_size(jgt) != 6 || json_array_size(js) != 2 || dt == NULL)
		return -1;
	for (int i = 0; i < 6; i++)
		gt[i] = json_number_value(json_array_get(jgt, (size_t)i));
	*h = (int)json_integer_value(json_array_get(js, 0));
	*w = (int)json_integer_value(json_array_get(js, 1));
	it = json_pack("{s:{s:s}}", "properties", "datetime", dt);
	if (mem_item_time(it, &iv, NULL) < 0) {
		json_decref(it);
		return -1;
	}
	json_decref(it);
	*t = iv.start;
	return *w > 0 && *h > 0 ? 0 : -1;
}

int
mem_tier_warm_slice(const char *cube, const json_t *a, char sum[69], struct mem_err *err)
{
	double gt[6], t;
	int w, h, band, win[2];
	const char *var;
	GDALDatasetH ds;
	void *buf;
	size_t len;

	if (warm_where(a, gt, &w, &h, &t, &var) < 0)
		return mem_err_set(err, MEM_EITEM,
		    "warm asset without warm:variable, warm:datetime, warm:transform or warm:shape");
	if ((ds = open_slice(cube, var, t, gt, w, h, &band, win, err)) == NULL)
		return -1;
	buf = read_window(GDALGetRasterBand(ds, band), win[0], win[1], w, h, &len);
	GDALClose(ds);
	if (buf == NULL)
		return mem_err_set(err, MEM_EITEM, "'%s': cannot read the slice of '%s'", cube, var);
	slice_sum(buf, len, sum);
	free(buf);
	return 0;
}

/*
 * Checks that a hot item can go warm: every file of its folder a
 * single-band raster matching its file:checksum.  Returns 0, or -1 with err.
 */
static int
warm_check(const struct entry *e, struct mem_err *err)
{
	const char *key;
	json_t *a;

	json_object_foreach(json_object_get(e->item, "assets"), key, a) {
		const char *h = mem_asset_href(a), *want = json_string_value(json_object_get(a,
		    "file:checksum")), *type = json_string_value(json_object_get(a, "type"));
		char *p, sum[69];
		GDALDatasetH ds;
		int nb;

		if (!is_local(h))
			continue;
		if (!(type && strstr(type, "image/tiff")) && !(strlen(h) > 4 &&
		    !strcasecmp(h + strlen(h) - 4, ".tif")))
			return mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s' is not a GeoTIFF; the item stays hot", e->id, key);
		p = mem_path_join(e->dir, h);
		if (mem_file_checksum(p, sum, NULL, err) < 0 || (want && strcasecmp(want, sum))) {
			free(p);
			return mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s': its file does not match its file:checksum; the item stays hot",
			    e->id, key);
		}
		ds = GDALOpenEx(p, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
		free(p);
		nb = ds ? GDALGetRasterCount(ds) : -1;
		if (ds)
			GDALClose(ds);
		if (nb != 1)
			return mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s' has %d bands; a cube variable holds one: the item stays hot",
			    e->id, key, nb);
	}
	return 0;
}

/* A copy of the item with only its local assets, their hrefs absolute (for mem_cube_add). */
static json_t *
abs_item(const struct entry *e)
{
	json_t *c = json_deep_copy(e->item), *as = json_object_get(c, "assets"), *a;
	const char *key;
	void *tmp;

	json_object_foreach_safe(as, tmp, key, a) {
		const char *h = mem_asset_href(a);

		if (!is_local(h)) {
			json_object_del(as, key);
			continue;
		}
		{
			char *p = mem_path_join(e->dir, h), *ab = mem_path_absolute(p);

			json_object_set_new(a, "href", json_string(ab));
			free(p);
			free(ab);
		}
	}
	return c;
}

/*
 * Points the item's assets at their slices of cube, once each slice's
 * values, read back through GDAL, equal the file's.  Writes the item; then
 * removes its files.
 */
static int
point_warm(struct entry *e, const char *cube, struct mem_tier_moved *n, struct mem_err *err)
{
	json_t *next = json_deep_copy(e->item), *a;
	const char *key;
	char dt[40];
	struct mem_interval iv;
	time_t ts;
	struct tm tm;

	if (mem_item_time(e->item, &iv, err) < 0) {
		json_decref(next);
		return -1;
	}
	ts = (time_t)floor(iv.start);
	gmtime_r(&ts, &tm);
	strftime(dt, sizeof dt, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_foreach(json_object_get(next, "assets"), key, a) {
		const char *h = mem_asset_href(a);
		char *p, var[256], sum[69], *gdal;
		GDALDatasetH src, cd;
		GDALRasterBandH sb;
		double gt[6];
		int w, hh, band, win[2], has_nd;
		void *b1 = NULL, *b2 = NULL;
		size_t l1 = 0, l2 = 0;
		double nd;

		if (!is_local(h))
			continue;
		p = mem_path_join(e->dir, h);
		src = GDALOpenEx(p, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
		free(p);
		if (src == NULL || GDALGetGeoTransform(src, gt) != CE_None) {
			if (src)
				GDALClose(src);
			{
				int rc_ = mem_err_set(err, MEM_EITEM, "item '%s' asset '%s': cannot open it", e->id, key);

				json_decref(next);
				return rc_;
			}
		}
		w = GDALGetRasterXSize(src);
		hh = GDALGetRasterYSize(src);
		sb = GDALGetRasterBand(src, 1);
		nd = GDALGetRasterNoDataValue(sb, &has_nd);
		/* the cube's name for the key, as mem_cube_add makes it */
		{
			size_t k = 0;
			const char *q;

			if (!((key[0] >= 'a' && key[0] <= 'z') || (key[0] >= 'A' && key[0] <= 'Z')) ||
			    !strcmp(key, "x") || !strcmp(key, "y") || !strcmp(key, "time") ||
			    !strcmp(key, "crs")) {
				strcpy(var, "band_");
				k = 5;
			}
			for (q = key; *q && k < sizeof var - 1; q++)
				var[k++] = ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
				    (*q >= '0' && *q <= '9')) ? *q : '_';
			var[k] = '\0';
		}
		cd = open_slice(cube, var, iv.start, gt, w, hh, &band, win, err);
		if (cd) {
			GDALRasterBandH cb = GDALGetRasterBand(cd, band);

			b1 = read_window(sb, 0, 0, w, hh, &l1);
			if (GDALGetRasterDataType(cb) == GDALGetRasterDataType(sb))
				b2 = read_window(cb, win[0], win[1], w, hh, &l2);
			GDALClose(cd);
		}
		GDALClose(src);
		if (cd == NULL || b1 == NULL || b2 == NULL || l1 != l2 || memcmp(b1, b2, l1) != 0) {
			free(b1);
			free(b2);
			if (cd == NULL)
				mem_err_prefix(err, "item '%s' asset '%s'", e->id, key);
			else
				mem_err_set(err, MEM_EITEM,
				    "item '%s' asset '%s': its values in the cube differ from its file (another item of that date over it, or another data type); the item stays hot",
				    e->id, key);
			json_decref(next);
			return -1;
		}
		slice_sum(b2, l2, sum);
		free(b1);
		free(b2);
		if (json_object_get(a, "type"))
			json_object_set(a, "warm:type", json_object_get(a, "type"));
		json_object_set_new(a, "warm:file", json_string(mem_path_basename(h)));
		json_object_set_new(a, "href", json_string("../cube.nc"));
		json_object_set_new(a, "type", json_string("application/x-netcdf"));
		json_object_set_new(a, "warm:variable", json_string(var));
		json_object_set_new(a, "warm:datetime", json_string(dt));
		json_object_set_new(a, "warm:band", json_integer(band));
		gdal = mem_xasprintf("NETCDF:\"../cube.nc\":%s", var);
		json_object_set_new(a, "warm:gdal", json_string(gdal));
		free(gdal);
		json_object_set_new(a, "warm:window", json_pack("[iiii]", win[0], win[1], w, hh));
		json_object_set_new(a, "warm:transform", json_pack("[ffffff]", gt[0], gt[1], gt[2],
		    gt[3], gt[4], gt[5]));
		json_object_set_new(a, "warm:shape", json_pack("[ii]", hh, w));
		if (has_nd)
			json_object_set_new(a, "warm:nodata", json_real(nd));
		json_object_set_new(a, "warm:checksum", json_string(sum));
		json_object_del(a, "file:checksum");
		json_object_del(a, "file:size");
		json_object_set_new(a, "storage:tier", json_string("warm"));
	}
	mem_item_add_extension(next, MEM_EXT_STORAGE);
	return replace_item(e, next, 1, n, err);	/* the item names the cube now: its files go */
}

/*
 * Brings a warm item's warm:band and warm:window up to date with the cube
 * (an append of an earlier date renumbers the steps, a wider extent moves
 * the windows); the slice itself is found by warm:datetime and
 * warm:transform, so an item not yet refreshed still verifies.
 */
static int
refresh_warm(struct entry *e, struct mem_err *err)
{
	json_t *next = json_deep_copy(e->item), *a;
	const char *key;
	int changed = 0;

	json_object_foreach(json_object_get(next, "assets"), key, a) {
		const char *h = mem_asset_href(a), *var;
		double gt[6], t;
		int w, hh, band, win[2];
		char *cube;
		GDALDatasetH cd;
		json_t *jw;

		if (!is_local(h) || !asset_is_warm(a) || warm_where(a, gt, &w, &hh, &t, &var) < 0)
			continue;
		cube = mem_path_join(e->dir, h);
		cd = open_slice(cube, var, t, gt, w, hh, &band, win, err);
		free(cube);
		if (cd == NULL) {
			{
				int rc_ = mem_err_prefix(err, "item '%s' asset '%s'", e->id, key);

				json_decref(next);
				return rc_;
			}
		}
		GDALClose(cd);
		jw = json_pack("[iiii]", win[0], win[1], w, hh);
		if (json_integer_value(json_object_get(a, "warm:band")) != band ||
		    !json_equal(jw, json_object_get(a, "warm:window"))) {
			json_object_set_new(a, "warm:band", json_integer(band));
			json_object_set(a, "warm:window", jw);
			changed = 1;
		}
		json_decref(jw);
	}
	if (changed && write_item(e->jpath, next, err) < 0) {
		json_decref(next);
		return -1;
	}
	json_decref(e->item);
	e->item = next;
	return 0;
}

static void
tell(const struct mem_tier_opts *o, const struct mem_err *e)
{
	if (o->failed)
		o->failed(o->failed_ctx, e);
}

/* Moves the selected hot items of the collection into its cube. */
static void
to_warm(const struct mem_tier_opts *o, const char *coll, const char *cdir, struct entry *es,
    size_t ne, mem_tier_fn fn, void *ctx, struct mem_tier_moved *n, struct mem_err *err)
{
	char *cube = mem_path_join(cdir, "cube.nc");
	struct mem_cube_opts co = { cube, 1, "mem-store tier" };
	struct mem_cube *c = NULL;
	int *in = mem_xcalloc(ne ? ne : 1, sizeof *in), changed = 0, any = 0;
	size_t i;

	for (i = 0; i < ne; i++) {
		struct mem_err e2;
		json_t *ai;

		if (!es[i].selected || es[i].cold || es[i].object || !es[i].movable ||
		    any_asset(es[i].item, asset_is_warm))
			continue;
		mem_err_clear(&e2);
		if (warm_check(&es[i], &e2) < 0) {
			*err = e2;
			tell(o, &e2);
			n->failed++;
			continue;
		}
		if (o->dry_run) {
			n->items++;
			if (fn)
				fn(ctx, coll, es[i].id, MEM_TIER_HOT, MEM_TIER_WARM);
			continue;
		}
		if (c == NULL && (c = mem_cube_new(&co, &e2)) == NULL) {
			*err = e2;
			tell(o, &e2);
			n->failed++;
			break;
		}
		ai = abs_item(&es[i]);
		if (mem_cube_add(c, ai, &e2) < 0) {
			mem_err_prefix(&e2, "'%s' cannot take it (the item stays hot)", cube);
			*err = e2;
			tell(o, &e2);
			n->failed++;
		} else
			in[i] = any = 1;
		json_decref(ai);
	}
	if (any) {
		struct mem_err e2;

		mem_err_clear(&e2);
		/* mem_cube_commit writes a temporary copy, fsyncs and renames it */
		if (mem_cube_commit(c, &changed, &e2) < 0) {
			*err = e2;
			tell(o, &e2);
			for (i = 0; i < ne; i++)
				n->failed += in[i];
			any = 0;
		}
	}
	if (c)
		mem_cube_free(c);
	/* the items already warm, when the cube changed under them */
	for (i = 0; i < ne && changed; i++) {
		struct mem_err e2;

		mem_err_clear(&e2);
		if (es[i].warm && refresh_warm(&es[i], &e2) < 0) {
			*err = e2;
			tell(o, &e2);
			n->failed++;
		}
	}
	for (i = 0; i < ne && any; i++) {
		struct mem_err e2;

		if (!in[i])
			continue;
		mem_err_clear(&e2);
		if (point_warm(&es[i], cube, n, &e2) < 0) {
			*err = e2;
			tell(o, &e2);
			n->failed++;
			continue;
		}
		n->items++;
		if (fn)
			fn(ctx, coll, es[i].id, MEM_TIER_HOT, MEM_TIER_WARM);
	}
	free(in);
	free(cube);
}

/* Rebuilds a warm item's files from its slices (a COG each), then points it at them. */
static int
from_warm(struct entry *e, struct mem_err *err)
{
	json_t *next = json_deep_copy(e->item), *a;
	const char *key;

	json_object_foreach(json_object_get(next, "assets"), key, a) {
		const char *h = mem_asset_href(a), *var, *want, *fname;
		double gt[6], t, nd;
		int w, hh, band, win[2], rc;
		char *cube, *dst, sum[69];
		GDALDatasetH cd, mem;
		GDALRasterBandH cb, mb;
		GDALDriverH drv = GDALGetDriverByName("MEM");
		void *buf;
		size_t len;
		off_t size;

		if (!is_local(h) || !asset_is_warm(a))
			continue;
		want = json_string_value(json_object_get(a, "warm:checksum"));
		fname = json_string_value(json_object_get(a, "warm:file"));
		if (warm_where(a, gt, &w, &hh, &t, &var) < 0 || want == NULL || fname == NULL ||
		    strchr(fname, '/')) {
			{
				int rc_ = mem_err_set(err, MEM_EITEM, "item '%s' asset '%s': incomplete warm:* fields",
			    e->id, key);

				json_decref(next);
				return rc_;
			}
		}
		cube = mem_path_join(e->dir, h);
		cd = open_slice(cube, var, t, gt, w, hh, &band, win, err);
		free(cube);
		if (cd == NULL) {
			{
				int rc_ = mem_err_prefix(err, "item '%s' asset '%s'", e->id, key);

				json_decref(next);
				return rc_;
			}
		}
		cb = GDALGetRasterBand(cd, band);
		buf = read_window(cb, win[0], win[1], w, hh, &len);
		if (buf)
			slice_sum(buf, len, sum);
		if (buf == NULL || strcasecmp(sum, want) != 0) {
			free(buf);
			GDALClose(cd);
			mem_err_set(err, MEM_EITEM,
			    "item '%s' asset '%s': its slice does not match its warm:checksum; not moved",
			    e->id, key);
			json_decref(next);
			return -1;
		}
#if !CPL_IS_LSB
		GDALSwapWords(buf, GDALGetDataTypeSizeBytes(GDALGetRasterDataType(cb)), w * hh,
		    GDALGetDataTypeSizeBytes(GDALGetRasterDataType(cb)));
#endif
		mem = GDALCreate(drv, "", w, hh, 1, GDALGetRasterDataType(cb), NULL);
		GDALSetGeoTransform(mem, gt);
		GDALSetProjection(mem, GDALGetProjectionRef(cd));
		mb = GDALGetRasterBand(mem, 1);
		if (json_is_number(json_object_get(a, "warm:nodata"))) {
			nd = json_number_value(json_object_get(a, "warm:nodata"));
			GDALSetRasterNoDataValue(mb, nd);
		}
		rc = GDALRasterIO(mb, GF_Write, 0, 0, w, hh, buf, w, hh, GDALGetRasterDataType(cb), 0,
		    0) == CE_None ? 0 : mem_err_set(err, MEM_EITEM, "cannot copy the slice");
		free(buf);
		GDALClose(cd);
		dst = mem_path_join(e->dir, fname);
		if (rc == 0)
			rc = mem_raster_write_cog(mem, dst, NULL, err);
		GDALClose(mem);
		if (rc == 0)
			rc = mem_file_checksum(dst, sum, &size, err);
		free(dst);
		if (rc < 0) {
			{
				int rc_ = mem_err_prefix(err, "item '%s' asset '%s'", e->id, key);

				json_decref(next);
				return rc_;
			}
		}
		json_object_set_new(a, "href", json_string(fname));
		if (json_object_get(a, "warm:type"))
			json_object_set(a, "type", json_object_get(a, "warm:type"));
		else
			json_object_set_new(a, "type",
			    json_string("image/tiff; application=geotiff; profile=cloud-optimized"));
		json_object_set_new(a, "file:checksum", json_string(sum));
		json_object_set_new(a, "file:size", json_integer((json_int_t)size));
		json_object_set_new(a, "storage:tier", json_string("hot"));
		{
			static const char *const f[] = { "warm:type", "warm:file", "warm:variable",
			    "warm:datetime", "warm:band", "warm:gdal", "warm:window", "warm:transform",
			    "warm:shape", "warm:nodata", "warm:checksum" };

			for (size_t k = 0; k < sizeof f / sizeof *f; k++)
				json_object_del(a, f[k]);
		}
	}
	return replace_item(e, next, 0, NULL, err);
}

/* Removes the archives of the collection that no item names, and a cold item's stray files. */
static void
collect_garbage(const char *cdir, struct entry *es, size_t ne, struct mem_tier_moved *n)
{
	char **files;
	size_t nf = mem_list_dir(cdir, 0, &files);
	json_t *used = json_object();

	for (size_t i = 0; i < ne; i++) {
		const char *key;
		json_t *a;

		if (!es[i].cold && !es[i].object && !es[i].warm)
			continue;
		/* the folder of an item whose files are elsewhere holds only its JSON */
		if (!has_local_assets_here(es[i].item))
			clean_cold_dir(&es[i], n);
		if (!es[i].cold)
			continue;
		json_object_foreach(json_object_get(es[i].item, "assets"), key, a) {
			const char *h = mem_asset_href(a);

			if (h && json_object_get(a, "archive:href"))
				json_object_set_new(used, mem_path_basename(h), json_true());
		}
	}
	for (size_t i = 0; i < nf; i++) {
		size_t l = strlen(files[i]);

		if (strncmp(files[i], "archive-", 8) || l < 4 || strcmp(files[i] + l - 4, ".tar") ||
		    json_object_get(used, files[i]))
			continue;
		{
			char *p = mem_path_join(cdir, files[i]);

			if (unlink(p) == 0)
				n->removed++;
			free(p);
		}
	}
	json_decref(used);
	mem_free_names(files, nf);
}

/* Moves the selected items of one collection, then packs each month's cold items. */
static int
move_collection(const struct mem_tier_opts *o, const char *coll, mem_tier_fn fn, void *ctx,
    struct mem_tier_moved *n, struct mem_err *err)
{
	char *cdir = mem_path_join(o->dir, coll);
	struct entry *es, **g;
	size_t ne, i, j;
	json_t *periods = json_object();
	const char *period;
	json_t *v;
	char *lpath = mem_path_join(cdir, ".tier.lock");
	int lock = o->dry_run ? -1 : open(lpath, O_RDWR | O_CREAT, 0644);

	/* two moves of one collection at once take turns: each removes what the other no longer names */
	free(lpath);
	if (lock >= 0)
		while (flock(lock, LOCK_EX) < 0 && errno == EINTR)
			;
	mem_sweep_tmp(cdir);
	ne = load_collection(o, coll, cdir, &es);
	/* a warm item goes to the archive or the bucket by way of hot */
	for (i = 0; i < ne && (o->to == MEM_TIER_COLD || o->to == MEM_TIER_OBJECT); i++) {
		struct mem_err e2;
		char date[11];

		if (!es[i].warm || !es[i].selected)
			continue;
		if (o->dry_run) {
			n->items++;
			if (fn)
				fn(ctx, coll, es[i].id, MEM_TIER_WARM, o->to);
			continue;
		}
		mem_err_clear(&e2);
		if (from_warm(&es[i], &e2) < 0) {
			*err = e2;
			tell(o, &e2);
			n->failed++;
			continue;
		}
		es[i].warm = 0;
		es[i].movable = has_local_assets(es[i].item) &&
		    mem_item_date(es[i].item, date, NULL) == 0;
		if (es[i].movable)
			snprintf(es[i].period, sizeof es[i].period, "%.7s", date);
	}
	for (i = 0; i < ne; i++) {
		struct mem_err e2;
		int from = es[i].object ? MEM_TIER_OBJECT : MEM_TIER_HOT;

		if (!es[i].selected || es[i].cold ||
		    !(o->to == MEM_TIER_OBJECT ? !es[i].object && es[i].movable :
		    o->to == MEM_TIER_HOT && es[i].object))
			continue;
		if (!o->dry_run) {
			mem_err_clear(&e2);
			if ((o->to == MEM_TIER_OBJECT ? to_object(o, coll, &es[i], n, &e2) :
			    from_object(&es[i], n, &e2)) < 0) {
				*err = e2;
				n->failed++;
				continue;
			}
		}
		n->items++;
		if (fn)
			fn(ctx, coll, es[i].id, (enum mem_tier)from, o->to);
	}
	if (o->to == MEM_TIER_WARM)
		to_warm(o, coll, cdir, es, ne, fn, ctx, n, err);
	for (i = 0; i < ne && o->to == MEM_TIER_HOT; i++) {
		struct mem_err e2;

		if (!es[i].warm || !es[i].selected)
			continue;
		if (!o->dry_run) {
			mem_err_clear(&e2);
			if (from_warm(&es[i], &e2) < 0) {
				*err = e2;
				tell(o, &e2);
				n->failed++;
				continue;
			}
			es[i].warm = 0;
		}
		n->items++;
		if (fn)
			fn(ctx, coll, es[i].id, MEM_TIER_WARM, MEM_TIER_HOT);
	}
	if (o->to == MEM_TIER_HOT) {
		for (i = 0; i < ne; i++) {
			struct mem_err e2;

			if (!es[i].cold || !es[i].selected)
				continue;
			if (o->dry_run) {
				n->items++;
				if (fn)
					fn(ctx, coll, es[i].id, MEM_TIER_COLD, MEM_TIER_HOT);
				continue;
			}
			mem_err_clear(&e2);
			if (restore(&es[i], &e2) < 0) {
				*err = e2;
				n->failed++;
				continue;
			}
			n->items++;
			if (fn)
				fn(ctx, coll, es[i].id, MEM_TIER_COLD, MEM_TIER_HOT);
		}
	}
	/*
	 * the months with items to be cold: those already, and those selected
	 * (a dry run towards hot has nothing more to say)
	 */
	for (i = 0; i < ne && !(o->dry_run && o->to == MEM_TIER_HOT); i++)
		if (es[i].movable && (es[i].cold || (o->to == MEM_TIER_COLD && es[i].selected)))
			json_object_set_new(periods, es[i].period, json_true());
	g = mem_xmalloc((ne ? ne : 1) * sizeof *g);
	json_object_foreach(periods, period, v) {
		size_t ng = 0;

		for (j = 0; j < ne; j++) {
			int want = es[j].movable && (es[j].cold ||
			    (o->to == MEM_TIER_COLD && es[j].selected));

			if (want && strcmp(es[j].period, period) == 0)
				g[ng++] = &es[j];
		}
		if (pack(o, coll, cdir, period, g, ng, fn, ctx, n, err) < 0)
			n->failed++;
	}
	free(g);
	/* the moved-from copies, once no item names them */
	if (!o->dry_run)
		collect_garbage(cdir, es, ne, n);
	json_decref(periods);
	entries_free(es, ne);
	free(cdir);
	if (lock >= 0)
		close(lock);
	return 0;
}

int
mem_tier_move(const struct mem_tier_opts *o, mem_tier_fn fn, void *ctx,
    struct mem_tier_moved *n, struct mem_err *err)
{
	char *cat = mem_path_join(o->dir, "catalog.json"), **colls;
	size_t nc;

	memset(n, 0, sizeof *n);
	if (!mem_path_exists(cat)) {
		free(cat);
		return mem_err_set(err, MEM_EUSAGE, "tier: no catalog in '%s': no catalog.json",
		    o->dir);
	}
	free(cat);
	if (o->to == MEM_TIER_OBJECT && o->remote == NULL)
		return mem_err_set(err, MEM_EUSAGE, "tier: the object store needs s3://BUCKET/PREFIX");
	nc = mem_list_dir(o->dir, 1, &colls);
	for (size_t i = 0; i < nc; i++)
		move_collection(o, colls[i], fn, ctx, n, err);
	mem_free_names(colls, nc);
	return 0;
}
