/*
 * ui.c: placeholder entry of the interface until the ncurses screens land;
 * it says so plainly instead of pretending.
 */
#include "ui/ui.h"

int
ui_run(struct opts *o)
{
	(void)o;
	cli_error("the interactive interface is not available in this build; use -p MESSAGE or pipe messages to 'chat'");
	return 1;
}
