/*
 * db_schema.c: the database schema as a list of migrations, and the built-in
 * presets that the first migration seeds.
 *
 * Invariants.  db_migrations[v - 1] takes a database from PRAGMA
 * user_version v - 1 to v; a published step is never edited, a change is a
 * new step appended at the end (db.c runs each step in its own
 * transaction together with the user_version bump).  The triggers keep the
 * FTS5 index (messages_fts, an external-content table over
 * messages.content) and the cached conversations.n_messages in step with
 * every insert, update and delete of a message, including the deletes
 * that ON DELETE CASCADE makes; the code never maintains either by hand.
 * Built-in presets are protected by triggers as well as by db.c, so no
 * write path can edit or lose them.
 */
#include "storage/db_int.h"

/* Meta's default system prompt for the LLaMA-2 chat models, as in the
 * reference code (llama/generation.py, July 2023). */
#define PROMPT_ASSISTANT \
	"You are a helpful, respectful and honest assistant. Always answer as helpfully as " \
	"possible, while being safe. Your answers should not include any harmful, unethical, " \
	"racist, sexist, toxic, dangerous, or illegal content. Please ensure that your " \
	"responses are socially unbiased and positive in nature.\n\n" \
	"If a question does not make any sense, or is not factually coherent, explain why " \
	"instead of answering something not correct. If you don''t know the answer to a " \
	"question, please don''t share false information."

#define PROMPT_CONCISE \
	"You are a helpful assistant who answers briefly. Give the answer first, in as few " \
	"words as the question allows. No greetings, no caveats, no summaries unless asked."

#define PROMPT_STORYTELLER \
	"You are a storyteller. Write vivid, engaging stories with well-drawn characters, " \
	"concrete detail and a clear beginning, middle and end. Follow the genre, length and " \
	"tone the user asks for, and keep the story suitable for all ages unless told otherwise."

#define PROMPT_TRANSLATOR \
	"You are a translator. Translate the text the user sends into English. Reply with the " \
	"translation only, without notes, quotes or explanations. Keep the meaning, tone and " \
	"formatting of the original. If the text is already in English, repeat it unchanged."

#define PROMPT_SENTIMENT \
	"You are a sentiment classifier. Read the text the user sends and answer with exactly " \
	"one word: positive, negative or neutral. Do not explain your answer."

#define PROMPT_SUMMARIZER \
	"You are a summarizer. Summarize the text the user sends in a few sentences or short " \
	"bullet points. Keep the key facts, names and numbers, and do not add anything that " \
	"is not in the text."

#define PROMPT_CODER \
	"You are an expert programmer. Write correct, clear and idiomatic code, with a short " \
	"explanation. Put code in fenced blocks that name the language. Point out bugs, edge " \
	"cases and security problems when you see them, and say so when you are unsure."

#define BUILTIN(name, prompt, params) \
	"INSERT INTO presets(name, system_prompt, params, builtin, created, updated) VALUES ('" \
	name "', '" prompt "', '" params "', 1, " NOW_MS ", " NOW_MS ");\n"

#define NOW_MS "CAST(strftime('%s', 'now') AS INTEGER) * 1000"

static const char migration_1[] =
	"CREATE TABLE conversations (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  pid TEXT NOT NULL UNIQUE,\n"                 /* public id, see db.h */
	"  title TEXT,\n"
	"  created INTEGER NOT NULL,\n"                 /* Unix ms */
	"  updated INTEGER NOT NULL,\n"
	"  model_name TEXT,\n"
	"  model_fingerprint TEXT,\n"
	"  system_prompt TEXT,\n"
	"  preset TEXT,\n"
	"  params TEXT CHECK (params IS NULL OR json_valid(params)),\n"
	"  n_messages INTEGER NOT NULL DEFAULT 0\n"     /* kept by the message triggers */
	");\n"
	/* `list` reads the newest first: this index makes it a 50-row walk. */
	"CREATE INDEX conversations_by_updated ON conversations(updated, id);\n"
	"CREATE TABLE messages (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,\n"
	"  position INTEGER NOT NULL CHECK (position >= 0),\n"
	"  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),\n"
	"  content TEXT NOT NULL DEFAULT '',\n"
	"  tokens BLOB,\n"                              /* int32 little-endian; NULL: not tokenized */
	"  created INTEGER NOT NULL,\n"
	"  finish TEXT CHECK (finish IS NULL OR finish IN ('eos', 'length', 'stopped', 'interrupted')),\n"
	"  stats TEXT CHECK (stats IS NULL OR json_valid(stats)),\n"
	"  sampler TEXT CHECK (sampler IS NULL OR json_valid(sampler)),\n"
	"  seed INTEGER,\n"                             /* uint64 stored as its int64 bit pattern */
	"  UNIQUE (conversation_id, position)\n"        /* also the index for loading and the FK */
	");\n"
	"CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', "
	"content_rowid='id', tokenize='unicode61 remove_diacritics 2');\n"
	"CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN\n"
	"  INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);\n"
	"  UPDATE conversations SET n_messages = n_messages + 1 WHERE id = new.conversation_id;\n"
	"END;\n"
	"CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN\n"
	"  INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);\n"
	"  UPDATE conversations SET n_messages = n_messages - 1 WHERE id = old.conversation_id;\n"
	"END;\n"
	"CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN\n"
	"  INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);\n"
	"  INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);\n"
	"END;\n"
	"CREATE TABLE presets (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,\n"
	"  system_prompt TEXT NOT NULL DEFAULT '',\n"
	"  params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params) AND json_type(params) = 'object'),\n"
	"  builtin INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1)),\n"
	"  created INTEGER NOT NULL,\n"
	"  updated INTEGER NOT NULL\n"
	");\n"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;\n"
	/* Sampling defaults per preset follow Meta's chat_completion (0.6 / 0.9)
	 * for the assistant; the others lean colder or warmer for their task. */
	BUILTIN("assistant", PROMPT_ASSISTANT, "{\"temperature\":0.6,\"top_p\":0.9}")
	BUILTIN("concise", PROMPT_CONCISE, "{\"temperature\":0.3,\"top_p\":0.9}")
	BUILTIN("storyteller", PROMPT_STORYTELLER, "{\"temperature\":0.9,\"top_p\":0.95,\"repeat_penalty\":1.1}")
	BUILTIN("translator", PROMPT_TRANSLATOR, "{\"temperature\":0.2,\"top_p\":0.9}")
	BUILTIN("sentiment", PROMPT_SENTIMENT, "{\"temperature\":0.0}")
	BUILTIN("summarizer", PROMPT_SUMMARIZER, "{\"temperature\":0.3,\"top_p\":0.9}")
	BUILTIN("coder", PROMPT_CODER, "{\"temperature\":0.2,\"top_p\":0.95}")
	"CREATE TRIGGER presets_builtin_update BEFORE UPDATE ON presets WHEN old.builtin BEGIN\n"
	"  SELECT RAISE(ABORT, 'built-in presets are read-only');\n"
	"END;\n"
	"CREATE TRIGGER presets_builtin_delete BEFORE DELETE ON presets WHEN old.builtin BEGIN\n"
	"  SELECT RAISE(ABORT, 'built-in presets are read-only');\n"
	"END;\n";

/*
 * Conversations as trees.  Every message gets a parent (NULL for a root):
 * alternatives (a regenerated reply, an edited question) are siblings
 * under the same parent.  `position` stays what it was, a number unique
 * within the conversation in the order messages were written, so a child
 * always has a larger position than its parent.  A conversation's `leaf`
 * is the last message of its current branch; NULL means "the message with
 * the largest position" (and is what a deleted leaf becomes).  Existing
 * chats become single branches: each message's parent is the one before
 * it.  The trigger keeps a parent inside its own conversation.
 */
static const char migration_2[] =
	"ALTER TABLE messages ADD COLUMN parent INTEGER REFERENCES messages(id) ON DELETE CASCADE;\n"
	"UPDATE messages SET parent = (SELECT p.id FROM messages p"
	" WHERE p.conversation_id = messages.conversation_id AND p.position < messages.position"
	" ORDER BY p.position DESC LIMIT 1);\n"
	"CREATE INDEX messages_by_parent ON messages(parent, position);\n"
	"ALTER TABLE conversations ADD COLUMN leaf INTEGER REFERENCES messages(id) ON DELETE SET NULL;\n"
	"UPDATE conversations SET leaf = (SELECT m.id FROM messages m"
	" WHERE m.conversation_id = conversations.id ORDER BY m.position DESC LIMIT 1);\n"
	"CREATE TRIGGER messages_parent_check BEFORE INSERT ON messages WHEN new.parent IS NOT NULL"
	" AND (SELECT p.conversation_id FROM messages p WHERE p.id = new.parent)"
	" IS NOT new.conversation_id BEGIN\n"
	"  SELECT RAISE(ABORT, 'the parent message belongs to another conversation');\n"
	"END;\n";

/* Substring search for scripts written without spaces (CJK): unicode61
 * makes a whole run of ideographs one token, so 東 could not find 東京.
 * A trigram index beside the word index, kept by its own triggers; the
 * 'rebuild' fills it from the messages already stored.  Self-contained:
 * it only adds objects. */
static const char migration_trigram[] =
	"CREATE VIRTUAL TABLE messages_tri USING fts5(content, content='messages', "
	"content_rowid='id', tokenize='trigram');\n"
	"INSERT INTO messages_tri(messages_tri) VALUES ('rebuild');\n"
	"CREATE TRIGGER messages_tri_ai AFTER INSERT ON messages BEGIN\n"
	"  INSERT INTO messages_tri(rowid, content) VALUES (new.id, new.content);\n"
	"END;\n"
	"CREATE TRIGGER messages_tri_ad AFTER DELETE ON messages BEGIN\n"
	"  INSERT INTO messages_tri(messages_tri, rowid, content) VALUES ('delete', old.id, old.content);\n"
	"END;\n"
	"CREATE TRIGGER messages_tri_au AFTER UPDATE OF content ON messages BEGIN\n"
	"  INSERT INTO messages_tri(messages_tri, rowid, content) VALUES ('delete', old.id, old.content);\n"
	"  INSERT INTO messages_tri(rowid, content) VALUES (new.id, new.content);\n"
	"END;\n";

const char *const db_migrations[] = { migration_1, migration_2, migration_trigram };
const int db_n_migrations = sizeof db_migrations / sizeof db_migrations[0];
