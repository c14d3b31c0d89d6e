/*
 * convlist.c: the conversation list on the left: the newest 200 chats of
 * the database, the current one marked, a new unsaved chat shown on top.
 * It is shown when the user wants it (Alt-L) and the terminal has 80
 * columns or more; under that the chat needs every column.  The list is
 * re-read from the database when it can have changed (a chat created,
 * finished, renamed, deleted or switched to), never while drawing.
 */
#include "ui/ui_draw.h"

#include <stdlib.h>
#include <string.h>

#define CONVLIST_MAX 200

const char *
convlist_title(const struct session_conv *c)
{
	return c->title && c->title[0] ? c->title : "(untitled)";
}

int
convlist_width(const struct ui *u, int cols)
{
	if (!u->list_on || cols < 80)
		return 0;
	int w = cols / 4;
	return w > 32 ? 32 : w;
}

void
convlist_reload(struct ui *u)
{
	session_convs_free(u->convs, u->nconvs);
	u->convs = NULL;
	u->nconvs = 0;
	if (session_list(u->s, CONVLIST_MAX, &u->convs, &u->nconvs) != 0)
		ui_session_notice(u);
}

void
convlist_draw(struct ui *u, int y, int x, int h, int w)
{
	if (h <= 0 || w <= 2)
		return;
	int tw = w - 1;   /* the last column is the border */
	attrset(theme_attr(TH_BORDER));
	mvvline(y, x + tw, ACS_VLINE, h);
	attrset(A_NORMAL);
	screen_put(y, x, tw, "Chats", 5, A_BOLD);
	int r = 1;
	if (session_conv(u->s) == 0 && r < h) {
		screen_fill(y + r, x, tw, ' ', theme_attr(TH_SELECT));
		screen_put(y + r, x, tw, "\xe2\x96\xb8 (new chat)", 14, theme_attr(TH_SELECT));
		r++;
	}
	/* Keep the current chat in view. */
	size_t cur = 0;
	for (size_t i = 0; i < u->nconvs; i++)
		if (u->convs[i].id == session_conv(u->s))
			cur = i;
	size_t first = 0;
	int avail = h - r;
	if (avail > 0 && cur >= (size_t)avail)
		first = cur - (size_t)avail + 1;
	for (size_t i = first; i < u->nconvs && r < h; i++, r++) {
		const struct session_conv *c = &u->convs[i];
		int is_cur = c->id == session_conv(u->s);
		attr_t a = is_cur ? theme_attr(TH_SELECT) : A_NORMAL;
		if (is_cur)
			screen_fill(y + r, x, tw, ' ', a);
		int n = screen_put(y + r, x, tw, is_cur ? "\xe2\x96\xb8 " : "  ", is_cur ? 4 : 2, a);
		const char *t = convlist_title(c);
		screen_put(y + r, x + n, tw - n, t, strlen(t), a);
	}
}
