/*
 * cpu.c: the one CPU-feature probe (see cpu.h).  The answer lives in one
 * static written under pthread_once, so the OpenMP threads of the kernels
 * only ever read it, and every file agrees on one family: a forced
 * LLAMA2_CHAT_ISA=avx2 must keep AVX-512 out of the GEMM and the attention
 * as well as out of the dot products.
 */
#include "engine/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cpu_names[CPU_NISA] = { "scalar", "avx2", "avx512" };

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static int cpu_have[CPU_NISA];
static enum cpu_isa cpu_cur = CPU_SCALAR;
static char cpu_env_err[160];     /* empty unless LLAMA2_CHAT_ISA was refused */

static void
cpu_probe(void)
{
	cpu_have[CPU_SCALAR] = 1;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
#if defined(__clang__)
	/* clang has no "f16c" here; every AVX2 CPU has F16C. */
	cpu_have[CPU_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	cpu_have[CPU_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    __builtin_cpu_supports("f16c");
#endif
	cpu_have[CPU_AVX512] = cpu_have[CPU_AVX2] && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
#endif
	for (int i = CPU_NISA - 1; i >= 0; i--)
		if (cpu_have[i]) {
			cpu_cur = (enum cpu_isa)i;
			break;
		}
	const char *env = getenv("LLAMA2_CHAT_ISA");
	if (env == NULL || *env == '\0')
		return;
	for (int i = 0; i < CPU_NISA; i++)
		if (strcmp(env, cpu_names[i]) == 0) {
			if (cpu_have[i])
				cpu_cur = (enum cpu_isa)i;
			else
				snprintf(cpu_env_err, sizeof cpu_env_err,
				    "LLAMA2_CHAT_ISA=%s: this CPU cannot run the %s kernels (it has up to %s)", env, env,
				    cpu_names[cpu_cur]);
			return;
		}
	snprintf(cpu_env_err, sizeof cpu_env_err, "LLAMA2_CHAT_ISA=%.40s: unknown (use scalar, avx2 or avx512)", env);
}

int
cpu_init(char **err)
{
	pthread_once(&cpu_once, cpu_probe);
	if (cpu_env_err[0] == '\0')
		return 0;
	if (err)
		*err = strdup(cpu_env_err);
	return -1;
}

enum cpu_isa
cpu_isa(void)
{
	pthread_once(&cpu_once, cpu_probe);
	return cpu_cur;
}

int
cpu_has(enum cpu_isa isa)
{
	pthread_once(&cpu_once, cpu_probe);
	return isa >= 0 && isa < CPU_NISA && cpu_have[isa];
}

const char *
cpu_isa_name(enum cpu_isa isa)
{
	return isa >= 0 && isa < CPU_NISA ? cpu_names[isa] : "?";
}

int
cpu_force(enum cpu_isa isa)
{
	if (!cpu_has(isa))
		return -1;
	enum cpu_isa old = cpu_cur;
	cpu_cur = isa;
	return (int)old;
}
