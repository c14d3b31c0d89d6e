/*
 * cmd_tree.h: replay, branch and the tree outline of show (app/cmd_tree.c).
 */
#ifndef APP_CMD_TREE_H
#define APP_CMD_TREE_H

#include <stdio.h>

#include "app/cli.h"

struct db_conv;

/* `replay ID`: exit 0 when every reply of the current branch came out identical. */
int cmd_replay(struct opts *o);

#endif
