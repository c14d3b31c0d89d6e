/*
 * viewmodel.c: the conversation as the chat view shows it, with no curses
 * in it (htop/WeeChat's split: the draw code only walks display lines).
 *
 * Messages hold their text; each keeps a layout cache (sanitized text,
 * markdown lines, display lines) for the width it was last laid out at,
 * marked dirty when its text changes, so a streaming reply re-wraps only
 * itself and a resize re-wraps everything once.  start[k] is the first
 * display line of message k; total is the sum.  A message is laid out as a
 * header line (the role), its text lines, and a blank line.
 *
 * Scrolling is anchored to text, not to line numbers: either the view
 * follows the end (new tokens stay in sight), or a display line of a
 * message (top_msg, top_off) stays at the top, through streaming and
 * through resizes.
 *
 * Messages are named by the session's ids.  viewmodel_apply takes the
 * session's view updates (a message added, text streamed onto the reply,
 * the reply finished, messages removed, the conversation replaced) and
 * keeps the status numbers (state, prompt progress, tokens/s, context
 * used, how much of the model's file has been read).
 */
#include "ui/ui_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = { "System", "You", "Assistant" };

void
viewmodel_init(struct viewmodel *vm)
{
	memset(vm, 0, sizeof *vm);
	vm->follow = 1;
}

static void
msg_uncache(struct vm_msg *m)
{
	free(m->clean);
	m->clean = NULL;
	markdown_free(&m->md);
	free(m->lines);
	m->lines = NULL;
	m->nlines = 0;
	m->dirty = 1;
}

static void
msg_free(struct vm_msg *m)
{
	msg_uncache(m);
	free(m->text);
	m->text = NULL;
}

void
viewmodel_clear(struct viewmodel *vm)
{
	for (int i = 0; i < vm->n; i++)
		msg_free(&vm->msgs[i]);
	vm->n = 0;
	vm->total = 0;
	vm->follow = 1;
	vm->top_msg = vm->top_off = 0;
	vm->state = VM_IDLE;
	vm->prog_done = vm->prog_total = vm->n_gen = 0;
	free(vm->error);
	vm->error = NULL;
}

void
viewmodel_free(struct viewmodel *vm)
{
	viewmodel_clear(vm);
	free(vm->msgs);
	free(vm->start);
	memset(vm, 0, sizeof *vm);
}

static int
msg_set(struct vm_msg *m, const char *text, size_t len)
{
	if (len + 1 > m->cap) {
		size_t cap = m->cap ? m->cap : 64;
		while (cap < len + 1)
			cap *= 2;
		char *nt = realloc(m->text, cap);
		if (nt == NULL)
			return -1;
		m->text = nt;
		m->cap = cap;
	}
	memcpy(m->text, text, len);
	m->text[len] = '\0';
	m->len = len;
	m->dirty = 1;
	return 0;
}

int
viewmodel_add(struct viewmodel *vm, int64_t id, enum role role, const char *text, enum finish finish)
{
	if (vm->n == vm->cap) {
		int nc = vm->cap ? vm->cap * 2 : 16;
		struct vm_msg *nm = realloc(vm->msgs, (size_t)nc * sizeof *nm);
		if (nm == NULL)
			return -1;
		vm->msgs = nm;
		vm->cap = nc;
	}
	struct vm_msg *m = &vm->msgs[vm->n];
	memset(m, 0, sizeof *m);
	m->id = id;
	m->role = role;
	m->finish = finish;
	m->ctx_start = -1;
	m->dirty = 1;
	if (msg_set(m, text ? text : "", text ? strlen(text) : 0) != 0)
		return -1;
	return vm->n++;
}

int
viewmodel_append(struct viewmodel *vm, const char *text, size_t len)
{
	if (vm->n == 0)
		return -1;
	struct vm_msg *m = &vm->msgs[vm->n - 1];
	if (m->len + len + 1 > m->cap) {
		size_t cap = m->cap ? m->cap : 64;
		while (cap < m->len + len + 1)
			cap *= 2;
		char *nt = realloc(m->text, cap);
		if (nt == NULL)
			return -1;
		m->text = nt;
		m->cap = cap;
	}
	memcpy(m->text + m->len, text, len);
	m->len += len;
	m->text[m->len] = '\0';
	m->dirty = 1;
	return 0;
}

int
viewmodel_set_text(struct viewmodel *vm, int k, const char *text)
{
	if (k < 0 || k >= vm->n)
		return -1;
	return msg_set(&vm->msgs[k], text, strlen(text));
}

void
viewmodel_truncate(struct viewmodel *vm, int k)
{
	if (k < 0)
		k = 0;
	while (vm->n > k)
		msg_free(&vm->msgs[--vm->n]);
	if (vm->top_msg >= vm->n) {
		vm->follow = 1;
		vm->top_msg = vm->top_off = 0;
	}
}

int
viewmodel_last(const struct viewmodel *vm, enum role role)
{
	for (int i = vm->n - 1; i >= 0; i--)
		if (vm->msgs[i].role == role)
			return i;
	return -1;
}

int
viewmodel_find(const struct viewmodel *vm, int64_t id)
{
	for (int i = vm->n - 1; i >= 0; i--)
		if (vm->msgs[i].id == id)
			return i;
	return -1;
}

static enum finish
finish_of(enum engine_stop_reason r)
{
	return r == ENGINE_STOP_EOS ? FINISH_EOS : r == ENGINE_STOP_USER ? FINISH_STOPPED : FINISH_LENGTH;
}

int
viewmodel_apply(struct viewmodel *vm, const struct session_update *u)
{
	int k = u->type == SU_MESSAGE ? -1 : viewmodel_find(vm, u->id);
	struct vm_msg *m = k >= 0 ? &vm->msgs[k] : NULL;
	switch (u->type) {
	case SU_CLEAR:
		viewmodel_clear(vm);
		vm->state = u->done ? VM_LOADING : VM_IDLE;
		vm->ctx_used = 0;
		vm->tps = 0;
		return 0;
	case SU_MESSAGE:
		k = viewmodel_add(vm, u->id, u->role, u->text, u->finish);
		if (k < 0)
			return -1;
		vm->msgs[k].sibling = u->sibling;
		vm->msgs[k].n_siblings = u->n_siblings;
		if (u->streaming) {
			vm->msgs[k].streaming = 1;
			vm->state = VM_WAITING;
			vm->prog_done = vm->prog_total = vm->n_gen = 0;
			vm->tps = 0;   /* the next figure is this reply's */
			vm->ctx_base = vm->ctx_used;
			free(vm->error);
			vm->error = NULL;
			vm->follow = 1;   /* a new request brings the end into view */
		}
		return 0;
	case SU_TEXT:
		if (m == NULL || !m->streaming)
			return 0;
		vm->state = VM_GENERATING;
		vm->n_gen++;
		vm->ctx_used++;
		if (u->len > 0 && viewmodel_append(vm, u->text, u->len) != 0)
			return -1;
		return 0;
	case SU_PROGRESS:
		vm->state = VM_PROMPT;
		vm->prog_done = u->done;
		vm->prog_total = u->total;
		vm->ctx_used = vm->ctx_base + u->done;
		return 0;
	case SU_FINISH:
		if (m) {
			/* The finished text is what the database holds. */
			if (u->text && msg_set(m, u->text, u->len) != 0)
				return -1;
			m->streaming = 0;
			m->finish = u->finish != FINISH_NONE ? u->finish : finish_of(u->stats.reason);
			/* Where the context stood before this reply: regenerating
			 * it (Ctrl-R) gives those tokens back at once. */
			if (u->stats.ctx_used >= u->stats.n_gen)
				m->ctx_start = u->stats.ctx_used - u->stats.n_gen;
		}
		/* INTERRUPTED: a remote fault (its notice says why). */
		vm->state = u->finish == FINISH_STOPPED ? VM_STOPPED : u->finish == FINISH_INTERRUPTED ? VM_FAILED : VM_IDLE;
		vm->tps = u->stats.tg_tps;
		vm->ttft_ms = u->stats.ttft_ms;
		vm->ctx_used = u->stats.ctx_used;
		return 1;
	case SU_REMOVE:
		if (k >= 0) {
			/* The gauge stops counting what was removed. */
			if (vm->msgs[k].ctx_start >= 0 && vm->msgs[k].ctx_start < vm->ctx_used)
				vm->ctx_used = vm->msgs[k].ctx_start;
			viewmodel_truncate(vm, k);
		}
		return 0;
	case SU_FAILED:
		free(vm->error);
		vm->error = strdup(u->text ? u->text : "the request failed");
		vm->state = VM_FAILED;
		vm->ctx_used = vm->ctx_base;
		return 1;
	case SU_PROMPT:
		/* What the prompt keeps of the cache: a regenerated reply's old
		 * tokens are not in it, however the conversation was loaded. */
		vm->ctx_base = vm->ctx_used = u->done;
		return 0;
	case SU_READING:
	case SU_READ:
		vm->reading = u->type == SU_READING;
		vm->read_done = u->done;
		vm->read_total = u->total;
		return 0;
	case SU_LOADED:
		if (vm->state == VM_LOADING)
			vm->state = VM_IDLE;
		vm->ctx_used = u->total;   /* the conversation now in the cache */
		return 0;
	default:
		return 0;
	}
}

/* ---- layout ------------------------------------------------------------------ */

static int
lines_push(struct vm_msg *m, int *cap, struct vm_line l)
{
	if (m->nlines == *cap) {
		int nc = *cap ? *cap * 2 : 8;
		struct vm_line *nl = realloc(m->lines, (size_t)nc * sizeof *nl);
		if (nl == NULL)
			return -1;
		m->lines = nl;
		*cap = nc;
	}
	m->lines[m->nlines++] = l;
	return 0;
}

static int
msg_layout(struct vm_msg *m, int k, int width)
{
	msg_uncache(m);
	size_t clen;
	m->clean = wrap_sanitize(m->text, m->len, 1, &clen);
	if (m->clean == NULL || markdown_parse(m->clean, clen, &m->md) != 0)
		return -1;
	int cap = 0;
	struct vm_line h = { .msg = k, .kind = VM_L_HEADER, .text = role_names[m->role] };
	h.len = strlen(h.text);
	if (lines_push(m, &cap, h) != 0)
		return -1;
	/* A reply that has said nothing yet shows no empty line. */
	int n_md = m->md.n;
	if (m->len == 0)
		n_md = 0;
	for (int i = 0; i < n_md; i++) {
		struct md_line *ml = &m->md.lines[i];
		int indent = ml->block && width >= 12 ? 2 : 0;
		struct wrap_line *wl;
		int nw = ml->block ? wrap_hard(ml->text, ml->len, width - indent, &wl)
		    : wrap_lines(ml->text, ml->len, width, &wl);
		if (nw < 0)
			return -1;
		for (int j = 0; j < nw; j++) {
			struct vm_line l = { .msg = k, .kind = VM_L_TEXT, .text = ml->text + wl[j].start,
				.style = ml->style + wl[j].start, .len = wl[j].end - wl[j].start,
				.indent = indent, .block = ml->block };
			if (lines_push(m, &cap, l) != 0) {
				free(wl);
				return -1;
			}
		}
		free(wl);
	}
	struct vm_line b = { .msg = k, .kind = VM_L_BLANK, .text = "" };
	if (lines_push(m, &cap, b) != 0)
		return -1;
	m->lw = width;
	m->dirty = 0;
	return 0;
}

int
viewmodel_layout(struct viewmodel *vm, int width)
{
	if (width < 1)
		width = 1;
	int *ns = realloc(vm->start, (size_t)(vm->n + 1) * sizeof *ns);
	if (ns == NULL)
		return -1;
	vm->start = ns;
	int total = 0;
	for (int k = 0; k < vm->n; k++) {
		struct vm_msg *m = &vm->msgs[k];
		if ((m->dirty || m->lw != width) && msg_layout(m, k, width) != 0) {
			msg_uncache(m);
			return -1;
		}
		vm->start[k] = total;
		total += m->nlines;
	}
	vm->start[vm->n] = total;
	vm->width = width;
	vm->total = total;
	return total;
}

const struct vm_line *
viewmodel_line(const struct viewmodel *vm, int i)
{
	if (i < 0 || i >= vm->total || vm->n == 0)
		return NULL;
	/* Binary search for the message holding line i. */
	int lo = 0, hi = vm->n - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (vm->start[mid] <= i)
			lo = mid;
		else
			hi = mid - 1;
	}
	const struct vm_msg *m = &vm->msgs[lo];
	int off = i - vm->start[lo];
	return off < m->nlines ? &m->lines[off] : NULL;
}

static int
max_top(const struct viewmodel *vm, int height)
{
	int t = vm->total - (height > 0 ? height : 0);
	return t > 0 ? t : 0;
}

/* Set the anchor from a top line number. */
static void
anchor(struct viewmodel *vm, int top, int height)
{
	int mt = max_top(vm, height);
	if (top >= mt || vm->n == 0) {
		vm->follow = 1;
		return;
	}
	if (top < 0)
		top = 0;
	vm->follow = 0;
	const struct vm_line *l = viewmodel_line(vm, top);
	vm->top_msg = l ? l->msg : 0;
	vm->top_off = top - vm->start[vm->top_msg];
}

int
viewmodel_top(struct viewmodel *vm, int height)
{
	int mt = max_top(vm, height);
	if (vm->follow || vm->top_msg >= vm->n)
		return mt;
	const struct vm_msg *m = &vm->msgs[vm->top_msg];
	int off = vm->top_off < m->nlines ? vm->top_off : m->nlines - 1;
	int top = vm->start[vm->top_msg] + (off > 0 ? off : 0);
	return top < mt ? top : mt;
}

void
viewmodel_scroll(struct viewmodel *vm, int delta, int height)
{
	anchor(vm, viewmodel_top(vm, height) + delta, height);
}

void
viewmodel_scroll_home(struct viewmodel *vm)
{
	vm->follow = vm->n == 0;
	vm->top_msg = vm->top_off = 0;
}

void
viewmodel_scroll_end(struct viewmodel *vm)
{
	vm->follow = 1;
}

void
viewmodel_scroll_to(struct viewmodel *vm, int k, int height)
{
	(void)height;   /* viewmodel_top clamps it at the end */
	if (k < 0 || k >= vm->n)
		return;
	vm->follow = 0;
	vm->top_msg = k;
	vm->top_off = 0;
}
