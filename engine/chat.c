/*
 * chat.c: a conversation's token sequence, and the LLaMA-2 chat format (the
 * other families are chat_tmpl.c's; chat_render and chat_build dispatch on
 * the model's family).
 *
 * Meta's reference (llama/generation.py, chat_completion) is the contract:
 *   B_INST, E_INST = "[INST]", "[/INST]"
 *   B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
 *   system folded: B_SYS + system + E_SYS + first user content
 *   each finished exchange: BOS + encode(f"{B_INST} {u.strip()} {E_INST} {a.strip()} ") + EOS
 *   the open turn: BOS + encode(f"{B_INST} {u.strip()} {E_INST}")
 * "[INST]" and "<<SYS>>" are ordinary text; BOS and EOS are ids.
 *
 * A live conversation does better than re-rendering: a reply keeps the exact
 * ids the model generated (the KV cache holds them), so the next turn only
 * appends.  Messages that lack ids fall back to the exact text rendering.
 */
#include "engine/chat.h"
#include "engine/chat_tmpl.h"
#include "engine/engine_int.h"
#include "engine/errf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *role_names[] = { "system", "user", "assistant" };

int
chat_role_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (s && strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

const char *
chat_role_name(int role)
{
	return role >= 0 && role < 3 ? role_names[role] : "?";
}

/* Append BOS + encode(text) (+ EOS). */
static void
out_unit(struct chat_out *o, const struct engine_model *m, const char *text, size_t len, int eos)
{
	const struct engine_info *in = engine_info(m);
	int32_t *ids;
	chat_out_ids(o, &in->bos, 1);
	chat_out_text(o, "<s>", 3);
	int n = engine_tokenize(m, text, len, 0, &ids);
	if (n < 0) {
		o->oom = 1;
		return;
	}
	chat_out_ids(o, ids, n);
	free(ids);
	chat_out_text(o, text, len);
	if (eos) {
		chat_out_ids(o, &in->eos, 1);
		chat_out_text(o, "</s>", 4);
	}
}

/* The text of a user turn with the system prompt folded in when given,
 * stripped, between [INST] and [/INST]; with a reply when a != NULL. */
static char *
turn_text(const char *system, const char *u, const char *a, size_t *len)
{
	char *folded = NULL;
	if (system && *system) {
		if (asprintf(&folded, "<<SYS>>\n%s\n<</SYS>>\n\n%s", system, u) < 0)
			return NULL;
		u = folded;
	}
	const char *us, *as = NULL;
	size_t ul, al = 0;
	chat_tmpl_strip(u, &us, &ul);
	if (a)
		chat_tmpl_strip(a, &as, &al);
	char *s;
	int r = a ? asprintf(&s, "[INST] %.*s [/INST] %.*s ", (int)ul, us, (int)al, as)
	    : asprintf(&s, "[INST] %.*s [/INST]", (int)ul, us);
	free(folded);
	if (r < 0)
		return NULL;
	*len = (size_t)r;
	return s;
}

/* A family other than LLaMA-2: the whole dialog in one go, refused where
 * its template refuses it, with the generation prompt. */
static int
render_tmpl(const struct engine_model *m, int fam, const int *roles, const char *const *contents, int n,
    int32_t **ids, int *n_ids, char **text, char **err)
{
	struct chat_out o = { .want_text = text != NULL };
	if (chat_tmpl_render(m, fam, roles, contents, n, 1, 1, 1, &o, err) != 0)
		return -1;
	if (o.oom) {
		free(o.ids);
		free(o.text);
		return eng_errf(err, "out of memory");
	}
	*ids = o.ids;
	*n_ids = o.n;
	if (text)
		*text = o.text ? o.text : strdup("");
	return 0;
}

int
chat_render(const struct engine_model *m, const int *roles, const char *const *contents, int n,
    int32_t **ids, int *n_ids, char **text, char **err)
{
	int fam = engine_model_of(m)->chat_family;
	if (fam != CHAT_FAM_LLAMA2)
		return render_tmpl(m, fam, roles, contents, n, ids, n_ids, text, err);
	const char *system = NULL;
	int i = 0;
	if (n > 0 && roles[0] == CHAT_SYSTEM) {
		system = contents[0];
		i = 1;
	}
	/* Check the order first: user, assistant, user, ..., user. */
	for (int k = i; k < n; k++) {
		int want = (k - i) % 2 == 0 ? CHAT_USER : CHAT_ASSISTANT;
		if (roles[k] != want)
			return eng_errf(err, "message %d: role '%s' out of order (expected '%s'%s)", k + 1,
			    chat_role_name(roles[k]), chat_role_name(want),
			    roles[k] == CHAT_SYSTEM ? "; a system message may only come first" : "");
	}
	if (n - i == 0)
		return eng_errf(err, "the dialog has no user message");
	if ((n - i) % 2 == 0)
		return eng_errf(err, "the dialog must end with a user message");
	struct chat_out o = { .want_text = text != NULL };
	for (int k = i; k < n; k += 2) {
		int open = k + 1 >= n;
		size_t len;
		char *t = turn_text(k == i ? system : NULL, contents[k], open ? NULL : contents[k + 1], &len);
		if (t == NULL) {
			o.oom = 1;
			break;
		}
		out_unit(&o, m, t, len, !open);
		free(t);
	}
	if (o.oom) {
		free(o.ids);
		free(o.text);
		return eng_errf(err, "out of memory");
	}
	*ids = o.ids;
	*n_ids = o.n;
	if (text)
		*text = o.text ? o.text : strdup("");
	return 0;
}

void
chat_init(struct chat *c)
{
	memset(c, 0, sizeof *c);
}

static void
msg_free(struct chat_msg *m)
{
	free(m->content);
	free(m->ids);
	memset(m, 0, sizeof *m);
}

void
chat_free(struct chat *c)
{
	for (int i = 0; i < c->n; i++)
		msg_free(&c->msgs[i]);
	free(c->msgs);
	free(c->system);
	chat_init(c);
}

int
chat_set_system(struct chat *c, const char *system)
{
	char *s = system && *system ? strdup(system) : NULL;
	if (system && *system && s == NULL)
		return -1;
	free(c->system);
	c->system = s;
	/* The first user turn of the window folded the old prompt. */
	if (c->first < c->n) {
		free(c->msgs[c->first].ids);
		c->msgs[c->first].ids = NULL;
		c->msgs[c->first].n_ids = 0;
	}
	return 0;
}

int
chat_push(struct chat *c, int role, const char *content, const int32_t *ids, int n_ids)
{
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 16;
		struct chat_msg *nm = realloc(c->msgs, (size_t)cap * sizeof *nm);
		if (nm == NULL)
			return -1;
		c->msgs = nm;
		c->cap = cap;
	}
	struct chat_msg *m = &c->msgs[c->n];
	memset(m, 0, sizeof *m);
	m->role = role;
	m->content = strdup(content ? content : "");
	if (m->content == NULL)
		return -1;
	if (ids && n_ids > 0) {
		m->ids = malloc((size_t)n_ids * sizeof *ids);
		if (m->ids == NULL) {
			free(m->content);
			return -1;
		}
		memcpy(m->ids, ids, (size_t)n_ids * sizeof *ids);
		m->n_ids = n_ids;
	}
	c->n++;
	return 0;
}

void
chat_truncate(struct chat *c, int k)
{
	while (c->n > k && c->n > 0)
		msg_free(&c->msgs[--c->n]);
	if (c->first > c->n)
		c->first = c->n;
}

/* One turn in a family other than LLaMA-2: the user message u (with the
 * system prompt and the prompt's start when it opens the window) and the
 * reply a, or the generation prompt when a is NULL. */
static int
tmpl_unit(const struct engine_model *m, int fam, const char *sys, int start, const char *u, const char *a,
    struct chat_out *o, char **err)
{
	int roles[3], n = 0;
	const char *contents[3];
	if (start && sys && *sys) {
		roles[n] = CHAT_SYSTEM;
		contents[n++] = sys;
	}
	roles[n] = CHAT_USER;
	contents[n++] = u;
	if (a) {
		roles[n] = CHAT_ASSISTANT;
		contents[n++] = a;
	}
	return chat_tmpl_render(m, fam, roles, contents, n, start, a == NULL, 0, o, err);
}

/* Tokens of the window from message `first` in a family other than LLaMA-2.
 * Stored ids of the window's first turn are used only when the window starts
 * at the conversation's start (only that turn holds BOS and the system). */
static int
build_tmpl(struct chat *c, const struct engine_model *m, int fam, int first, struct chat_out *o, char **err)
{
	for (int k = first; k < c->n; k++) {
		struct chat_msg *u = &c->msgs[k];
		if (u->role != CHAT_USER)
			return -1;
		struct chat_msg *a = k + 1 < c->n ? &c->msgs[k + 1] : NULL;
		int start = k == first;
		int u_ok = u->ids && (!start || first == 0);
		if (a && u_ok && a->ids) {
			chat_out_ids(o, u->ids, u->n_ids);
			chat_out_ids(o, a->ids, a->n_ids);
		} else if (a) {
			if (tmpl_unit(m, fam, c->system, start, u->content, a->content, o, err) != 0)
				return -3;
		} else if (u_ok) {
			chat_out_ids(o, u->ids, u->n_ids);
		} else {
			int from = o->n;
			if (tmpl_unit(m, fam, c->system, start, u->content, NULL, o, err) != 0)
				return -3;
			free(u->ids);
			u->ids = NULL;
			u->n_ids = 0;
			if (!o->oom && (u->ids = malloc((size_t)(o->n - from + 1) * sizeof(int32_t))) != NULL) {
				memcpy(u->ids, o->ids + from, (size_t)(o->n - from) * sizeof(int32_t));
				u->n_ids = o->n - from;
			}
		}
		if (a)
			k++;
	}
	return o->oom ? -2 : 0;
}

/* Tokens of the window starting at message `first`. */
static int
build_from(struct chat *c, const struct engine_model *m, int first, struct chat_out *o, char **err)
{
	int fam = engine_model_of(m)->chat_family;
	if (fam != CHAT_FAM_LLAMA2)
		return build_tmpl(c, m, fam, first, o, err);
	for (int k = first; k < c->n; k++) {
		struct chat_msg *u = &c->msgs[k];
		if (u->role != CHAT_USER)
			return -1;
		struct chat_msg *a = k + 1 < c->n ? &c->msgs[k + 1] : NULL;
		const char *sys = k == first ? c->system : NULL;
		/* Stored ids of a user turn are valid only where they were made:
		 * the first turn folds the system prompt, later ones do not. */
		int u_ok = u->ids && (k != first || first == 0 || !sys);
		if (a && u_ok && a->ids) {
			chat_out_ids(o, u->ids, u->n_ids);
			chat_out_ids(o, a->ids, a->n_ids);
		} else if (a) {
			size_t len;
			char *t = turn_text(sys, u->content, a->content, &len);
			if (t == NULL)
				return -2;
			out_unit(o, m, t, len, 1);
			free(t);
		} else if (u_ok) {
			chat_out_ids(o, u->ids, u->n_ids);
		} else {
			size_t len;
			char *t = turn_text(sys, u->content, NULL, &len);
			if (t == NULL)
				return -2;
			int start = o->n;
			out_unit(o, m, t, len, 0);
			free(t);
			/* Keep the open turn's tokens for storing and reuse. */
			free(u->ids);
			u->ids = NULL;
			u->n_ids = 0;
			if (!o->oom && (u->ids = malloc((size_t)(o->n - start) * sizeof(int32_t))) != NULL) {
				memcpy(u->ids, o->ids + start, (size_t)(o->n - start) * sizeof(int32_t));
				u->n_ids = o->n - start;
			}
		}
		if (a)
			k++;
	}
	return o->oom ? -2 : 0;
}

int
chat_build(struct chat *c, const struct engine_model *m, int n_ctx, int reserve, int32_t **ids, int *n,
    int *dropped, char **err)
{
	*dropped = 0;
	if (c->n == 0 || c->msgs[c->n - 1].role != CHAT_USER)
		return eng_errf(err, "the conversation must end with a user message");
	for (;;) {
		struct chat_out o = { 0 };
		int r = build_from(c, m, c->first, &o, err);
		if (r == -3) {
			free(o.ids);
			return -1;
		}
		if (r == -1) {
			free(o.ids);
			return eng_errf(err, "messages out of order (user and assistant must alternate)");
		}
		if (r == -2) {
			free(o.ids);
			return eng_errf(err, "out of memory");
		}
		if (o.n + reserve <= n_ctx || c->first >= c->n - 1) {
			if (o.n + 1 > n_ctx || (c->first >= c->n - 1 && o.n + reserve > n_ctx && o.n + 16 > n_ctx)) {
				free(o.ids);
				return eng_errf(err, "the message is too long: %d tokens do not fit the context of %d "
				    "(raise --ctx-size)", o.n, n_ctx);
			}
			*ids = o.ids;
			*n = o.n;
			return 0;
		}
		free(o.ids);
		/* Move the oldest whole exchange out of the window; the system
		 * prompt is folded into the next turn by build_from. */
		c->first += 2;
		*dropped += 2;
	}
}
