/*
 * chat.h: the chat formats (Meta's LLaMA-2 format in engine/chat.c, the
 * other families' templates in engine/chat_tmpl.c) and one conversation's
 * token sequence (engine/chat.c).
 */
#ifndef ENGINE_CHAT_H
#define ENGINE_CHAT_H

#include "common/msg.h"
#include "engine/engine.h"

/*
 * A conversation's tokens are the concatenation of its messages' tokens:
 * a user turn is BOS + "[INST] {user} [/INST]" (the system prompt folded into
 * the first user turn of the window as "<<SYS>>\n{system}\n<</SYS>>\n\n"),
 * a reply is what the model generated, closed by EOS.  Messages without
 * stored tokens (typed in, imported, edited) are rendered from text exactly
 * as Meta's chat_completion does: BOS + "[INST] {u} [/INST] {a} " + EOS per
 * finished exchange, contents stripped.
 */
/* The engine's names for the roles of common/msg.h. */
enum chat_role { CHAT_SYSTEM = ROLE_SYSTEM, CHAT_USER = ROLE_USER, CHAT_ASSISTANT = ROLE_ASSISTANT };

/* "system", "user", "assistant"; -1 for another string. */
int chat_role_parse(const char *s);
const char *chat_role_name(int role);

struct chat_msg {
	int role;                 /* CHAT_USER or CHAT_ASSISTANT */
	char *content;            /* owned */
	int32_t *ids;             /* owned; NULL: render from content */
	int n_ids;
};

struct chat {
	char *system;             /* owned; NULL or "" for none */
	struct chat_msg *msgs;
	int n, cap;
	int first;                /* first message inside the window (overflow) */
};

void chat_init(struct chat *c);
void chat_free(struct chat *c);
/* Replace the system prompt (drops stored tokens that folded the old one). */
int chat_set_system(struct chat *c, const char *system);
/* Append a message (content copied; ids copied when given). 0 or -1 (OOM). */
int chat_push(struct chat *c, int role, const char *content, const int32_t *ids, int n_ids);
/* Drop messages from index k on. */
void chat_truncate(struct chat *c, int k);

/*
 * Chat templates: the family of the model's tokenizer.chat_template
 * ("llama2", "llama3", "llama3.1", "mistral", "zephyr", "chatml"; a file
 * without a template is "llama2"; "unknown" when the template is none of
 * them: chat_render and chat_build then fail with a message naming
 * --chat-template).  chat_tmpl_set overrides it by name (-1 with *err for an
 * unknown name); chat_tmpl_set_date pins Llama 3.1's "Today Date" (NULL or
 * "": today's date).  Call both before the model is used.
 * chat_tmpl_reply_end is the id a reply is closed with in the family's
 * format (<|eot_id|>, <|im_end|>, else EOS).
 */
const char *chat_tmpl_name(const struct engine_model *m);
int chat_tmpl_set(struct engine_model *m, const char *name, char **err);
void chat_tmpl_set_date(struct engine_model *m, const char *date);
int32_t chat_tmpl_reply_end(const struct engine_model *m);

/*
 * Render a dialog given as roles and contents exactly as Meta's
 * chat_completion: system optional and first, then user/assistant
 * alternating, ending with user.  Other families: as the model's own
 * template renders it (with the generation prompt), refused where that
 * template refuses it; ids start with BOS unless the file says not to.  Roles out of order: -1 with *err naming
 * the message.  With text, *text gets the prompt as text with "<s>"/"</s>"
 * for BOS/EOS (malloc'd).
 */
int chat_render(const struct engine_model *m, const int *roles, const char *const *contents, int n,
    int32_t **ids, int *n_ids, char **text, char **err);

/*
 * The token sequence of c's window (messages first..n-1), which must end
 * with a user message (the open turn).  If it needs more than n_ctx -
 * reserve tokens, the oldest whole exchanges are moved out of the window
 * (c->first grows; *dropped says how many messages) and the system prompt
 * is folded into the new first turn.  The open user turn's tokens are kept
 * in its message (ids), for storing.  -1 with *err when even the last
 * message alone does not fit.
 */
int chat_build(struct chat *c, const struct engine_model *m, int n_ctx, int reserve, int32_t **ids, int *n,
    int *dropped, char **err);

#endif
