/*
 * theme.c: the few colours the interface uses.  Foregrounds only, on the
 * terminal's own background (use_default_colors), and only colours that
 * read on dark and on light backgrounds alike (green, magenta, cyan, red;
 * no yellow, white or blue text); the status bar and selections are
 * reverse video.  With NO_COLOR set (https://no-color.org), or on a
 * terminal without colours, every item falls back to plain attributes
 * (bold, underline, reverse, dim), which monochrome terminals show.
 */
#include "ui/ui_draw.h"

#include <stdlib.h>

static attr_t attrs[TH_COUNT];
static int use_color;

struct spec {
	short fg;       /* -1: no colour */
	attr_t color_attr, mono_attr;
};

static const struct spec specs[TH_COUNT] = {
	[TH_NORMAL] = { -1, A_NORMAL, A_NORMAL },
	[TH_USER] = { COLOR_GREEN, A_BOLD, A_BOLD | A_UNDERLINE },
	[TH_ASSISTANT] = { COLOR_MAGENTA, A_BOLD, A_BOLD },
	[TH_SYSTEM] = { COLOR_CYAN, A_BOLD, A_BOLD | A_DIM },
	[TH_BOLD] = { -1, A_BOLD, A_BOLD },
	[TH_CODE] = { COLOR_CYAN, A_NORMAL, A_UNDERLINE },
	[TH_BLOCK] = { COLOR_GREEN, A_NORMAL, A_NORMAL },
	[TH_FENCE] = { -1, A_DIM, A_DIM },
	[TH_HEAD] = { COLOR_MAGENTA, A_BOLD, A_BOLD | A_UNDERLINE },
	[TH_NOTE] = { -1, A_DIM, A_DIM },
	[TH_STATUS] = { -1, A_REVERSE, A_REVERSE },
	[TH_STATUS_BUSY] = { COLOR_GREEN, A_REVERSE | A_BOLD, A_REVERSE | A_BOLD },
	[TH_ERROR] = { COLOR_RED, A_BOLD, A_BOLD | A_REVERSE },
	[TH_BORDER] = { -1, A_DIM, A_NORMAL },
	[TH_SELECT] = { -1, A_REVERSE, A_REVERSE },
	[TH_MARK] = { COLOR_MAGENTA, A_BOLD | A_UNDERLINE, A_BOLD | A_UNDERLINE },
	[TH_CURRENT] = { COLOR_GREEN, A_BOLD, A_BOLD },
	[TH_BAR_FULL] = { -1, A_REVERSE, A_REVERSE },
	[TH_BAR_EMPTY] = { -1, A_DIM, A_NORMAL },
};

void
theme_init(void)
{
	const char *nc = getenv("NO_COLOR");
	use_color = (nc == NULL || nc[0] == '\0') && has_colors();
	if (use_color && start_color() == ERR)
		use_color = 0;
	if (use_color)
		use_default_colors();
	short pair = 1;
	for (int i = 0; i < TH_COUNT; i++) {
		const struct spec *sp = &specs[i];
		if (use_color && sp->fg >= 0 && pair < COLOR_PAIRS) {
			init_pair(pair, sp->fg, -1);
			attrs[i] = sp->color_attr | COLOR_PAIR(pair);
			pair++;
		} else {
			attrs[i] = use_color ? sp->color_attr : sp->mono_attr;
		}
	}
}

int
theme_color(void)
{
	return use_color;
}

attr_t
theme_attr(enum theme_item it)
{
	return attrs[it];
}

attr_t
theme_style(unsigned st)
{
	if (st & MD_FENCE)
		return attrs[TH_FENCE];
	if (st & MD_BLOCK)
		return attrs[TH_BLOCK];
	if (st & MD_HEAD)
		return attrs[TH_HEAD];
	attr_t a = A_NORMAL;
	if (st & MD_CODE)
		a |= attrs[TH_CODE];
	if (st & MD_BOLD)
		a |= A_BOLD;
	if (st & MD_ITALIC)
#ifdef A_ITALIC
		a |= A_ITALIC;
#else
		a |= A_UNDERLINE;
#endif
	if (st & MD_LINK)
		a |= A_UNDERLINE;
	return a;
}
