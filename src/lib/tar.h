/*
 * tar.h - the uncompressed POSIX ustar archives of mem-store's cold tier.
 *
 * Uncompressed, so that each member is one contiguous byte range that GDAL
 * reads in place through /vsitar/ (or any reader through a range request),
 * while the COGs inside keep their own compression.  An archive is written
 * once under a temporary name, fsynced and renamed: it is never changed
 * afterwards, only replaced by another of another name.
 */
#ifndef MEM_TAR_H
#define MEM_TAR_H

#include <sys/types.h>

#include "memories.h"

struct mem_tar_member {
	char *name;		/* path inside the archive */
	off_t start;		/* offset of its first byte */
	off_t size;
};

/*
 * Lists the regular files in the archive at path.  Returns their number
 * and a new array in *out to free with mem_tar_members_free(), or -1
 * (MEM_EITEM) when the file cannot be read or is not a ustar archive.
 */
ssize_t mem_tar_list(const char *path, struct mem_tar_member **out, struct mem_err *err);
void mem_tar_members_free(struct mem_tar_member *m, size_t n);

struct mem_tar;

/* Starts an archive at a temporary name beside path; NULL on error. */
struct mem_tar *mem_tar_create(const char *path, struct mem_err *err);
/*
 * Appends a member name with size bytes of src from offset from (a whole
 * file: from 0, size its length); *start gets the offset of its data.
 */
int mem_tar_add(struct mem_tar *t, const char *name, const char *src, off_t from, off_t size,
    off_t *start, struct mem_err *err);
/* Ends the archive, fsyncs it and renames it to its path; frees t either way. */
int mem_tar_commit(struct mem_tar *t, struct mem_err *err);
/* Drops an unfinished archive and frees t. */
void mem_tar_abort(struct mem_tar *t);

/* The file:checksum multihash ("1220" + 64 hex) of size bytes of path at start. */
int mem_tar_checksum(const char *path, off_t start, off_t size, char out[69],
    struct mem_err *err);

/*
 * Copies size bytes of path at start into dst atomically, when their
 * checksum is want (NULL: any); a mismatch fails with MEM_EITEM and
 * leaves dst alone.
 */
int mem_tar_extract(const char *path, off_t start, off_t size, const char *want,
    const char *dst, struct mem_err *err);

#endif
