/*
 * cmd_chat.h: the chat modes without the interface: one reply (-p), line by
 * line on a pipe (`chat`), and `render` (the prompt the engine would feed).
 */
#ifndef APP_CMD_CHAT_H
#define APP_CMD_CHAT_H

#include "app/cli.h"

int cmd_oneshot(struct opts *o);
int cmd_chat_pipe(struct opts *o);
/* The ncurses interface (with -m MODEL, or history only). */
int cmd_chat_ui(struct opts *o);
int cmd_render(struct opts *o);

#endif
