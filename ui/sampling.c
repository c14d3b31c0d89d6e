/*
 * sampling.c: the sampling form (Alt-S): one row per setting of the
 * settings table (app/settings.h: the sampler's parameters, the seed and
 * the max tokens per reply), each edited in a prompt and checked by the
 * table's own parser, so the form accepts exactly what the command line
 * and the config file accept.
 */
#include "ui/ui_draw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
sampling_value(struct ui *u, int f)
{
	char *v = settings_format(f, session_settings(u->s));
	if (v == NULL)
		screen_fatal("out of memory");
	return v;
}

void
sampling_open(struct ui *u, int sel)
{
	modal_list(&u->dlg, P_SAMPLING, "Sampling of this chat (Enter edits)", 0);
	for (int f = 0; f < SET_COUNT; f++) {
		char *v = sampling_value(u, f);
		char *label = xasprintf("%-22s %s%s", settings_table[f].name, v,
		    f == SET_N_PREDICT && session_settings(u->s)->n_predict <= 0 ? " (until EOS)" : "");
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
	struct gen_settings g = *session_settings(u->s);
	char *why = NULL;
	if (settings_parse(f, text, &g, &why) != 0) {
		ui_notice(u, 1, "%s: %s", settings_table[f].name, why ? why : "not a valid value");
		free(why);
		return;
	}
	if (session_set_settings(u->s, &g) != 0)
		ui_session_notice(u);
	else
		ui_notice(u, 0, "%s set to %s", settings_table[f].name, text);
}

void
sampling_edit(struct ui *u, int f)
{
	char *v = sampling_value(u, f);
	char *title = xasprintf("Set %s", settings_table[f].name);
	modal_prompt(&u->dlg, P_SAMPLING_VALUE, title, v,
	    f == SET_N_PREDICT ? "0 or -1: until EOS or the context is full" : "Enter sets, Esc goes back", 0);
	u->dlg.arg = f;
	free(title);
	free(v);
}
