/*
 * check_ui.c: the parts of the interface without curses (suite ui):
 * wrapping by display width (ASCII words, CJK double width, emoji,
 * combining marks, text wider than the line), the sanitizer, the line
 * editor (UTF-8 moves, Ctrl-A/E/W/U/K, Alt-B/F, newlines, rows, the
 * history walk and its file), markdown spans and the conversation view
 * model (streaming, done, stop, error, layout and scrolling anchors).
 * Table-driven cases print their index when they fail.
 */
#include <check.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/testutil.h"
#include "ui/ui_int.h"

static void
utf8_locale(void)
{
	if (setlocale(LC_ALL, "C.UTF-8") == NULL)
		setlocale(LC_ALL, "C.utf8");
}

/* The lines of s wrapped at width, joined by '|'. */
static char *
wrapped(const char *s, int width, int hard)
{
	struct wrap_line *l;
	int n = hard ? wrap_hard(s, strlen(s), width, &l) : wrap_lines(s, strlen(s), width, &l);
	ck_assert_int_ge(n, 1);
	char *out = calloc(strlen(s) + (size_t)n + 1, 1);
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(out, "|");
		strncat(out, s + l[i].start, l[i].end - l[i].start);
		ck_assert_int_le(wrap_width(s + l[i].start, l[i].end - l[i].start), (width < 2 ? 2 : width));
	}
	free(l);
	return out;
}

START_TEST(test_widths)
{
	static const struct { const char *s; int w; } cases[] = {
		{ "hello", 5 },
		{ "", 0 },
		{ "中文", 4 },                      /* CJK: two columns each */
		{ "e\xcc\x81", 1 },                 /* e + combining acute */
		{ "\xf0\x9f\x98\x80", 2 },          /* emoji */
		{ "a\xf0\x9f\x91\x8d" "b", 4 },
		{ "한국어", 6 },
		{ "Привет", 6 },
	};
	utf8_locale();
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		ck_assert_msg(wrap_width(cases[i].s, strlen(cases[i].s)) == cases[i].w, "case %zu: width %d, want %d",
		    i, wrap_width(cases[i].s, strlen(cases[i].s)), cases[i].w);
}
END_TEST

START_TEST(test_wrap_words)
{
	static const struct { const char *s; int width; const char *want; } cases[] = {
		{ "hello world", 20, "hello world" },
		{ "hello world", 5, "hello|world" },
		{ "hello world", 8, "hello|world" },
		{ "hello  world foo", 11, "hello|world foo" },
		{ "abcdefghij", 4, "abcd|efgh|ij" },                     /* a word wider than the line */
		{ "", 10, "" },
		{ "a b c d e f", 3, "a b|c d|e f" },
		{ "中文中文中文", 5, "中文|中文|中文" },                    /* never half a wide character */
		{ "中文 中文", 4, "中文|中文" },
		{ "e\xcc\x81" "e\xcc\x81" "e\xcc\x81", 2, "e\xcc\x81" "e\xcc\x81|e\xcc\x81" },  /* marks stay */
		{ "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 3, "\xf0\x9f\x98\x80|\xf0\x9f\x98\x80|\xf0\x9f\x98\x80" },
		{ "中", 1, "中" },                                           /* wider than the line: alone */
		{ "ab   ", 2, "ab" },
		{ "  indented text", 10, "  indented|text" },
	};
	utf8_locale();
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *got = wrapped(cases[i].s, cases[i].width, 0);
		ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got '%s', want '%s'", i, got, cases[i].want);
		free(got);
	}
}
END_TEST

START_TEST(test_wrap_hard)
{
	utf8_locale();
	char *got = wrapped("hello world", 4, 1);
	ck_assert_str_eq(got, "hell|o wo|rld");
	free(got);
	got = wrapped("a中文b", 3, 1);
	ck_assert_str_eq(got, "a中|文b");
	free(got);
}
END_TEST

START_TEST(test_fit_prev)
{
	utf8_locale();
	const char *s = "a中e\xcc\x81" "b";
	int used;
	ck_assert_uint_eq(wrap_fit(s, strlen(s), 2, &used), 1);   /* 中 does not fit in one more */
	ck_assert_int_eq(used, 1);
	ck_assert_uint_eq(wrap_fit(s, strlen(s), 4, &used), 1 + 3 + 3);
	ck_assert_int_eq(used, 4);
	size_t end = strlen(s);
	size_t p = wrap_prev(s, end);
	ck_assert_uint_eq(p, end - 1);
	p = wrap_prev(s, p);          /* e + mark as one */
	ck_assert_uint_eq(p, 4);
	p = wrap_prev(s, p);
	ck_assert_uint_eq(p, 1);
	ck_assert_uint_eq(wrap_prev(s, p), 0);
	ck_assert_uint_eq(wrap_prev(s, 0), 0);
}
END_TEST

START_TEST(test_sanitize)
{
	utf8_locale();
	size_t n;
	char *c = wrap_sanitize("a\tb\x01" "c\xff" "d\ne", 9, 1, &n);
	ck_assert_str_eq(c, "a    b\xef\xbf\xbd" "c\xef\xbf\xbd" "d\ne");
	ck_assert_uint_eq(n, strlen(c));
	free(c);
	c = wrap_sanitize("x\ny", 3, 0, NULL);
	ck_assert_str_eq(c, "x\xe2\x86\xb5y");
	free(c);
	/* A combining mark with nothing before it gets a no-break space. */
	c = wrap_sanitize("\xcc\x81", 2, 1, NULL);
	ck_assert_str_eq(c, "\xc2\xa0\xcc\x81");
	free(c);
	/* Truncated sequence at the end. */
	c = wrap_sanitize("ab\xe4\xb8", 4, 1, NULL);
	ck_assert_str_eq(c, "ab\xef\xbf\xbd\xef\xbf\xbd");
	free(c);
}
END_TEST

/* ---- line editor ------------------------------------------------------------ */

START_TEST(test_input_moves)
{
	utf8_locale();
	struct input in;
	input_init(&in);
	input_insert(&in, "héllo 中文 wörld", strlen("héllo 中文 wörld"));
	ck_assert_uint_eq(in.cur, in.len);
	input_left(&in);                        /* before 'd' */
	input_left(&in);
	input_left(&in);
	input_left(&in);                        /* before 'ö'... */
	input_left(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, "wörld");
	input_left(&in);
	input_left(&in);                        /* over the space and 文 */
	ck_assert_str_eq(input_text(&in) + in.cur, "文 wörld");
	input_backspace(&in);                   /* deletes 中 whole */
	ck_assert_str_eq(input_text(&in), "héllo 文 wörld");
	input_home(&in);
	ck_assert_uint_eq(in.cur, 0);
	input_right(&in);
	input_right(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, "llo 文 wörld");
	input_delete(&in);
	ck_assert_str_eq(input_text(&in), "hélo 文 wörld");
	input_end(&in);
	ck_assert_uint_eq(in.cur, in.len);
	input_word_left(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, "wörld");
	input_word_left(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, "文 wörld");
	input_word_left(&in);
	ck_assert_uint_eq(in.cur, 0);
	input_word_right(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, " 文 wörld");
	input_word_right(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, " wörld");
	/* A letter with a combining mark moves and deletes as one. */
	input_clear(&in);
	input_insert(&in, "ae\xcc\x81z", 5);
	input_left(&in);
	input_left(&in);
	ck_assert_uint_eq(in.cur, 1);
	input_delete(&in);
	ck_assert_str_eq(input_text(&in), "az");
	input_free(&in);
}
END_TEST

START_TEST(test_input_kills)
{
	struct input in;
	input_init(&in);
	input_set(&in, "git commit -m message  ");
	input_kill_word(&in);                       /* Ctrl-W */
	ck_assert_str_eq(input_text(&in), "git commit -m ");
	input_kill_word(&in);
	ck_assert_str_eq(input_text(&in), "git commit ");
	input_word_left(&in);
	input_kill_line(&in);                       /* Ctrl-U */
	ck_assert_str_eq(input_text(&in), "commit ");
	ck_assert_uint_eq(in.cur, 0);
	input_kill_eol(&in);                        /* Ctrl-K */
	ck_assert_str_eq(input_text(&in), "");
	/* Newlines: Ctrl-A/E work on the current line; Ctrl-U at a line's
	 * start joins it to the previous one. */
	input_set(&in, "first");
	input_insert_cp(&in, '\n');
	input_insert(&in, "second", 6);
	ck_assert_str_eq(input_text(&in), "first\nsecond");
	input_home(&in);
	ck_assert_str_eq(input_text(&in) + in.cur, "second");
	input_end(&in);
	ck_assert_uint_eq(in.cur, in.len);
	input_kill_line(&in);
	ck_assert_str_eq(input_text(&in), "first\n");
	input_kill_line(&in);
	ck_assert_str_eq(input_text(&in), "first");
	input_free(&in);
}
END_TEST

START_TEST(test_input_layout)
{
	utf8_locale();
	struct input in;
	input_init(&in);
	struct wrap_line *rows;
	int crow, ccol;
	/* Width 6: rows of 5 columns, the last column is the cursor's. */
	input_set(&in, "abcdefgh\nxy");
	int n = input_layout(&in, 6, &rows, &crow, &ccol);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(rows[0].end, 5);
	ck_assert_int_eq(crow, 2);
	ck_assert_int_eq(ccol, 2);
	free(rows);
	ck_assert_int_eq(input_up(&in, 6), 0);
	ck_assert_str_eq(input_text(&in) + in.cur, "h\nxy");   /* row 1, column 2 */
	ck_assert_int_eq(input_up(&in, 6), 0);
	ck_assert_str_eq(input_text(&in) + in.cur, "cdefgh\nxy");
	ck_assert_int_eq(input_up(&in, 6), -1);
	ck_assert_int_eq(input_down(&in, 6), 0);
	ck_assert_int_eq(input_down(&in, 6), 0);
	ck_assert_int_eq(input_down(&in, 6), -1);
	/* Wide characters: the column counts display cells. */
	input_set(&in, "中文中文");
	n = input_layout(&in, 6, &rows, &crow, &ccol);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(crow, 1);
	ck_assert_int_eq(ccol, 4);
	free(rows);
	/* Words are not cut: the break is after a space, which stays on
	 * its row (every byte is on a row, for the cursor). */
	input_set(&in, "hello world again");
	n = input_layout(&in, 10, &rows, &crow, &ccol);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(rows[0].start, 0);
	ck_assert_uint_eq(rows[0].end, 6);      /* "hello " */
	ck_assert_uint_eq(rows[1].start, 6);
	ck_assert_uint_eq(rows[1].end, 12);     /* "world " */
	ck_assert_uint_eq(rows[2].end, 17);
	ck_assert_int_eq(crow, 2);
	ck_assert_int_eq(ccol, 5);
	free(rows);
	/* A word wider than the row is still cut. */
	input_set(&in, "abcdefghijklmnop");
	n = input_layout(&in, 10, &rows, &crow, &ccol);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(rows[0].end, 9);
	free(rows);
	/* An empty text is one row with the cursor at 0. */
	input_clear(&in);
	n = input_layout(&in, 10, &rows, &crow, &ccol);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(crow, 0);
	ck_assert_int_eq(ccol, 0);
	free(rows);
	input_free(&in);
}
END_TEST

START_TEST(test_input_history)
{
	struct input in;
	input_init(&in);
	input_history_add(&in, "one");
	input_history_add(&in, "two\nlines");
	input_history_add(&in, "two\nlines");     /* a repeat is kept once */
	input_history_add(&in, "");
	ck_assert_int_eq(in.nhist, 2);
	input_set(&in, "draft");
	ck_assert_int_eq(input_history_prev(&in), 0);
	ck_assert_str_eq(input_text(&in), "two\nlines");
	ck_assert_int_eq(input_history_prev(&in), 0);
	ck_assert_str_eq(input_text(&in), "one");
	ck_assert_int_eq(input_history_prev(&in), -1);
	ck_assert_int_eq(input_history_next(&in), 0);
	ck_assert_str_eq(input_text(&in), "two\nlines");
	ck_assert_int_eq(input_history_next(&in), 0);
	ck_assert_str_eq(input_text(&in), "draft");
	ck_assert_int_eq(input_history_next(&in), -1);

	/* The file: escapes survive, mode 0600, the cap holds. */
	char *dir = tmpdir_new();
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/history", dir), 0);
	input_history_add(&in, "back\\slash");
	char *err = NULL;
	ck_assert_int_eq(input_history_save(&in, path, &err), 0);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	struct input in2;
	input_init(&in2);
	in2.max_hist = 2;
	ck_assert_int_eq(input_history_load(&in2, path, &err), 0);
	ck_assert_int_eq(in2.nhist, 2);
	ck_assert_str_eq(in2.hist[0], "two\nlines");
	ck_assert_str_eq(in2.hist[1], "back\\slash");
	input_free(&in2);
	/* A missing file is an empty history. */
	input_init(&in2);
	ck_assert_int_eq(input_history_load(&in2, "/nonexistent/history", &err), 0);
	ck_assert_int_eq(in2.nhist, 0);
	input_free(&in2);
	free(path);
	tmpdir_remove(dir);
	input_free(&in);
}
END_TEST

/* ---- markdown ----------------------------------------------------------------- */

/* Line i's text with styled bytes shown as B(...)/C(...)/K(...). */
static char *
spans(const struct md_line *l)
{
	char *out = calloc(l->len * 4 + 16, 1);
	size_t o = 0;
	int cur = 0;
	for (size_t i = 0; i <= l->len; i++) {
		int st = i < l->len ? l->style[i] & (MD_BOLD | MD_CODE | MD_ITALIC | MD_LINK) : 0;
		if (st != cur) {
			if (cur)
				out[o++] = ')';
			if (st)
				o += (size_t)sprintf(out + o, "%s(", st == MD_BOLD ? "B" : st == MD_CODE ? "C" :
				    st == MD_ITALIC ? "I" : st == MD_LINK ? "L" : "K");
			cur = st;
		}
		if (i < l->len)
			out[o++] = l->text[i];
	}
	return out;
}

START_TEST(test_markdown_inline)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "plain", "plain" },
		{ "a **bold** b", "a B(bold) b" },
		{ "a `code` b", "a C(code) b" },
		{ "**a** and **b**", "B(a) and B(b)" },
		{ "** not bold", "** not bold" },
		{ "`unclosed", "`unclosed" },
		{ "`**x**`", "C(**x**)" },
		{ "**bold `code` bold**", "B(bold )K(code)B( bold)" },
		{ "2 ** 3", "2 ** 3" },
		{ "``", "``" },
		{ "**half", "**half" },
		{ "an *italic* word", "an I(italic) word" },
		{ "2 * 3 * 4", "2 * 3 * 4" },
		{ "*half", "*half" },
		{ "- item one", "\xe2\x80\xa2 item one" },
		{ "  * nested *em*", "  \xe2\x80\xa2 nested I(em)" },
		{ "+ plus", "\xe2\x80\xa2 plus" },
		{ "-not a list", "-not a list" },
		{ "see [the docs](https://x.org/a) now", "see L(the docs) (https://x.org/a) now" },
		{ "[half](", "[half](" },
		{ "**bold *and* more**", "B(bold )K(and)B( more)" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct md_doc d;
		ck_assert_int_eq(markdown_parse(cases[i].in, strlen(cases[i].in), &d), 0);
		ck_assert_int_eq(d.n, 1);
		char *got = spans(&d.lines[0]);
		ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got '%s', want '%s'", i, got, cases[i].want);
		free(got);
		markdown_free(&d);
	}
}
END_TEST

START_TEST(test_markdown_blocks)
{
	const char *t = "Here:\n```c\nint **p = `x`;\n```\nafter **b**\n~~~\nopen";
	struct md_doc d;
	ck_assert_int_eq(markdown_parse(t, strlen(t), &d), 0);
	ck_assert_int_eq(d.n, 7);
	ck_assert(!d.lines[0].block);
	ck_assert(d.lines[1].block && (d.lines[1].style[0] & MD_FENCE));
	ck_assert_str_eq(d.lines[1].text, "```c");
	ck_assert(d.lines[2].block && (d.lines[2].style[0] & MD_BLOCK));
	ck_assert_str_eq(d.lines[2].text, "int **p = `x`;");   /* no spans inside a block */
	ck_assert(d.lines[3].block);
	ck_assert(!d.lines[4].block);
	ck_assert_str_eq(d.lines[4].text, "after b");
	ck_assert(d.lines[6].block && (d.lines[6].style[0] & MD_BLOCK));   /* unclosed: runs to the end */
	markdown_free(&d);
	/* A heading, and an empty text is one empty line. */
	ck_assert_int_eq(markdown_parse("# Title", 7, &d), 0);
	ck_assert(d.lines[0].style[0] & MD_HEAD);
	markdown_free(&d);
	ck_assert_int_eq(markdown_parse("", 0, &d), 0);
	ck_assert_int_eq(d.n, 1);
	ck_assert_uint_eq(d.lines[0].len, 0);
	markdown_free(&d);
}
END_TEST

/* ---- view model --------------------------------------------------------------- */

/* The session's updates, as session_poll hands them out. */
static int64_t vm_next_id = 100;
static int64_t vm_reply_id;

static int
vm_up(struct viewmodel *vm, enum su_type type, int64_t id, enum role role, const char *text)
{
	struct session_update u = { .type = type, .id = id, .role = role, .text = (char *)text,
		.len = text ? strlen(text) : 0 };
	return viewmodel_apply(vm, &u);
}

/* A request: the user's message (none for regenerate), the streaming reply. */
static int64_t
vm_begin(struct viewmodel *vm, const char *user_text)
{
	int64_t uid = 0;
	if (user_text != NULL)
		ck_assert_int_eq(vm_up(vm, SU_MESSAGE, uid = vm_next_id++, ROLE_USER, user_text), 0);
	struct session_update r = { .type = SU_MESSAGE, .id = vm_reply_id = vm_next_id++, .role = ROLE_ASSISTANT,
		.text = "", .streaming = 1, .finish = FINISH_INTERRUPTED };
	ck_assert_int_eq(viewmodel_apply(vm, &r), 0);
	return uid;
}

static void
ev_token(struct viewmodel *vm, const char *t)
{
	ck_assert_int_eq(vm_up(vm, SU_TEXT, vm_reply_id, ROLE_ASSISTANT, t), 0);
}

START_TEST(test_vm_stream)
{
	utf8_locale();
	struct viewmodel vm;
	viewmodel_init(&vm);
	viewmodel_add(&vm, 1, ROLE_USER, "hi", FINISH_NONE);
	viewmodel_add(&vm, 2, ROLE_ASSISTANT, "hello there", FINISH_EOS);
	ck_assert_int_eq(viewmodel_layout(&vm, 40), 6);   /* header, text, blank each */
	ck_assert_int_eq(viewmodel_line(&vm, 0)->kind, VM_L_HEADER);
	ck_assert_str_eq(viewmodel_line(&vm, 0)->text, "You");
	ck_assert_int_eq(viewmodel_line(&vm, 4)->msg, 1);

	vm_begin(&vm, "tell me");
	ck_assert_int_eq(vm.n, 4);
	ck_assert_int_eq(vm.state, VM_WAITING);
	struct session_update pr = { .type = SU_PROGRESS, .id = vm_reply_id, .done = 3, .total = 9 };
	viewmodel_apply(&vm, &pr);
	ck_assert_int_eq(vm.state, VM_PROMPT);
	ck_assert_int_eq(vm.prog_total, 9);
	ev_token(&vm, "Once");
	ev_token(&vm, "");
	ev_token(&vm, " upon a time");
	ck_assert_int_eq(vm.state, VM_GENERATING);
	ck_assert_str_eq(vm.msgs[3].text, "Once upon a time");
	ck_assert_int_eq(viewmodel_layout(&vm, 10), 3 + 4 + 3 + 4);   /* "Once upon" | "a time" */
	struct session_update done = { .type = SU_FINISH, .id = vm_reply_id, .text = "Once upon a time.", .len = 17,
		.finish = FINISH_EOS };
	done.stats.reason = ENGINE_STOP_EOS;
	done.stats.tg_tps = 42.5;
	done.stats.ctx_used = 77;
	ck_assert_int_eq(viewmodel_apply(&vm, &done), 1);
	ck_assert_int_eq(vm.state, VM_IDLE);
	ck_assert_str_eq(vm.msgs[3].text, "Once upon a time.");
	ck_assert_int_eq(vm.msgs[3].finish, FINISH_EOS);
	ck_assert(!vm.msgs[3].streaming);
	ck_assert_int_eq(vm.ctx_used, 77);
	ck_assert(vm.tps == 42.5);
	/* Tokens after the end are not appended anywhere. */
	ev_token(&vm, "late");
	ck_assert_str_eq(vm.msgs[3].text, "Once upon a time.");
	/* Ctrl-R: the session removes the reply and streams a new one; the
	 * gauge no longer counts the old reply's 5 tokens. */
	int64_t old = vm_reply_id;
	done.stats.n_gen = 5;
	vm.msgs[3].ctx_start = -1;
	struct session_update fin2 = done;
	fin2.id = old;
	vm.msgs[3].streaming = 1;
	ck_assert_int_eq(viewmodel_apply(&vm, &fin2), 1);
	ck_assert_int_eq(vm.ctx_used, 77);
	struct session_update rm = { .type = SU_REMOVE, .id = old };
	viewmodel_apply(&vm, &rm);
	ck_assert_int_eq(vm.n, 3);
	ck_assert_int_eq(vm.ctx_used, 72);
	vm_begin(&vm, NULL);
	ev_token(&vm, "Again");
	ck_assert_int_eq(vm.ctx_used, 73);
	viewmodel_free(&vm);
}
END_TEST

START_TEST(test_vm_stop_error)
{
	struct viewmodel vm;
	viewmodel_init(&vm);
	vm_begin(&vm, "q1");
	ev_token(&vm, "partial");
	struct session_update done = { .type = SU_FINISH, .id = vm_reply_id, .text = "partial", .len = 7,
		.finish = FINISH_STOPPED };
	done.stats.reason = ENGINE_STOP_USER;
	ck_assert_int_eq(viewmodel_apply(&vm, &done), 1);
	ck_assert_int_eq(vm.state, VM_STOPPED);
	ck_assert_int_eq(vm.msgs[1].finish, FINISH_STOPPED);
	/* A failed request: the session removes its messages by id. */
	int64_t q2 = vm_begin(&vm, "q2");
	ck_assert_int_eq(vm.n, 4);
	ck_assert_int_eq(vm_up(&vm, SU_REMOVE, q2, ROLE_USER, NULL), 0);
	ck_assert_int_eq(vm_up(&vm, SU_FAILED, 0, ROLE_USER, "context full"), 1);
	ck_assert_int_eq(vm.n, 2);
	ck_assert_str_eq(vm.error, "context full");
	ck_assert_int_eq(vm.state, VM_FAILED);
	/* Regenerate (no user text): only the reply goes. */
	ck_assert_int_eq(vm_up(&vm, SU_REMOVE, vm.msgs[1].id, ROLE_USER, NULL), 0);
	vm_begin(&vm, NULL);
	ck_assert_int_eq(vm.n, 2);
	ck_assert_int_eq(vm_up(&vm, SU_REMOVE, vm_reply_id, ROLE_USER, NULL), 0);
	ck_assert_int_eq(vm_up(&vm, SU_FAILED, 0, ROLE_USER, "context full"), 1);
	ck_assert_int_eq(vm.n, 1);
	/* An id the view does not hold removes nothing. */
	ck_assert_int_eq(vm_up(&vm, SU_REMOVE, 999999, ROLE_USER, NULL), 0);
	ck_assert_int_eq(vm.n, 1);
	ck_assert_int_eq(viewmodel_last(&vm, ROLE_USER), 0);
	ck_assert_int_eq(viewmodel_last(&vm, ROLE_ASSISTANT), -1);
	viewmodel_free(&vm);
}
END_TEST

START_TEST(test_vm_scroll)
{
	utf8_locale();
	struct viewmodel vm;
	viewmodel_init(&vm);
	for (int i = 0; i < 10; i++)
		viewmodel_add(&vm, i + 1, i % 2 ? ROLE_ASSISTANT : ROLE_USER, "one two three four five six", FINISH_EOS);
	int total = viewmodel_layout(&vm, 100);   /* 3 lines each */
	ck_assert_int_eq(total, 30);
	ck_assert_int_eq(viewmodel_top(&vm, 10), 20);          /* following the end */
	vm_begin(&vm, "more");   /* 3 + 2 lines */
	ck_assert_int_eq(viewmodel_layout(&vm, 100), 35);
	ck_assert_int_eq(viewmodel_top(&vm, 10), 25);
	viewmodel_scroll(&vm, -10, 10);
	ck_assert_int_eq(viewmodel_top(&vm, 10), 15);
	ck_assert(!vm.follow);
	ck_assert_int_eq(vm.top_msg, 5);
	/* New text below does not move what is shown. */
	ev_token(&vm, "words");
	viewmodel_layout(&vm, 100);
	ck_assert_int_eq(viewmodel_top(&vm, 10), 15);
	/* A resize keeps the same message at the top. */
	viewmodel_layout(&vm, 10);   /* "one two" "three four" "five six": 5 lines each */
	ck_assert_int_eq(viewmodel_top(&vm, 10), vm.start[5]);
	/* Scrolling to the end follows again. */
	viewmodel_scroll(&vm, 1000, 10);
	ck_assert(vm.follow);
	viewmodel_scroll_home(&vm);
	ck_assert_int_eq(viewmodel_top(&vm, 10), 0);
	viewmodel_scroll_to(&vm, 3, 10);
	ck_assert_int_eq(viewmodel_top(&vm, 10), vm.start[3]);
	viewmodel_scroll_end(&vm);
	ck_assert_int_eq(viewmodel_top(&vm, 10), vm.total - 10);
	/* A view taller than the text starts at 0; width 1 does not break. */
	ck_assert_int_gt(viewmodel_layout(&vm, 1), 0);
	ck_assert_int_eq(viewmodel_top(&vm, 100000), 0);
	viewmodel_free(&vm);
}
END_TEST

START_TEST(test_vm_layout_content)
{
	utf8_locale();
	struct viewmodel vm;
	viewmodel_init(&vm);
	viewmodel_add(&vm, 1, ROLE_ASSISTANT, "Use **this**:\n```\nx\ty\n```\n中文中文", FINISH_EOS);
	int n = viewmodel_layout(&vm, 20);
	ck_assert_int_eq(n, 1 + 5 + 1);
	const struct vm_line *l = viewmodel_line(&vm, 1);
	ck_assert_int_eq((int)l->len, 9);
	ck_assert(l->style[4] & MD_BOLD);
	l = viewmodel_line(&vm, 3);
	ck_assert(l->block);
	ck_assert_int_eq(l->indent, 2);
	ck_assert(strncmp(l->text, "x    y", l->len) == 0);   /* the tab expanded */
	/* Narrow: the CJK line wraps at width 5 without splitting a character. */
	n = viewmodel_layout(&vm, 5);
	for (int i = 0; i < n; i++) {
		l = viewmodel_line(&vm, i);
		if (l->kind == VM_L_HEADER)
			continue;   /* clipped by the drawing code */
		ck_assert_msg(l->indent + wrap_width(l->text, l->len) <= 5, "line %d too wide", i);
	}
	/* An empty streaming reply is just its header. */
	viewmodel_clear(&vm);
	vm_begin(&vm, "x");
	ck_assert_int_eq(viewmodel_layout(&vm, 20), 3 + 2);
	viewmodel_free(&vm);
}
END_TEST

Suite *ui_suite(void);

Suite *
ui_suite(void)
{
	Suite *s = suite_create("ui");
	TCase *tc = tcase_create("wrap");
	tcase_add_test(tc, test_widths);
	tcase_add_test(tc, test_wrap_words);
	tcase_add_test(tc, test_wrap_hard);
	tcase_add_test(tc, test_fit_prev);
	tcase_add_test(tc, test_sanitize);
	suite_add_tcase(s, tc);
	tc = tcase_create("input");
	tcase_add_test(tc, test_input_moves);
	tcase_add_test(tc, test_input_kills);
	tcase_add_test(tc, test_input_layout);
	tcase_add_test(tc, test_input_history);
	suite_add_tcase(s, tc);
	tc = tcase_create("markdown");
	tcase_add_test(tc, test_markdown_inline);
	tcase_add_test(tc, test_markdown_blocks);
	suite_add_tcase(s, tc);
	tc = tcase_create("viewmodel");
	tcase_add_test(tc, test_vm_stream);
	tcase_add_test(tc, test_vm_stop_error);
	tcase_add_test(tc, test_vm_scroll);
	tcase_add_test(tc, test_vm_layout_content);
	suite_add_tcase(s, tc);
	return s;
}
