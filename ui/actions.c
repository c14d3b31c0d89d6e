/*
 * actions.c: what the interface does to the conversation: switch, start a
 * new chat, send, regenerate, edit, copy, and take the session's view
 * updates.  Every change goes through the session (app/session.h), which
 * keeps the worker and the database in step and says what changed as view
 * updates; the view model applies them, so what the user sees is what the
 * session holds.  Messages are named by their ids.
 */
#include "ui/ui_draw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
action_switch_to(struct ui *u, int64_t id, int64_t msg)
{
	if (!ui_need_db(u) || !ui_not_busy(u))
		return;
	if (id != session_conv(u->s) || msg == 0) {
		if (session_switch(u->s, id) != 0) {
			ui_session_notice(u);
			return;
		}
		u->editing = 0;
		action_drain(u);
	}
	int k = msg != 0 ? viewmodel_find(&u->vm, msg) : -1;
	if (k >= 0 && u->chat_w > 0) {
		viewmodel_layout(&u->vm, u->chat_w);
		viewmodel_scroll_to(&u->vm, k, u->chat_h);
	} else {
		viewmodel_scroll_end(&u->vm);
	}
}

void
action_new_chat(struct ui *u)
{
	if (!ui_not_busy(u))
		return;
	if (session_new_chat(u->s) != 0) {
		ui_session_notice(u);
		return;
	}
	action_drain(u);
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

static int
need_model(struct ui *u, const char *what)
{
	if (u->has_model)
		return 1;
	ui_notice(u, 1, "%s", what);
	return 0;
}

void
action_send(struct ui *u)
{
	const char *t = input_text(&u->in);
	if (ui_blank(t))
		return;
	if (!need_model(u, "no model is loaded: start llama2-chat with -m MODEL to chat") || !ui_not_busy(u))
		return;
	char *text = xstrdup(t);
	int64_t before = session_conv(u->s);
	int rc = u->editing ? session_edit(u->s, u->edit_id, text) : session_send(u->s, text);
	if (rc != 0) {
		ui_session_notice(u);
		free(text);
		return;
	}
	free(u->msg);   /* a new request: old news goes */
	u->msg = NULL;
	input_history_add(&u->in, text);
	input_clear(&u->in);
	save_history(u);
	u->editing = 0;
	action_drain(u);
	if (before != session_conv(u->s))
		convlist_reload(u);
	free(text);
}

void
action_regenerate(struct ui *u)
{
	if (!need_model(u, "no model is loaded") || !ui_not_busy(u))
		return;
	if (session_regenerate(u->s) != 0) {
		ui_session_notice(u);
		return;
	}
	action_drain(u);
}

void
action_edit_last(struct ui *u)
{
	if (!need_model(u, "no model is loaded") || !ui_not_busy(u))
		return;
	int64_t id = session_last_user(u->s);
	int k = id != 0 ? viewmodel_find(&u->vm, id) : -1;
	if (k < 0) {
		ui_notice(u, 1, "there is no message to edit");
		return;
	}
	u->editing = 1;
	u->edit_id = id;
	input_set(&u->in, u->vm.msgs[k].text);
	free(u->msg);   /* the line above the input box says what is going on */
	u->msg = NULL;
}

void
action_copy_last(struct ui *u)
{
	int k = viewmodel_last(&u->vm, ROLE_ASSISTANT);
	if (k < 0 || u->vm.msgs[k].len == 0) {
		ui_notice(u, 1, "there is no reply to copy");
		return;
	}
	free(u->copy);
	u->copy = xstrdup(u->vm.msgs[k].text);
	ui_notice(u, 0, "copied the last reply (%zu bytes) to the clipboard", u->vm.msgs[k].len);
}

/* ---- the session's updates ------------------------------------------------------------ */

void
action_drain(struct ui *u)
{
	struct session_update up;
	while (session_poll(u->s, &up)) {
		int ended = viewmodel_apply(&u->vm, &up);
		if (ended < 0)
			screen_fatal("out of memory");
		switch (up.type) {
		case SU_NOTICE:
			ui_notice(u, up.err, "%s", up.text ? up.text : "");
			break;
		case SU_OVERFLOW:
			ui_notice(u, 0, "%d older messages moved out of the context window", up.done);
			break;
		case SU_FAILED:
			ui_notice(u, 1, "%s", up.text ? up.text : "the request failed");
			if (up.back && u->in.len == 0)
				input_set(&u->in, up.back);
			break;
		case SU_CLEAR:
			u->editing = 0;
			break;
		default:
			break;
		}
		if (ended)
			convlist_reload(u);
		session_update_free(&up);
	}
}
