/*
 * sha256.h - SHA-256, for deterministic item ids and file:checksum values.
 */
#ifndef MEM_SHA256_H
#define MEM_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct mem_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t nbuf;
};

void mem_sha256_init(struct mem_sha256 *s);
void mem_sha256_update(struct mem_sha256 *s, const void *data, size_t n);
/* Writes the 32-byte digest. */
void mem_sha256_final(struct mem_sha256 *s, unsigned char out[32]);
/* Writes the digest of data as 64 lower-case hex digits and a NUL. */
void mem_sha256_hex(const void *data, size_t n, char out[65]);
/* Writes 32 bytes as hex. */
void mem_hex(const unsigned char *in, size_t n, char *out);

#endif
