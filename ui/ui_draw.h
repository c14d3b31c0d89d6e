/*
 * ui_draw.h: the curses side of the interface, grouped by file: the
 * terminal itself (screen.c), colours (theme.c), the line editor's keys and
 * rows (editor.c), the chat view (chatview.c), the conversation list
 * (convlist.c), the status bar (status.c), dialogs and the help overlay
 * (modal.c), and the state they all draw from (struct ui, run by ui.c).
 *
 * Only the UI thread calls anything here.  Every draw function writes into
 * stdscr within the rectangle it is given and never past it; ui.c erases,
 * draws the frame, and calls doupdate() once.
 */
#ifndef UI_UI_DRAW_H
#define UI_UI_DRAW_H

#include <curses.h>
#include <stddef.h>
#include <stdint.h>

#include "app/session.h"
#include "storage/db.h"
#include "ui/ui_int.h"

/* A key as read: a character or a KEY_* code, and whether Alt (a
 * preceding Esc) was held. */
struct key {
	int code;       /* a Unicode character, or a KEY_* code when fn */
	int fn;
	int alt;
};

#define KEY_CTRL(c) ((c) & 0x1f)
/* Our own codes for the bracketed-paste markers (define_key). */
#define KEY_PASTE_BEGIN (KEY_MAX + 1)
#define KEY_PASTE_END (KEY_MAX + 2)

/* ---- theme.c ---------------------------------------------------------- */

enum theme_item {
	TH_NORMAL, TH_USER, TH_ASSISTANT, TH_SYSTEM, TH_BOLD, TH_CODE, TH_BLOCK, TH_FENCE, TH_HEAD,
	TH_NOTE, TH_STATUS, TH_STATUS_BUSY, TH_ERROR, TH_BORDER, TH_SELECT, TH_MARK, TH_CURRENT,
	TH_BAR_FULL, TH_BAR_EMPTY, TH_COUNT,
};
/* Set up colour pairs, or attributes alone with NO_COLOR or no colours. */
void theme_init(void);
attr_t theme_attr(enum theme_item it);
/* The attribute for a chat text byte with style bits st (MD_*). */
attr_t theme_style(unsigned st);
int theme_color(void);

/* ---- screen.c --------------------------------------------------------- */

/* Start curses on the terminal: raw keys, no echo, keypad, bracketed
 * paste, a UTF-8 locale; installs the handlers that restore the terminal
 * on a crash.  -1 (nothing changed) when the terminal cannot be used. */
int screen_open(void);
/* Give the terminal back as it was.  Safe to call twice. */
void screen_close(void);
/* Restore the terminal, print "llama2-chat: <msg>" and exit(1). */
void screen_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Allocation that dies through screen_fatal. */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Draw text (any bytes: it is sanitized) at (y, x) in at most maxw
 * columns with attr; returns the columns used.  Zero-width marks join
 * their character; a wide character that does not fit is left out.
 */
int screen_put(int y, int x, int maxw, const char *text, size_t len, attr_t attr);
/* The same for text already sanitized (no controls, valid UTF-8). */
int screen_put_clean(int y, int x, int maxw, const char *text, size_t len, attr_t attr);
/* Fill columns [x, x + w) of row y with ch. */
void screen_fill(int y, int x, int w, chtype ch, attr_t attr);
/* Put text on the system clipboard with OSC 52 (also through tmux).
 * Call after doupdate(). */
void screen_osc52(const char *text, size_t len);
/* Turn wheel reports on or off. */
void screen_mouse(int on);
/* The fd a signal handler writes to when SIGTERM/SIGHUP/SIGINT arrive;
 * screen_signalled() drains it and says whether to quit. */
int screen_signal_fd(void);
int screen_signalled(void);

/* ---- editor.c ---------------------------------------------------------- */

enum editor_result { ED_IGNORED, ED_CHANGED, ED_MOVED, ED_TOP, ED_BOTTOM };
/*
 * Apply an editing key to in (width: the box's, for Up/Down by rows).
 * ED_TOP/ED_BOTTOM: Up on the first row / Down on the last (the caller
 * may walk the history).  Enter is the caller's; newline (Alt-Enter,
 * Ctrl-J) is handled here.
 */
enum editor_result editor_key(struct input *in, const struct key *k, int width);
/* The number of rows in needs at width (at least 1). */
int editor_rows(const struct input *in, int width);
/*
 * Draw in's rows in the box (y, x, h, w), scrolled so the cursor shows;
 * *cy and *cx receive the cursor's screen position.
 */
void editor_draw(const struct input *in, int y, int x, int h, int w, attr_t attr, int *cy, int *cx);

/* ---- modal.c ---------------------------------------------------------- */

enum modal_kind { DLG_NONE, DLG_CONFIRM, DLG_PROMPT, DLG_LIST, DLG_HELP };
enum modal_result { DLG_CONT, DLG_OK, DLG_CANCEL };

struct modal_item {
	char *label;              /* the line shown (owned); \x01...\x02 marks a match */
	int64_t id;               /* what the caller gets back */
	int pos;
};

struct modal {
	enum modal_kind kind;
	int purpose;              /* what ui.c does on OK */
	int64_t arg;              /* and with what */
	char *title;              /* owned */
	char *text;               /* owned: the question, or the hint under a prompt */
	struct input in;          /* a prompt's text, or a list's filter */
	int multiline;            /* a prompt of several lines */
	struct modal_item *items;   /* (nitems) owned */
	int nitems;
	int *shown;               /* (nshown) indices of the items the filter lets through */
	int nshown;
	int filter;               /* typing filters the list */
	int sel, top;             /* selected row of shown, first row drawn */
	int rows;                 /* list rows drawn last time (for PgUp/PgDn) */
};

void modal_confirm(struct modal *d, int purpose, const char *title, const char *question);
void modal_prompt(struct modal *d, int purpose, const char *title, const char *initial, const char *hint,
    int multiline);
/* A list; items are added with modal_add, then modal_ready. */
void modal_list(struct modal *d, int purpose, const char *title, int filter);
void modal_add(struct modal *d, const char *label, int64_t id, int pos);
void modal_ready(struct modal *d);
void modal_help(struct modal *d);
void modal_close(struct modal *d);
/* The chosen item of a list after DLG_OK (NULL if none). */
const struct modal_item *modal_selected(const struct modal *d);
enum modal_result modal_key(struct modal *d, const struct key *k);
/* Draw centred in the screen; *cy and *cx the cursor (-1 when hidden). */
void modal_draw(struct modal *d, int lines, int cols, int *cy, int *cx);

/* ---- the state (ui.c) ------------------------------------------------------ */

struct ui {
	struct opts *o;
	struct engine_model *m;       /* NULL: history-only */
	struct session s;
	struct viewmodel vm;
	struct input in;
	struct modal dlg;
	struct db_conv *convs;        /* (nconvs) the list on the left, newest first */
	size_t nconvs;
	int list_on;                  /* the user wants the list (shown when wide enough) */
	int mouse;
	int paste;                    /* inside a bracketed paste */
	int editing;                  /* the input replaces message `edit_k` */
	int edit_k;
	int quit;
	char *msg;                    /* a one-line notice in the status bar */
	int msg_err;
	double msg_until;             /* monotonic ms when it goes */
	char *pending;                /* the export path waiting for "overwrite?" */
	char *copy;                   /* text for OSC 52 after the next doupdate */
	char *hist_path;
	const char *model_name, *model_type;
	int ctx_size;
	/* Geometry of the last frame. */
	int chat_y, chat_x, chat_h, chat_w;
};

/* ---- chatview.c ---------------------------------------------------------- */

/* Draw the conversation in (y, x, h, w), laid out at w columns. */
void chatview_draw(struct ui *u, int y, int x, int h, int w);

/* ---- convlist.c ------------------------------------------------------------ */

/* Width of the list when it is shown at cols columns (0: hidden). */
int convlist_width(const struct ui *u, int cols);
void convlist_draw(struct ui *u, int y, int x, int h, int w);
/* Re-read the list from the database. */
void convlist_reload(struct ui *u);
/* "title" or "(untitled)" for the list and dialogs. */
const char *convlist_title(const struct db_conv *c);

/* ---- status.c -------------------------------------------------------------- */

void status_draw(struct ui *u, int y, int w);

#endif
