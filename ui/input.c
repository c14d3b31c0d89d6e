/*
 * input.c: the line editor behind the input box and the dialogs' text
 * fields, and the history of sent messages.
 *
 * The text is one UTF-8 buffer that may hold newlines; the cursor is a
 * byte offset that always sits on a cluster boundary (every move and every
 * deletion goes cluster by cluster, so a CJK character, an emoji or a
 * letter with its accents moves as one).  "Line" below means a logical
 * line (between newlines); "row" a line as laid out on screen.  The
 * history keeps the newest max_hist entries; walking it saves the draft
 * being typed and gives it back after the newest entry.  No curses here.
 */
#include "ui/ui_int.h"
#include "common/afile.h"
#include "common/errf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
input_init(struct input *in)
{
	memset(in, 0, sizeof *in);
	in->max_hist = 1000;
}

void
input_free(struct input *in)
{
	free(in->buf);
	for (int i = 0; i < in->nhist; i++)
		free(in->hist[i]);
	free(in->hist);
	free(in->draft);
	memset(in, 0, sizeof *in);
}

static int
reserve(struct input *in, size_t need)
{
	if (need + 1 <= in->cap)
		return 0;
	size_t cap = in->cap ? in->cap : 64;
	while (cap < need + 1)
		cap *= 2;
	char *nb = realloc(in->buf, cap);
	if (nb == NULL)
		return -1;
	if (in->buf == NULL)
		nb[0] = '\0';
	in->buf = nb;
	in->cap = cap;
	return 0;
}

void
input_clear(struct input *in)
{
	in->len = in->cur = 0;
	if (in->buf)
		in->buf[0] = '\0';
	in->hpos = in->nhist;
}

const char *
input_text(const struct input *in)
{
	return in->buf ? in->buf : "";
}

int
input_set(struct input *in, const char *text)
{
	size_t n = strlen(text);
	if (reserve(in, n) != 0)
		return -1;
	memcpy(in->buf, text, n + 1);
	in->len = in->cur = n;
	return 0;
}

int
input_insert(struct input *in, const char *s, size_t n)
{
	if (reserve(in, in->len + n) != 0)
		return -1;
	memmove(in->buf + in->cur + n, in->buf + in->cur, in->len - in->cur + 1);
	memcpy(in->buf + in->cur, s, n);
	in->len += n;
	/* Text typed before a zero-width mark takes the mark into its
	 * cluster: the cursor goes after the whole cluster, onto a boundary. */
	size_t i = in->cur;
	while (i < in->cur + n)
		i = wrap_next(in->buf, in->len, i, NULL);
	in->cur = i;
	return 0;
}

int
input_insert_cp(struct input *in, uint32_t cp)
{
	char b[4];
	return input_insert(in, b, utf8_encode(cp, b));
}

static void
cut(struct input *in, size_t from, size_t to)
{
	if (to <= from)
		return;
	memmove(in->buf + from, in->buf + to, in->len - to + 1);
	in->len -= to - from;
	in->cur = from;
}

void
input_left(struct input *in)
{
	in->cur = wrap_prev(input_text(in), in->cur);
}

void
input_right(struct input *in)
{
	in->cur = wrap_next(input_text(in), in->len, in->cur, NULL);
}

static size_t
line_start(const struct input *in, size_t i)
{
	while (i > 0 && in->buf[i - 1] != '\n')
		i--;
	return i;
}

static size_t
line_end(const struct input *in, size_t i)
{
	while (i < in->len && in->buf[i] != '\n')
		i++;
	return i;
}

void
input_home(struct input *in)
{
	in->cur = line_start(in, in->cur);
}

void
input_end(struct input *in)
{
	in->cur = line_end(in, in->cur);
}

static int
is_word(const char *s, size_t i)
{
	unsigned char c = (unsigned char)s[i];
	return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Start of the word before i (readline's backward-word). */
static size_t
word_back(const struct input *in, size_t i)
{
	const char *s = input_text(in);
	while (i > 0) {
		size_t p = wrap_prev(s, i);
		if (is_word(s, p))
			break;
		i = p;
	}
	while (i > 0) {
		size_t p = wrap_prev(s, i);
		if (!is_word(s, p))
			break;
		i = p;
	}
	return i;
}

void
input_word_left(struct input *in)
{
	in->cur = word_back(in, in->cur);
}

void
input_word_right(struct input *in)
{
	const char *s = input_text(in);
	size_t i = in->cur;
	while (i < in->len && !is_word(s, i))
		i = wrap_next(s, in->len, i, NULL);
	while (i < in->len && is_word(s, i))
		i = wrap_next(s, in->len, i, NULL);
	in->cur = i;
}

void
input_backspace(struct input *in)
{
	if (in->cur > 0)
		cut(in, wrap_prev(input_text(in), in->cur), in->cur);
}

void
input_delete(struct input *in)
{
	if (in->cur < in->len) {
		size_t c = in->cur;
		cut(in, c, wrap_next(in->buf, in->len, c, NULL));
	}
}

void
input_kill_word(struct input *in)
{
	/* Ctrl-W as in a shell: back over spaces, then over non-spaces. */
	const char *s = input_text(in);
	size_t i = in->cur;
	while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
		i--;
	while (i > 0 && s[i - 1] != ' ' && s[i - 1] != '\t' && s[i - 1] != '\n')
		i = wrap_prev(s, i);
	if (i == in->cur && i > 0 && s[i - 1] == '\n')
		i--;   /* at a line's start: join it to the one before */
	cut(in, i, in->cur);
}

void
input_kill_line(struct input *in)
{
	size_t st = line_start(in, in->cur);
	if (st == in->cur && st > 0)
		st--;   /* already at the start: take the newline */
	cut(in, st, in->cur);
}

void
input_kill_eol(struct input *in)
{
	size_t e = line_end(in, in->cur);
	if (e == in->cur && e < in->len)
		e++;
	size_t c = in->cur;
	cut(in, c, e);
}

int
input_layout(const struct input *in, int width, struct wrap_line **rows, int *crow, int *ccol)
{
	const char *s = input_text(in);
	int w = width > 1 ? width - 1 : 1;
	struct wrap_line *all = NULL;
	int n = 0, cap = 0;
	*crow = *ccol = 0;
	size_t pos = 0;
	for (;;) {
		size_t e = pos;
		while (e < in->len && s[e] != '\n')
			e++;
		struct wrap_line *part;
		int k = wrap_input(s + pos, e - pos, w, &part);
		if (k < 0)
			goto oom;
		if (n + k > cap) {
			int nc = (n + k) * 2;
			struct wrap_line *na = realloc(all, (size_t)nc * sizeof *na);
			if (na == NULL) {
				free(part);
				goto oom;
			}
			all = na;
			cap = nc;
		}
		for (int i = 0; i < k; i++) {
			struct wrap_line r = { pos + part[i].start, pos + part[i].end };
			/* The cursor is on this row if it is inside it, or at its
			 * end and this is the line's last row. */
			if ((in->cur >= r.start && in->cur < r.end) || (in->cur == r.end && i == k - 1)) {
				*crow = n + i;
				*ccol = wrap_width(s + r.start, in->cur - r.start);
			}
			all[n + i] = r;
		}
		n += k;
		free(part);
		if (e >= in->len)
			break;
		pos = e + 1;
	}
	*rows = all;
	return n;
oom:
	free(all);
	*rows = NULL;
	return -1;
}

static int
move_row(struct input *in, int width, int dir)
{
	struct wrap_line *rows;
	int crow, ccol;
	int n = input_layout(in, width, &rows, &crow, &ccol);
	if (n < 0)
		return -1;
	int t = crow + dir;
	if (t < 0 || t >= n) {
		free(rows);
		return -1;
	}
	const char *s = input_text(in);
	size_t i = rows[t].start, end = rows[t].end;
	int col = 0, w;
	while (i < end) {
		size_t nx = wrap_next(s, end, i, &w);
		if (col + w > ccol)
			break;
		col += w;
		i = nx;
	}
	in->cur = i;
	free(rows);
	return 0;
}

int
input_up(struct input *in, int width)
{
	return move_row(in, width, -1);
}

int
input_down(struct input *in, int width)
{
	return move_row(in, width, 1);
}

void
input_history_add(struct input *in, const char *text)
{
	if (text[0] == '\0' || (in->nhist > 0 && strcmp(in->hist[in->nhist - 1], text) == 0)) {
		in->hpos = in->nhist;
		return;
	}
	char *c = strdup(text);
	if (c == NULL)
		return;
	if (in->nhist >= in->max_hist && in->nhist > 0) {
		free(in->hist[0]);
		memmove(in->hist, in->hist + 1, (size_t)(in->nhist - 1) * sizeof *in->hist);
		in->nhist--;
	}
	if (in->nhist == in->hcap) {
		int nc = in->hcap ? in->hcap * 2 : 32;
		char **nh = realloc(in->hist, (size_t)nc * sizeof *nh);
		if (nh == NULL) {
			free(c);
			return;
		}
		in->hist = nh;
		in->hcap = nc;
	}
	in->hist[in->nhist++] = c;
	in->hpos = in->nhist;
	free(in->draft);
	in->draft = NULL;
}

int
input_history_prev(struct input *in)
{
	if (in->hpos > in->nhist)
		in->hpos = in->nhist;
	if (in->hpos == 0)
		return -1;
	if (in->hpos == in->nhist) {
		free(in->draft);
		in->draft = strdup(input_text(in));
	}
	in->hpos--;
	input_set(in, in->hist[in->hpos]);
	return 0;
}

int
input_history_next(struct input *in)
{
	if (in->hpos >= in->nhist)
		return -1;
	in->hpos++;
	if (in->hpos == in->nhist) {
		input_set(in, in->draft ? in->draft : "");
		free(in->draft);
		in->draft = NULL;
	} else {
		input_set(in, in->hist[in->hpos]);
	}
	return 0;
}

static int
fail(char **err, const char *what, const char *path)
{
	return errf_set(err, "%s %s: %s", what, path, strerror(errno));
}

int
input_history_load(struct input *in, const char *path, char **err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? 0 : fail(err, "cannot read", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		/* Unescape in place. */
		size_t j = 0;
		for (ssize_t i = 0; i < n; i++) {
			if (line[i] == '\\' && i + 1 < n) {
				i++;
				line[j++] = line[i] == 'n' ? '\n' : line[i];
			} else {
				line[j++] = line[i];
			}
		}
		line[j] = '\0';
		if (!utf8_valid(line, j))
			continue;   /* a damaged line: the editor holds UTF-8 only */
		input_history_add(in, line);
	}
	free(line);
	fclose(f);
	in->hpos = in->nhist;
	return 0;
}

int
input_history_save(const struct input *in, const char *path, char **err)
{
	struct afile a;
	if (afile_open(&a, path) != 0)
		return fail(err, "cannot write", path);
	FILE *f = fdopen(a.fd, "w");
	if (f == NULL) {
		afile_abort(&a);
		return fail(err, "cannot write", path);
	}
	for (int i = 0; i < in->nhist; i++) {
		for (const char *p = in->hist[i]; *p; p++) {
			if (*p == '\\')
				fputs("\\\\", f);
			else if (*p == '\n')
				fputs("\\n", f);
			else
				fputc(*p, f);
		}
		fputc('\n', f);
	}
	/* The stream's buffer goes to the fd; afile_commit syncs and renames. */
	int bad = fflush(f) != 0 || ferror(f);
	a.fd = dup(fileno(f));
	fclose(f);
	if (bad || a.fd < 0) {
		afile_abort(&a);
		return fail(err, "cannot write", path);
	}
	if (afile_commit(&a) != 0)
		return fail(err, "cannot write", path);
	return 0;
}
