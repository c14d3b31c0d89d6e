/*
 * modal.c: the one modal box at a time drawn over the chat: a yes/no
 * question, a text prompt (one line, or several for a system prompt), a
 * list to choose from (optionally filtered by typing: the chat switcher,
 * search hits, presets, export formats, sampling fields) and the help
 * overlay.  A dialog only collects an answer; what the answer does is
 * dialogs.c's business (the purpose and arg it set when opening the dialog).
 *
 * Boxes are centred and shrink with the terminal; below 4x3 the border
 * goes and what fits is drawn, so nothing here fails at any size.
 */
#include "ui/ui_draw.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const help_lines[] = {
	"Chat",
	"  Enter            send the message",
	"  Alt-Enter, Ctrl-J  new line in the message",
	"  Esc              stop the reply / cancel editing",
	"  Ctrl-C           stop the reply; when idle, quit (asks)",
	"  Ctrl-Q           quit (a reply in flight is stopped and kept)",
	"  Ctrl-R, F5       regenerate the last reply",
	"  Alt-E, F6        edit the last message and resend",
	"  Alt-C            copy the last reply (OSC 52 clipboard)",
	"",
	"Chats",
	"  Ctrl-N           new chat",
	"  Ctrl-O, F3       switch chats (type to filter)",
	"  Ctrl-F, F4       search all chats",
	"  Alt-R, F2        rename this chat",
	"  Alt-Shift-D, F8  delete this chat (asks)",
	"  Alt-X, F9        export this chat (format and path)",
	"  Alt-P, F7        preset or system prompt of this chat",
	"  Alt-S            sampling parameters of this chat",
	"  Alt-L            show or hide the chat list (80+ columns)",
	"",
	"View",
	"  PgUp/PgDn        scroll the conversation",
	"  Home/End         its beginning / end (follow new text)",
	"  Alt-M            mouse wheel on/off (off: the terminal selects)",
	"  Ctrl-L           redraw",
	"  F1, ? (empty input)  this help",
	"",
	"Editing",
	"  Left/Right Ctrl-B/F  a character    Alt-B/Alt-F  a word",
	"  Ctrl-A/Ctrl-E    start/end of the line",
	"  Ctrl-W/Alt-D     delete the word before/after the cursor",
	"  Ctrl-U/Ctrl-K    delete to the line's start/end",
	"  Up/Down          rows; on the first/last row the history",
};

static void
reset(struct modal *d)
{
	modal_close(d);
	input_init(&d->in);
}

void
modal_close(struct modal *d)
{
	free(d->title);
	free(d->text);
	input_free(&d->in);
	for (int i = 0; i < d->nitems; i++)
		free(d->items[i].label);
	free(d->items);
	free(d->shown);
	memset(d, 0, sizeof *d);
}

void
modal_confirm(struct modal *d, int purpose, const char *title, const char *question)
{
	reset(d);
	d->kind = DLG_CONFIRM;
	d->purpose = purpose;
	d->title = xstrdup(title);
	d->text = xstrdup(question);
}

void
modal_prompt(struct modal *d, int purpose, const char *title, const char *initial, const char *hint,
    int multiline)
{
	reset(d);
	d->kind = DLG_PROMPT;
	d->purpose = purpose;
	d->title = xstrdup(title);
	d->text = hint ? xstrdup(hint) : NULL;
	d->multiline = multiline;
	if (initial && input_set(&d->in, initial) != 0)
		screen_fatal("out of memory");
}

void
modal_list(struct modal *d, int purpose, const char *title, int filter)
{
	reset(d);
	d->kind = DLG_LIST;
	d->purpose = purpose;
	d->title = xstrdup(title);
	d->filter = filter;
}

void
modal_add(struct modal *d, const char *label, int64_t id, int64_t pos)
{
	d->items = xrealloc(d->items, (size_t)(d->nitems + 1) * sizeof *d->items);
	d->items[d->nitems].label = xstrdup(label);
	d->items[d->nitems].id = id;
	d->items[d->nitems].pos = pos;
	d->nitems++;
}

/* Case-insensitive (ASCII) substring match, ignoring the match marks. */
static int
matches(const char *label, const char *pat)
{
	if (*pat == '\0')
		return 1;
	for (const char *s = label; *s; s++) {
		const char *a = s, *b = pat;
		while (*a && *b) {
			if (*a == '\x01' || *a == '\x02') {
				a++;
				continue;
			}
			if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
				break;
			a++, b++;
		}
		if (*b == '\0')
			return 1;
	}
	return 0;
}

static void
refilter(struct modal *d)
{
	free(d->shown);
	d->shown = xmalloc((size_t)(d->nitems + 1) * sizeof *d->shown);
	d->nshown = 0;
	for (int i = 0; i < d->nitems; i++)
		if (!d->filter || matches(d->items[i].label, input_text(&d->in)))
			d->shown[d->nshown++] = i;
	if (d->sel >= d->nshown)
		d->sel = d->nshown - 1;
	if (d->sel < 0)
		d->sel = 0;
	d->top = 0;
}

void
modal_ready(struct modal *d)
{
	refilter(d);
}

void
modal_help(struct modal *d)
{
	reset(d);
	d->kind = DLG_HELP;
	d->title = xstrdup("Keys (Esc closes)");
	d->nshown = (int)(sizeof help_lines / sizeof *help_lines);
}

const struct modal_item *
modal_selected(const struct modal *d)
{
	if (d->kind != DLG_LIST || d->sel < 0 || d->sel >= d->nshown)
		return NULL;
	return &d->items[d->shown[d->sel]];
}

static void
move_sel(struct modal *d, int delta)
{
	d->sel += delta;
	if (d->sel >= d->nshown)
		d->sel = d->nshown - 1;
	if (d->sel < 0)
		d->sel = 0;
}

enum modal_result
modal_key(struct modal *d, const struct key *k)
{
	int page = d->rows > 1 ? d->rows - 1 : 1;
	if (!k->fn && !k->alt && k->code == 27)
		return DLG_CANCEL;
	switch (d->kind) {
	case DLG_CONFIRM:
		if (k->fn)
			return k->code == KEY_ENTER ? DLG_OK : DLG_CONT;
		switch (k->code) {
		case 'y': case 'Y': case '\r':
			return DLG_OK;
		case 'n': case 'N': case 'q': case KEY_CTRL('C'):
			return DLG_CANCEL;
		}
		return DLG_CONT;
	case DLG_HELP:
		if (k->fn) {
			switch (k->code) {
			case KEY_UP: d->top--; break;
			case KEY_DOWN: d->top++; break;
			case KEY_PPAGE: d->top -= page; break;
			case KEY_NPAGE: d->top += page; break;
			case KEY_HOME: d->top = 0; break;
			case KEY_END: d->top = d->nshown; break;
			case KEY_F(1): return DLG_CANCEL;
			}
			if (d->top > d->nshown - d->rows)
				d->top = d->nshown - d->rows;
			if (d->top < 0)
				d->top = 0;
			return DLG_CONT;
		}
		if (k->code == 'q' || k->code == '?' || k->code == '\r' || k->code == KEY_CTRL('C'))
			return DLG_CANCEL;
		return DLG_CONT;
	case DLG_PROMPT:
		if ((!k->fn && !k->alt && k->code == '\r') || (k->fn && k->code == KEY_ENTER))
			return DLG_OK;
		if (!k->fn && k->code == KEY_CTRL('C'))
			return DLG_CANCEL;
		if (!d->multiline && ((!k->fn && k->code == '\n') || (k->alt && k->code == '\r')))
			return DLG_CONT;
		editor_key(&d->in, k, 1000);   /* Up/Down: by logical lines here */
		return DLG_CONT;
	case DLG_LIST:
		if ((!k->fn && !k->alt && k->code == '\r') || (k->fn && k->code == KEY_ENTER))
			return d->nshown > 0 ? DLG_OK : DLG_CONT;
		if (!k->fn && k->code == KEY_CTRL('C'))
			return DLG_CANCEL;
		if (k->fn) {
			switch (k->code) {
			case KEY_UP: move_sel(d, -1); return DLG_CONT;
			case KEY_DOWN: move_sel(d, 1); return DLG_CONT;
			case KEY_PPAGE: move_sel(d, -page); return DLG_CONT;
			case KEY_NPAGE: move_sel(d, page); return DLG_CONT;
			case KEY_HOME: d->sel = 0; return DLG_CONT;
			case KEY_END: move_sel(d, d->nshown); return DLG_CONT;
			}
		}
		if (!k->fn && k->code == KEY_CTRL('P')) {
			move_sel(d, -1);
			return DLG_CONT;
		}
		if (!k->fn && k->code == KEY_CTRL('N')) {
			move_sel(d, 1);
			return DLG_CONT;
		}
		if (d->filter && !(k->fn && (k->code == KEY_UP || k->code == KEY_DOWN))) {
			enum editor_result r = editor_key(&d->in, k, 1000);
			if (r == ED_CHANGED) {
				d->sel = 0;
				refilter(d);
			}
		}
		return DLG_CONT;
	default:
		return DLG_CANCEL;
	}
}

/* ---- drawing ------------------------------------------------------------------- */

struct box {
	int y, x, h, w;       /* inside the border */
};

static struct box
frame(int lines, int cols, int want_h, int want_w, const char *title)
{
	int h = want_h + 2, w = want_w + 2;
	if (h > lines)
		h = lines;
	if (w > cols)
		w = cols;
	int y = (lines - h) / 2, x = (cols - w) / 2;
	for (int r = 0; r < h; r++)
		screen_fill(y + r, x, w, ' ', theme_attr(TH_NORMAL));
	struct box b = { y, x, h, w };
	if (h < 3 || w < 4) {
		if (title && h > 0)
			screen_put(y, x, w, title, strlen(title), A_BOLD);
		if (h > 1) {
			b.y++;
			b.h--;
		}
		return b;
	}
	attr_t ba = theme_attr(TH_BORDER);
	attrset(ba);
	mvaddch(y, x, ACS_ULCORNER);
	mvhline(y, x + 1, ACS_HLINE, w - 2);
	mvaddch(y, x + w - 1, ACS_URCORNER);
	mvvline(y + 1, x, ACS_VLINE, h - 2);
	mvvline(y + 1, x + w - 1, ACS_VLINE, h - 2);
	mvaddch(y + h - 1, x, ACS_LLCORNER);
	mvhline(y + h - 1, x + 1, ACS_HLINE, w - 2);
	mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
	attrset(A_NORMAL);
	if (title && w > 6) {
		screen_put(y, x + 2, 1, " ", 1, ba);
		int n = screen_put(y, x + 3, w - 6, title, strlen(title), A_BOLD);
		screen_put(y, x + 3 + n, 1, " ", 1, ba);
	}
	b.y = y + 1, b.x = x + 1, b.h = h - 2, b.w = w - 2;
	return b;
}

/* A list label with \x01...\x02 marks drawn highlighted. */
static void
put_marked(int y, int x, int w, const char *s, attr_t base)
{
	int used = 0;
	attr_t a = base;
	while (*s && used < w) {
		size_t n = strcspn(s, "\x01\x02");
		used += screen_put(y, x + used, w - used, s, n, a);
		s += n;
		if (*s == '\x01')
			a = base | theme_attr(TH_MARK);
		else if (*s == '\x02')
			a = base;
		if (*s)
			s++;
	}
}

/* Text wrapped into the box's rows from row r; returns the next row. */
static int
put_wrapped(const struct box *b, int r, const char *text, attr_t a)
{
	size_t n;
	char *c = wrap_sanitize(text, strlen(text), 1, &n);
	if (c == NULL)
		screen_fatal("out of memory");
	size_t pos = 0;
	for (;;) {
		size_t e = pos;
		while (e < n && c[e] != '\n')
			e++;
		struct wrap_line *wl;
		int k = wrap_lines(c + pos, e - pos, b->w, &wl);
		if (k < 0)
			screen_fatal("out of memory");
		for (int i = 0; i < k && r < b->h; i++, r++)
			screen_put_clean(b->y + r, b->x, b->w, c + pos + wl[i].start, wl[i].end - wl[i].start, a);
		free(wl);
		if (e >= n)
			break;
		pos = e + 1;
	}
	free(c);
	return r;
}

void
modal_draw(struct modal *d, int lines, int cols, int *cy, int *cx)
{
	*cy = *cx = -1;
	struct box b;
	switch (d->kind) {
	case DLG_CONFIRM: {
		int w = (int)strlen(d->text) + 2;
		if (w < 30)
			w = 30;
		if (w > 60)
			w = 60;
		b = frame(lines, cols, 3, w, d->title);
		int r = put_wrapped(&b, 0, d->text, A_NORMAL);
		if (r < b.h)
			r = b.h - 1;
		screen_put(b.y + r, b.x, b.w, "y: yes   n, Esc: no", 19, theme_attr(TH_NOTE));
		break;
	}
	case DLG_PROMPT: {
		int rows = d->multiline ? 8 : 1;
		int hint = d->text ? 1 : 0;
		b = frame(lines, cols, rows + hint + 1, 70, d->title);
		int eh = b.h - hint - 1 > 0 ? b.h - hint - 1 : b.h;
		if (eh > rows)
			eh = rows;
		editor_draw(&d->in, b.y, b.x, eh, b.w, A_NORMAL, cy, cx);
		if (hint && b.h > eh + 1)
			put_wrapped(&(struct box){ b.y + eh + 1, b.x, b.h - eh - 1, b.w }, 0, d->text, theme_attr(TH_NOTE));
		else if (hint && b.h > eh)
			put_wrapped(&(struct box){ b.y + eh, b.x, b.h - eh, b.w }, 0, d->text, theme_attr(TH_NOTE));
		break;
	}
	case DLG_LIST: {
		int want = d->nshown + (d->filter ? 2 : 0);
		if (want < 3)
			want = 3;
		b = frame(lines, cols, want, 76, d->title);
		int r0 = 0;
		if (d->filter && b.h >= 3) {
			int fw = screen_put(b.y, b.x, b.w, "Filter: ", 8, theme_attr(TH_NOTE));
			editor_draw(&d->in, b.y, b.x + fw, 1, b.w - fw, A_NORMAL, cy, cx);
			r0 = 2;
		}
		d->rows = b.h - r0;
		if (d->rows < 1)
			break;
		if (d->sel < d->top)
			d->top = d->sel;
		if (d->sel >= d->top + d->rows)
			d->top = d->sel - d->rows + 1;
		if (d->nshown == 0)
			screen_put(b.y + r0, b.x, b.w, "(nothing matches)", 17, theme_attr(TH_NOTE));
		for (int r = 0; r < d->rows && d->top + r < d->nshown; r++) {
			int i = d->top + r;
			attr_t a = i == d->sel ? theme_attr(TH_SELECT) : A_NORMAL;
			if (i == d->sel)
				screen_fill(b.y + r0 + r, b.x, b.w, ' ', a);
			put_marked(b.y + r0 + r, b.x, b.w, d->items[d->shown[i]].label, a);
		}
		break;
	}
	case DLG_HELP: {
		b = frame(lines, cols, d->nshown, 66, d->title);
		d->rows = b.h;
		if (d->top > d->nshown - d->rows)
			d->top = d->nshown - d->rows;
		if (d->top < 0)
			d->top = 0;
		for (int r = 0; r < b.h && d->top + r < d->nshown; r++) {
			const char *l = help_lines[d->top + r];
			screen_put(b.y + r, b.x, b.w, l, strlen(l), l[0] != ' ' && l[0] ? A_BOLD : A_NORMAL);
		}
		break;
	}
	default:
		break;
	}
}
