/*
 * actions.c: what the interface does to the conversation: load it into the
 * view, switch, start a new chat, send, regenerate, edit, copy, and apply
 * the worker's events.  Every change goes through the session (session.c),
 * which keeps the worker and the database in step; the view model mirrors
 * what the user sees.
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

/* ---- the view model from the database ------------------------------------------------- */

void
action_view_load(struct ui *u, const struct db_conv *c)
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

void
action_switch_to(struct ui *u, int64_t id, int pos)
{
	if (!ui_need_db(u) || !ui_not_busy(u))
		return;
	struct db_conv *c = NULL;
	if (id != u->s.conv_id || pos < 0) {
		if (session_switch(&u->s, id, &c) != 0) {
			ui_session_notice(u);
			return;
		}
		action_view_load(u, c);
		if (u->s.w)
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

void
action_new_chat(struct ui *u)
{
	if (!ui_not_busy(u))
		return;
	if (session_new_chat(&u->s) != 0) {
		ui_session_notice(u);
		return;
	}
	viewmodel_clear(&u->vm);
	u->editing = 0;
	input_clear(&u->in);
	ui_notice(u, 0, "new chat");
}

/* ---- sending --------------------------------------------------------------------- */

static void
save_history(struct ui *u)
{
	char *err = NULL;
	if (u->hist_path && input_history_save(&u->in, u->hist_path, &err) != 0) {
		ui_notice(u, 1, "%s", err ? err : "cannot save the input history");
		free(err);
	}
}

void
action_send(struct ui *u)
{
	const char *t = input_text(&u->in);
	if (ui_blank(t))
		return;
	if (u->s.w == NULL) {
		ui_notice(u, 1, "no model is loaded: start llama2-chat with -m MODEL to chat");
		return;
	}
	if (!ui_not_busy(u))
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
		ui_session_notice(u);
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

void
action_regenerate(struct ui *u)
{
	if (u->s.w == NULL) {
		ui_notice(u, 1, "no model is loaded");
		return;
	}
	if (!ui_not_busy(u))
		return;
	if (session_regenerate(&u->s) != 0) {
		ui_session_notice(u);
		return;
	}
	int k = viewmodel_last(&u->vm, VM_ASSISTANT);
	if (k >= 0)
		viewmodel_truncate(&u->vm, k);
	viewmodel_begin(&u->vm, NULL);
}

void
action_edit_last(struct ui *u)
{
	if (u->s.w == NULL) {
		ui_notice(u, 1, "no model is loaded");
		return;
	}
	if (!ui_not_busy(u))
		return;
	int k = viewmodel_last(&u->vm, VM_USER);
	if (k < 0 || u->s.n_msgs < 2) {
		ui_notice(u, 1, "there is no message to edit");
		return;
	}
	u->editing = 1;
	u->edit_k = u->s.n_msgs - 2;
	input_set(&u->in, u->vm.msgs[k].text);
	free(u->msg);   /* the line above the input box says what is going on */
	u->msg = NULL;
}

void
action_copy_last(struct ui *u)
{
	int k = viewmodel_last(&u->vm, VM_ASSISTANT);
	if (k < 0 || u->vm.msgs[k].len == 0) {
		ui_notice(u, 1, "there is no reply to copy");
		return;
	}
	free(u->copy);
	u->copy = xstrdup(u->vm.msgs[k].text);
	ui_notice(u, 0, "copied the last reply (%zu bytes) to the clipboard", u->vm.msgs[k].len);
}

/* ---- worker events ------------------------------------------------------------------ */

void
action_drain_worker(struct ui *u)
{
	struct worker_event ev;
	while (u->s.w && worker_poll(u->s.w, &ev)) {
		session_event(&u->s, &ev);
		if (ev.type == WEV_LOADED && ev.seq == u->s.load_seq) {
			if (u->vm.state == VM_LOADING)
				u->vm.state = VM_IDLE;
			u->vm.ctx_used = ev.total;   /* the conversation now in the cache */
			if (u->s.notice)
				ui_notice(u, 0, "%s", u->s.notice);   /* e.g. why its snapshot was not used */
		}
		if (ev.seq == u->s.seq && ev.type != WEV_LOADED) {
			char *back = NULL;
			if (ev.type == WEV_OVERFLOW)
				ui_notice(u, 0, "%d older messages moved out of the context window", ev.dropped);
			if (viewmodel_event(&u->vm, &ev, &back)) {
				if (ev.type == WEV_ERROR) {
					ui_notice(u, 1, "%s", u->vm.error ? u->vm.error : "the request failed");
					if (back && u->in.len == 0)
						input_set(&u->in, back);
				} else if (u->s.error) {
					ui_session_notice(u);   /* e.g. the disk filled while saving */
				}
				convlist_reload(u);
			}
			free(back);
		}
		worker_event_free(&ev);
	}
}
