/*
 * cpu.h: which family of SIMD kernels the engine runs, decided once.
 *
 * cpu.c asks CPUID once what this CPU can run and, if LLAMA2_CHAT_ISA is
 * set, takes that family instead (refusing one the CPU lacks).  Every
 * kernel file (quant_simd.c, gemm.c, attn.c) reads the answer through
 * cpu_isa() and never probes on its own.  The families:
 *   CPU_SCALAR  the scalar reference kernels only (any CPU);
 *   CPU_AVX2    AVX2 + FMA + F16C (Haswell, Zen 1 and later);
 *   CPU_AVX512  AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Zen 4 and later).
 */
#ifndef ENGINE_CPU_H
#define ENGINE_CPU_H

enum cpu_isa { CPU_SCALAR, CPU_AVX2, CPU_AVX512, CPU_NISA };

/*
 * Probe the CPU and read LLAMA2_CHAT_ISA ("scalar", "avx2", "avx512"):
 * idempotent and thread-safe (the first caller does the work); engine_open
 * calls it before any thread runs a kernel.  Returns 0, or -1 with a
 * malloc'd message in *err (if err is not NULL) when the variable names an
 * unknown family or one this CPU cannot run; the family in use is then the
 * best one the CPU has.
 */
int cpu_init(char **err);
/* The family in use (probing first if nobody has yet). */
enum cpu_isa cpu_isa(void);
/* Whether this CPU runs a family. */
int cpu_has(enum cpu_isa isa);
/* "scalar", "avx2", "avx512"; "?" out of range. */
const char *cpu_isa_name(enum cpu_isa isa);
/*
 * Tests: run another family from now on (the ones the CPU has only).
 * Returns the previous family, or -1 (and changes nothing) if the CPU lacks
 * it.  Not thread-safe; quant.c's kernel table is fixed at its first use
 * and does not follow (tests reach each family's quant kernels by name).
 */
int cpu_force(enum cpu_isa isa);

#endif
