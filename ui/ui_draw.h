/*
 * ui_draw.h: the curses side of the interface, grouped by file: the
 * terminal itself (screen.c), colours (theme.c), the line editor's keys and
 * rows (editor.c), the chat view (chatview.c), the conversation list
 * (convlist.c), the status bar (status.c), dialogs and the help overlay
 * (modal.c), the state they all draw from (struct ui, run by ui.c), and
 * what the interface does: actions.c, dialogs.c, sampling.c, keys.c.
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
	int64_t pos;              /* a second value: a message id, a length */
};

struct modal {
	enum modal_kind kind;
	int purpose;              /* what dialogs.c does on OK */
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
void modal_add(struct modal *d, const char *label, int64_t id, int64_t pos);
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
	struct session *s;            /* not owned: the only way to the data and the engine */
	int has_model;                /* 0: history only */
	struct viewmodel vm;
	struct input in;
	struct modal dlg;
	struct session_conv *convs;   /* (nconvs) the list on the left, newest first */
	size_t nconvs;
	int list_on;                  /* the user wants the list (shown when wide enough) */
	int mouse;
	int paste;                    /* inside a bracketed paste */
	int editing;                  /* the input replaces message `edit_id` */
	int64_t edit_id;
	int64_t scroll_to;            /* after a switch from a search hit: this message at the top */
	int quit;
	int help_typed;               /* help opened by '?': typing on goes to the input */
	char *msg;                    /* a one-line notice in the status bar */
	int msg_err;
	double msg_until;             /* monotonic ms when it goes */
	char *pending;                /* the export path waiting for "overwrite?" */
	char *copy;                   /* text for OSC 52 after the next doupdate */
	const char *hist_path;        /* the input history file, or NULL */
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
const char *convlist_title(const struct session_conv *c);

/* ---- status.c -------------------------------------------------------------- */

void status_draw(struct ui *u, int y, int w);

/* ---- ui.c ---------------------------------------------------------------- */

/* A one-line notice in the status bar for a few seconds (err: in red). */
void ui_notice(struct ui *u, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The session's last error as a notice (and forget it). */
void ui_session_notice(struct ui *u);
/* 1 when there is a database / no reply in flight, else a notice and 0. */
int ui_need_db(struct ui *u);
int ui_not_busy(struct ui *u);
/* Only spaces, tabs and newlines? */
int ui_blank(const char *s);

/* ---- actions.c ------------------------------------------------------------- */

/* Open conversation id, scrolled to message msg (0: the end). */
void action_switch_to(struct ui *u, int64_t id, int64_t msg);
void action_new_chat(struct ui *u);
/* Send the input box (or the edit of the last message). */
void action_send(struct ui *u);
void action_regenerate(struct ui *u);
/* Put the last user message into the input box for editing. */
void action_edit_last(struct ui *u);
/* Move the last message with alternatives to the one step (-1, 1) away;
 * the chat, the context meter and the worker follow the branch. */
void action_alternative(struct ui *u, int step);
/* The last reply to the clipboard. */
void action_copy_last(struct ui *u);
/* Apply every waiting update of the session. */
void action_drain(struct ui *u);

/* ---- dialogs.c ------------------------------------------------------------- */

/* What a dialog is for (struct modal's purpose). */
enum purpose {
	P_NONE, P_QUIT, P_SWITCH, P_SEARCH_QUERY, P_SEARCH_HIT, P_RENAME, P_DELETE, P_PRESET, P_SYSTEM,
	P_SAMPLING, P_SAMPLING_VALUE, P_EXPORT_FORMAT, P_EXPORT_PATH, P_EXPORT_OVERWRITE, P_HELP,
};

void dialogs_open_switcher(struct ui *u);
void dialogs_open_search(struct ui *u);
void dialogs_open_rename(struct ui *u);
void dialogs_open_delete(struct ui *u);
void dialogs_open_presets(struct ui *u);
void dialogs_open_export(struct ui *u);
void dialogs_quit_ask(struct ui *u);
/* The open dialog was answered (r: OK or CANCEL). */
void dialogs_done(struct ui *u, enum modal_result r);

/* ---- sampling.c ------------------------------------------------------------ */

/* The form, with row sel selected. */
void sampling_open(struct ui *u, int sel);
/* Field f's value as text (malloc'd). */
char *sampling_value(struct ui *u, int f);
/* The prompt for field f. */
void sampling_edit(struct ui *u, int f);
/* Set field f from the typed text (a notice says how it went). */
void sampling_set(struct ui *u, int f, const char *text);

/* ---- keys.c ---------------------------------------------------------------- */

/* Read one key without waiting: 1 and *k, or 0 when none is waiting. */
int keys_read(struct key *k);
/* What a key does, in a dialog or in the main view. */
void keys_handle(struct ui *u, const struct key *k);

#endif
