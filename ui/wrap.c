/*
 * wrap.c: text measured in terminal columns (decoded by common/utf8.c, a
 * bad byte is one U+FFFD): clusters (a character with the
 * zero-width marks that follow it, which must never be split from it),
 * word wrapping and hard wrapping to a width, and the sanitizer that turns
 * any text (a model's output, a stored title) into something the terminal
 * can be given without surprises.  No curses here; widths come from
 * wcwidth(3), which is what ncurses uses when it places characters.
 */
#include "ui/ui_int.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

int
wrap_cpwidth(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
		return -1;
	int w = wcwidth((wchar_t)cp);
	return w > 2 ? 2 : w;
}

size_t
wrap_next(const char *s, size_t len, size_t i, int *width)
{
	uint32_t cp;
	int w = 0;
	if (i < len) {
		i += utf8_decode(s + i, len - i, &cp);
		w = wrap_cpwidth(cp);
		if (w < 0)
			w = 1;   /* drawn as U+FFFD by whoever sanitized it */
		/* Zero-width marks that follow belong to this cluster. */
		while (i < len) {
			size_t n = utf8_decode(s + i, len - i, &cp);
			if (wrap_cpwidth(cp) != 0)
				break;
			i += n;
		}
	}
	if (width)
		*width = w;
	return i;
}

size_t
wrap_prev(const char *s, size_t i)
{
	const unsigned char *u = (const unsigned char *)s;
	while (i > 0) {
		size_t j = i - 1;
		/* Back over continuation bytes, at most three. */
		while (j > 0 && i - j < 4 && (u[j] & 0xc0) == 0x80)
			j--;
		uint32_t cp;
		size_t n = utf8_decode(s + j, i - j, &cp);
		if (n != i - j)
			j = i - 1;   /* malformed: step one byte */
		else if (wrap_cpwidth(cp) == 0 && j > 0) {
			i = j;   /* a mark: keep going to its base */
			continue;
		}
		return j;
	}
	return 0;
}

int
wrap_width(const char *s, size_t len)
{
	int cols = 0, w;
	for (size_t i = 0; i < len; ) {
		i = wrap_next(s, len, i, &w);
		cols += w;
	}
	return cols;
}

size_t
wrap_fit(const char *s, size_t len, int cols, int *used)
{
	size_t i = 0;
	int c = 0, w;
	while (i < len) {
		size_t nx = wrap_next(s, len, i, &w);
		if (c + w > cols)
			break;
		c += w;
		i = nx;
	}
	if (used)
		*used = c;
	return i;
}

static int
push(struct wrap_line **out, int *n, int *cap, size_t start, size_t end)
{
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 8;
		struct wrap_line *no = realloc(*out, (size_t)nc * sizeof *no);
		if (no == NULL)
			return -1;
		*out = no;
		*cap = nc;
	}
	(*out)[*n].start = start;
	(*out)[*n].end = end;
	(*n)++;
	return 0;
}

static int
wrap_any(const char *s, size_t len, int width, int words, struct wrap_line **out)
{
	int n = 0, cap = 0;
	*out = NULL;
	if (width < 1)
		width = 1;
	size_t pos = 0;
	if (len == 0 && push(out, &n, &cap, 0, 0) != 0)
		goto oom;
	while (pos < len) {
		int col = 0, w;
		size_t i = pos, brk = pos;   /* brk > pos: a space to break at */
		size_t nx = pos;
		while (i < len) {
			nx = wrap_next(s, len, i, &w);
			if (col + w > width)
				break;
			if (words == 1 && s[i] == ' ' && i > pos && s[i - 1] != ' ')
				brk = i;
			if (words == 2 && s[i] == ' ')
				brk = i + 1;     /* the space stays on this row */
			col += w;
			i = nx;
		}
		if (i >= len) {
			if (push(out, &n, &cap, pos, len) != 0)
				goto oom;
			break;
		}
		size_t end, next;
		if (words == 2 && s[i] == ' ') {
			end = next = i + 1;   /* one space hangs in the cursor's column */
		} else if (words == 2 && brk > pos) {
			end = next = brk;
		} else if (words && s[i] == ' ') {
			end = i;
			while (end > pos && s[end - 1] == ' ')
				end--;
			if (end == pos)
				end = i;   /* a line of spaces: keep them */
			next = i;
		} else if (words && brk > pos) {
			end = brk;
			next = brk;
		} else if (i == pos) {
			end = next = nx;   /* one cluster wider than the line */
		} else {
			end = next = i;
		}
		if (words == 1)
			while (next < len && s[next] == ' ')
				next++;
		if (push(out, &n, &cap, pos, end) != 0)
			goto oom;
		pos = next;
	}
	return n;
oom:
	free(*out);
	*out = NULL;
	return -1;
}

int
wrap_lines(const char *s, size_t len, int width, struct wrap_line **out)
{
	return wrap_any(s, len, width, 1, out);
}

int
wrap_hard(const char *s, size_t len, int width, struct wrap_line **out)
{
	return wrap_any(s, len, width, 0, out);
}

int
wrap_input(const char *s, size_t len, int width, struct wrap_line **out)
{
	return wrap_any(s, len, width, 2, out);
}

char *
wrap_sanitize(const char *s, size_t len, int keep_nl, size_t *outlen)
{
	/* Worst case: every byte becomes four spaces or a 3-byte U+FFFD. */
	char *o = malloc(len * 4 + 4);
	if (o == NULL)
		return NULL;
	size_t j = 0;
	int at_start = 1;   /* nothing for a zero-width mark to sit on */
	for (size_t i = 0; i < len; ) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		i += n;
		if (cp == '\n' && keep_nl) {
			o[j++] = '\n';
			at_start = 1;
			continue;
		}
		if (cp == '\t') {
			memcpy(o + j, "    ", 4);
			j += 4;
			at_start = 0;
			continue;
		}
		if (cp == '\n')
			cp = 0x21b5;
		else if (cp == '\r')
			continue;
		int w = wrap_cpwidth(cp);
		if (w < 0)
			cp = 0xfffd;
		else if (w == 0 && at_start)
			j += utf8_encode(0xa0, o + j);
		j += utf8_encode(cp, o + j);
		at_start = 0;
	}
	o[j] = '\0';
	if (outlen)
		*outlen = j;
	return o;
}
