/*
 * markdown.c: the little Markdown the chat view shows lightly: fenced code
 * blocks (``` or ~~~ at the start of a line, up to three spaces in),
 * **bold**, *italic*, `code`, [links](url) (the text underlined, the
 * address after it in parentheses), "- " / "* " / "+ " list items (a
 * bullet) and # headings.  A document is an array of lines, each
 * its display text with the span markers taken out and a parallel array of
 * style bits, one per byte; a marker without a partner on the same line is
 * left as it was, so half-streamed text never loses characters, it only
 * gains style when the closing marker arrives.  Nothing here knows about
 * widths or curses.
 */
#include "ui/ui_int.h"

#include <stdlib.h>
#include <string.h>

static int
is_fence(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && i < 3 && s[i] == ' ')
		i++;
	return len - i >= 3 && (memcmp(s + i, "```", 3) == 0 || memcmp(s + i, "~~~", 3) == 0);
}

static int
is_heading(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && i < 6 && s[i] == '#')
		i++;
	return i > 0 && i < len && s[i] == ' ';
}

/* The index of the next "**" at or after i, or len. */
static size_t
find2(const char *s, size_t len, size_t i)
{
	for (; i + 1 < len; i++)
		if (s[i] == '*' && s[i + 1] == '*')
			return i;
	return len;
}

static size_t
find1(const char *s, size_t len, size_t i, char c)
{
	for (; i < len; i++)
		if (s[i] == c)
			return i;
	return len;
}

static int
add_line(struct md_doc *d, const char *s, size_t len, uint8_t base, int block)
{
	if (d->n == d->cap) {
		int nc = d->cap ? d->cap * 2 : 16;
		struct md_line *nl = realloc(d->lines, (size_t)nc * sizeof *nl);
		if (nl == NULL)
			return -1;
		d->lines = nl;
		d->cap = nc;
	}
	struct md_line *l = &d->lines[d->n];
	/* +3: a list bullet is 2 bytes longer than its marker, and a link
	 * gains one space. */
	l->text = malloc(len + 4);
	l->style = malloc(len + 4);
	if (l->text == NULL || l->style == NULL) {
		free(l->text);
		free(l->style);
		return -1;
	}
	l->block = block;
	l->len = 0;
	if (block || base & MD_HEAD) {
		memcpy(l->text, s, len);
		memset(l->style, base, len);
		l->len = len;
	} else {
		/* Inline spans: code first (nothing inside it is markup), bold
		 * and italic around the rest. */
		int bold = 0, italic = 0;
		size_t i = 0;
		/* A list item: its marker becomes a bullet (so "* item" is
		 * never read as emphasis). */
		size_t ind = 0;
		while (ind < len && ind < 8 && s[ind] == ' ')
			ind++;
		if (ind + 1 < len && (s[ind] == '-' || s[ind] == '*' || s[ind] == '+') && s[ind + 1] == ' ') {
			for (size_t k = 0; k < ind; k++) {
				l->text[l->len] = ' ';
				l->style[l->len++] = 0;
			}
			/* "•" is 3 bytes where the marker was 1: the line may grow
			 * by 2 (room reserved below). */
			memcpy(l->text + l->len, "\xe2\x80\xa2", 3);
			memset(l->style + l->len, 0, 3);
			l->len += 3;
			i = ind + 1;
		}
		while (i < len) {
			uint8_t em = (uint8_t)((bold ? MD_BOLD : 0) | (italic ? MD_ITALIC : 0));
			if (s[i] == '[') {
				/* [text](url): both parts on this line, no nesting. */
				size_t close = find1(s, len, i + 1, ']');
				if (close < len && close > i + 1 && close + 1 < len && s[close + 1] == '(') {
					size_t end = find1(s, len, close + 2, ')');
					if (end < len && end > close + 2) {
						for (size_t k = i + 1; k < close; k++) {
							l->text[l->len] = s[k];
							l->style[l->len++] = (uint8_t)(em | MD_LINK);
						}
						l->text[l->len] = ' ';
						l->style[l->len++] = em;
						for (size_t k = close + 1; k <= end; k++) {
							l->text[l->len] = s[k];
							l->style[l->len++] = em;
						}
						i = end + 1;
						continue;
					}
				}
			}
			if (s[i] == '*' && (i + 1 >= len || s[i + 1] != '*') && (i == 0 || s[i - 1] != '*')) {
				/* A single '*': italic when it has a partner on the line,
				 * hugging the text on both sides (2 * 3 * 4 is not). */
				if (italic && i > 0 && s[i - 1] != ' ') {
					italic = 0;
					i++;
					continue;
				}
				if (!italic && i + 1 < len && s[i + 1] != ' ') {
					size_t j = i + 2;
					for (; j < len; j++)
						if (s[j] == '*' && s[j - 1] != ' ' && s[j - 1] != '*' && (j + 1 >= len || s[j + 1] != '*'))
							break;
					if (j < len) {
						italic = 1;
						i++;
						continue;
					}
				}
			}
			if (s[i] == '`') {
				size_t close = find1(s, len, i + 1, '`');
				if (close < len && close > i + 1) {
					for (size_t k = i + 1; k < close; k++) {
						l->text[l->len] = s[k];
						l->style[l->len++] = (uint8_t)(MD_CODE | em);
					}
					i = close + 1;
					continue;
				}
			} else if (s[i] == '*' && i + 1 < len && s[i + 1] == '*') {
				if (bold) {
					bold = 0;
					i += 2;
					continue;
				}
				size_t close = find2(s, len, i + 2);
				if (close < len && close > i + 2 && s[i + 2] != ' ') {
					bold = 1;
					i += 2;
					continue;
				}
			}
			l->text[l->len] = s[i];
			l->style[l->len++] = em;
			i++;
		}
	}
	l->text[l->len] = '\0';
	d->n++;
	return 0;
}

int
markdown_parse(const char *text, size_t len, struct md_doc *doc)
{
	memset(doc, 0, sizeof *doc);
	int in_block = 0;
	size_t pos = 0;
	for (;;) {
		size_t e = pos;
		while (e < len && text[e] != '\n')
			e++;
		const char *s = text + pos;
		size_t n = e - pos;
		int rc;
		if (is_fence(s, n)) {
			rc = add_line(doc, s, n, MD_FENCE, 1);
			in_block = !in_block;
		} else if (in_block) {
			rc = add_line(doc, s, n, MD_BLOCK, 1);
		} else if (is_heading(s, n)) {
			rc = add_line(doc, s, n, MD_HEAD | MD_BOLD, 0);
		} else {
			rc = add_line(doc, s, n, 0, 0);
		}
		if (rc != 0) {
			markdown_free(doc);
			return -1;
		}
		if (e >= len)
			break;
		pos = e + 1;
	}
	return 0;
}

void
markdown_free(struct md_doc *doc)
{
	for (int i = 0; i < doc->n; i++) {
		free(doc->lines[i].text);
		free(doc->lines[i].style);
	}
	free(doc->lines);
	memset(doc, 0, sizeof *doc);
}
