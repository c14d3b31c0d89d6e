/*
 * export.c: a loaded conversation written as Markdown, plain text, JSON or
 * one HTML page (see export.h for the JSON layout and the round-trip
 * promise).
 *
 * Invariants.  Rendering only reads the struct db_conv; it never touches
 * the database.  Human formats show times in local time, JSON in UTC.
 * Every string that reaches HTML goes through export_html_text, so a
 * message can never inject markup.  Files are created 0600 with O_EXCL
 * unless the caller forces, and a forced export goes through a temporary
 * file and rename() so an interrupted write never clobbers the old file.
 */
#include "storage/export.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/afile.h"
#include "common/utf8.h"
#include "storage/db_int.h"

/* Enough digits that any real read from text prints back the same text. */
#define EXPORT_JSON_REAL JSON_REAL_PRECISION(15)

int
export_format_parse(const char *name, enum export_format *f)
{
	static const struct { const char *name; enum export_format f; } names[] = {
		{ "md", EXPORT_MD }, { "markdown", EXPORT_MD }, { "txt", EXPORT_TXT },
		{ "text", EXPORT_TXT }, { "json", EXPORT_JSON }, { "html", EXPORT_HTML },
		{ "htm", EXPORT_HTML },
	};
	/* Any case: --format HTML, x.JSON. */
	for (size_t i = 0; name != NULL && i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(name, names[i].name) == 0) {
			*f = names[i].f;
			return 0;
		}
	return -1;
}

const char *
export_format_name(enum export_format f)
{
	switch (f) {
	case EXPORT_MD: return "md";
	case EXPORT_TXT: return "txt";
	case EXPORT_JSON: return "json";
	case EXPORT_HTML: return "html";
	}
	return "md";
}

void
export_time_iso(int64_t t, char *buf, size_t size)
{
	time_t s = (time_t)(t / 1000);
	int ms = (int)(t % 1000);
	if (ms < 0) {
		ms += 1000;
		s--;
	}
	struct tm tm;
	if (gmtime_r(&s, &tm) == NULL) {   /* out of range for the calendar */
		snprintf(buf, size, "%s", "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int
export_time_parse(const char *s, int64_t *t)
{
	struct tm tm = { 0 };
	int ms = 0, n = 0, len;
	if (s == NULL)
		return -1;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	s += n;
	if (*s == '.') {
		if (sscanf(s + 1, "%3d%n", &ms, &len) != 1 || len != 3)
			return -1;
		s += 1 + len;
	}
	if (*s == 'Z')
		s++;
	if (*s != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t sec = timegm(&tm);
	*t = (int64_t)sec * 1000 + ms;
	return 0;
}

/* Local "YYYY-MM-DD HH:MM" for people. */
static void
export_time_local(int64_t t, char *buf, size_t size)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;
	localtime_r(&s, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

/* ---- JSON ----------------------------------------------------------------- */

/*
 * A JSON string for s.  JSON text must be Unicode, but a reply cut off by
 * kill -9 can end inside a multi-byte character: such bytes become U+FFFD
 * here (the token ids, kept beside the text, are still exact).
 */
static json_t *
export_str(const char *s)
{
	if (s == NULL)
		return json_null();
	size_t len = strlen(s), i, l;
	if (utf8_valid(s, len))
		return json_stringn(s, len);
	char *fixed = malloc(len * 3 + 1);
	if (fixed == NULL)
		return NULL;
	size_t o = 0;
	for (i = 0; i < len;) {
		l = utf8_seq_len(s + i, len - i);
		if (l > 0) {
			memcpy(fixed + o, s + i, l);
			o += l;
			i += l;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(fixed, o);
	free(fixed);
	return j;
}

/* Stored JSON text as a value (NULL text -> null); NULL when unreadable. */
static json_t *
export_embed(const char *text)
{
	if (text == NULL)
		return json_null();
	return json_loads(text, JSON_DECODE_ANY, NULL);
}

static json_t *
export_time_json(int64_t t)
{
	char buf[EXPORT_TIME_LEN];
	export_time_iso(t, buf, sizeof buf);
	return json_string(buf);
}

json_t *
export_json(const struct db_conv *c, char **err)
{
	json_t *doc = json_object(), *model = json_object(), *msgs = json_array();
	json_t *params = export_embed(c->params);
	int bad = doc == NULL || model == NULL || msgs == NULL;

	if (params == NULL) {
		db_errf(err, "conversation %s: stored parameters are not valid JSON", c->pid);
		goto fail;
	}
	bad |= json_object_set_new(doc, "format", json_string(EXPORT_JSON_FORMAT));
	bad |= json_object_set_new(doc, "version", json_integer(EXPORT_JSON_VERSION));
	bad |= json_object_set_new(doc, "id", json_string(c->pid));
	bad |= json_object_set_new(doc, "title", export_str(c->title));
	bad |= json_object_set_new(doc, "created", export_time_json(c->created));
	bad |= json_object_set_new(doc, "updated", export_time_json(c->updated));
	bad |= json_object_set_new(model, "name", export_str(c->model_name));
	bad |= json_object_set_new(model, "fingerprint", export_str(c->model_fingerprint));
	bad |= json_object_set(doc, "model", model);
	bad |= json_object_set_new(doc, "preset", export_str(c->preset));
	bad |= json_object_set_new(doc, "system_prompt", export_str(c->system_prompt));
	bad |= json_object_set(doc, "params", params);
	bad |= json_object_set_new(doc, "leaf", c->leaf_position >= 0 ?
	    json_integer(c->leaf_position) : json_null());
	bad |= json_object_set(doc, "messages", msgs);

	for (int i = 0; !bad && c->messages != NULL && i < c->n_messages; i++) {
		const struct db_message *m = &c->messages[i];
		json_t *o = json_object(), *tokens, *stats, *sampler, *seed;
		if (o == NULL || json_array_append_new(msgs, o) != 0) {
			json_decref(o);
			bad = 1;
			break;
		}
		if (m->tokens != NULL) {
			tokens = json_array();
			for (size_t k = 0; tokens != NULL && k < m->n_tokens; k++)
				bad |= json_array_append_new(tokens, json_integer(m->tokens[k]));
		} else {
			tokens = json_null();
		}
		stats = export_embed(m->stats);
		sampler = export_embed(m->sampler);
		if (stats == NULL || sampler == NULL) {
			json_decref(tokens);
			json_decref(stats);
			json_decref(sampler);
			db_errf(err, "conversation %s: message %d has unreadable stored JSON", c->pid,
			    m->position);
			goto fail;
		}
		if (!m->has_seed) {
			seed = json_null();
		} else if (m->seed <= (uint64_t)INT64_MAX) {
			seed = json_integer((json_int_t)m->seed);
		} else {
			char buf[24];
			snprintf(buf, sizeof buf, "%" PRIu64, m->seed);
			seed = json_string(buf);
		}
		bad |= json_object_set_new(o, "id", json_integer(m->position));
		bad |= json_object_set_new(o, "parent", m->parent_position >= 0 ?
		    json_integer(m->parent_position) : json_null());
		bad |= json_object_set_new(o, "role", json_string(db_role_name(m->role)));
		bad |= json_object_set_new(o, "content", export_str(m->content != NULL ? m->content : ""));
		bad |= json_object_set_new(o, "tokens", tokens);
		bad |= json_object_set_new(o, "created", export_time_json(m->created));
		bad |= json_object_set_new(o, "finish", export_str(db_finish_name(m->finish)));
		bad |= json_object_set_new(o, "stats", stats);
		bad |= json_object_set_new(o, "sampler", sampler);
		bad |= json_object_set_new(o, "seed", seed);
	}
	if (bad) {
		db_errf(err, "conversation %s: out of memory (or text that is not UTF-8)", c->pid);
		goto fail;
	}
	json_decref(model);
	json_decref(msgs);
	json_decref(params);
	return doc;
fail:
	json_decref(doc);
	json_decref(model);
	json_decref(msgs);
	json_decref(params);
	return NULL;
}

/*
 * Write v as JSON for people and diffs: the document and each message one
 * key per line, every other value (token arrays, params, stats) on the
 * line of its key, so a long reply's token ids do not take a line each.
 */
static int
export_json_dump(const json_t *v, FILE *out, int depth)
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | EXPORT_JSON_REAL;
	int pretty = 0;
	if (json_is_object(v))
		pretty = (depth == 0 || depth == 2) && json_object_size(v) > 0;
	else if (json_is_array(v) && depth == 1 && json_array_size(v) > 0) {
		pretty = 1;
		for (size_t i = 0; i < json_array_size(v); i++)
			pretty &= json_is_object(json_array_get(v, i));
	}
	if (!pretty)
		return json_dumpf(v, out, flags);

	int ind = 2 * (depth + 1), rc = 0;
	if (json_is_array(v)) {
		fputs("[\n", out);
		for (size_t i = 0; i < json_array_size(v); i++) {
			fprintf(out, "%s%*s", i > 0 ? ",\n" : "", ind, "");
			rc |= export_json_dump(json_array_get(v, i), out, depth + 1);
		}
		fprintf(out, "\n%*s]", ind - 2, "");
		return rc;
	}
	const char *key;
	json_t *val;
	int first = 1;
	fputs("{\n", out);
	json_object_foreach((json_t *)v, key, val) {
		json_t *k = json_string(key);
		fprintf(out, "%s%*s", first ? "" : ",\n", ind, "");
		rc |= k == NULL || json_dumpf(k, out, flags) != 0;
		json_decref(k);
		fputs(": ", out);
		rc |= export_json_dump(val, out, depth + 1);
		first = 0;
	}
	fprintf(out, "\n%*s}", ind - 2, "");
	return rc;
}

/* ---- people's formats ------------------------------------------------------ */

/*
 * People's formats show the current branch.  For a tree (db_conv_load_tree)
 * that is the walk from the leaf up its parents; a branch load is already
 * it.  Returns the indexes into c->messages, root first, in a malloc'd
 * array (NULL when empty or out of memory, *n = 0).
 */
static int *
export_branch(const struct db_conv *c, int *n)
{
	*n = 0;
	if (c->messages == NULL || c->n_messages <= 0)
		return NULL;
	int *idx = malloc((size_t)c->n_messages * sizeof *idx);
	if (idx == NULL)
		return NULL;
	if (!c->tree) {
		for (int i = 0; i < c->n_messages; i++)
			idx[i] = i;
		*n = c->n_messages;
		return idx;
	}
	/* Messages are in position order, so a parent is found by going back. */
	int k = c->n_messages - 1, cnt = 0;
	if (c->leaf_position >= 0)
		while (k >= 0 && c->messages[k].position != c->leaf_position)
			k--;
	while (k >= 0 && cnt < c->n_messages) {
		idx[cnt++] = k;
		int want = c->messages[k].parent_position;
		if (want < 0)
			break;
		while (k >= 0 && c->messages[k].position != want)
			k--;
	}
	for (int i = 0; i < cnt / 2; i++) {
		int t = idx[i];
		idx[i] = idx[cnt - 1 - i];
		idx[cnt - 1 - i] = t;
	}
	*n = cnt;
	return idx;
}

/* A note "(alternative 2 of 3)" for a message that has siblings, or "". */
static void
export_alt_note(const struct db_message *m, char *buf, size_t size)
{
	if (m->n_siblings > 1)
		snprintf(buf, size, "alternative %d of %d", m->sibling + 1, m->n_siblings);
	else
		buf[0] = '\0';
}

static const char *
export_who(enum role r)
{
	switch (r) {
	case ROLE_SYSTEM: return "System";
	case ROLE_USER: return "You";
	case ROLE_ASSISTANT: return "Assistant";
	}
	return "You";
}

/* A note after a reply that did not end by itself, or NULL. */
static const char *
export_finish_note(enum finish f)
{
	switch (f) {
	case FINISH_LENGTH: return "cut off at the length limit";
	case FINISH_STOPPED: return "stopped";
	case FINISH_INTERRUPTED: return "interrupted, incomplete";
	default: return NULL;
	}
}

/* "remote engine, model NAME" for a reply a remote server wrote (its
 * stats say "engine": "remote"), else "" (local replies need no note). */
static void
export_engine_note(const struct db_message *m, char *buf, size_t n)
{
	buf[0] = '\0';
	if (m->role != ROLE_ASSISTANT || m->stats == NULL || strstr(m->stats, "\"remote\"") == NULL)
		return;
	json_t *j = json_loads(m->stats, 0, NULL);
	const char *engine = json_string_value(json_object_get(j, "engine"));
	const char *model = json_string_value(json_object_get(j, "model"));
	if (engine && strcmp(engine, "remote") == 0)
		snprintf(buf, n, "remote engine%s%s", model ? ", model " : "", model ? model : "");
	json_decref(j);
}

/* The one-line summary under the title: id, model, preset, date, count
 * (of the messages on the current branch). */
static void
export_meta_line(FILE *out, const struct db_conv *c)
{
	int count;
	free(export_branch(c, &count));
	char when[32];
	export_time_local(c->created, when, sizeof when);
	fprintf(out, "id %s", c->pid);
	if (c->model_name != NULL)
		fprintf(out, " \xc2\xb7 model %s", c->model_name);
	if (c->preset != NULL)
		fprintf(out, " \xc2\xb7 preset %s", c->preset);
	fprintf(out, " \xc2\xb7 %s \xc2\xb7 %d message%s", when, count, count == 1 ? "" : "s");
}

static void
export_md(const struct db_conv *c, FILE *out)
{
	fprintf(out, "# %s\n\n", c->title != NULL ? c->title : "Untitled conversation");
	fputc('*', out);
	export_meta_line(out, c);
	fputs("*\n", out);
	if (c->system_prompt != NULL && *c->system_prompt) {
		/* A block quote, line by line, so the prompt's own Markdown stays inside. */
		fputs("\n**System prompt**\n\n> ", out);
		for (const char *s = c->system_prompt; *s; s++) {
			fputc(*s, out);
			if (*s == '\n')
				fputs("> ", out);
		}
		fputc('\n', out);
	}
	int n, *idx = export_branch(c, &n);
	for (int i = 0; i < n; i++) {
		const struct db_message *m = &c->messages[idx[i]];
		char alt[48];
		export_alt_note(m, alt, sizeof alt);
		if (*alt)
			fprintf(out, "\n## %s *(%s)*\n\n%s\n", export_who(m->role), alt, m->content);
		else
			fprintf(out, "\n## %s\n\n%s\n", export_who(m->role), m->content);
		const char *note = export_finish_note(m->finish);
		if (note != NULL)
			fprintf(out, "\n*(%s)*\n", note);
	}
	free(idx);
}

static void
export_txt(const struct db_conv *c, FILE *out)
{
	fprintf(out, "%s\n", c->title != NULL ? c->title : "Untitled conversation");
	export_meta_line(out, c);
	fputc('\n', out);
	if (c->system_prompt != NULL && *c->system_prompt)
		fprintf(out, "\nSystem prompt:\n%s\n", c->system_prompt);
	int n, *idx = export_branch(c, &n);
	for (int i = 0; i < n; i++) {
		const struct db_message *m = &c->messages[idx[i]];
		char alt[48];
		export_alt_note(m, alt, sizeof alt);
		if (*alt)
			fprintf(out, "\n%s (%s):\n%s\n", export_who(m->role), alt, m->content);
		else
			fprintf(out, "\n%s:\n%s\n", export_who(m->role), m->content);
		const char *note = export_finish_note(m->finish);
		if (note != NULL)
			fprintf(out, "[%s]\n", note);
		char eng[300];
		export_engine_note(m, eng, sizeof eng);
		if (eng[0])
			fprintf(out, "[%s]\n", eng);
	}
	free(idx);
}

/* Escape text for HTML element content and attribute values.  Control
 * characters, which HTML forbids, are shown as their Control Pictures
 * (U+2400 + c, U+2421 for DEL) so nothing in a message is silently lost. */
static void
export_html_text(FILE *out, const char *s)
{
	for (; s != NULL && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
			unsigned cp = ch == 0x7f ? 0x2421 : 0x2400 + ch;
			fputc(0xE0 | (cp >> 12), out);
			fputc(0x80 | ((cp >> 6) & 0x3F), out);
			fputc(0x80 | (cp & 0x3F), out);
			continue;
		}
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fputc(*s, out); break;
		}
	}
}

static const char export_css[] =
	":root{color-scheme:light dark;--bg:#fff;--fg:#1d1d1f;--muted:#6e6e73;--user:#eef3ff;"
	"--bot:#f5f5f7;--sys:#fff8e6;--line:#d2d2d7}\n"
	"@media (prefers-color-scheme:dark){:root{--bg:#161618;--fg:#e8e8ed;--muted:#98989d;"
	"--user:#1f2a44;--bot:#232326;--sys:#3a3220;--line:#3a3a3c}}\n"
	"body{margin:0;background:var(--bg);color:var(--fg);"
	"font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif}\n"
	"main{max-width:46rem;margin:0 auto;padding:2rem 1rem}\n"
	"h1{font-size:1.5rem;margin:0 0 .25rem}\n"
	".meta{color:var(--muted);font-size:.875rem;margin:0 0 1.5rem}\n"
	".msg{border:1px solid var(--line);border-radius:.75rem;padding:.75rem 1rem;margin:0 0 1rem}\n"
	".msg.user{background:var(--user)}.msg.assistant{background:var(--bot)}"
	".msg.system{background:var(--sys)}\n"
	".who{font-weight:600;font-size:.875rem;margin-bottom:.25rem}\n"
	".text{white-space:pre-wrap;overflow-wrap:anywhere;"
	"font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9rem}\n"
	".note{color:var(--muted);font-style:italic;font-size:.875rem;margin-top:.5rem}\n";

static void
export_html(const struct db_conv *c, FILE *out)
{
	const char *title = c->title != NULL ? c->title : "Untitled conversation";
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	    "<meta name=\"generator\" content=\"llama2-chat\">\n<title>", out);
	export_html_text(out, title);
	fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", export_css);
	export_html_text(out, title);
	fputs("</h1>\n<p class=\"meta\">", out);
	/* The meta line is built from stored strings too: escape it whole. */
	char *meta = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&meta, &len);
	if (mf != NULL) {
		export_meta_line(mf, c);
		fclose(mf);
		export_html_text(out, meta);
	}
	free(meta);
	fputs("</p>\n", out);
	if (c->system_prompt != NULL && *c->system_prompt) {
		fputs("<section class=\"msg system\"><div class=\"who\">System prompt</div>"
		    "<div class=\"text\">", out);
		export_html_text(out, c->system_prompt);
		fputs("</div></section>\n", out);
	}
	int n, *idx = export_branch(c, &n);
	for (int i = 0; i < n; i++) {
		const struct db_message *m = &c->messages[idx[i]];
		char alt[48];
		export_alt_note(m, alt, sizeof alt);
		fprintf(out, "<section class=\"msg %s\"><div class=\"who\">%s%s%s%s</div>"
		    "<div class=\"text\">", db_role_name(m->role), export_who(m->role),
		    *alt ? " <span class=\"note\">(" : "", alt, *alt ? ")</span>" : "");
		export_html_text(out, m->content);
		fputs("</div>", out);
		const char *note = export_finish_note(m->finish);
		if (note != NULL)
			fprintf(out, "<div class=\"note\">(%s)</div>", note);
		fputs("</section>\n", out);
	}
	free(idx);
	fputs("</main>\n</body>\n</html>\n", out);
}

int
export_write(const struct db_conv *c, enum export_format f, FILE *out, char **err)
{
	switch (f) {
	case EXPORT_JSON: {
		json_t *doc = export_json(c, err);
		if (doc == NULL)
			return -1;
		int rc = export_json_dump(doc, out, 0);
		json_decref(doc);
		if (rc != 0)
			return db_errf(err, "cannot write the export: %s", strerror(errno));
		fputc('\n', out);
		break;
	}
	case EXPORT_TXT:
		export_txt(c, out);
		break;
	case EXPORT_HTML:
		export_html(c, out);
		break;
	case EXPORT_MD:
	default:
		export_md(c, out);
		break;
	}
	if (fflush(out) != 0 || ferror(out))
		return db_errf(err, "cannot write the export: %s", strerror(errno));
	return 0;
}

int
export_file(const struct db_conv *c, enum export_format f, const char *path, int force,
    char **err)
{
	struct afile a = { .fd = -1 };
	int fd;

	if (!force) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				return db_errf(err, "%s: already exists (--force overwrites it)", path);
			return db_errf(err, "%s: cannot create: %s", path, strerror(errno));
		}
	} else {
		struct stat sb;
		if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
			return db_errf(err, "%s: not a regular file", path);
		if (afile_open(&a, path) != 0)
			return db_errf(err, "%s: cannot create: %s", path, strerror(errno));
		fd = dup(a.fd);          /* the stream below owns this one */
		if (fd < 0) {
			db_errf(err, "%s: %s", path, strerror(errno));
			afile_abort(&a);
			return -1;
		}
	}
	FILE *out = fdopen(fd, "w");
	if (out == NULL) {
		db_errf(err, "%s: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	char *werr = NULL;
	int rc = export_write(c, f, out, &werr);
	if (fclose(out) != 0 && rc == 0)
		rc = db_errf(&werr, "cannot write the export: %s", strerror(errno));
	if (rc != 0) {
		db_errf(err, "%s: %s", path, werr != NULL ? werr : "write error");
		free(werr);
		goto fail;
	}
	if (force && afile_commit(&a) != 0)
		return db_errf(err, "%s: cannot replace: %s", path, strerror(errno));
	return 0;
fail:
	if (force)
		afile_abort(&a);
	else
		unlink(path);
	return -1;
}
