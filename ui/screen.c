/*
 * screen.c: the terminal.  Starting and ending curses, the fatal path and
 * the crash handlers (both give the terminal back before anything is
 * printed or the process dies), text output clipped by display width, the
 * clipboard through OSC 52, mouse reports, and the self-pipe that turns
 * SIGTERM/SIGHUP/SIGINT into something poll() sees.
 *
 * Invariant: between screen_open and screen_close the terminal is in
 * curses' hands; every way out of the process (return, screen_fatal, a
 * signal, a crash) passes through code that restores it.  The crash
 * handler cannot call curses (it is not async-signal-safe), so it writes
 * the reset sequences and the saved termios itself, then hands the signal
 * to whoever had it before (ASan, or the default action).
 */
#include "ui/ui_draw.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#define RESET_SEQ "\033[?2004l\033[?1000l\033[?1006l\033[0m\033[?25h\033[?1049l"

static int opened;
static SCREEN *scr;
static struct termios saved_tio;
static int have_tio;
static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t quit_signal;
static const int crash_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
static struct sigaction old_crash[sizeof crash_sigs / sizeof *crash_sigs];
static struct sigaction old_quit[3];
static const int quit_sigs[] = { SIGTERM, SIGHUP, SIGINT };

static void
on_crash(int sig)
{
	if (opened) {
		ssize_t r = write(STDOUT_FILENO, RESET_SEQ "\r\n", sizeof RESET_SEQ + 1);
		(void)r;
		if (have_tio)
			tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		opened = 0;
	}
	for (size_t i = 0; i < sizeof crash_sigs / sizeof *crash_sigs; i++)
		if (crash_sigs[i] == sig)
			sigaction(sig, &old_crash[i], NULL);
	raise(sig);   /* delivered with the old action when we return */
}

static void
on_quit(int sig)
{
	int e = errno;
	quit_signal = sig;
	if (sig_pipe[1] >= 0) {
		ssize_t r = write(sig_pipe[1], "q", 1);
		(void)r;
	}
	errno = e;
}

static void
utf8_locale(void)
{
	setlocale(LC_ALL, "");
	const char *cs = nl_langinfo(CODESET);
	if (cs && strcmp(cs, "UTF-8") == 0)
		return;
	/* The models speak UTF-8 whatever the locale says; without it wide
	 * characters cannot be drawn, so ask for a UTF-8 character type. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "C.utf8");
}

int
screen_open(void)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return -1;
	utf8_locale();
	have_tio = tcgetattr(STDIN_FILENO, &saved_tio) == 0;
	scr = newterm(NULL, stdout, stdin);
	if (scr == NULL)
		return -1;
	set_term(scr);
	opened = 1;
	raw();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	meta(stdscr, TRUE);
	define_key("\033[200~", KEY_PASTE_BEGIN);
	define_key("\033[201~", KEY_PASTE_END);
	mousemask(0, NULL);
	mouseinterval(0);
	theme_init();
	fputs("\033[?2004h", stdout);   /* bracketed paste */
	fflush(stdout);

	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		sig_pipe[0] = sig_pipe[1] = -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_quit;
	for (size_t i = 0; i < sizeof quit_sigs / sizeof *quit_sigs; i++)
		sigaction(quit_sigs[i], &sa, &old_quit[i]);
	sa.sa_handler = on_crash;
	for (size_t i = 0; i < sizeof crash_sigs / sizeof *crash_sigs; i++)
		sigaction(crash_sigs[i], &sa, &old_crash[i]);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void
screen_close(void)
{
	if (!opened)
		return;
	for (size_t i = 0; i < sizeof crash_sigs / sizeof *crash_sigs; i++)
		sigaction(crash_sigs[i], &old_crash[i], NULL);
	for (size_t i = 0; i < sizeof quit_sigs / sizeof *quit_sigs; i++)
		sigaction(quit_sigs[i], &old_quit[i], NULL);
	mousemask(0, NULL);
	fputs("\033[?2004l", stdout);
	fflush(stdout);
	endwin();
	opened = 0;
	if (scr) {
		delscreen(scr);
		scr = NULL;
	}
	if (have_tio)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	if (sig_pipe[0] >= 0) {
		close(sig_pipe[0]);
		close(sig_pipe[1]);
		sig_pipe[0] = sig_pipe[1] = -1;
	}
}

void
screen_fatal(const char *fmt, ...)
{
	screen_close();   /* endwin() first, then the message */
	va_list ap;
	fputs("llama2-chat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		screen_fatal("out of memory");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		screen_fatal("out of memory");
	return q;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (p == NULL)
		screen_fatal("out of memory");
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		screen_fatal("out of memory");
	return s;
}

int
screen_put_clean(int y, int x, int maxw, const char *text, size_t len, attr_t attr)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS || maxw <= 0)
		return 0;
	if (maxw > COLS - x)
		maxw = COLS - x;
	int used;
	size_t n = wrap_fit(text, len, maxw, &used);
	if (n == 0)
		return 0;
	wchar_t stackbuf[256];
	wchar_t *wb = n < 256 ? stackbuf : xmalloc((n + 1) * sizeof *wb);
	size_t k = 0;
	for (size_t i = 0; i < n; ) {
		uint32_t cp;
		i += utf8_decode(text + i, n - i, &cp);
		wb[k++] = (wchar_t)cp;
	}
	wb[k] = 0;
	attrset(attr);
	mvaddnwstr(y, x, wb, (int)k);
	attrset(A_NORMAL);
	if (wb != stackbuf)
		free(wb);
	return used;
}

int
screen_put(int y, int x, int maxw, const char *text, size_t len, attr_t attr)
{
	size_t n;
	char *c = wrap_sanitize(text, len, 0, &n);
	if (c == NULL)
		screen_fatal("out of memory");
	int used = screen_put_clean(y, x, maxw, c, n, attr);
	free(c);
	return used;
}

void
screen_fill(int y, int x, int w, chtype ch, attr_t attr)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS || w <= 0)
		return;
	if (w > COLS - x)
		w = COLS - x;
	attrset(attr);
	mvhline(y, x, ch, w);
	attrset(A_NORMAL);
}

static char *
base64(const char *s, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = xmalloc((len + 2) / 3 * 4 + 1);
	size_t j = 0;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)u[i + 1] << 8;
		if (i + 2 < len)
			v |= u[i + 2];
		o[j++] = tab[(v >> 18) & 63];
		o[j++] = tab[(v >> 12) & 63];
		o[j++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		o[j++] = i + 2 < len ? tab[v & 63] : '=';
	}
	o[j] = '\0';
	return o;
}

static void
write_all(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void
screen_osc52(const char *text, size_t len)
{
	if (len > 100000)
		len = 100000;   /* terminals refuse much more */
	char *b = base64(text, len);
	char *seq = xasprintf("\033]52;c;%s\a", b);
	fflush(stdout);
	write_all(seq, strlen(seq));
	free(seq);
	if (getenv("TMUX")) {
		/* Also straight to the outer terminal, for a tmux that does not
		 * take OSC 52 itself (set-clipboard off) but passes it through. */
		seq = xasprintf("\033Ptmux;\033\033]52;c;%s\a\033\\", b);
		write_all(seq, strlen(seq));
		free(seq);
	}
	free(b);
}

void
screen_mouse(int on)
{
	mousemask(on ? (mmask_t)(BUTTON4_PRESSED | BUTTON5_PRESSED | BUTTON1_PRESSED) : 0, NULL);
}

int
screen_signal_fd(void)
{
	return sig_pipe[0];
}

int
screen_signalled(void)
{
	char buf[64];
	while (sig_pipe[0] >= 0 && read(sig_pipe[0], buf, sizeof buf) > 0)
		;
	return quit_signal != 0;
}
