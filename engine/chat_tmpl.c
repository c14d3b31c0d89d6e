/*
 * chat_tmpl.c: the chat template families beyond LLaMA-2 (chat.c keeps
 * Meta's LLaMA-2 format): which family a file's tokenizer.chat_template is,
 * and the prompt each one renders, byte for byte as Hugging Face's Jinja
 * rendering of those templates (trim_blocks, lstrip_blocks,
 * add_generation_prompt) gives it.
 *
 *   Llama 3    [BOS] per message "<|start_header_id|>{role}<|end_header_id|>\n\n"
 *              + trim(content) + "<|eot_id|>"; then the assistant's header
 *   Llama 3.1  the same after a system block that is always there:
 *              "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
 *              + trim(system)
 *   Mistral    [BOS] " [INST] " + (system + "\n\n" in the first turn) + user +
 *              " [/INST]", then " " + reply + EOS; roles must alternate
 *   Zephyr     "<|{role}|>\n" + content + EOS + "\n" per message, then
 *              "<|assistant|>\n"
 *   ChatML     "<|im_start|>{role}\n" + content + "<|im_end|>\n" per message,
 *              then "<|im_start|>assistant\n"
 *
 * A prompt is rendered as parts: what the template wrote (searched for
 * special tokens) and what the user wrote (never searched: "<|eot_id|>"
 * typed by a user stays text), tokenized by tok_encode_parts as llama.cpp
 * tokenizes the whole text.  A conversation is rendered a turn at a time
 * (chat.c): every turn boundary sits just after a special token, where
 * llama.cpp's tokenization restarts anyway, so the turns' ids concatenate to
 * the ids of the whole dialog.  For that, the "\n" the Zephyr and ChatML
 * templates write after each message is written before the next one.
 */
#include "engine/chat_tmpl.h"
#include "engine/chat.h"
#include "engine/engine_int.h"
#include "engine/errf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const chat_tmpl_names[CHAT_FAM_COUNT] = {
	"llama2", "llama3", "llama3.1", "mistral", "zephyr", "chatml",
};

static int
chat_tmpl_has(const char *t, size_t n, const char *what)
{
	return memmem(t, n, what, strlen(what)) != NULL;
}

int
chat_tmpl_detect(const char *t, size_t n)
{
	if (chat_tmpl_has(t, n, "<|im_start|>"))
		return CHAT_FAM_CHATML;
	if (chat_tmpl_has(t, n, "[INST]"))
		return chat_tmpl_has(t, n, "<<SYS>>") ? CHAT_FAM_LLAMA2 : CHAT_FAM_MISTRAL;
	if (chat_tmpl_has(t, n, "<|user|>") && chat_tmpl_has(t, n, "<|assistant|>"))
		return CHAT_FAM_ZEPHYR;
	if (chat_tmpl_has(t, n, "<|start_header_id|>") && chat_tmpl_has(t, n, "<|end_header_id|>"))
		return chat_tmpl_has(t, n, "Cutting Knowledge Date") || chat_tmpl_has(t, n, "Today Date")
		    ? CHAT_FAM_LLAMA31 : CHAT_FAM_LLAMA3;
	return CHAT_FAM_UNKNOWN;
}

void
chat_tmpl_date_format(const char *t, size_t n, char *fmt, size_t cap)
{
	static const char key[] = "strftime_now(";
	const char *p = memmem(t, n, key, sizeof key - 1);
	snprintf(fmt, cap, "%%d %%b %%Y");
	if (p == NULL)
		return;
	p += sizeof key - 1;
	const char *end = t + n;
	if (p >= end || (*p != '"' && *p != '\''))
		return;
	char q = *p++;
	const char *e = memchr(p, q, (size_t)(end - p));
	if (e == NULL || (size_t)(e - p) >= cap || memchr(p, '\n', (size_t)(e - p)))
		return;
	snprintf(fmt, cap, "%.*s", (int)(e - p), p);
}

const char *
chat_tmpl_name(const struct engine_model *em)
{
	int f = engine_model_of(em)->chat_family;
	return f >= 0 && f < CHAT_FAM_COUNT ? chat_tmpl_names[f] : "unknown";
}

static int
chat_tmpl_parse(const char *name)
{
	for (int i = 0; i < CHAT_FAM_COUNT; i++)
		if (name && strcmp(name, chat_tmpl_names[i]) == 0)
			return i;
	return CHAT_FAM_UNKNOWN;
}

int
chat_tmpl_set(struct engine_model *em, const char *name, char **err)
{
	int f = chat_tmpl_parse(name);
	if (f < 0)
		return eng_errf(err, "unknown chat template '%.40s' (known: llama2, llama3, llama3.1, mistral, zephyr, "
		    "chatml)", name ? name : "");
	struct model *m = engine_model_of(em);
	m->chat_family = f;
	m->chat_family_set = 1;
	return 0;
}

void
chat_tmpl_set_date(struct engine_model *em, const char *date)
{
	struct model *m = engine_model_of(em);
	snprintf(m->chat_date, sizeof m->chat_date, "%s", date ? date : "");
}

int32_t
chat_tmpl_reply_end(const struct engine_model *em)
{
	const struct model *m = engine_model_of(em);
	int id = -1;
	if (m->chat_family == CHAT_FAM_LLAMA3 || m->chat_family == CHAT_FAM_LLAMA31)
		id = tok_find(m->tok, "<|eot_id|>");
	else if (m->chat_family == CHAT_FAM_CHATML)
		id = tok_find(m->tok, "<|im_end|>");
	return id >= 0 ? id : tok_eos(m->tok);
}

/* Length of the UTF-8 whitespace character at s (Python's str.isspace), or 0. */
static int
chat_tmpl_space_len(const unsigned char *s, size_t n)
{
	if (n >= 1 && (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r') || (s[0] >= 0x1c && s[0] <= 0x1f)))
		return 1;
	if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
		return 2;
	if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80)
		return 3;   /* U+1680 */
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
	    (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
		return 3;   /* U+2000..200A, 2028, 2029, 202F */
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f)
		return 3;   /* U+205F */
	if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
		return 3;   /* U+3000 */
	return 0;
}

/* Python's str.strip(): the stripped span of s. */
void
chat_tmpl_strip(const char *s, const char **start, size_t *len)
{
	const unsigned char *b = (const unsigned char *)s, *e = b + strlen(s);
	int k;
	while (b < e && (k = chat_tmpl_space_len(b, (size_t)(e - b))) > 0)
		b += k;
	/* From the end: check the 1-, 2- and 3-byte forms ending at e. */
	for (;;) {
		if (e - b >= 1 && chat_tmpl_space_len(e - 1, 1) == 1)
			e -= 1;
		else if (e - b >= 2 && chat_tmpl_space_len(e - 2, 2) == 2)
			e -= 2;
		else if (e - b >= 3 && chat_tmpl_space_len(e - 3, 3) == 3)
			e -= 3;
		else
			break;
	}
	*start = (const char *)b;
	*len = (size_t)(e - b);
}

/* ------------------------------------------------------------- output */

void
chat_out_ids(struct chat_out *o, const int32_t *ids, int n)
{
	if (o->oom || n <= 0)
		return;
	if (o->n + n > o->cap) {
		int cap = o->cap ? o->cap : 256;
		while (cap < o->n + n)
			cap *= 2;
		int32_t *ni = realloc(o->ids, (size_t)cap * sizeof *ni);
		if (ni == NULL) {
			o->oom = 1;
			return;
		}
		o->ids = ni;
		o->cap = cap;
	}
	memcpy(o->ids + o->n, ids, (size_t)n * sizeof *ids);
	o->n += n;
}

void
chat_out_text(struct chat_out *o, const char *s, size_t n)
{
	if (!o->want_text || o->oom)
		return;
	if (o->tlen + n + 1 > o->tcap) {
		size_t cap = o->tcap ? o->tcap : 1024;
		while (cap < o->tlen + n + 1)
			cap *= 2;
		char *nt = realloc(o->text, cap);
		if (nt == NULL) {
			o->oom = 1;
			return;
		}
		o->text = nt;
		o->tcap = cap;
	}
	memcpy(o->text + o->tlen, s, n);
	o->tlen += n;
	o->text[o->tlen] = '\0';
}

/* ------------------------------------------------------------- parts */

struct chat_parts {
	struct tok_part *p;
	int n, cap, oom;
};

static void
chat_parts_add(struct chat_parts *v, const char *s, size_t len, int special)
{
	if (v->oom || len == 0)
		return;
	if (v->n == v->cap) {
		int cap = v->cap ? 2 * v->cap : 32;
		struct tok_part *p = realloc(v->p, (size_t)cap * sizeof *p);
		if (p == NULL) {
			v->oom = 1;
			return;
		}
		v->p = p;
		v->cap = cap;
	}
	v->p[v->n++] = (struct tok_part){ s, len, special };
}

/* Template text (a C string literal or piece). */
static void
chat_parts_t(struct chat_parts *v, const char *s)
{
	chat_parts_add(v, s, strlen(s), 1);
}

/* What a user (or the model) wrote, trimmed as Jinja's |trim when asked. */
static void
chat_parts_u(struct chat_parts *v, const char *s, int trim)
{
	const char *b = s ? s : "";
	size_t n = strlen(b);
	if (trim)
		chat_tmpl_strip(b, &b, &n);
	chat_parts_add(v, b, n, 0);
}

static const char *
chat_tmpl_piece(const struct tokenizer *t, int id)
{
	const char *p = tok_piece(t, id, NULL);
	return p ? p : "";
}

/* Llama 3.1's "Today Date": the pinned date, else today's in the
 * template's own strftime format.  Month and day names are English whatever
 * the locale (the UI sets one), as Python's strftime in the C locale writes
 * them for Hugging Face. */
static void
chat_tmpl_today(const struct model *m, char *buf, size_t cap)
{
	static const char *const mon[] = { "January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December" };
	static const char *const wday[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
		"Saturday" };
	if (m->chat_date[0]) {
		snprintf(buf, cap, "%s", m->chat_date);
		return;
	}
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	const char *f = m->chat_date_fmt[0] ? m->chat_date_fmt : "%d %b %Y";
	size_t w = 0;
	buf[0] = '\0';
	for (; *f && w + 16 < cap; f++) {
		char spec[3] = { '%', 0, 0 };
		if (*f != '%' || f[1] == '\0') {
			buf[w++] = *f;
			continue;
		}
		f++;
		switch (*f) {
		case 'b': w += (size_t)snprintf(buf + w, cap - w, "%.3s", mon[tm.tm_mon]); break;
		case 'B': w += (size_t)snprintf(buf + w, cap - w, "%s", mon[tm.tm_mon]); break;
		case 'a': w += (size_t)snprintf(buf + w, cap - w, "%.3s", wday[tm.tm_wday]); break;
		case 'A': w += (size_t)snprintf(buf + w, cap - w, "%s", wday[tm.tm_wday]); break;
		default:
			spec[1] = *f;
			w += strftime(buf + w, cap - w, spec, &tm);
		}
	}
	buf[w < cap ? w : cap - 1] = '\0';
}

static int
chat_tmpl_order(const int *roles, int n, char **err)
{
	int i = n > 0 && roles[0] == CHAT_SYSTEM ? 1 : 0;
	for (int k = i; k < n; k++) {
		int want = (k - i) % 2 == 0 ? CHAT_USER : CHAT_ASSISTANT;
		if (roles[k] == CHAT_SYSTEM)
			return eng_errf(err, "message %d: a system message may only come first (the model's chat template "
			    "refuses it)", k + 1);
		if (roles[k] != want)
			return eng_errf(err, "message %d: role '%s' out of order: after an optional system message, user and "
			    "assistant must alternate, starting with user (the model's chat template refuses it)", k + 1,
			    chat_role_name(roles[k]));
	}
	return 0;
}

int
chat_tmpl_render(const struct engine_model *em, int fam, const int *roles, const char *const *contents, int n,
    int start, int gen, int check, struct chat_out *o, char **err)
{
	const struct model *m = engine_model_of(em);
	const struct tokenizer *t = m->tok;
	const char *bos = chat_tmpl_piece(t, tok_bos(t)), *eos = chat_tmpl_piece(t, tok_eos(t));
	struct chat_parts v = { NULL, 0, 0, 0 };
	char date[64];
	int i = 0;

	if (n <= 0)
		return eng_errf(err, "the dialog has no message");
	switch (fam) {
	case CHAT_FAM_LLAMA31:
		if (start) {
			chat_parts_t(&v, bos);
			chat_parts_t(&v, "<|start_header_id|>system<|end_header_id|>\n\n");
			chat_parts_t(&v, "Cutting Knowledge Date: December 2023\n");
			chat_tmpl_today(m, date, sizeof date);
			chat_parts_t(&v, "Today Date: ");
			chat_parts_add(&v, date, strlen(date), 0);
			chat_parts_t(&v, "\n\n");
			if (roles[0] == CHAT_SYSTEM)
				chat_parts_u(&v, contents[i++], 1);
			chat_parts_t(&v, "<|eot_id|>");
		}
		/* fall through */
	case CHAT_FAM_LLAMA3:
		for (int need_bos = start && fam == CHAT_FAM_LLAMA3; i < n; i++, need_bos = 0) {
			if (need_bos)
				chat_parts_t(&v, bos);
			chat_parts_t(&v, "<|start_header_id|>");
			chat_parts_t(&v, chat_role_name(roles[i]));
			chat_parts_t(&v, "<|end_header_id|>\n\n");
			chat_parts_u(&v, contents[i], 1);
			chat_parts_t(&v, "<|eot_id|>");
		}
		if (gen)
			chat_parts_t(&v, "<|start_header_id|>assistant<|end_header_id|>\n\n");
		break;
	case CHAT_FAM_MISTRAL: {
		if (check && chat_tmpl_order(roles, n, err) != 0)
			return -1;
		const char *sys = NULL;
		if (roles[0] == CHAT_SYSTEM)
			sys = contents[i++];
		if (start)
			chat_parts_t(&v, bos);
		for (int first = 1; i < n; i++, first = 0) {
			if (roles[i] == CHAT_USER) {
				chat_parts_t(&v, " [INST] ");
				if (first && sys) {
					chat_parts_u(&v, sys, 0);
					chat_parts_t(&v, "\n\n");
				}
				chat_parts_u(&v, contents[i], 0);
				chat_parts_t(&v, " [/INST]");
			} else if (roles[i] == CHAT_ASSISTANT) {
				chat_parts_t(&v, " ");
				chat_parts_u(&v, contents[i], 0);
				chat_parts_t(&v, eos);
			}
		}
		break;
	}
	case CHAT_FAM_ZEPHYR:
	case CHAT_FAM_CHATML:
		for (; i < n; i++) {
			if (i > 0 || !start)
				chat_parts_t(&v, "\n");
			if (fam == CHAT_FAM_ZEPHYR) {
				chat_parts_t(&v, roles[i] == CHAT_USER ? "<|user|>\n" : roles[i] == CHAT_SYSTEM ? "<|system|>\n"
				    : "<|assistant|>\n");
				chat_parts_u(&v, contents[i], 0);
				chat_parts_t(&v, eos);
			} else {
				chat_parts_t(&v, "<|im_start|>");
				chat_parts_t(&v, chat_role_name(roles[i]));
				chat_parts_t(&v, "\n");
				chat_parts_u(&v, contents[i], 0);
				chat_parts_t(&v, "<|im_end|>");
			}
		}
		if (gen)
			chat_parts_t(&v, fam == CHAT_FAM_ZEPHYR ? "\n<|assistant|>\n" : "\n<|im_start|>assistant\n");
		break;
	default:
		return eng_errf(err, "the model's chat template is not one llama2-chat knows (llama2, llama3, llama3.1, "
		    "mistral, zephyr, chatml): choose one with --chat-template NAME");
	}
	if (v.oom) {
		free(v.p);
		o->oom = 1;
		return 0;
	}
	int32_t *ids = NULL;
	int k = tok_encode_parts(t, v.p, v.n, &ids);
	if (k < 0) {
		o->oom = 1;
	} else {
		/* BOS first unless the text already starts with it. */
		if (start && tok_add_bos(t) && (k == 0 || ids[0] != tok_bos(t))) {
			int32_t b = tok_bos(t);
			chat_out_ids(o, &b, 1);
		}
		chat_out_ids(o, ids, k);
		for (int j = 0; j < v.n; j++)
			chat_out_text(o, v.p[j].s, v.p[j].len);
	}
	free(ids);
	free(v.p);
	return 0;
}
