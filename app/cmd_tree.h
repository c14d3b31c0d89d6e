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
/* `branch ID [N]`: make alternative N at the last fork of the current branch current. */
int cmd_branch(struct opts *o);
/* The outline of a tree-loaded conversation (db_conv_load_tree) for `show --tree`. */
void cmd_tree_print(const struct db_conv *c, FILE *out);

#endif
