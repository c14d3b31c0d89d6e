/*
 * gguf_write.h: write GGUF v3 files: the benchmark's synthetic models and
 * the tests' hand-made (and deliberately broken) files.
 *
 * Metadata and tensor infos are collected in memory; tensor data is written
 * by a callback per tensor so that a 7 GB model never sits in memory whole.
 */
#ifndef ENGINE_GGUF_WRITE_H
#define ENGINE_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct gguf_writer;

/* Produce nbytes of tensor data for tensor idx into f; 0 or -1. */
typedef int (*gguf_data_fn)(void *ud, int idx, FILE *f, size_t nbytes);

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);
void gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v);
void gguf_w_f32(struct gguf_writer *w, const char *key, float v);
void gguf_w_str(struct gguf_writer *w, const char *key, const char *v);
void gguf_w_arr_str(struct gguf_writer *w, const char *key, const char *const *v, const uint32_t *lens, uint64_t n);
void gguf_w_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n);
void gguf_w_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* A key of any type with its value already serialized (len bytes, as in a
 * GGUF file after the type): for copying metadata from another file. */
void gguf_w_raw(struct gguf_writer *w, const char *key, int type, const void *value, size_t len);
/* A tensor of type (enum qtype) and shape ne[0..n_dims); returns its index. */
int gguf_w_tensor(struct gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne);
/* Write the file: header, metadata, infos, then each tensor's data from fn
 * (aligned to 32); fn NULL writes the header alone.  0, or -1 with *err. */
int gguf_writer_write(struct gguf_writer *w, const char *path, gguf_data_fn fn, void *ud, char **err);
/* Bytes of tensor idx's data. */
size_t gguf_w_tensor_bytes(const struct gguf_writer *w, int idx);

#endif
