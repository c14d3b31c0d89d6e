/*
 * dialogs.c: the dialogs of the interface (switch, search, rename, delete,
 * presets and the system prompt, export, quit): opening each one, and what
 * happens when it is answered (dialogs_done, one case per purpose).
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

/* ---- dialogs: opening ----------------------------------------------------------------- */

void
dialogs_open_switcher(struct ui *u)
{
	if (!ui_need_db(u) || !ui_not_busy(u))
		return;
	convlist_reload(u);
	modal_list(&u->dlg, P_SWITCH, "Switch chat (type to filter, Enter opens)", 1);
	for (size_t i = 0; i < u->nconvs; i++) {
		const struct session_conv *c = &u->convs[i];
		char when[32];
		time_t t = (time_t)(c->updated / 1000);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		/* The fixed-width facts first, the title last: a long title is
		 * what the dialog cuts, never "2 msgs". */
		char *label = xasprintf("%s \xc2\xb7 %s \xc2\xb7 %d msg%s \xc2\xb7 %s", c->pid, when, c->n_messages,
		    c->n_messages == 1 ? "" : "s", convlist_title(c));
		modal_add(&u->dlg, label, c->id, 0);
		free(label);
	}
	modal_ready(&u->dlg);
	if (u->nconvs == 0)
		ui_notice(u, 0, "no stored chats yet");
}

void
dialogs_open_search(struct ui *u)
{
	if (!ui_need_db(u))
		return;
	modal_prompt(&u->dlg, P_SEARCH_QUERY, "Search all chats", NULL,
	    "words, \"a phrase\", prefix*, AND/OR/NOT; Enter searches", 0);
}

static const char *const role_names[] = { "system", "user", "assistant" };

static void
run_search(struct ui *u, const char *q)
{
	if (ui_blank(q))
		return;
	struct session_hit *hits;
	size_t n;
	if (session_search(u->s, q, 100, &hits, &n) != 0) {
		ui_session_notice(u);
		return;
	}
	if (n == 0) {
		ui_notice(u, 0, "no matches for %s", q);
		session_hits_free(hits, n);
		return;
	}
	char *title = xasprintf("%zu match%s for %s (Enter opens)", n, n == 1 ? "" : "es", q);
	modal_list(&u->dlg, P_SEARCH_HIT, title, 0);
	free(title);
	for (size_t i = 0; i < n; i++) {
		char *label = xasprintf("%s \xc2\xb7 %s: %s", hits[i].title ? hits[i].title : "(untitled)",
		    role_names[hits[i].role], hits[i].snippet ? hits[i].snippet : "");
		modal_add(&u->dlg, label, hits[i].conv_id, hits[i].msg_id);
		free(label);
	}
	modal_ready(&u->dlg);
	session_hits_free(hits, n);
}

static const struct session_conv *
current_conv(struct ui *u)
{
	for (size_t i = 0; i < u->nconvs; i++)
		if (u->convs[i].id == session_conv(u->s))
			return &u->convs[i];
	return NULL;
}

static int
need_conv(struct ui *u)
{
	if (!ui_need_db(u))
		return 0;
	if (session_conv(u->s) == 0) {
		ui_notice(u, 1, "this chat is not stored yet: send a message first");
		return 0;
	}
	return 1;
}

void
dialogs_open_rename(struct ui *u)
{
	if (!need_conv(u))
		return;
	const struct session_conv *c = current_conv(u);
	modal_prompt(&u->dlg, P_RENAME, "Rename this chat", c && c->title ? c->title : "",
	    "Enter renames; an empty title clears it", 0);
}

void
dialogs_open_delete(struct ui *u)
{
	if (!need_conv(u) || !ui_not_busy(u))
		return;
	const struct session_conv *c = current_conv(u);
	char *q = xasprintf("Delete \"%s\" (%s) and all its messages?", c ? convlist_title(c) : "this chat", session_pid(u->s));
	modal_confirm(&u->dlg, P_DELETE, "Delete chat", q);
	free(q);
}

void
dialogs_open_presets(struct ui *u)
{
	if (!ui_not_busy(u))
		return;
	modal_list(&u->dlg, P_PRESET, "Preset or system prompt (type to filter)", 1);
	modal_add(&u->dlg, "\xe2\x9c\x8e Edit this chat's system prompt...", -1, 0);
	struct session_preset *p;
	size_t n;
	if (session_presets(u->s, &p, &n) == 0) {
		const char *cur = session_preset(u->s);
		for (size_t i = 0; i < n; i++) {
			char *label = xasprintf("%s%s  \xc2\xb7 %s", p[i].name,
			    cur && strcmp(cur, p[i].name) == 0 ? " (current)" : "", p[i].system);
			modal_add(&u->dlg, label, (int64_t)i, (int64_t)strlen(p[i].name));
			free(label);
		}
		session_presets_free(p, n);
	} else {
		ui_session_notice(u);
	}
	modal_ready(&u->dlg);
}

static const char *const export_exts[] = { "md", "txt", "json", "html" };

void
dialogs_open_export(struct ui *u)
{
	if (!need_conv(u))
		return;
	modal_list(&u->dlg, P_EXPORT_FORMAT, "Export this chat as", 0);
	modal_add(&u->dlg, "Markdown (.md)", 0, 0);
	modal_add(&u->dlg, "Plain text (.txt)", 1, 0);
	modal_add(&u->dlg, "JSON, for import (.json)", 2, 0);
	modal_add(&u->dlg, "HTML page (.html)", 3, 0);
	modal_ready(&u->dlg);
}

/* Export as export_exts[f]. */
static void
do_export(struct ui *u, int f, const char *path, int force)
{
	if (session_export(u->s, export_exts[f], path, force) != 0)
		ui_session_notice(u);
	else
		ui_notice(u, 0, "exported to %s", path);
}

static void
export_to(struct ui *u, int f, const char *typed)
{
	if (ui_blank(typed))
		return;
	char *path;
	const char *home = getenv("HOME");
	if (typed[0] == '~' && typed[1] == '/' && home)
		path = xasprintf("%s%s", home, typed + 1);
	else
		path = xstrdup(typed);
	if (access(path, F_OK) == 0) {
		char *q = xasprintf("%s exists. Replace it?", path);
		modal_confirm(&u->dlg, P_EXPORT_OVERWRITE, "Export", q);
		u->dlg.arg = f;
		free(q);
		free(u->pending);
		u->pending = path;
		return;
	}
	do_export(u, f, path, 0);
	free(path);
}

/* ---- dialogs: answers ----------------------------------------------------------------- */

void
dialogs_done(struct ui *u, enum modal_result r)
{
	int purpose = u->dlg.purpose;
	int64_t arg = u->dlg.arg;
	if (r == DLG_CANCEL) {
		modal_close(&u->dlg);
		if (purpose == P_SAMPLING_VALUE)
			sampling_open(u, (int)arg);
		return;
	}
	const struct modal_item *it = modal_selected(&u->dlg);
	int64_t id = it ? it->id : 0;
	int64_t pos = it ? it->pos : 0;
	char *text = xstrdup(input_text(&u->dlg.in));
	char *label = it ? xstrdup(it->label) : NULL;
	modal_close(&u->dlg);
	switch (purpose) {
	case P_QUIT:
		u->quit = 1;
		break;
	case P_SWITCH:
		if (it)
			action_switch_to(u, id, 0);
		break;
	case P_SEARCH_QUERY:
		run_search(u, text);
		break;
	case P_SEARCH_HIT:
		if (it)
			action_switch_to(u, id, pos);
		break;
	case P_RENAME:
		if (session_rename(u->s, text) != 0)
			ui_session_notice(u);
		else
			ui_notice(u, 0, "renamed");
		convlist_reload(u);
		break;
	case P_DELETE:
		if (!ui_not_busy(u))
			break;
		if (session_delete(u->s) != 0) {
			ui_session_notice(u);
			break;
		}
		action_drain(u);
		u->editing = 0;
		input_clear(&u->in);
		ui_notice(u, 0, "deleted");
		convlist_reload(u);
		break;
	case P_PRESET:
		if (it && id < 0) {
			modal_prompt(&u->dlg, P_SYSTEM, "System prompt of this chat", session_system(u->s) ? session_system(u->s) : "",
			    "Enter saves, Alt-Enter or Ctrl-J: new line, Esc cancels", 1);
		} else if (it && label) {
			label[pos] = '\0';   /* the name */
			if (session_apply_preset(u->s, label) != 0)
				ui_session_notice(u);
			else
				ui_notice(u, 0, "preset %s", label);
		}
		break;
	case P_SYSTEM:
		if (session_set_system(u->s, text) != 0)
			ui_session_notice(u);
		else
			ui_notice(u, 0, text[0] ? "system prompt set" : "system prompt cleared");
		break;
	case P_SAMPLING:
		if (it)
			sampling_edit(u, (int)id);
		break;
	case P_SAMPLING_VALUE:
		sampling_set(u, (int)arg, text);
		sampling_open(u, (int)arg);
		break;
	case P_EXPORT_FORMAT:
		if (it) {
			char *def = xasprintf("llama2-chat-%s.%s", session_pid(u->s), export_exts[id]);
			modal_prompt(&u->dlg, P_EXPORT_PATH, "Export to file", def, "a path; Enter writes the file", 0);
			u->dlg.arg = id;
			free(def);
		}
		break;
	case P_EXPORT_PATH:
		export_to(u, (int)arg, text);
		break;
	case P_EXPORT_OVERWRITE:
		if (u->pending)
			do_export(u, (int)arg, u->pending, 1);
		free(u->pending);
		u->pending = NULL;
		break;
	default:
		break;
	}
	free(text);
	free(label);
}

void
dialogs_quit_ask(struct ui *u)
{
	modal_confirm(&u->dlg, P_QUIT, "Quit", "Quit llama2-chat?");
}
