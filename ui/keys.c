/*
 * keys.c: reading keys (Esc + key is Alt + key) and what each key does in
 * the main view or in a dialog.
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

/* ---- keys ------------------------------------------------------------------------------ */

/* Read one key without waiting: 1 and *k, or 0 when none is waiting. */
int
keys_read(struct key *k)
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
		} else if (r2 == KEY_CODE_YES && c2 == KEY_RESIZE) {
			/* A resize is never Alt+anything: the Esc stands alone
			 * (it stops the reply) and the resize comes next. */
			ungetch(KEY_RESIZE);
		} else if (r2 != ERR) {
			k->alt = 1;
			k->fn = r2 == KEY_CODE_YES;
			k->code = (int)c2;
		}
	}
	return 1;
}

static void
keys_main(struct ui *u, const struct key *k)
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
		case KEY_F(2): dialogs_open_rename(u); return;
		case KEY_F(3): dialogs_open_switcher(u); return;
		case KEY_F(4): dialogs_open_search(u); return;
		case KEY_F(5): action_regenerate(u); return;
		case KEY_F(6): action_edit_last(u); return;
		case KEY_F(7): dialogs_open_presets(u); return;
		case KEY_F(8): dialogs_open_delete(u); return;
		case KEY_F(9): dialogs_open_export(u); return;
		case KEY_PPAGE: viewmodel_scroll(&u->vm, -page, u->chat_h); return;
		case KEY_NPAGE: viewmodel_scroll(&u->vm, page, u->chat_h); return;
		case KEY_HOME: viewmodel_scroll_home(&u->vm); return;
		case KEY_END: viewmodel_scroll_end(&u->vm); return;
		case KEY_ENTER: action_send(u); return;
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
		case 'c': action_copy_last(u); return;
		case 'e': action_edit_last(u); return;
		case ',': action_alternative(u, -1); return;
		case '.': action_alternative(u, 1); return;
		case 'r': dialogs_open_rename(u); return;
		case 'D': dialogs_open_delete(u); return;
		case 'x': dialogs_open_export(u); return;
		case 'p': dialogs_open_presets(u); return;
		case 's': if (ui_not_busy(u)) sampling_open(u, 0); return;
		case 'o': dialogs_open_switcher(u); return;
		case 'l':
			u->list_on = !u->list_on;
			if (u->list_on && COLS < 80)
				ui_notice(u, 0, "the chat list needs 80 columns");
			return;
		case 'm':
			u->mouse = !u->mouse;
			screen_mouse(u->mouse);
			ui_notice(u, 0, u->mouse ? "mouse wheel on (Shift selects in most terminals)" : "mouse off");
			return;
		default:
			break;
		}
	} else {
		switch (k->code) {
		case '\r': action_send(u); return;
		case 27:
			if (session_busy(u->s))
				session_stop(u->s);
			else if (u->editing) {
				u->editing = 0;
				input_clear(&u->in);
				ui_notice(u, 0, "editing cancelled");
			} else {
				free(u->msg);
				u->msg = NULL;
			}
			return;
		case KEY_CTRL('C'):
			if (session_busy(u->s))
				session_stop(u->s);
			else
				dialogs_quit_ask(u);
			return;
		case KEY_CTRL('N'): action_new_chat(u); return;
		case KEY_CTRL('O'): dialogs_open_switcher(u); return;
		case KEY_CTRL('F'): dialogs_open_search(u); return;
		case KEY_CTRL('R'): action_regenerate(u); return;
		case KEY_CTRL('L'): clearok(curscr, TRUE); return;
		case '?':
			if (u->in.len == 0) {
				modal_help(&u->dlg);
				u->help_typed = 1;
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

void
keys_handle(struct ui *u, const struct key *k)
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
		/* "?what is this": the '?' opened help, but the next letter
		 * says it was the start of a message: close help and type both
		 * ('q' and '?' keep closing help, as its footer says). */
		if (u->dlg.kind == DLG_HELP && u->help_typed && !k->fn && !k->alt && k->code >= 0x20 &&
		    k->code != 0x7f && k->code != 'q' && k->code != '?') {
			modal_close(&u->dlg);
			u->help_typed = 0;
			input_insert_cp(&u->in, '?');
			editor_key(&u->in, k, COLS - convlist_width(u, COLS));
			return;
		}
		if (u->dlg.kind == DLG_HELP)
			u->help_typed = 0;
		enum modal_result r = modal_key(&u->dlg, k);
		if (r != DLG_CONT)
			dialogs_done(u, r);
		return;
	}
	keys_main(u, k);
}
