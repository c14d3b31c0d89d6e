/*
 * chat_tmpl.h: the chat template families (chat_tmpl.c), shared by model.c
 * (which recognises the file's template) and chat.c (which renders turns).
 * Only engine/ includes this.
 */
#ifndef ENGINE_CHAT_TMPL_H
#define ENGINE_CHAT_TMPL_H

#include <stddef.h>
#include <stdint.h>

struct engine_model;

enum chat_family {
	CHAT_FAM_UNKNOWN = -1,
	CHAT_FAM_LLAMA2 = 0,      /* [INST] with <<SYS>> (also: no template) */
	CHAT_FAM_LLAMA3,          /* <|start_header_id|> */
	CHAT_FAM_LLAMA31,         /* Llama 3.1+: system block with the dates */
	CHAT_FAM_MISTRAL,         /* [INST] without <<SYS>>: system folded into the first turn */
	CHAT_FAM_ZEPHYR,          /* <|user|> (TinyLlama-Chat) */
	CHAT_FAM_CHATML,          /* <|im_start|> */
	CHAT_FAM_COUNT
};

/* The family of a template's source, by its markers as llama.cpp tells
 * them apart; CHAT_FAM_UNKNOWN when none fits. */
int chat_tmpl_detect(const char *tmpl, size_t len);
/* The strftime format of the template's "Today Date" (strftime_now("...")),
 * "%d %b %Y" when it has none; written to fmt (cap bytes). */
void chat_tmpl_date_format(const char *tmpl, size_t len, char *fmt, size_t cap);

/* Python's str.strip() (Jinja's |trim): the span of s without leading and
 * trailing Unicode whitespace. */
void chat_tmpl_strip(const char *s, const char **start, size_t *len);

/* A growing id array and (optionally) its text form. */
struct chat_out {
	int32_t *ids;
	int n, cap;
	char *text;
	size_t tlen, tcap;
	int want_text, oom;
};
void chat_out_ids(struct chat_out *o, const int32_t *ids, int n);
void chat_out_text(struct chat_out *o, const char *s, size_t n);

/*
 * Render messages (roles, contents) in family fam and append their ids (and
 * text) to o.  start: this is the beginning of the prompt (BOS, the system
 * block, BOS added when the file wants one and the text lacks it).  gen:
 * end with the assistant's header (the generation prompt).  check: refuse,
 * as the family's template does, dialogs it would refuse.  -1 with *err on
 * a refused dialog, 0 otherwise (o->oom tells of memory).
 */
int chat_tmpl_render(const struct engine_model *m, int fam, const int *roles, const char *const *contents, int n,
    int start, int gen, int check, struct chat_out *o, char **err);

#endif
