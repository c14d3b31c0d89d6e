/*
 * utf8.h: UTF-8 as the whole program reads it, once (common/utf8.c).
 * Valid means what RFC 3629 allows: no overlong forms, no surrogates,
 * nothing past U+10FFFF.  Leaf: no includes of the project's.
 */
#ifndef COMMON_UTF8_H
#define COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid sequence at s[0..len), or 0 when the bytes
 * there are not one (malformed, truncated, len 0). */
size_t utf8_seq_len(const char *s, size_t len);
/* Decode one code point at s[0..len) (len >= 1): bytes used (1..4) and *cp;
 * a malformed or truncated sequence gives U+FFFD for one byte. */
size_t utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encode cp into out (4 bytes): bytes written; a surrogate or a value
 * past U+10FFFF is written as U+FFFD. */
size_t utf8_encode(uint32_t cp, char *out);
/* s[0..len) is valid UTF-8 and has no NUL byte. */
int utf8_valid(const char *s, size_t len);

#endif
