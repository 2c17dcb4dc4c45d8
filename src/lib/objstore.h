/*
 * objstore.h - an S3-compatible object store as mem-store's target, through
 * GDAL's /vsis3/ (its signing, retries and multipart uploads).
 *
 * An object appears whole or not at all (a PUT, or a completed multipart
 * upload), so an upload needs no temporary name; the item JSON is still
 * uploaded last, after the files it names.
 */
#ifndef MEM_OBJSTORE_H
#define MEM_OBJSTORE_H

#include "memories.h"

/* 1 when url is an object store URL (s3://). */
int mem_objstore_is_url(const char *url);

/*
 * Points GDAL's /vsis3/ at endpoint (http[s]://HOST[:PORT]; NULL keeps
 * AWS_S3_ENDPOINT or AWS), with path-style addressing.  The keys come
 * from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) as for
 * any GDAL program.  Returns 0, or -1 (MEM_EUSAGE) for a bad endpoint.
 */
int mem_objstore_configure(const char *endpoint, struct mem_err *err);

/* Returns a new /vsis3/ path for url + "/" + rel (rel may be NULL). */
char *mem_objstore_path(const char *url, const char *rel);

/* Uploads the local file to the object at vsipath; url names it in messages. */
int mem_objstore_put(const char *local, const char *vsipath, const char *url,
    struct mem_err *err);

/* Downloads the object at vsipath to the local file, atomically. */
int mem_objstore_get(const char *vsipath, const char *local, struct mem_err *err);

/* 1 when the object exists. */
int mem_objstore_exists(const char *vsipath);

/*
 * Lists the objects under vsidir, recursively, as paths relative to it;
 * returns a NULL-terminated list to free with CSLDestroy (NULL when none).
 */
char **mem_objstore_list(const char *vsidir);

#endif
