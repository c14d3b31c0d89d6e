/*
 * chatview.c: the conversation on screen.  It walks the view model's
 * display lines from the top line the model chooses and draws each in its
 * rectangle: role headers in the role's colour with how a reply ended,
 * text runs by markdown style, fenced blocks indented and coloured.  The
 * model did the wrapping at this width, so nothing here measures text
 * except to clip a header.
 */
#include "ui/ui_draw.h"

#include <stdlib.h>
#include <string.h>

static const char *
finish_note(const struct vm_msg *m)
{
	if (m->streaming)
		return " \xe2\x80\xa6";   /* … */
	switch (m->finish) {
	case FINISH_STOPPED: return " \xc2\xb7 stopped";
	case FINISH_LENGTH: return " \xc2\xb7 cut short";
	case FINISH_INTERRUPTED: return " \xc2\xb7 interrupted";
	default: return "";
	}
}

static void
draw_line(struct ui *u, const struct vm_line *l, int y, int x, int w)
{
	const struct vm_msg *m = &u->vm.msgs[l->msg];
	if (l->kind == VM_L_HEADER) {
		enum theme_item it = m->role == ROLE_USER ? TH_USER : m->role == ROLE_ASSISTANT ? TH_ASSISTANT : TH_SYSTEM;
		int n = screen_put_clean(y, x, w, l->text, l->len, theme_attr(it));
		const char *note = finish_note(m);
		screen_put_clean(y, x + n, w - n, note, strlen(note), theme_attr(TH_NOTE));
		return;
	}
	if (l->kind != VM_L_TEXT)
		return;
	int col = l->indent;
	if (l->block && l->indent > 0)
		screen_put_clean(y, x, w, "\xe2\x94\x82", 3, theme_attr(TH_FENCE));   /* │ */
	size_t i = 0;
	while (i < l->len && col < w) {
		size_t j = i + 1;
		while (j < l->len && l->style[j] == l->style[i])
			j++;
		col += screen_put_clean(y, x + col, w - col, l->text + i, j - i, theme_style(l->style[i]));
		i = j;
	}
}

void
chatview_draw(struct ui *u, int y, int x, int h, int w)
{
	if (h <= 0 || w <= 0)
		return;
	if (viewmodel_layout(&u->vm, w) < 0)
		screen_fatal("out of memory");
	if (u->vm.n == 0) {
		const char *hint = u->has_model ? "Type a message, Enter sends.  F1: help"
		    : "No model loaded: history, search, export and presets work.  Start with -m MODEL to chat.  F1: help";
		size_t n = strlen(hint);
		struct wrap_line *wl;
		int k = wrap_lines(hint, n, w, &wl);
		if (k < 0)
			screen_fatal("out of memory");
		int y0 = y + (h - k) / 2;
		for (int i = 0; i < k; i++) {
			int lw = wrap_width(hint + wl[i].start, wl[i].end - wl[i].start);
			if (y0 + i >= y && y0 + i < y + h)
				screen_put_clean(y0 + i, x + (w - lw) / 2, w, hint + wl[i].start, wl[i].end - wl[i].start,
				    theme_attr(TH_NOTE));
		}
		free(wl);
		return;
	}
	int top = viewmodel_top(&u->vm, h);
	for (int r = 0; r < h; r++) {
		const struct vm_line *l = viewmodel_line(&u->vm, top + r);
		if (l == NULL)
			break;
		draw_line(u, l, y + r, x, w);
	}
	if (top + h < u->vm.total && w >= 8) {
		/* There is more below: say so where it does not hide text much. */
		static const char more[] = " \xe2\x86\x93 more ";   /* ↓ more */
		int mw = wrap_width(more, sizeof more - 1);
		screen_put_clean(y + h - 1, x + w - mw, mw, more, sizeof more - 1, theme_attr(TH_SELECT));
	}
}
