/*
 * simd.h - the kernels' loops built twice, for the x86-64 baseline (SSE2)
 * and for AVX2, the one to run chosen once at load time by the CPU
 * (GCC's and Clang's target_clones, an ifunc on glibc).  The binaries stay
 * portable and use the wider vectors where the CPU has them.
 *
 * AVX2 does not bring FMA with it, so no multiply and add is fused that
 * the baseline would round twice: both versions give the same bits.
 * Define MEM_KERN_NO_CLONES to build only the baseline.  Internal to the
 * kernels' C files.
 */
#ifndef MEM_KERN_SIMD_H
#define MEM_KERN_SIMD_H

#if defined(__x86_64__) && defined(__ELF__) && !defined(MEM_KERN_NO_CLONES) && \
    (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__) && __GNUC__ >= 6)
#define MEM_KERN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MEM_KERN_CLONES
#endif

#endif
