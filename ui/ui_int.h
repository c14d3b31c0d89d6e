/*
 * ui_int.h: the interface's internal prototypes that have no curses in them,
 * grouped by file: display-width text (wrap.c), markdown spans
 * (markdown.c), the line editor and its history (input.c) and the
 * conversation view model (viewmodel.c).  The unit tests include this
 * header alone; the drawing side is ui_draw.h.
 *
 * All text is UTF-8.  Widths are terminal columns as wcwidth(3) counts them
 * in the current locale (the one ncurses uses too), so what we measure is
 * what ncurses draws.
 */
#ifndef UI_UI_INT_H
#define UI_UI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "app/session.h"
#include "common/msg.h"
#include "common/utf8.h"

/* ---- wrap.c --------------------------------------------------------------- */

/* One display line: bytes [start, end) of the text given to the wrapper. */
struct wrap_line {
	size_t start, end;
};

/* Columns of cp: 0 for combining marks and other zero-width characters, 2
 * for wide ones, -1 for controls and unprintable code points. */
int wrap_cpwidth(uint32_t cp);
/* The cluster at s[i] (a character and the zero-width ones that follow it):
 * returns the index after it, *width its columns (NULL allowed). */
size_t wrap_next(const char *s, size_t len, size_t i, int *width);
/* The start of the cluster before index i (0 stays 0). */
size_t wrap_prev(const char *s, size_t i);
/* Columns of s[0..len). */
int wrap_width(const char *s, size_t len);
/* The longest prefix of s[0..len) that fits in cols columns (whole
 * clusters): its length in bytes; *used (may be NULL) its columns. */
size_t wrap_fit(const char *s, size_t len, int cols, int *used);
/*
 * Word-wrap one line (no '\n' in it) to width columns (< 1 counts as 1):
 * breaks after spaces where it can, inside a word only when a word is wider
 * than the line, never inside a cluster; the spaces at a break belong to no
 * line.  An empty line gives one empty line.  Returns the count and a
 * malloc'd array in *out (the caller frees), or -1 on out of memory.
 */
int wrap_lines(const char *s, size_t len, int width, struct wrap_line **out);
/* The same, breaking anywhere between clusters (the input box: the cursor
 * must be able to sit on every byte). */
int wrap_hard(const char *s, size_t len, int width, struct wrap_line **out);
/* The input box: at word boundaries like wrap_lines, but every byte on a
 * row (the space at a break ends its row, one of them allowed past width
 * into the cursor's column), so the cursor can sit anywhere. */
int wrap_input(const char *s, size_t len, int width, struct wrap_line **out);
/*
 * A copy of s[0..len) that is safe to hand the terminal: valid UTF-8, tabs
 * as four spaces, other controls and unprintable code points as U+FFFD, a
 * zero-width mark with nothing to sit on given a no-break space; '\n' is
 * kept when keep_nl, else shown as U+21B5.  malloc'd (NUL-terminated,
 * *outlen its length), NULL on out of memory.
 */
char *wrap_sanitize(const char *s, size_t len, int keep_nl, size_t *outlen);

/* ---- markdown.c ------------------------------------------------------------ */

/* Style bits per byte of a line's display text. */
enum {
	MD_BOLD = 1,     /* between ** and ** */
	MD_CODE = 2,     /* between ` and ` */
	MD_BLOCK = 4,    /* inside a fenced block */
	MD_FENCE = 8,    /* a ``` line itself */
	MD_HEAD = 16,    /* a # heading */
	MD_ITALIC = 32,  /* between * and * */
	MD_LINK = 64,    /* the text of [text](url) */
};

struct md_line {
	char *text;       /* display text (markers of spans removed), NUL-terminated */
	uint8_t *style;   /* (len) style bits per byte */
	size_t len;
	int block;        /* a line of a fenced block or a fence: wrap by character, not word */
};

struct md_doc {
	struct md_line *lines;
	int n, cap;
};

/*
 * Split text into lines and find the spans: ```/~~~ fences toggle a code
 * block (an unclosed block runs to the end, as it does while a reply
 * streams), **bold** and `code` inside a line with their markers removed; a
 * marker without its partner stays literal.  0, or -1 on out of memory
 * (doc is then empty).  Free with markdown_free.
 */
int markdown_parse(const char *text, size_t len, struct md_doc *doc);
void markdown_free(struct md_doc *doc);

/* ---- input.c --------------------------------------------------------------- */

struct input {
	char *buf;        /* UTF-8, NUL-terminated, may hold '\n' */
	size_t len, cap;
	size_t cur;       /* cursor, a byte offset on a cluster boundary */
	char **hist;      /* (nhist) oldest first */
	int nhist, hcap, max_hist;
	int hpos;         /* nhist while editing the draft, else the entry shown */
	char *draft;      /* what was typed before walking the history */
};

void input_init(struct input *in);
void input_free(struct input *in);
/* Empty the text (the history stays). */
void input_clear(struct input *in);
const char *input_text(const struct input *in);
/* Replace the text; the cursor goes to its end.  -1 on out of memory. */
int input_set(struct input *in, const char *text);
/* Insert bytes (valid UTF-8) or one code point at the cursor. */
int input_insert(struct input *in, const char *s, size_t n);
int input_insert_cp(struct input *in, uint32_t cp);
void input_left(struct input *in);
void input_right(struct input *in);
void input_home(struct input *in);        /* Ctrl-A: start of the line */
void input_end(struct input *in);         /* Ctrl-E: end of the line */
void input_word_left(struct input *in);   /* Alt-B */
void input_word_right(struct input *in);  /* Alt-F */
void input_backspace(struct input *in);
void input_delete(struct input *in);
void input_kill_word(struct input *in);   /* Ctrl-W: the word before the cursor */
void input_kill_line(struct input *in);   /* Ctrl-U: the line up to the cursor */
void input_kill_eol(struct input *in);    /* Ctrl-K: the line after the cursor */
/*
 * Lay the text out in rows of at most width-1 columns (the last column is
 * kept for the cursor): each '\n' starts a row.  Returns the row count with
 * *rows malloc'd (caller frees), *crow and *ccol the cursor's row and
 * column;
 * -1 on out of memory.
 */
int input_layout(const struct input *in, int width, struct wrap_line **rows, int *crow, int *ccol);
/* Move the cursor one row up/down at the same column: 0, or -1 when it is
 * already on the first/last row (the caller walks the history). */
int input_up(struct input *in, int width);
int input_down(struct input *in, int width);
/* Remember a sent text (not empty, not the same as the newest). */
void input_history_add(struct input *in, const char *text);
/* Show the previous/next entry (the draft after the newest): 0, or -1 at
 * the end of the history. */
int input_history_prev(struct input *in);
int input_history_next(struct input *in);
/* Read/write the history file: one entry a line, "\\" and "\n" escaped;
 * written 0600 through a temporary file renamed over the old one.  A
 * missing file reads as empty.  -1 with *err (malloc'd) on failure. */
int input_history_load(struct input *in, const char *path, char **err);
int input_history_save(const struct input *in, const char *path, char **err);

/* ---- viewmodel.c ------------------------------------------------------------ */

/* The state of the reply in flight, for the status bar. */
enum vm_state { VM_IDLE, VM_WAITING, VM_PROMPT, VM_GENERATING, VM_STOPPED, VM_FAILED, VM_LOADING };

enum vm_line_kind { VM_L_HEADER, VM_L_TEXT, VM_L_BLANK };

/* A display line of the chat: points into its message's layout cache,
 * valid until the next change of that message or the next layout. */
struct vm_line {
	int msg;                  /* index of its message */
	enum vm_line_kind kind;
	const char *text;         /* display text (headers: the role's name) */
	const uint8_t *style;     /* MD_* bits per byte, NULL for none */
	size_t len;
	int indent;               /* columns before the text */
	int block;                /* part of a fenced code block */
};

struct vm_msg {
	int64_t id;               /* the session's id of the message */
	enum role role;
	char *text;               /* as stored / as streamed so far */
	size_t len, cap;
	enum finish finish;
	int streaming;            /* the reply in flight */
	int sibling, n_siblings;  /* its place among its alternatives (0-based), how many (<= 1: none) */
	int ctx_start;            /* a reply finished here: the context before it, or -1 */
	/* Layout cache, valid for width lw while !dirty. */
	int lw, dirty;
	char *clean;              /* sanitized text */
	struct md_doc md;
	struct vm_line *lines;
	int nlines;
};

struct viewmodel {
	struct vm_msg *msgs;
	int n, cap;
	int width;                /* of the last layout */
	int total;                /* display lines at that width */
	int *start;               /* (n) first display line of each message */
	/* Scrolling: follow the end, or keep a line of a message at the top. */
	int follow;
	int top_msg, top_off;
	/* The reply in flight and the last one. */
	enum vm_state state;
	int prog_done, prog_total;
	int n_gen;
	int ctx_used, ctx_size, ctx_base;
	double tps, ttft_ms;
	/* The model's file being read in (SU_READING) or read (SU_READ): KiB. */
	int reading, read_done, read_total;
	char *error;              /* of a failed request (malloc'd) */
};

void viewmodel_init(struct viewmodel *vm);
void viewmodel_free(struct viewmodel *vm);
/* Forget every message (a new or another conversation). */
void viewmodel_clear(struct viewmodel *vm);
/* Append message id; returns its index or -1 on out of memory. */
int viewmodel_add(struct viewmodel *vm, int64_t id, enum role role, const char *text, enum finish finish);
/* Append streamed text to the last message. */
int viewmodel_append(struct viewmodel *vm, const char *text, size_t len);
int viewmodel_set_text(struct viewmodel *vm, int k, const char *text);
/* Drop messages k.. */
void viewmodel_truncate(struct viewmodel *vm, int k);
/* Index of the last message of role, or -1. */
int viewmodel_last(const struct viewmodel *vm, enum role role);
/* The index of message id, or -1. */
int viewmodel_find(const struct viewmodel *vm, int64_t id);
/*
 * Apply a view update from the session (session_poll): messages added,
 * streamed onto, finished, removed; the conversation replaced; the status
 * numbers.  Returns 1 when the request in flight ended (SU_FINISH,
 * SU_FAILED), else 0; -1 on out of memory.
 */
int viewmodel_apply(struct viewmodel *vm, const struct session_update *u);
/* Lay every message out at width (re-wrapping what changed); returns the
 * number of display lines.  -1 on out of memory. */
int viewmodel_layout(struct viewmodel *vm, int width);
/* Display line i (0 <= i < total) of the last layout. */
const struct vm_line *viewmodel_line(const struct viewmodel *vm, int i);
/* First display line shown in a view of height rows. */
int viewmodel_top(struct viewmodel *vm, int height);
/* Scroll by delta lines (negative: up, towards older text). */
void viewmodel_scroll(struct viewmodel *vm, int delta, int height);
void viewmodel_scroll_home(struct viewmodel *vm);
void viewmodel_scroll_end(struct viewmodel *vm);
/* Put message k's first line at the top. */
void viewmodel_scroll_to(struct viewmodel *vm, int k, int height);

#endif
