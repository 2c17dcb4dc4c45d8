/*
 * shard.h - a stable partition of work into N shards.
 *
 * A key (an item id, a tile cell name) belongs to shard SHA-256(key) mod N:
 * the same on every run, node and input order, so the N tasks of a job
 * array together do each key exactly once and a rerun of task I redoes
 * only task I's share.
 */
#ifndef MEM_SHARD_H
#define MEM_SHARD_H

#include "memories.h"

/* Shard I of N; N <= 1 means no sharding (every key is in). */
struct mem_shard {
	int index, count;
};

/* Parses "I/N" with 0 <= I < N into *s; -1 and MEM_EUSAGE when it is not that. */
int mem_shard_parse(const char *s, struct mem_shard *shard, struct mem_err *err);
/* The shard (0..count-1) key belongs to among count shards; 0 when count <= 1. */
int mem_shard_of(const char *key, int count);
/* 1 when key belongs to shard index of count (always when count <= 1). */
int mem_shard_has(const char *key, int index, int count);

#endif
