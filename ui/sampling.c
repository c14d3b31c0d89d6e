/*
 * sampling.c: the sampling form (Alt-S): a list of the chat's sampling
 * settings and the max tokens per reply, each edited in a prompt.
 */
#include "ui/ui_draw.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The sampling fields: label, and the value as text. */
enum { SF_TEMP, SF_TOPK, SF_TOPP, SF_MINP, SF_REPEAT, SF_REPEAT_N, SF_SEED, SF_NPREDICT, SF_COUNT };
static const char *const sf_names[SF_COUNT] = {
	"temperature", "top-k", "top-p", "min-p", "repeat penalty", "repeat last n", "seed", "max tokens per reply",
};

char *
sampling_value(struct ui *u, int f)
{
	const struct engine_sampling *p = &u->s.samp;
	switch (f) {
	case SF_TEMP: return xasprintf("%g", p->temp);
	case SF_TOPK: return xasprintf("%d", p->top_k);
	case SF_TOPP: return xasprintf("%g", p->top_p);
	case SF_MINP: return xasprintf("%g", p->min_p);
	case SF_REPEAT: return xasprintf("%g", p->repeat_penalty);
	case SF_REPEAT_N: return xasprintf("%d", p->repeat_last_n);
	case SF_SEED: return xasprintf("%llu", (unsigned long long)p->seed);
	default: return xasprintf("%d", u->o->n_predict);
	}
}

void
sampling_open(struct ui *u, int sel)
{
	modal_list(&u->dlg, P_SAMPLING, "Sampling of this chat (Enter edits)", 0);
	for (int f = 0; f < SF_COUNT; f++) {
		char *v = sampling_value(u, f);
		char *label = xasprintf("%-22s %s%s", sf_names[f], v,
		    f == SF_NPREDICT && u->o->n_predict <= 0 ? " (until EOS)" : "");
		modal_add(&u->dlg, label, f, 0);
		free(label);
		free(v);
	}
	modal_ready(&u->dlg);
	u->dlg.sel = sel;
}

void
sampling_set(struct ui *u, int f, const char *text)
{
	struct engine_sampling p = u->s.samp;
	char *end;
	errno = 0;
	double d = strtod(text, &end);
	int ok = errno == 0 && end != text && *end == '\0' && isfinite(d);
	switch (f) {
	case SF_TEMP: ok = ok && d >= 0 && d <= 100; p.temp = (float)d; break;
	case SF_TOPK: ok = ok && d >= 0 && d <= 1 << 24 && d == (int)d; p.top_k = (int)d; break;
	case SF_TOPP: ok = ok && d >= 0 && d <= 1; p.top_p = (float)d; break;
	case SF_MINP: ok = ok && d >= 0 && d <= 1; p.min_p = (float)d; break;
	case SF_REPEAT: ok = ok && d >= 0.01 && d <= 100; p.repeat_penalty = (float)d; break;
	case SF_REPEAT_N: ok = ok && d >= 0 && d <= 1 << 20 && d == (int)d; p.repeat_last_n = (int)d; break;
	case SF_SEED: {
		errno = 0;
		unsigned long long s = strtoull(text, &end, 10);
		ok = errno == 0 && end != text && *end == '\0' && text[0] != '-';
		p.seed = s;
		break;
	}
	default:
		ok = ok && d >= -1 && d <= INT_MAX && d == (int)d;
		if (ok)
			u->o->n_predict = (int)d;
		break;
	}
	if (!ok) {
		ui_notice(u, 1, "%s: '%s' is not a valid value", sf_names[f], text);
		return;
	}
	if (f != SF_NPREDICT && session_set_sampling(&u->s, &p) != 0)
		ui_session_notice(u);
	else
		ui_notice(u, 0, "%s set to %s", sf_names[f], text);
}

void
sampling_edit(struct ui *u, int f)
{
	char *v = sampling_value(u, f);
	char *title = xasprintf("Set %s", sf_names[f]);
	modal_prompt(&u->dlg, P_SAMPLING_VALUE, title, v,
	    f == SF_NPREDICT ? "0 or -1: until EOS or the context is full" : "Enter sets, Esc goes back", 0);
	u->dlg.arg = f;
	free(title);
	free(v);
}
