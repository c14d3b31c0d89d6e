/*
 * cmd_tree.c: the commands about a conversation's branches and replies:
 * `replay ID` (generate each reply of the current branch again from its
 * replay record and compare, token by token), `branch ID [N]` (list the
 * alternatives at the last fork of the current branch, or make the Nth
 * current) and the outline `show ID --tree` prints (cmd_tree_print).
 *
 * Replay never writes: it reads the branch, generates in a context of its
 * own and reports.  A reply is replayable when it has a record (app/replay.h)
 * made with this model file (same fingerprint) and stored token ids.
 */
#include "app/cmd_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/paths.h"
#include "app/replay.h"
#include "engine/chat.h"
#include "storage/db.h"

/* The database the options name, opened; NULL after printing one line. */
static struct db *
cmd_tree_open_db(const struct opts *o)
{
	char *err = NULL;
	char *path = path_database(o->db, &err);
	struct db *d = path != NULL ? db_open(path, &err) : NULL;
	if (d == NULL)
		cli_error("%s", err != NULL ? err : "cannot open the database");
	free(err);
	free(path);
	return d;
}

/* The conversation named by o->args[0]: 0 with *id, or an exit status. */
static int
cmd_tree_resolve(struct db *d, const struct opts *o, const char *cmd, int64_t *id)
{
	if (o->nargs < 1)
		return cli_usage_error("%s: which conversation? (an ID from '" PROG " list')", cmd);
	char *err = NULL;
	if (db_conv_resolve(d, o->args[0], id, &err) != 0) {
		cli_error("%s", err);
		free(err);
		return 1;
	}
	return 0;
}

/* A token for people: its piece, quoted, control bytes as '?'. */
static void
cmd_tree_piece(const struct engine_model *m, int32_t id, char *buf, size_t size)
{
	size_t len = 0;
	const char *p = engine_token_piece(m, id, &len);
	size_t o = 0;
	for (size_t i = 0; p != NULL && i < len && o + 2 < size; i++)
		buf[o++] = (unsigned char)p[i] < 0x20 ? '?' : p[i];
	buf[o] = '\0';
}

/* The messages of a branch as the chat format sees them (alternating,
 * system messages left out, as session.c hands them to the worker). */
struct cmd_tree_dialog {
	int *roles, *n_ids, *msg;       /* msg: index into the branch */
	const char **contents;
	const int32_t **ids;
	int n;
};

static int
cmd_tree_dialog(const struct db_conv *c, struct cmd_tree_dialog *dl)
{
	size_t n = (size_t)c->n_messages + 1;
	memset(dl, 0, sizeof *dl);
	dl->roles = calloc(n, sizeof *dl->roles);
	dl->n_ids = calloc(n, sizeof *dl->n_ids);
	dl->msg = calloc(n, sizeof *dl->msg);
	dl->contents = calloc(n, sizeof *dl->contents);
	dl->ids = calloc(n, sizeof *dl->ids);
	if (!dl->roles || !dl->n_ids || !dl->msg || !dl->contents || !dl->ids)
		return -1;
	for (int i = 0; i < c->n_messages; i++) {
		const struct db_message *m = &c->messages[i];
		if (m->role == ROLE_SYSTEM)
			continue;
		int role = m->role == ROLE_USER ? CHAT_USER : CHAT_ASSISTANT;
		if (dl->n > 0 && dl->roles[dl->n - 1] == role)
			continue;
		dl->roles[dl->n] = role;
		dl->contents[dl->n] = m->content;
		dl->msg[dl->n] = i;
		dl->n++;
	}
	return 0;
}

static void
cmd_tree_dialog_free(struct cmd_tree_dialog *dl)
{
	for (int i = 0; i < dl->n; i++)
		free((void *)dl->ids[i]);
	free(dl->roles);
	free(dl->n_ids);
	free(dl->msg);
	free(dl->contents);
	free(dl->ids);
}

/*
 * The ids to build reply k's prompt from: each earlier message's stored ids
 * when they still stand for it under record r (the first user turn folds
 * r's system prompt), a reply's closed by the family's end token unless it
 * ends on one; NULL (render the text)
 * otherwise.
 */
static void
cmd_tree_usable_ids(const struct engine_model *m, const struct db_conv *c,
    struct cmd_tree_dialog *dl, const struct replay_rec *r, int k)
{
	for (int i = 0; i < k; i++) {
		free((void *)dl->ids[i]);
		dl->ids[i] = NULL;
		dl->n_ids[i] = 0;
		const struct db_message *msg = &c->messages[dl->msg[i]];
		int n = (int)msg->n_tokens;
		if (!replay_ids_usable(m, dl->roles[i], i == 0 ? r->system : NULL, msg->content,
		    msg->tokens, n))
			continue;
		int add = dl->roles[i] == CHAT_ASSISTANT && !engine_is_eog(m, msg->tokens[n - 1]);
		int32_t *ids = malloc((size_t)(n + 1) * sizeof *ids);
		if (ids == NULL)
			continue;
		memcpy(ids, msg->tokens, (size_t)n * sizeof *ids);
		if (add)
			ids[n] = chat_tmpl_reply_end(m);
		dl->ids[i] = ids;
		dl->n_ids[i] = n + add;
	}
}

/* Replay reply k of the dialog; prints its line.  1 when identical. */
static int
cmd_tree_replay_one(struct engine_model *m, struct replay_ctx *rx, const struct opts *o,
    const struct db_conv *c, struct cmd_tree_dialog *dl, int k, int number)
{
	const struct db_message *msg = &c->messages[dl->msg[k]];
	const struct engine_info *in = engine_info(m);
	struct replay_rec r;
	char *err = NULL;
	printf("reply %d (message %d): ", number, msg->position);
	if (!msg->has_seed || replay_record_parse(msg->sampler, msg->seed, &r, &err) != 0) {
		printf("not replayable: %s\n", err != NULL ? err : "no seed stored");
		free(err);
		return 0;
	}
	int same = 0;
	if (r.fingerprint == NULL || strcmp(r.fingerprint, in->fingerprint) != 0) {
		printf("not replayable: made with another model file (%s, fingerprint %s; this one is %s)\n",
		    r.model != NULL ? r.model : "?", r.fingerprint != NULL ? r.fingerprint : "?",
		    in->fingerprint);
	} else if (strcmp(r.engine, ENGINE_VERSION) != 0) {
		printf("not replayable: made by engine version %s (this is %s)\n", r.engine, ENGINE_VERSION);
	} else if (msg->tokens == NULL || msg->n_tokens == 0) {
		printf("not replayable: its token ids are not stored\n");
	} else {
		/* A reply that was stopped or cut off is compared as far as it got. */
		int n_stored = (int)msg->n_tokens;
		int open = msg->finish == FINISH_STOPPED || msg->finish == FINISH_INTERRUPTED;
		if (engine_is_eog(m, msg->tokens[n_stored - 1]) && open)   /* the closing token */
			n_stored--;
		cmd_tree_usable_ids(m, c, dl, &r, k);
		int32_t *out = NULL;
		int n_out = 0;
		if (replay_generate(m, rx, o->threads, &r, dl->roles, dl->contents, dl->ids, dl->n_ids, k,
		    open ? n_stored : 0, &out, &n_out, &err) != 0) {
			printf("not replayable: %s\n", err != NULL ? err : "generation failed");
			free(err);
		} else {
			int n_cmp = open && n_out > n_stored ? n_stored : n_out;
			int i = 0;
			while (i < n_cmp && i < n_stored && out[i] == msg->tokens[i])
				i++;
			if (i == n_cmp && n_cmp == n_stored) {
				printf("identical (%d tokens)\n", n_stored);
				same = 1;
			} else if (i >= n_stored || i >= n_cmp) {
				printf("differs in length: stored %d tokens, replayed %d\n", n_stored, n_cmp);
			} else {
				char a[64], b[64];
				cmd_tree_piece(m, msg->tokens[i], a, sizeof a);
				cmd_tree_piece(m, out[i], b, sizeof b);
				printf("differs at token %d: stored %d \"%s\", replayed %d \"%s\"\n", i + 1,
				    msg->tokens[i], a, out[i], b);
			}
		}
		free(out);
	}
	replay_rec_free(&r);
	fflush(stdout);
	return same;
}

int
cmd_replay(struct opts *o)
{
	int status = 0;
	struct db *d = cmd_tree_open_db(o);
	if (d == NULL)
		return 1;
	int64_t id;
	if ((status = cmd_tree_resolve(d, o, "replay", &id)) != 0) {
		db_close(d);
		return status;
	}
	char *err = NULL;
	struct db_conv *c = db_conv_load(d, id, &err);
	db_close(d);
	if (c == NULL) {
		cli_error("%s", err);
		free(err);
		return 1;
	}
	struct engine_model *m = cli_open_model(o, &status);
	if (m == NULL) {
		db_conv_free(c);
		return status;
	}
	struct cmd_tree_dialog dl;
	if (cmd_tree_dialog(c, &dl) != 0) {
		cli_error("out of memory");
		status = 1;
	} else {
		struct replay_ctx rx = { 0 };
		int total = 0, same = 0;
		for (int k = 0; k < dl.n; k++) {
			if (dl.roles[k] != CHAT_ASSISTANT)
				continue;
			total++;
			same += cmd_tree_replay_one(m, &rx, o, c, &dl, k, total);
		}
		engine_ctx_free(rx.ctx);
		printf("replay: %d/%d identical\n", same, total);
		status = same == total ? 0 : 1;
	}
	cmd_tree_dialog_free(&dl);
	engine_close(m);
	db_conv_free(c);
	return status;
}

/* ---- the tree outline and branch -------------------------------------------- */

/* One line of content for the outline: the first line, at most 60 columns' worth of bytes. */
static void
cmd_tree_line(FILE *out, const char *text)
{
	int n = 0;
	const unsigned char *p = (const unsigned char *)text;
	while (*p == ' ' || *p == '\n')
		p++;
	for (; *p && *p != '\n' && n < 60; p++) {
		fputc(*p < 0x20 ? ' ' : *p, out);
		if ((*p & 0xc0) != 0x80)
			n++;
	}
	if (*p && *p != '\n')
		fputs("\xe2\x80\xa6", out);
}

/* Print message i of tree c and what is under it; a fork indents each child. */
static void
cmd_tree_node(FILE *out, const struct db_conv *c, const char *on, int i, int indent, int depth)
{
	const struct db_message *m = &c->messages[i];
	fprintf(out, "%c %*s#%-3d %-9s ", on[i] ? '*' : ' ', indent, "", m->position,
	    m->role == ROLE_USER ? "you" : m->role == ROLE_ASSISTANT ? "assistant" : "system");
	cmd_tree_line(out, m->content);
	if (m->n_siblings > 1)
		fprintf(out, "  [%d/%d]", m->sibling + 1, m->n_siblings);
	fputc('\n', out);
	if (depth > 10000)
		return;
	int kids = 0;
	for (int k = i + 1; k < c->n_messages; k++)
		kids += c->messages[k].parent == m->id;
	for (int k = i + 1; k < c->n_messages; k++)
		if (c->messages[k].parent == m->id)
			cmd_tree_node(out, c, on, k, kids > 1 ? indent + 2 : indent, depth + 1);
}

void
cmd_tree_print(const struct db_conv *c, FILE *out)
{
	/* on[i]: message i is on the current branch (walk up from the leaf). */
	char *on = calloc((size_t)c->n_messages + 1, 1);
	if (on == NULL)
		return;
	int64_t want = c->leaf;
	for (int k = c->n_messages - 1; k >= 0 && want != 0; k--)
		if (c->messages[k].id == want) {
			on[k] = 1;
			want = c->messages[k].parent;
		}
	fprintf(out, "%s  %s\n", c->pid, c->title != NULL ? c->title : "Untitled conversation");
	fputs("(* the current branch; [k/n] alternative k of n; 'branch ID N' switches)\n", out);
	int roots = 0;
	for (int k = 0; k < c->n_messages; k++)
		roots += c->messages[k].parent == 0;
	for (int k = 0; k < c->n_messages; k++)
		if (c->messages[k].parent == 0)
			cmd_tree_node(out, c, on, k, roots > 1 ? 2 : 0, 0);
	free(on);
}

int
cmd_branch(struct opts *o)
{
	if (o->nargs > 2)
		return cli_usage_error("branch: ID and N, '%s' is extra", o->args[2]);
	long want = 0;
	if (o->nargs == 2) {
		char *end;
		want = strtol(o->args[1], &end, 10);
		if (*end != '\0' || want < 1)
			return cli_usage_error("branch: N is an alternative's number (1, 2, ...), not '%s'",
			    o->args[1]);
	}
	struct db *d = cmd_tree_open_db(o);
	if (d == NULL)
		return 1;
	int64_t id;
	int status = cmd_tree_resolve(d, o, "branch", &id);
	char *err = NULL;
	struct db_conv *c = status == 0 ? db_conv_load(d, id, &err) : NULL;
	if (status == 0 && c == NULL) {
		cli_error("%s", err);
		free(err);
		status = 1;
	}
	if (c != NULL) {
		/* The fork: the last message of the current branch that has alternatives. */
		int k = c->n_messages - 1;
		while (k >= 0 && c->messages[k].n_siblings <= 1)
			k--;
		int64_t *ids = NULL;
		size_t n = 0, at = 0;
		if (k < 0) {
			cli_error("%s has no alternatives on its current branch ('regenerate' makes one)",
			    c->pid);
			status = 1;
		} else if (db_message_siblings(d, c->messages[k].id, &ids, &n, &at, &err) != 0) {
			cli_error("%s", err);
			free(err);
			status = 1;
		} else if (want == 0) {
			printf("%s: %zu alternatives at the last fork (message #%d is number %zu, current)\n",
			    c->pid, n, c->messages[k].position, at + 1);
		} else if ((size_t)want > n) {
			cli_error("%s: the last fork has %zu alternatives, not %ld", c->pid, n, want);
			status = 1;
		} else if (db_conv_select(d, c->id, ids[want - 1], NULL, &err) != 0) {
			cli_error("%s", err);
			free(err);
			status = 1;
		} else {
			printf("%s: alternative %ld of %zu at the last fork is current\n", c->pid, want, n);
		}
		free(ids);
	}
	db_conv_free(c);
	db_close(d);
	return status;
}
