/*
 * ui.c: the interface's main loop, the frame, notices and ui_run; the
 * actions are in actions.c, keys in keys.c, dialogs in dialogs.c and the
 * sampling form in sampling.c.
 *
 * DESIGN.  One thread (this one) owns the terminal, the database handle
 * and the view model; the engine runs on the session's worker thread.  The
 * loop poll()s three fds: the terminal, the worker's eventfd and the
 * signal self-pipe, then drains each without blocking (get_wch in nodelay
 * mode, worker_poll) and draws one frame: erase, draw every part into
 * stdscr, one doupdate().  Nothing here ever waits for the engine: a
 * request is queued and its events arrive through the eventfd, so keys and
 * resizes are handled while a model prefills or generates.  SIGWINCH is
 * ncurses' own; it interrupts poll() and get_wch then returns KEY_RESIZE.
 *
 * Every action that changes a conversation goes through session.c, which
 * keeps the worker and the database in step; the view model mirrors what
 * the user sees.  Leaving (Ctrl-Q, a confirmed Ctrl-C, SIGTERM/SIGHUP)
 * gives the terminal back; the caller then closes the session, which stops
 * a reply in flight and keeps its partial text, marked interrupted.
 */
#include "ui/ui.h"
#include "common/clock.h"
#include "ui/ui_draw.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOTICE_MS 5000
#define INPUT_MAX_ROWS 8
#define FRAME_MS 40

void
ui_notice(struct ui *u, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void
ui_notice(struct ui *u, int err, const char *fmt, ...)
{
	va_list ap;
	char *m;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	free(u->msg);
	u->msg = m;
	u->msg_err = err;
	u->msg_until = clock_now_ms() + NOTICE_MS;
}

/* The session's last error as a notice (and forget it). */
void
ui_session_notice(struct ui *u)
{
	char *e = session_take_error(u->s);
	ui_notice(u, 1, "%s", e ? e : "failed");
	free(e);
}

int
ui_need_db(struct ui *u)
{
	if (session_saves(u->s))
		return 1;
	ui_notice(u, 1, "the database is off in this session (--no-save)");
	return 0;
}

int
ui_not_busy(struct ui *u)
{
	if (!session_busy(u->s))
		return 1;
	ui_notice(u, 1, "a reply is being generated: Esc stops it");
	return 0;
}

int
ui_blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\n' && *s != '\t')
			return 0;
	return 1;
}

/* ---- the frame --------------------------------------------------------------------- */

static void
draw(struct ui *u)
{
	erase();
	int L = LINES, C = COLS;
	int cy = -1, cx = -1;
	if (L >= 1 && C >= 1) {
		int status_y = L - 1;
		int lw = convlist_width(u, C);
		int cw = C - lw;
		int ih = 0, sep = 0;
		if (L >= 2) {
			ih = editor_rows(&u->in, cw);
			int cap = (L - 2) / 2;
			if (cap > INPUT_MAX_ROWS)
				cap = INPUT_MAX_ROWS;
			if (ih > cap)
				ih = cap;
			if (ih < 1)
				ih = 1;
		}
		if (L >= 5)
			sep = 1;
		int input_y = status_y - ih;
		int chat_h = input_y - sep;
		if (chat_h < 0)
			chat_h = 0;
		u->chat_y = 0, u->chat_x = lw, u->chat_h = chat_h, u->chat_w = cw;
		if (lw)
			convlist_draw(u, 0, 0, status_y, lw);
		int pad = lw > 0 ? 1 : 0;   /* a column between the list and the text */
		u->chat_w = cw - pad;
		chatview_draw(u, 0, lw + pad, chat_h, cw - pad);
		if (sep) {
			screen_fill(input_y - 1, lw, cw, ACS_HLINE, theme_attr(TH_BORDER));
			const char *tag = u->paste ? " pasting " : u->editing ? " editing the last message (Esc cancels) " : NULL;
			if (tag)
				screen_put(input_y - 1, lw + 1, cw - 1, tag, strlen(tag), theme_attr(TH_NOTE));
		}
		if (ih > 0)
			editor_draw(&u->in, input_y, lw, ih, cw, A_NORMAL, &cy, &cx);
		status_draw(u, status_y, C);
		if (u->dlg.kind != DLG_NONE)
			modal_draw(&u->dlg, L > 1 ? L - 1 : L, C, &cy, &cx);   /* the status bar stays */
	}
	if (cy >= 0 && cx >= 0 && cy < L && cx < C) {
		move(cy, cx);
		curs_set(1);
	} else {
		curs_set(0);
	}
	wnoutrefresh(stdscr);
	doupdate();
	if (u->copy) {
		screen_osc52(u->copy, strlen(u->copy));
		free(u->copy);
		u->copy = NULL;
	}
}

/* ---- running ------------------------------------------------------------------------- */

static void
loop(struct ui *u)
{
	double next_frame = 0;
	int keyed = 1;
	while (!u->quit) {
		double t = clock_now_ms();
		/* While a reply streams, one frame every FRAME_MS: after a frame
		 * the worker's events are waited for, then the loop sleeps until
		 * the next frame is due while tokens pile up in the worker's
		 * queue, and the engine keeps the CPU. */
		int drew = 0;
		if (!session_busy(u->s) || keyed || t >= next_frame) {
			draw(u);
			next_frame = t + FRAME_MS;
			keyed = 0;
			drew = 1;
		}
		int watch_worker = session_fd(u->s) >= 0 && (!session_busy(u->s) || drew);
		struct pollfd p[3];
		int n = 0;
		p[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		if (screen_signal_fd() >= 0)
			p[n++] = (struct pollfd){ .fd = screen_signal_fd(), .events = POLLIN };
		if (watch_worker)
			p[n++] = (struct pollfd){ .fd = session_fd(u->s), .events = POLLIN };
		double timeout = -1;
		if (u->msg)
			timeout = u->msg_until - clock_now_ms();
		if (session_busy(u->s) && !watch_worker) {
			double f = next_frame - clock_now_ms();
			if (timeout < 0 || f < timeout)
				timeout = f;
		}
		int r = poll(p, (nfds_t)n, timeout < 0 && u->msg == NULL && !(session_busy(u->s) && !watch_worker) ? -1
		    : timeout > 0 ? (int)timeout + 1 : 0);
		if (r < 0 && errno != EINTR)
			screen_fatal("poll: %s", strerror(errno));
		if (screen_signalled()) {
			u->quit = 1;
			break;
		}
		if (u->msg && clock_now_ms() >= u->msg_until) {
			free(u->msg);
			u->msg = NULL;
		}
		struct key k;
		while (!u->quit && keys_read(&k)) {
			keys_handle(u, &k);
			keyed = 1;
		}
		if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			u->quit = 1;   /* the terminal went away */
			break;
		}
		if (watch_worker)
			action_drain(u);
	}
}

int
ui_run(struct session *s, const char *history_path)
{
	struct ui u;
	memset(&u, 0, sizeof u);
	u.s = s;
	u.list_on = 1;
	u.has_model = session_has_model(s);
	int status = 0;
	const struct engine_info *in = session_model(s);
	if (in) {
		u.model_name = in->name;
		u.model_type = in->main_type;
		u.ctx_size = session_ctx_size(s);
	}
	viewmodel_init(&u.vm);
	input_init(&u.in);
	u.hist_path = history_path;
	char *err = NULL;
	if (u.hist_path && input_history_load(&u.in, u.hist_path, &err) != 0)
		free(err);   /* an unreadable history starts empty */
	if (screen_open() != 0) {
		const char *term = getenv("TERM");
		fprintf(stderr, "llama2-chat: cannot use this terminal (TERM=%s)\n", term ? term : "unset");
		status = 1;
	} else {
		action_drain(&u);   /* the conversation resumed, if any */
		convlist_reload(&u);
		loop(&u);
		screen_close();
	}
	viewmodel_free(&u.vm);
	input_free(&u.in);
	modal_close(&u.dlg);
	session_convs_free(u.convs, u.nconvs);
	free(u.msg);
	free(u.pending);
	free(u.copy);
	return status;
}
