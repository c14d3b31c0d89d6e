/*
 * check_families_cli.c: the model families through the program and the
 * worker, beside check_families.c's golden cases.
 *
 * - refusals: a byte-level vocabulary with an unknown tokenizer.ggml.pre,
 *   and a chat template that is no known family, each one clear line (the
 *   latter naming --chat-template); an unknown --chat-template name is a
 *   usage error.
 * - overrides: --chat-template and the config's chat_template beat the
 *   file's template; info prints the family in use.
 * - end to end on the Llama 3 fixture: a reply stopped mid-way (worker_stop)
 *   is closed with <|eot_id|> and the next turn reuses the cache;
 *   `llama2-chat -m fixture-llama3-f16.gguf -p Hi -n 8` streams and saves,
 *   `-c` resumes from the KV snapshot, Ctrl-C mid-reply exits cleanly and
 *   keeps the reply as stopped.
 */
#include "tests/testutil.h"
#include "engine/chat.h"
#include "engine/worker.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EOT_ID 128009   /* <|eot_id|> in the Llama 3 vocabulary */

static struct engine_model *
open_model(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *path = fixture_path(rel);
	ck_assert_msg(path != NULL, "%s missing", rel);
	char *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	ck_assert_msg(m != NULL, "%s: %s", path, err);
	free(path);
	return m;
}

/* A header-only GGUF with a byte-level vocabulary and pre-tokenizer pre. */
static char *
write_bpe_header(const char *dir, const char *pre)
{
	const char *tokens[] = { "a", "b", "ab", "<|begin_of_text|>" };
	const char *merges[] = { "a b" };
	int32_t types[] = { 1, 1, 1, 3 };
	struct gguf_writer *w = gguf_writer_new();
	gguf_w_str(w, "general.architecture", "llama");
	gguf_w_u32(w, "llama.context_length", 64);
	gguf_w_u32(w, "llama.embedding_length", 8);
	gguf_w_u32(w, "llama.feed_forward_length", 16);
	gguf_w_u32(w, "llama.block_count", 1);
	gguf_w_u32(w, "llama.attention.head_count", 2);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
	gguf_w_str(w, "tokenizer.ggml.pre", pre);
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, 4);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, 4);
	gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
	gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 3);
	gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 3);
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/bpe-%s.gguf", dir, pre), 0);
	char *err = NULL;
	ck_assert_msg(gguf_writer_write(w, path, NULL, NULL, &err) == 0, "%s", err);
	gguf_writer_free(w);
	return path;
}

START_TEST(test_unknown_pre_refused)
{
	char *dir = tmpdir_new();
	char *path = write_bpe_header(dir, "qwen2");
	char *err = NULL;
	ck_assert_ptr_null(engine_open(path, NULL, &err));
	ck_assert_msg(err && strstr(err, "'qwen2'") && strstr(err, "tokenizer.ggml.pre"), "%s", err);
	free(err);
	const char *argv[] = { "llama2-chat", "info", "-m", path, NULL };
	char *out = NULL, *serr = NULL;
	ck_assert_int_eq(run_binary(argv, NULL, &out, &serr, NULL, 30), 1);
	ck_assert_msg(strstr(serr, path) && strstr(serr, "qwen2") && strchr(serr, '\n') == strrchr(serr, '\n'),
	    "stderr: %s", serr);
	free(out);
	free(serr);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

static uint32_t rng = 7;

static int
tiny_data(void *ud, int idx, FILE *f, size_t nbytes)
{
	for (size_t i = 0; i < nbytes / 4; i++) {
		rng = rng * 1664525u + 1013904223u;
		float v = ((rng >> 8) / 16777216.0f - 0.5f) * 0.2f;
		fwrite(&v, 4, 1, f);
	}
	return 0;
}

/* A complete tiny SentencePiece model whose chat template is tmpl. */
static char *
write_tiny_with_template(const char *dir, const char *tmpl)
{
	enum { V = 261, D = 8, F = 16 };
	static char pieces[V][16];
	const char *pp[V];
	float scores[V];
	int32_t types[V];
	for (int i = 0; i < V; i++) {
		snprintf(pieces[i], 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "");
		if (i >= 3 && i < 259)
			snprintf(pieces[i], 16, "<0x%02X>", i - 3);
		if (i == 259)
			snprintf(pieces[i], 16, "\xe2\x96\x81");
		if (i == 260)
			snprintf(pieces[i], 16, "a");
		pp[i] = pieces[i];
		scores[i] = 0;
		types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
	}
	struct gguf_writer *w = gguf_writer_new();
	gguf_w_str(w, "general.architecture", "llama");
	gguf_w_u32(w, "llama.context_length", 64);
	gguf_w_u32(w, "llama.embedding_length", D);
	gguf_w_u32(w, "llama.feed_forward_length", F);
	gguf_w_u32(w, "llama.block_count", 1);
	gguf_w_u32(w, "llama.attention.head_count", 2);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_str(w, "tokenizer.ggml.model", "llama");
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", pp, NULL, V);
	gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, V);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, V);
	gguf_w_str(w, "tokenizer.chat_template", tmpl);
	struct { const char *n; int64_t a, b; } ts[] = {
		{ "token_embd.weight", D, V }, { "output_norm.weight", D, 1 }, { "blk.0.attn_norm.weight", D, 1 },
		{ "blk.0.attn_q.weight", D, D }, { "blk.0.attn_k.weight", D, D }, { "blk.0.attn_v.weight", D, D },
		{ "blk.0.attn_output.weight", D, D }, { "blk.0.ffn_norm.weight", D, 1 },
		{ "blk.0.ffn_gate.weight", D, F }, { "blk.0.ffn_down.weight", F, D }, { "blk.0.ffn_up.weight", D, F },
	};
	for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		int64_t ne[2] = { ts[i].a, ts[i].b };
		gguf_w_tensor(w, ts[i].n, QT_F32, ts[i].b == 1 ? 1 : 2, ne);
	}
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/tiny-tmpl.gguf", dir), 0);
	char *err = NULL;
	ck_assert_msg(gguf_writer_write(w, path, tiny_data, NULL, &err) == 0, "%s", err);
	gguf_writer_free(w);
	return path;
}

START_TEST(test_unknown_template)
{
	char *dir = tmpdir_new();
	char *path = write_tiny_with_template(dir, "{{ messages | made_up_format }}");
	const char *dialog = "[{\"role\": \"user\", \"content\": \"a\"}]";
	char *out = NULL, *err = NULL;
	/* Not a known family: refused, naming --chat-template. */
	const char *argv[] = { "llama2-chat", "render", "-m", path, NULL };
	ck_assert_int_eq(run_binary(argv, dialog, &out, &err, NULL, 30), 1);
	ck_assert_msg(strstr(err, "--chat-template") && strchr(err, '\n') == strrchr(err, '\n'), "stderr: %s", err);
	free(out);
	free(err);
	/* Chatting with it: one line before anything is sent, not one per
	 * message (the interface reported it on every message). */
	char *envs[3];
	ck_assert_int_ge(asprintf(&envs[0], "HOME=%s", dir), 0);
	ck_assert_int_ge(asprintf(&envs[1], "XDG_DATA_HOME=%s/data", dir), 0);
	envs[2] = NULL;
	const char *chat[] = { "llama2-chat", "chat", "-m", path, "-n", "2", NULL };
	ck_assert_int_eq(run_binary(chat, "one\ntwo\nthree\n", &out, &err, (const char *const *)envs, 30), 1);
	ck_assert_msg(strstr(err, "--chat-template") && strchr(err, '\n') == strrchr(err, '\n'), "stderr: %s", err);
	ck_assert_msg(out[0] == '\0', "stdout [%zu]: %s / stderr: %s", strlen(out), out, err);
	free(out);
	free(err);
	/* ... and nothing was stored. */
	const char *ls[] = { "llama2-chat", "list", NULL };
	ck_assert_int_eq(run_binary(ls, NULL, &out, &err, (const char *const *)envs, 30), 0);
	ck_assert_msg(strstr(out, "one") == NULL, "stored: %s", out);
	free(out);
	free(err);
	free(envs[0]);
	free(envs[1]);
	const char *info[] = { "llama2-chat", "info", "-m", path, NULL };
	ck_assert_int_eq(run_binary(info, NULL, &out, &err, NULL, 30), 0);
	ck_assert_msg(strstr(out, "chat format:  unknown"), "%s", out);
	free(out);
	free(err);
	/* Asked for by name, a format is used. */
	const char *forced[] = { "llama2-chat", "render", "-m", path, "--chat-template", "llama2", NULL };
	ck_assert_int_eq(run_binary(forced, dialog, &out, &err, NULL, 30), 0);
	ck_assert_msg(strcmp(out, "<s>[INST] a [/INST]\n") == 0, "%s", out);
	free(out);
	free(err);
	/* ... and a name that is none is a usage error. */
	const char *bogus[] = { "llama2-chat", "render", "-m", path, "--chat-template", "vicuna", NULL };
	ck_assert_int_eq(run_binary(bogus, dialog, &out, &err, NULL, 30), 2);
	ck_assert_msg(strstr(err, "--chat-template") && strstr(err, "vicuna"), "stderr: %s", err);
	free(out);
	free(err);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

/* --chat-template and the config key override the file's template. */
START_TEST(test_template_override)
{
	char *path = fixture_path("models/fixture-llama3-f16.gguf");
	char *dir = tmpdir_new(), *cfg;
	ck_assert_int_ge(asprintf(&cfg, "%s/config", dir), 0);
	FILE *f = fopen(cfg, "w");
	fputs("chat_template = chatml\n", f);
	fclose(f);
	const char *dialog = "[{\"role\": \"user\", \"content\": \"Hi\"}]";
	char *out = NULL, *err = NULL;
	const char *a1[] = { "llama2-chat", "render", "-m", path, "--config", cfg, NULL };
	ck_assert_int_eq(run_binary(a1, dialog, &out, &err, NULL, 30), 0);
	ck_assert_msg(strcmp(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n\n") == 0, "%s", out);
	free(out);
	free(err);
	const char *a2[] = { "llama2-chat", "info", "-m", path, "--chat-template", "mistral", NULL };
	ck_assert_int_eq(run_binary(a2, NULL, &out, &err, NULL, 30), 0);
	ck_assert_msg(strstr(out, "chat format:  mistral"), "%s", out);
	free(out);
	free(err);
	free(cfg);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

/* ---------------------------------------------------------- end to end */

/* Stopped mid-reply, the reply is closed with <|eot_id|> and the next turn
 * reuses the cache up to it. */
START_TEST(test_worker_stop_resume_llama3)
{
	struct engine_model *m = open_model("fixture-llama3-f16.gguf");
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 512;
	char *err = NULL;
	struct worker *w = worker_new(m, &p, &err);
	ck_assert_msg(w != NULL, "%s", err);
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	s.ignore_eos = 1;
	int seq = worker_send(w, "Go on.", &s, 300), ntok = 0, done = 0;
	struct worker_event ev, fin = { 0 };
	while (!done) {
		ck_assert(worker_wait(w, &ev, 60000));
		ck_assert_msg(ev.type != WEV_ERROR, "%s", ev.text);
		if (ev.seq == seq && ev.type == WEV_TOKEN && ++ntok == 3)
			worker_stop(w);
		if (ev.seq == seq && ev.type == WEV_DONE) {
			done = 1;
			fin = ev;
			continue;
		}
		worker_event_free(&ev);
	}
	ck_assert_int_eq(fin.stats.reason, ENGINE_STOP_USER);
	ck_assert_int_lt(fin.n_ids, 300);
	ck_assert_int_eq(fin.ids[fin.n_ids - 1], EOT_ID);
	worker_event_free(&fin);
	seq = worker_send(w, "And then?", &s, 4);
	done = 0;
	while (!done) {
		ck_assert(worker_wait(w, &ev, 60000));
		ck_assert_msg(ev.type != WEV_ERROR, "%s", ev.text);
		if (ev.seq == seq && ev.type == WEV_DONE) {
			done = 1;
			/* Everything before the new user turn was in the cache. */
			ck_assert_int_gt(ev.stats.n_reused, 10);
			ck_assert_int_lt(ev.stats.n_prompt, 20);
		}
		worker_event_free(&ev);
	}
	worker_free(w);
	engine_close(m);
}
END_TEST

/* Run the binary with env, wait until it has written at least `want` bytes
 * to stdout, interrupt it (SIGINT, as Ctrl-C) and return its exit status
 * (128 + signal if it died of one, -1 on timeout). */
static int
run_and_interrupt(const char *const *argv, const char *const *env, size_t want, int timeout_s)
{
	int o[2];
	ck_assert_int_eq(pipe(o), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(o[1], 1);
		close(o[0]);
		close(o[1]);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 2);
		for (int i = 0; env[i]; i++)
			putenv((char *)env[i]);
		execv(test_binary(), (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	size_t got = 0;
	char buf[256];
	time_t t0 = time(NULL);
	while (got < want && time(NULL) - t0 < timeout_s) {
		ssize_t r = read(o[0], buf, sizeof buf);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	kill(pid, SIGINT);
	while (read(o[0], buf, sizeof buf) > 0)
		;
	close(o[0]);
	int st;
	waitpid(pid, &st, 0);
	if (got < want)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(test_oneshot_llama3_binary)
{
	char *path = fixture_path("models/fixture-llama3-f16.gguf");
	char *dir = tmpdir_new();
	char e1[512], e2[512], e3[512], e4[512];
	snprintf(e1, sizeof e1, "XDG_DATA_HOME=%s/data", dir);
	snprintf(e2, sizeof e2, "XDG_CONFIG_HOME=%s/config", dir);
	snprintf(e3, sizeof e3, "XDG_CACHE_HOME=%s/cache", dir);
	snprintf(e4, sizeof e4, "HOME=%s", dir);
	const char *env[] = { e1, e2, e3, e4, "LLAMA2_CHAT_MODEL=", NULL };
	char *out = NULL, *err = NULL;
	const char *a1[] = { "llama2-chat", "-m", path, "-p", "Hi", "-n", "8", "--seed", "1", NULL };
	ck_assert_int_eq(run_binary(a1, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strlen(out) > 0, "no reply; stderr: %s", err);
	free(out);
	free(err);
	const char *a2[] = { "llama2-chat", "list", NULL };
	ck_assert_int_eq(run_binary(a2, NULL, &out, &err, env, 30), 0);
	ck_assert_msg(strstr(out, "Hi") != NULL, "not saved: %s", out);
	free(out);
	free(err);
	const char *a3[] = { "llama2-chat", "-m", path, "-c", "-p", "again", "-n", "4", "--verbose", NULL };
	ck_assert_int_eq(run_binary(a3, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strstr(err, "resumed") != NULL, "no resume from the snapshot: %s", err);
	free(out);
	free(err);
	/* Ctrl-C mid-reply: a clean exit, the partial reply kept as stopped,
	 * and the conversation resumes after it. */
	const char *a4[] = { test_binary(), "-m", path, "-c", "-p", "Tell me more", "--ignore-eos", "-n", "3000", NULL };
	ck_assert_int_eq(run_and_interrupt(a4, env, 24, 120), 130);
	const char *a5[] = { "llama2-chat", "-m", path, "-c", "-p", "after the stop", "-n", "4", "--verbose", NULL };
	ck_assert_int_eq(run_binary(a5, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strstr(err, "resumed") != NULL, "no resume after the stop: %s", err);
	free(out);
	free(err);
	const char *a6[] = { "llama2-chat", "list", NULL };
	ck_assert_int_eq(run_binary(a6, NULL, &out, &err, env, 30), 0);
	char id[16] = "";
	const char *nl = strchr(out, '\n');
	ck_assert_ptr_nonnull(nl);
	sscanf(nl + 1, "%15s", id);
	free(out);
	free(err);
	const char *a7[] = { "llama2-chat", "export", id, NULL };
	ck_assert_int_eq(run_binary(a7, NULL, &out, &err, env, 30), 0);
	ck_assert_msg(strstr(out, "(stopped)") && strstr(out, "after the stop"), "%s", out);
	free(out);
	free(err);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

Suite *families_cli_suite(void);

Suite *
families_cli_suite(void)
{
	Suite *s = suite_create("families_cli");
	TCase *tc = tcase_create("families_cli");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_unknown_pre_refused);
	tcase_add_test(tc, test_unknown_template);
	tcase_add_fixture_test(tc, test_template_override);
	tcase_add_fixture_test(tc, test_worker_stop_resume_llama3);
	tcase_add_fixture_test(tc, test_oneshot_llama3_binary);
	suite_add_tcase(s, tc);
	return s;
}
