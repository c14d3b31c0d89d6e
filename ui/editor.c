/*
 * editor.c: the curses side of the line editor (input.c): which key does
 * what to a struct input, and drawing its rows in a box scrolled so the
 * cursor is always inside.  Shared by the input box and the dialogs'
 * fields, so every text field edits the same way.
 *
 *   Left/Right, Ctrl-B/Ctrl-F   a character      Alt-B/Alt-F  a word
 *                               (in the chat input Ctrl-F is search: keys.c sees it first)
 *   Ctrl-A/Ctrl-E               line start/end (Home/End scroll the chat)
 *   Backspace, Delete/Ctrl-D    a character      Ctrl-W/Alt-D  the word before/after
 *   Ctrl-U / Ctrl-K             to the line's start / end
 *   Alt-Enter, Ctrl-J           a newline        Up/Down  a row
 *   Tab                         four spaces (the text never holds controls)
 */
#include "ui/ui_draw.h"

#include <stdlib.h>
#include <string.h>

enum editor_result
editor_key(struct input *in, const struct key *k, int width)
{
	if (k->fn) {
		switch (k->code) {
		case KEY_LEFT: input_left(in); return ED_MOVED;
		case KEY_RIGHT: input_right(in); return ED_MOVED;
		case KEY_BACKSPACE: input_backspace(in); return ED_CHANGED;
		case KEY_DC: input_delete(in); return ED_CHANGED;
		case KEY_UP: return input_up(in, width) == 0 ? ED_MOVED : ED_TOP;
		case KEY_DOWN: return input_down(in, width) == 0 ? ED_MOVED : ED_BOTTOM;
		case KEY_SLEFT: input_word_left(in); return ED_MOVED;
		case KEY_SRIGHT: input_word_right(in); return ED_MOVED;
		default: return ED_IGNORED;
		}
	}
	int c = k->code;
	if (k->alt) {
		switch (c) {
		case 'b': case 'B': input_word_left(in); return ED_MOVED;
		case 'f': case 'F': input_word_right(in); return ED_MOVED;
		case '\r': case '\n': input_insert_cp(in, '\n'); return ED_CHANGED;
		case 127: case 8: input_kill_word(in); return ED_CHANGED;
		case 'd': case 'D': {
			/* Alt-D: the word after the cursor. */
			size_t from = in->cur;
			input_word_right(in);
			size_t target = in->len - (in->cur - from);
			in->cur = from;
			while (in->len > target)
				input_delete(in);
			return ED_CHANGED;
		}
		default: return ED_IGNORED;
		}
	}
	switch (c) {
	case KEY_CTRL('A'): input_home(in); return ED_MOVED;
	case KEY_CTRL('E'): input_end(in); return ED_MOVED;
	case KEY_CTRL('B'): input_left(in); return ED_MOVED;
	case KEY_CTRL('F'): input_right(in); return ED_MOVED;
	case KEY_CTRL('W'): input_kill_word(in); return ED_CHANGED;
	case KEY_CTRL('U'): input_kill_line(in); return ED_CHANGED;
	case KEY_CTRL('K'): input_kill_eol(in); return ED_CHANGED;
	case KEY_CTRL('D'): input_delete(in); return ED_CHANGED;
	case KEY_CTRL('H'): case 127: input_backspace(in); return ED_CHANGED;
	case '\n': input_insert_cp(in, '\n'); return ED_CHANGED;
	case '\t': input_insert(in, "    ", 4); return ED_CHANGED;
	default:
		break;
	}
	if (c >= 0x20 && c != 127 && c <= 0x10ffff && !(c >= 0x80 && c < 0xa0)) {
		input_insert_cp(in, (uint32_t)c);
		return ED_CHANGED;
	}
	return ED_IGNORED;
}

int
editor_rows(const struct input *in, int width)
{
	struct wrap_line *rows;
	int cr, cc;
	int n = input_layout(in, width, &rows, &cr, &cc);
	if (n < 0)
		screen_fatal("out of memory");
	free(rows);
	return n > 0 ? n : 1;
}

void
editor_draw(const struct input *in, int y, int x, int h, int w, attr_t attr, int *cy, int *cx)
{
	*cy = *cx = -1;
	if (h <= 0 || w <= 0)
		return;
	struct wrap_line *rows;
	int crow, ccol;
	int n = input_layout(in, w, &rows, &crow, &ccol);
	if (n < 0)
		screen_fatal("out of memory");
	int top = crow - h + 1 > 0 ? crow - h + 1 : 0;
	const char *s = input_text(in);
	for (int r = 0; r < h && top + r < n; r++) {
		struct wrap_line *l = &rows[top + r];
		char *c = wrap_sanitize(s + l->start, l->end - l->start, 0, NULL);
		if (c == NULL)
			screen_fatal("out of memory");
		screen_put_clean(y + r, x, w, c, strlen(c), attr);
		free(c);
	}
	*cy = y + crow - top;
	*cx = x + (ccol < w ? ccol : w - 1);
	free(rows);
}
