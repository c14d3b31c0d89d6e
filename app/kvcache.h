/*
 * kvcache.h: the folder of KV snapshots ($XDG_CACHE_HOME/llama2-chat/kv/),
 * one file per conversation of a database, named "<pid>.<db>.kv" where
 * <db> is a hash of the database file's absolute path (a line of
 * kv/databases names each hash's file), kept under a size cap by evicting
 * the least recently used; and the `cache` command.  A snapshot holds the
 * conversation's current branch only, so the prefix two branches share is
 * never stored twice.
 */
#ifndef APP_KVCACHE_H
#define APP_KVCACHE_H

#include "app/cli.h"

/* malloc'd path of the snapshot of conversation pid of database db (its
 * file's path; folder created 0700), or NULL when no cache folder can be
 * had. */
char *kvcache_path(const char *db, const char *pid);
/* Remove that snapshot, if there is one (the conversation was deleted). */
void kvcache_remove(const char *db, const char *pid);
/* Remove the least recently used snapshots until the folder holds at most
 * cap bytes; never the file `keep`. */
void kvcache_evict(long long cap, const char *keep);
/* Mark a snapshot as just used (for eviction order). */
void kvcache_touch(const char *path);
/* llama2-chat cache [list|clear]: list names each snapshot's conversation
 * and database (title when it is the database in use). */
int cmd_cache(struct opts *o);

#endif
