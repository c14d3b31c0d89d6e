/*
 * ui.c: the interface's main loop and its actions.
 *
 * DESIGN.  One thread (this one) owns the terminal, the database handle
 * and the view model; the engine runs on the session's worker thread.  The
 * loop poll()s three fds: the terminal, the worker's eventfd and the
 * signal self-pipe, then drains each without blocking (get_wch in nodelay
 * mode, worker_poll) and draws one frame: erase, draw every part into
 * stdscr, one doupdate().  Nothing here ever waits for the engine: a
 * request is queued and its events arrive through the eventfd, so keys and
 * resizes are handled while a model prefills or generates.  SIGWINCH is
 * ncurses' own; it interrupts poll() and get_wch then returns KEY_RESIZE.
 *
 * Every action that changes a conversation goes through session.c, which
 * keeps the worker and the database in step; the view model mirrors what
 * the user sees.  Leaving (Ctrl-Q, a confirmed Ctrl-C, SIGTERM/SIGHUP)
 * gives the terminal back first and then closes the session, which stops a
 * reply in flight and keeps its partial text, marked interrupted.
 */
#include "ui/ui.h"
#include "ui/ui_draw.h"

#include "app/paths.h"
#include "storage/export.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum purpose {
	P_NONE, P_QUIT, P_SWITCH, P_SEARCH_QUERY, P_SEARCH_HIT, P_RENAME, P_DELETE, P_PRESET, P_SYSTEM,
	P_SAMPLING, P_SAMPLING_VALUE, P_EXPORT_FORMAT, P_EXPORT_PATH, P_EXPORT_OVERWRITE, P_HELP,
};

#define NOTICE_MS 5000
#define INPUT_MAX_ROWS 8
#define FRAME_MS 40

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
notice(struct ui *u, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
notice(struct ui *u, int err, const char *fmt, ...)
{
	va_list ap;
	char *m;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	free(u->msg);
	u->msg = m;
	u->msg_err = err;
	u->msg_until = now_ms() + NOTICE_MS;
}

/* The session's last error as a notice (and forget it). */
static void
session_notice(struct ui *u)
{
	notice(u, 1, "%s", u->s.error ? u->s.error : "failed");
	free(u->s.error);
	u->s.error = NULL;
}

static int
need_db(struct ui *u)
{
	if (u->s.db)
		return 1;
	notice(u, 1, "the database is off in this session (--no-save)");
	return 0;
}

static int
not_busy(struct ui *u)
{
	if (!u->s.busy)
		return 1;
	notice(u, 1, "a reply is being generated: Esc stops it");
	return 0;
}

/* ---- the view model from the database ------------------------------------------------- */

static void
view_load(struct ui *u, const struct db_conv *c)
{
	viewmodel_clear(&u->vm);
	for (int i = 0; c && i < c->n_messages; i++) {
		const struct db_message *m = &c->messages[i];
		enum vm_role r = m->role == DB_ROLE_USER ? VM_USER : m->role == DB_ROLE_ASSISTANT ? VM_ASSISTANT : VM_SYSTEM;
		if (viewmodel_add(&u->vm, r, m->content, (enum vm_finish)m->finish) < 0)
			screen_fatal("out of memory");
	}
	u->vm.ctx_used = 0;
	u->vm.tps = 0;
	u->editing = 0;
}

static void
switch_to(struct ui *u, int64_t id, int pos)
{
	if (!need_db(u) || !not_busy(u))
		return;
	struct db_conv *c = NULL;
	if (id != u->s.conv_id || pos < 0) {
		if (session_switch(&u->s, id, &c) != 0) {
			session_notice(u);
			return;
		}
		view_load(u, c);
		if (u->m)
			u->vm.state = VM_LOADING;
		db_conv_free(c);
	}
	if (pos >= 0 && u->chat_w > 0) {
		viewmodel_layout(&u->vm, u->chat_w);
		viewmodel_scroll_to(&u->vm, pos, u->chat_h);
	} else {
		viewmodel_scroll_end(&u->vm);
	}
}

static void
new_chat(struct ui *u)
{
	if (!not_busy(u))
		return;
	if (session_new_chat(&u->s) != 0) {
		session_notice(u);
		return;
	}
	viewmodel_clear(&u->vm);
	u->editing = 0;
	input_clear(&u->in);
	notice(u, 0, "new chat");
}

/* ---- sending --------------------------------------------------------------------- */

static int
blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\n' && *s != '\t')
			return 0;
	return 1;
}

static void
save_history(struct ui *u)
{
	char *err = NULL;
	if (u->hist_path && input_history_save(&u->in, u->hist_path, &err) != 0) {
		notice(u, 1, "%s", err ? err : "cannot save the input history");
		free(err);
	}
}

static void
send_input(struct ui *u)
{
	const char *t = input_text(&u->in);
	if (blank(t))
		return;
	if (u->m == NULL) {
		notice(u, 1, "no model is loaded: start llama2-chat with -m MODEL to chat");
		return;
	}
	if (!not_busy(u))
		return;
	char *text = xstrdup(t);
	int64_t before = u->s.conv_id;
	int rc;
	if (u->editing) {
		rc = session_edit(&u->s, u->edit_k, text);
		if (rc == 0) {
			int k = viewmodel_last(&u->vm, VM_USER);
			viewmodel_truncate(&u->vm, k);
		}
	} else {
		rc = session_submit(&u->s, text);
	}
	if (rc != 0) {
		session_notice(u);
		free(text);
		return;
	}
	if (viewmodel_begin(&u->vm, text) != 0)
		screen_fatal("out of memory");
	free(u->msg);   /* a new request: old news goes */
	u->msg = NULL;
	input_history_add(&u->in, text);
	input_clear(&u->in);
	save_history(u);
	u->editing = 0;
	if (before != u->s.conv_id)
		convlist_reload(u);
	free(text);
}

static void
regenerate(struct ui *u)
{
	if (u->m == NULL) {
		notice(u, 1, "no model is loaded");
		return;
	}
	if (!not_busy(u))
		return;
	if (session_regenerate(&u->s) != 0) {
		session_notice(u);
		return;
	}
	int k = viewmodel_last(&u->vm, VM_ASSISTANT);
	if (k >= 0)
		viewmodel_truncate(&u->vm, k);
	viewmodel_begin(&u->vm, NULL);
}

static void
edit_last(struct ui *u)
{
	if (u->m == NULL) {
		notice(u, 1, "no model is loaded");
		return;
	}
	if (!not_busy(u))
		return;
	int k = viewmodel_last(&u->vm, VM_USER);
	if (k < 0 || u->s.n_msgs < 2) {
		notice(u, 1, "there is no message to edit");
		return;
	}
	u->editing = 1;
	u->edit_k = u->s.n_msgs - 2;
	input_set(&u->in, u->vm.msgs[k].text);
	free(u->msg);   /* the line above the input box says what is going on */
	u->msg = NULL;
}

static void
copy_last(struct ui *u)
{
	int k = viewmodel_last(&u->vm, VM_ASSISTANT);
	if (k < 0 || u->vm.msgs[k].len == 0) {
		notice(u, 1, "there is no reply to copy");
		return;
	}
	free(u->copy);
	u->copy = xstrdup(u->vm.msgs[k].text);
	notice(u, 0, "copied the last reply (%zu bytes) to the clipboard", u->vm.msgs[k].len);
}

/* ---- worker events ------------------------------------------------------------------ */

static void
drain_worker(struct ui *u)
{
	struct worker_event ev;
	while (u->s.w && worker_poll(u->s.w, &ev)) {
		session_event(&u->s, &ev);
		if (ev.type == WEV_LOADED && ev.seq == u->s.load_seq) {
			if (u->vm.state == VM_LOADING)
				u->vm.state = VM_IDLE;
			u->vm.ctx_used = ev.total;   /* the conversation now in the cache */
			if (u->s.notice)
				notice(u, 0, "%s", u->s.notice);   /* e.g. why its snapshot was not used */
		}
		if (ev.seq == u->s.seq && ev.type != WEV_LOADED) {
			char *back = NULL;
			if (ev.type == WEV_OVERFLOW)
				notice(u, 0, "%d older messages moved out of the context window", ev.dropped);
			if (viewmodel_event(&u->vm, &ev, &back)) {
				if (ev.type == WEV_ERROR) {
					notice(u, 1, "%s", u->vm.error ? u->vm.error : "the request failed");
					if (back && u->in.len == 0)
						input_set(&u->in, back);
				} else if (u->s.error) {
					session_notice(u);   /* e.g. the disk filled while saving */
				}
				convlist_reload(u);
			}
			free(back);
		}
		worker_event_free(&ev);
	}
}

/* ---- dialogs: opening ----------------------------------------------------------------- */

static void
open_switcher(struct ui *u)
{
	if (!need_db(u) || !not_busy(u))
		return;
	convlist_reload(u);
	modal_list(&u->dlg, P_SWITCH, "Switch chat (type to filter, Enter opens)", 1);
	for (size_t i = 0; i < u->nconvs; i++) {
		const struct db_conv *c = &u->convs[i];
		char when[32];
		time_t t = (time_t)(c->updated / 1000);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		char *label = xasprintf("%s  \xc2\xb7 %s \xc2\xb7 %s \xc2\xb7 %d msgs", convlist_title(c), c->pid, when,
		    c->n_messages);
		modal_add(&u->dlg, label, c->id, 0);
		free(label);
	}
	modal_ready(&u->dlg);
	if (u->nconvs == 0)
		notice(u, 0, "no stored chats yet");
}

static void
open_search(struct ui *u)
{
	if (!need_db(u))
		return;
	modal_prompt(&u->dlg, P_SEARCH_QUERY, "Search all chats", NULL,
	    "words, \"a phrase\", prefix*, AND/OR/NOT; Enter searches", 0);
}

static void
run_search(struct ui *u, const char *q)
{
	if (blank(q))
		return;
	struct db_hit *hits;
	size_t n;
	char *err = NULL;
	if (db_search(u->s.db, q, 100, "\x01", "\x02", &hits, &n, &err) != 0) {
		notice(u, 1, "%s", err ? err : "search failed");
		free(err);
		return;
	}
	if (n == 0) {
		notice(u, 0, "no matches for %s", q);
		db_hits_free(hits, n);
		return;
	}
	char *title = xasprintf("%zu match%s for %s (Enter opens)", n, n == 1 ? "" : "es", q);
	modal_list(&u->dlg, P_SEARCH_HIT, title, 0);
	free(title);
	for (size_t i = 0; i < n; i++) {
		char *label = xasprintf("%s \xc2\xb7 %s: %s", hits[i].title ? hits[i].title : "(untitled)",
		    db_role_name(hits[i].role), hits[i].snippet ? hits[i].snippet : "");
		modal_add(&u->dlg, label, hits[i].conv_id, hits[i].position);
		free(label);
	}
	modal_ready(&u->dlg);
	db_hits_free(hits, n);
}

static const struct db_conv *
current_conv(struct ui *u)
{
	for (size_t i = 0; i < u->nconvs; i++)
		if (u->convs[i].id == u->s.conv_id)
			return &u->convs[i];
	return NULL;
}

static int
need_conv(struct ui *u)
{
	if (!need_db(u))
		return 0;
	if (u->s.conv_id == 0) {
		notice(u, 1, "this chat is not stored yet: send a message first");
		return 0;
	}
	return 1;
}

static void
open_rename(struct ui *u)
{
	if (!need_conv(u))
		return;
	const struct db_conv *c = current_conv(u);
	modal_prompt(&u->dlg, P_RENAME, "Rename this chat", c && c->title ? c->title : "",
	    "Enter renames; an empty title clears it", 0);
}

static void
open_delete(struct ui *u)
{
	if (!need_conv(u) || !not_busy(u))
		return;
	const struct db_conv *c = current_conv(u);
	char *q = xasprintf("Delete \"%s\" (%s) and all its messages?", c ? convlist_title(c) : "this chat", u->s.pid);
	modal_confirm(&u->dlg, P_DELETE, "Delete chat", q);
	free(q);
}

static void
open_presets(struct ui *u)
{
	if (!not_busy(u))
		return;
	modal_list(&u->dlg, P_PRESET, "Preset or system prompt (type to filter)", 1);
	modal_add(&u->dlg, "\xe2\x9c\x8e Edit this chat's system prompt...", -1, 0);
	if (u->s.db) {
		struct db_preset *p;
		size_t n;
		char *err = NULL;
		if (db_preset_list(u->s.db, &p, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				char *label = xasprintf("%s%s  \xc2\xb7 %s", p[i].name,
				    u->s.preset && strcmp(u->s.preset, p[i].name) == 0 ? " (current)" : "", p[i].system_prompt);
				modal_add(&u->dlg, label, (int64_t)i, (int)strlen(p[i].name));
				free(label);
			}
			db_preset_array_free(p, n);
		} else {
			notice(u, 1, "%s", err ? err : "cannot list the presets");
			free(err);
		}
	}
	modal_ready(&u->dlg);
}

/* The sampling fields: label, and the value as text. */
enum { SF_TEMP, SF_TOPK, SF_TOPP, SF_MINP, SF_REPEAT, SF_REPEAT_N, SF_SEED, SF_NPREDICT, SF_COUNT };
static const char *const sf_names[SF_COUNT] = {
	"temperature", "top-k", "top-p", "min-p", "repeat penalty", "repeat last n", "seed", "max tokens per reply",
};

static char *
sf_value(struct ui *u, int f)
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

static void
open_sampling(struct ui *u, int sel)
{
	modal_list(&u->dlg, P_SAMPLING, "Sampling of this chat (Enter edits)", 0);
	for (int f = 0; f < SF_COUNT; f++) {
		char *v = sf_value(u, f);
		char *label = xasprintf("%-22s %s%s", sf_names[f], v,
		    f == SF_NPREDICT && u->o->n_predict <= 0 ? " (until EOS)" : "");
		modal_add(&u->dlg, label, f, 0);
		free(label);
		free(v);
	}
	modal_ready(&u->dlg);
	u->dlg.sel = sel;
}

static void
set_sampling(struct ui *u, int f, const char *text)
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
		notice(u, 1, "%s: '%s' is not a valid value", sf_names[f], text);
		return;
	}
	if (f != SF_NPREDICT && session_set_sampling(&u->s, &p) != 0)
		session_notice(u);
	else
		notice(u, 0, "%s set to %s", sf_names[f], text);
}

static const char *const export_exts[] = { "md", "txt", "json", "html" };

static void
open_export(struct ui *u)
{
	if (!need_conv(u))
		return;
	modal_list(&u->dlg, P_EXPORT_FORMAT, "Export this chat as", 0);
	modal_add(&u->dlg, "Markdown (.md)", EXPORT_MD, 0);
	modal_add(&u->dlg, "Plain text (.txt)", EXPORT_TXT, 0);
	modal_add(&u->dlg, "JSON, for import (.json)", EXPORT_JSON, 0);
	modal_add(&u->dlg, "HTML page (.html)", EXPORT_HTML, 0);
	modal_ready(&u->dlg);
}

static void
do_export(struct ui *u, enum export_format f, const char *path, int force)
{
	char *err = NULL;
	struct db_conv *c = db_conv_load(u->s.db, u->s.conv_id, &err);
	if (c == NULL || export_file(c, f, path, force, &err) != 0)
		notice(u, 1, "%s", err ? err : "export failed");
	else
		notice(u, 0, "exported to %s", path);
	free(err);
	db_conv_free(c);
}

static void
export_to(struct ui *u, enum export_format f, const char *typed)
{
	if (blank(typed))
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

static void
dialog_done(struct ui *u, enum modal_result r)
{
	int purpose = u->dlg.purpose;
	int64_t arg = u->dlg.arg;
	if (r == DLG_CANCEL) {
		modal_close(&u->dlg);
		if (purpose == P_SAMPLING_VALUE)
			open_sampling(u, (int)arg);
		return;
	}
	const struct modal_item *it = modal_selected(&u->dlg);
	int64_t id = it ? it->id : 0;
	int pos = it ? it->pos : 0;
	char *text = xstrdup(input_text(&u->dlg.in));
	char *label = it ? xstrdup(it->label) : NULL;
	modal_close(&u->dlg);
	char *err = NULL;
	switch (purpose) {
	case P_QUIT:
		u->quit = 1;
		break;
	case P_SWITCH:
		if (it)
			switch_to(u, id, -1);
		break;
	case P_SEARCH_QUERY:
		run_search(u, text);
		break;
	case P_SEARCH_HIT:
		if (it)
			switch_to(u, id, pos);
		break;
	case P_RENAME:
		if (db_conv_rename(u->s.db, u->s.conv_id, text, &err) != 0)
			notice(u, 1, "%s", err ? err : "rename failed");
		else
			notice(u, 0, "renamed");
		free(err);
		convlist_reload(u);
		break;
	case P_DELETE:
		if (!not_busy(u))
			break;
		if (db_conv_delete(u->s.db, u->s.conv_id, &err) != 0) {
			notice(u, 1, "%s", err ? err : "delete failed");
			free(err);
			break;
		}
		new_chat(u);
		notice(u, 0, "deleted");
		convlist_reload(u);
		break;
	case P_PRESET:
		if (it && id < 0) {
			modal_prompt(&u->dlg, P_SYSTEM, "System prompt of this chat", u->s.system ? u->s.system : "",
			    "Enter saves, Alt-Enter or Ctrl-J: new line, Esc cancels", 1);
		} else if (it && label) {
			label[pos] = '\0';   /* the name */
			if (session_apply_preset(&u->s, label) != 0)
				session_notice(u);
			else
				notice(u, 0, "preset %s", label);
		}
		break;
	case P_SYSTEM:
		if (session_set_system(&u->s, text, NULL) != 0)
			session_notice(u);
		else
			notice(u, 0, text[0] ? "system prompt set" : "system prompt cleared");
		break;
	case P_SAMPLING:
		if (it) {
			char *v = sf_value(u, (int)id);
			char *title = xasprintf("Set %s", sf_names[id]);
			modal_prompt(&u->dlg, P_SAMPLING_VALUE, title, v,
			    id == SF_NPREDICT ? "0 or -1: until EOS or the context is full" : "Enter sets, Esc goes back", 0);
			u->dlg.arg = id;
			free(title);
			free(v);
		}
		break;
	case P_SAMPLING_VALUE:
		set_sampling(u, (int)arg, text);
		open_sampling(u, (int)arg);
		break;
	case P_EXPORT_FORMAT:
		if (it) {
			char *def = xasprintf("llama2-chat-%s.%s", u->s.pid, export_exts[id]);
			modal_prompt(&u->dlg, P_EXPORT_PATH, "Export to file", def, "a path; Enter writes the file", 0);
			u->dlg.arg = id;
			free(def);
		}
		break;
	case P_EXPORT_PATH:
		export_to(u, (enum export_format)arg, text);
		break;
	case P_EXPORT_OVERWRITE:
		if (u->pending)
			do_export(u, (enum export_format)arg, u->pending, 1);
		free(u->pending);
		u->pending = NULL;
		break;
	default:
		break;
	}
	free(text);
	free(label);
}

/* ---- keys ------------------------------------------------------------------------------ */

/* Read one key without waiting: 1 and *k, or 0 when none is waiting. */
static int
read_key(struct key *k)
{
	wint_t ch;
	int r = get_wch(&ch);
	if (r == ERR)
		return 0;
	k->alt = 0;
	k->fn = r == KEY_CODE_YES;
	k->code = (int)ch;
	if (!k->fn && ch == 27) {
		/* Esc and a key that came with it is Alt+key. */
		wint_t c2;
		int r2 = get_wch(&c2);
		if (r2 == OK && (c2 == 27 || (c2 < 0x20 && c2 != '\r' && c2 != '\n'))) {
			unget_wch(c2);   /* Esc, then a control key: two keys */
		} else if (r2 != ERR) {
			k->alt = 1;
			k->fn = r2 == KEY_CODE_YES;
			k->code = (int)c2;
		}
	}
	return 1;
}

static void
quit_ask(struct ui *u)
{
	modal_confirm(&u->dlg, P_QUIT, "Quit", "Quit llama2-chat?");
}

static void
key_main(struct ui *u, const struct key *k)
{
	int page = u->chat_h > 2 ? u->chat_h - 2 : 1;
	int iw = COLS - convlist_width(u, COLS);
	if (u->paste) {
		/* Pasted text is text: newlines stay, nothing is a command. */
		if (!k->fn && (k->code == '\r' || k->code == '\n')) {
			input_insert_cp(&u->in, '\n');
			return;
		}
		if (!(k->fn && k->code == KEY_PASTE_END)) {
			editor_key(&u->in, k, iw);
			return;
		}
	}
	if (k->fn) {
		switch (k->code) {
		case KEY_PASTE_BEGIN: u->paste = 1; return;
		case KEY_PASTE_END: u->paste = 0; return;
		case KEY_RESIZE: return;
		case KEY_F(1): modal_help(&u->dlg); return;
		case KEY_F(2): open_rename(u); return;
		case KEY_F(3): open_switcher(u); return;
		case KEY_F(4): open_search(u); return;
		case KEY_F(5): regenerate(u); return;
		case KEY_F(6): edit_last(u); return;
		case KEY_F(7): open_presets(u); return;
		case KEY_F(8): open_delete(u); return;
		case KEY_F(9): open_export(u); return;
		case KEY_PPAGE: viewmodel_scroll(&u->vm, -page, u->chat_h); return;
		case KEY_NPAGE: viewmodel_scroll(&u->vm, page, u->chat_h); return;
		case KEY_HOME: viewmodel_scroll_home(&u->vm); return;
		case KEY_END: viewmodel_scroll_end(&u->vm); return;
		case KEY_ENTER: send_input(u); return;
		case KEY_MOUSE: {
			MEVENT me;
			if (getmouse(&me) == OK) {
				if (me.bstate & BUTTON4_PRESSED)
					viewmodel_scroll(&u->vm, -3, u->chat_h);
				else if (me.bstate & BUTTON5_PRESSED)
					viewmodel_scroll(&u->vm, 3, u->chat_h);
			}
			return;
		}
		default:
			break;
		}
	} else if (k->alt) {
		switch (k->code) {
		case 'c': copy_last(u); return;
		case 'e': edit_last(u); return;
		case 'r': open_rename(u); return;
		case 'D': open_delete(u); return;
		case 'x': open_export(u); return;
		case 'p': open_presets(u); return;
		case 's': if (not_busy(u)) open_sampling(u, 0); return;
		case 'o': open_switcher(u); return;
		case 'l':
			u->list_on = !u->list_on;
			if (u->list_on && COLS < 80)
				notice(u, 0, "the chat list needs 80 columns");
			return;
		case 'm':
			u->mouse = !u->mouse;
			screen_mouse(u->mouse);
			notice(u, 0, u->mouse ? "mouse wheel on (Shift selects in most terminals)" : "mouse off");
			return;
		default:
			break;
		}
	} else {
		switch (k->code) {
		case '\r': send_input(u); return;
		case 27:
			if (u->s.busy)
				session_stop(&u->s);
			else if (u->editing) {
				u->editing = 0;
				input_clear(&u->in);
				notice(u, 0, "editing cancelled");
			} else {
				free(u->msg);
				u->msg = NULL;
			}
			return;
		case KEY_CTRL('C'):
			if (u->s.busy)
				session_stop(&u->s);
			else
				quit_ask(u);
			return;
		case KEY_CTRL('N'): new_chat(u); return;
		case KEY_CTRL('O'): open_switcher(u); return;
		case KEY_CTRL('F'): open_search(u); return;
		case KEY_CTRL('R'): regenerate(u); return;
		case KEY_CTRL('L'): clearok(curscr, TRUE); return;
		case '?':
			if (u->in.len == 0) {
				modal_help(&u->dlg);
				return;
			}
			break;
		default:
			break;
		}
	}
	enum editor_result r = editor_key(&u->in, k, iw);
	if (r == ED_TOP)
		input_history_prev(&u->in);
	else if (r == ED_BOTTOM)
		input_history_next(&u->in);
}

static void
on_key(struct ui *u, const struct key *k)
{
	if (!k->fn && !k->alt && k->code == KEY_CTRL('Q')) {
		u->quit = 1;
		return;
	}
	if (k->fn && k->code == KEY_RESIZE)
		return;
	if (u->dlg.kind != DLG_NONE) {
		if (u->paste && !(k->fn && k->code == KEY_PASTE_END)) {
			if (!k->fn && (k->code == '\r' || k->code == '\n')) {
				if (u->dlg.multiline)
					input_insert_cp(&u->dlg.in, '\n');
				return;
			}
		}
		if (k->fn && (k->code == KEY_PASTE_BEGIN || k->code == KEY_PASTE_END)) {
			u->paste = k->code == KEY_PASTE_BEGIN;
			return;
		}
		enum modal_result r = modal_key(&u->dlg, k);
		if (r != DLG_CONT)
			dialog_done(u, r);
		return;
	}
	key_main(u, k);
}

/* ---- the frame --------------------------------------------------------------------- */

static void
draw(struct ui *u)
{
	erase();
	int L = LINES, C = COLS;
	int cy = -1, cx = -1;
	if (L >= 1 && C >= 1) {
		int status_y = L - 1;
		int lw = convlist_width(u, C);
		int cw = C - lw;
		int ih = 0, sep = 0;
		if (L >= 2) {
			ih = editor_rows(&u->in, cw);
			int cap = (L - 2) / 2;
			if (cap > INPUT_MAX_ROWS)
				cap = INPUT_MAX_ROWS;
			if (ih > cap)
				ih = cap;
			if (ih < 1)
				ih = 1;
		}
		if (L >= 5)
			sep = 1;
		int input_y = status_y - ih;
		int chat_h = input_y - sep;
		if (chat_h < 0)
			chat_h = 0;
		u->chat_y = 0, u->chat_x = lw, u->chat_h = chat_h, u->chat_w = cw;
		if (lw)
			convlist_draw(u, 0, 0, status_y, lw);
		int pad = lw > 0 ? 1 : 0;   /* a column between the list and the text */
		u->chat_w = cw - pad;
		chatview_draw(u, 0, lw + pad, chat_h, cw - pad);
		if (sep) {
			screen_fill(input_y - 1, lw, cw, ACS_HLINE, theme_attr(TH_BORDER));
			const char *tag = u->paste ? " pasting " : u->editing ? " editing the last message (Esc cancels) " : NULL;
			if (tag)
				screen_put(input_y - 1, lw + 1, cw - 1, tag, strlen(tag), theme_attr(TH_NOTE));
		}
		if (ih > 0)
			editor_draw(&u->in, input_y, lw, ih, cw, A_NORMAL, &cy, &cx);
		status_draw(u, status_y, C);
		if (u->dlg.kind != DLG_NONE)
			modal_draw(&u->dlg, L > 1 ? L - 1 : L, C, &cy, &cx);   /* the status bar stays */
	}
	if (cy >= 0 && cx >= 0 && cy < L && cx < C) {
		move(cy, cx);
		curs_set(1);
	} else {
		curs_set(0);
	}
	wnoutrefresh(stdscr);
	doupdate();
	if (u->copy) {
		screen_osc52(u->copy, strlen(u->copy));
		free(u->copy);
		u->copy = NULL;
	}
}

/* ---- running ------------------------------------------------------------------------- */

static void
loop(struct ui *u)
{
	double next_frame = 0;
	int keyed = 1;
	while (!u->quit) {
		double t = now_ms();
		/* While a reply streams, one frame every FRAME_MS: after a frame
		 * the worker's events are waited for, then the loop sleeps until
		 * the next frame is due while tokens pile up in the worker's
		 * queue, and the engine keeps the CPU. */
		int drew = 0;
		if (!u->s.busy || keyed || t >= next_frame) {
			draw(u);
			next_frame = t + FRAME_MS;
			keyed = 0;
			drew = 1;
		}
		int watch_worker = u->s.w && (!u->s.busy || drew);
		struct pollfd p[3];
		int n = 0;
		p[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		if (screen_signal_fd() >= 0)
			p[n++] = (struct pollfd){ .fd = screen_signal_fd(), .events = POLLIN };
		if (watch_worker)
			p[n++] = (struct pollfd){ .fd = worker_fd(u->s.w), .events = POLLIN };
		double timeout = -1;
		if (u->msg)
			timeout = u->msg_until - now_ms();
		if (u->s.busy && !watch_worker) {
			double f = next_frame - now_ms();
			if (timeout < 0 || f < timeout)
				timeout = f;
		}
		int r = poll(p, (nfds_t)n, timeout < 0 && u->msg == NULL && !(u->s.busy && !watch_worker) ? -1
		    : timeout > 0 ? (int)timeout + 1 : 0);
		if (r < 0 && errno != EINTR)
			screen_fatal("poll: %s", strerror(errno));
		if (screen_signalled()) {
			u->quit = 1;
			break;
		}
		if (u->msg && now_ms() >= u->msg_until) {
			free(u->msg);
			u->msg = NULL;
		}
		struct key k;
		while (!u->quit && read_key(&k)) {
			on_key(u, &k);
			keyed = 1;
		}
		if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			u->quit = 1;   /* the terminal went away */
			break;
		}
		if (watch_worker)
			drain_worker(u);
	}
}

static void
load_start(struct ui *u)
{
	struct opts *o = u->o;
	/* History-only: -c / --resume still open a conversation to read. */
	if (u->m == NULL && u->s.db && (o->cont || o->resume)) {
		int64_t id = 0;
		char *err = NULL;
		int r = o->resume ? (db_conv_resolve(u->s.db, o->resume, &id, &err) == 0 ? 1 : -1)
		    : db_conv_latest(u->s.db, &id, &err);
		if (r < 0) {
			notice(u, 1, "%s", err ? err : "cannot resume");
			free(err);
		} else if (r > 0 && session_switch(&u->s, id, NULL) != 0) {
			session_notice(u);
		}
	}
	if (u->s.conv_id && u->s.db) {
		char *err = NULL;
		struct db_conv *c = db_conv_load(u->s.db, u->s.conv_id, &err);
		if (c) {
			view_load(u, c);
			if (!u->s.preset && c->preset)
				u->s.preset = strdup(c->preset);
			db_conv_free(c);
		} else {
			notice(u, 1, "%s", err ? err : "cannot load the conversation");
			free(err);
		}
	}
	convlist_reload(u);
}

int
ui_run(struct opts *o)
{
	struct ui u;
	memset(&u, 0, sizeof u);
	u.o = o;
	u.list_on = 1;
	int status = 0;
	if (o->model && *o->model) {
		u.m = cli_open_model(o, &status);
		if (u.m == NULL)
			return status;
	}
	status = u.m ? session_open(&u.s, o, u.m) : session_open_store(&u.s, o);
	if (status != 0) {
		engine_close(u.m);
		return status;
	}
	if (u.m) {
		const struct engine_info *in = engine_info(u.m);
		u.model_name = in->name;
		u.model_type = in->main_type;
		u.ctx_size = worker_ctx_size(u.s.w);
	}
	viewmodel_init(&u.vm);
	input_init(&u.in);
	char *err = NULL;
	u.hist_path = path_for(PATH_STATE, "history", 1, &err);
	if (u.hist_path == NULL) {
		free(err);   /* no home: the history lives for this run only */
		err = NULL;
	} else if (input_history_load(&u.in, u.hist_path, &err) != 0) {
		free(err);
		err = NULL;
	}
	if (screen_open() != 0) {
		const char *term = getenv("TERM");
		cli_error("cannot use this terminal (TERM=%s)", term ? term : "unset");
		status = 1;
	} else {
		load_start(&u);
		loop(&u);
		screen_close();
	}
	/* The terminal is back; now stop the reply in flight and keep it. */
	session_close(&u.s);
	engine_close(u.m);
	viewmodel_free(&u.vm);
	input_free(&u.in);
	modal_close(&u.dlg);
	db_conv_array_free(u.convs, u.nconvs);
	free(u.hist_path);
	free(u.msg);
	free(u.pending);
	free(u.copy);
	return status;
}
