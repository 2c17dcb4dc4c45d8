/*
 * shard.c - a stable partition of work into N shards by a hash of a key.
 *
 * The first 8 bytes of the key's SHA-256, big-endian, modulo N.  A strong
 * hash rather than a fast one: ids that differ in one character (dates,
 * tile numbers) still spread evenly, and the assignment can be recomputed
 * by anyone from the documented rule (python: int(sha256(key)[:16], 16) % N).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "shard.h"

int
mem_shard_parse(const char *s, struct mem_shard *shard, struct mem_err *err)
{
	char *end;
	long i, n = 0;

	errno = 0;
	i = strtol(s, &end, 10);
	if (end != s && *end == '/') {
		const char *p = end + 1;

		n = strtol(p, &end, 10);
		if (end == p)
			n = 0;
	}
	if (errno || *end || n < 1 || n > 1000000 || i < 0 || i >= n || (s[0] < '0' || s[0] > '9'))
		return mem_err_set(err, MEM_EUSAGE, "invalid --shard '%s': expected I/N with 0 <= I < N", s);
	shard->index = (int)i;
	shard->count = (int)n;
	return 0;
}

int
mem_shard_of(const char *key, int count)
{
	unsigned char dig[32];
	struct mem_sha256 h;
	uint64_t v = 0;

	if (count <= 1)
		return 0;
	mem_sha256_init(&h);
	mem_sha256_update(&h, key, strlen(key));
	mem_sha256_final(&h, dig);
	for (int i = 0; i < 8; i++)
		v = v << 8 | dig[i];
	return (int)(v % (uint64_t)count);
}

int
mem_shard_has(const char *key, int index, int count)
{
	return count <= 1 || mem_shard_of(key, count) == index;
}
