/*
 * status.c: the bottom line.  Left: the state of the reply (idle, loading,
 * prompt k/n, generating with its token count, stopped, failed; while the
 * model's file is first read, how much of it) or a one-off notice; then
 * the model's name and type (and its size once the file is read), the
 * preset, the context used as a small bar with numbers, and the last
 * reply's tokens/s.  When
 * the line is short, the least useful parts go first (right to left), so
 * at 20 columns the state is still there.
 */
#include "ui/ui_draw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KiB as people read sizes: "812.0 MiB", "3.8 GiB". */
static void
size_text(char *buf, size_t n, int kib)
{
	if (kib >= 1 << 20)
		snprintf(buf, n, "%.1f GiB", kib / 1048576.0);
	else
		snprintf(buf, n, "%.1f MiB", kib / 1024.0);
}

static void
state_text(const struct ui *u, char *buf, size_t n, int *busy)
{
	const struct viewmodel *vm = &u->vm;
	*busy = 0;
	if (vm->reading) {
		/* Whatever was asked waits for the file: say why. */
		char total[32];
		size_text(total, sizeof total, vm->read_total);
		snprintf(buf, n, "reading model %d%% of %s",
		    vm->read_total > 0 ? (int)(100.0 * vm->read_done / vm->read_total) : 0, total);
		*busy = 1;
		return;
	}
	switch (vm->state) {
	case VM_WAITING: snprintf(buf, n, "waiting"); *busy = 1; break;
	case VM_LOADING: snprintf(buf, n, "loading"); *busy = 1; break;
	case VM_PROMPT: snprintf(buf, n, "prompt %d/%d", vm->prog_done, vm->prog_total); *busy = 1; break;
	case VM_GENERATING: snprintf(buf, n, "generating %d", vm->n_gen); *busy = 1; break;
	case VM_STOPPED: snprintf(buf, n, "stopped"); break;
	case VM_FAILED: snprintf(buf, n, "failed"); break;
	default: snprintf(buf, n, u->has_model ? "idle" : "no model"); break;
	}
}

void
status_draw(struct ui *u, int y, int w)
{
	if (w <= 0 || y < 0)
		return;
	attr_t base = theme_attr(TH_STATUS);
	screen_fill(y, 0, w, ' ', base);
	char st[64];
	int busy;
	state_text(u, st, sizeof st, &busy);
	int x = 0;
	x += screen_put(y, x, w - x, " ", 1, base);
	x += screen_put(y, x, w - x, st, strlen(st), busy ? theme_attr(TH_STATUS_BUSY) : base | A_BOLD);
	x += screen_put(y, x, w - x, " ", 1, base);

	/* The notice, or the right-hand parts. */
	if (u->msg) {
		x += screen_put(y, x, w - x, "\xe2\x94\x82 ", 4, base);
		screen_put(y, x, w - x, u->msg, strlen(u->msg), u->msg_err ? base | A_BOLD : base);
		return;
	}
	char model[128], preset[80], ctx[64], tps[32];
	if (u->has_model && !u->vm.reading && u->vm.read_total > 0) {
		/* The file is in: its size (and how much, if the read stopped). */
		char done[32], total[32];
		size_text(done, sizeof done, u->vm.read_done);
		size_text(total, sizeof total, u->vm.read_total);
		if (u->vm.read_done >= u->vm.read_total)
			snprintf(model, sizeof model, "%s %s (%s loaded)", u->model_name, u->model_type, total);
		else
			snprintf(model, sizeof model, "%s %s (%s of %s loaded)", u->model_name, u->model_type, done,
			    total);
	} else if (u->has_model)
		snprintf(model, sizeof model, "%s %s", u->model_name, u->model_type);
	else
		snprintf(model, sizeof model, "-m MODEL to chat");
	snprintf(preset, sizeof preset, "%s", session_preset(u->s) ? session_preset(u->s) : "");
	int used = u->vm.ctx_used, size = u->ctx_size;
	snprintf(ctx, sizeof ctx, "%d/%d", used, size);
	snprintf(tps, sizeof tps, u->vm.tps > 0 ? "%.1f tok/s" : "", u->vm.tps);
	/* Right to left: tok/s, context, preset, model; each only if it fits. */
	int rx = w;
	int have_ctx = u->has_model && size > 0;
	int need_tps = tps[0] ? (int)strlen(tps) + 2 : 0;
	int bar = 10;
	int need_ctx = have_ctx ? (int)strlen(ctx) + bar + 4 : 0;
	int need_preset = preset[0] ? wrap_width(preset, strlen(preset)) + 3 : 0;
	int room = rx - x;
	int show_tps = need_tps && room >= need_tps;
	if (show_tps)
		room -= need_tps;
	int show_ctx = need_ctx && room >= need_ctx;
	if (show_ctx)
		room -= need_ctx;
	int show_preset = need_preset && room >= need_preset;
	if (show_preset)
		room -= need_preset;
	if (show_tps) {
		rx -= need_tps;
		screen_put(y, rx + 1, need_tps - 1, tps, strlen(tps), base);
	}
	if (show_ctx) {
		rx -= need_ctx;
		int bx = rx + 1;
		int fill = size > 0 ? (int)((long long)used * bar / size) : 0;
		if (fill > bar)
			fill = bar;
		if (used > 0 && fill == 0)
			fill = 1;
		screen_put(y, bx, 1, "[", 1, base);
		screen_fill(y, bx + 1, fill, ' ', theme_attr(TH_BAR_FULL) ^ A_REVERSE);
		screen_fill(y, bx + 1 + fill, bar - fill, ' ', base);
		screen_put(y, bx + 1 + bar, 1, "]", 1, base);
		screen_put(y, bx + 3 + bar, (int)strlen(ctx) + 1, ctx, strlen(ctx), base);
	}
	if (show_preset) {
		rx -= need_preset;
		screen_put(y, rx + 1, need_preset - 1, preset, strlen(preset), base | A_BOLD);
	}
	if (rx - x > 3) {
		x += screen_put(y, x, rx - x, "\xe2\x94\x82 ", 4, base);
		screen_put(y, x, rx - x - 1, model, strlen(model), base);
	}
}
