/*
 * ui.h: the ncurses interface, the only ui/ header app/ includes.
 */
#ifndef UI_UI_H
#define UI_UI_H

struct session;

/*
 * Run the interface on session s (opened by the caller, who closes it
 * after this returns: the terminal is given back first) until the user
 * quits; history_path is the input history file (NULL: none).  Returns the
 * exit status.
 */
int ui_run(struct session *s, const char *history_path);

#endif
