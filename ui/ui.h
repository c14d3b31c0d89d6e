/*
 * ui.h: the ncurses interface, the only ui/ header app/ includes.
 */
#ifndef UI_UI_H
#define UI_UI_H

#include "app/cli.h"

/* Run the interface until the user quits; returns the exit status. */
int ui_run(struct opts *o);

#endif
