/*
 * files.h - paths, directories and atomic writes.
 *
 * Nothing half-written is ever visible under its final name: writers put
 * bytes in a temporary file beside the target, fsync it, rename it over the
 * target and fsync the directory.
 */
#ifndef MEM_FILES_H
#define MEM_FILES_H

#include <stddef.h>
#include <sys/types.h>

#include "memories.h"

/* Creates dir and its parents (like mkdir -p). */
int mem_mkdir_p(const char *dir, struct mem_err *err);

/* Returns a new temporary name beside path: "DIR/.NAME.tmp-PID-N-HOST". */
char *mem_tmp_name(const char *path);

/*
 * Removes from dir the temporary files of processes of this host that are
 * gone (a run killed with SIGKILL leaves them); returns how many.  Files of
 * other hosts on a shared filesystem are left alone.
 */
int mem_sweep_tmp(const char *dir);

/* 1 when the file system that would hold path has (almost) no space left. */
int mem_fs_full(const char *path);

/* mem_mkdir_p, then mem_sweep_tmp: a directory a stage is about to write in. */
int mem_workdir(const char *dir, struct mem_err *err);

/* Fsyncs tmp, renames it to path and fsyncs the directory; unlinks tmp on failure. */
int mem_commit_file(const char *tmp, const char *path, struct mem_err *err);

/* Writes len bytes to path atomically (temp file, fsync, rename). */
int mem_write_file_atomic(const char *path, const void *data, size_t len, struct mem_err *err);
/*
 * The same two without fsync: the rename still makes the file appear whole
 * or not at all to any reader (and to a rerun after kill -9), and the
 * caller makes a batch durable at once with mem_sync_fs.  For the many
 * small files of a tiling run, where two fsyncs a file cost more than the
 * pixels.
 */
int mem_rename_file(const char *tmp, const char *path, struct mem_err *err);
int mem_write_file_renamed(const char *path, const void *data, size_t len, struct mem_err *err);
/* Flushes the file system that holds dir (syncfs). */
int mem_sync_fs(const char *dir, struct mem_err *err);

/* Reads a whole file; returns a new NUL-terminated buffer, length in *len. */
char *mem_read_file(const char *path, size_t *len, struct mem_err *err);

/* Copies src to dst atomically. */
int mem_copy_file(const char *src, const char *dst, struct mem_err *err);

/*
 * SHA-256 of a file as a STAC file:checksum multihash ("1220" + 64 hex);
 * out must hold 69 bytes.  *size gets the file size when size is not NULL.
 */
int mem_file_checksum(const char *path, char out[69], off_t *size, struct mem_err *err);

/* 1 when path exists (any type), else 0. */
int mem_path_exists(const char *path);

/* Returns a new string: dir + "/" + name (name kept when absolute). */
char *mem_path_join(const char *dir, const char *name);
/* Returns a new string: the directory part of path ("." when none). */
char *mem_path_dirname(const char *path);
/* Returns a pointer into path after its last slash. */
const char *mem_path_basename(const char *path);
/* Returns a new string: path relative to the directory from_dir (both made absolute first). */
char *mem_path_relative(const char *from_dir, const char *path);
/* Returns a new absolute, normalised path (the file need not exist). */
char *mem_path_absolute(const char *path);

/* Replaces characters unsafe in a file name by '_'; returns a new string. */
char *mem_path_safe_name(const char *s);
/*
 * The sorted names of dir's subdirectories (want_dirs) or regular files,
 * hidden ones (.*) left out, into *out; returns the count (0, *out NULL, when
 * dir cannot be read).  Free with mem_free_names.
 */
size_t mem_list_dir(const char *dir, int want_dirs, char ***out);
void mem_free_names(char **names, size_t n);

#endif
