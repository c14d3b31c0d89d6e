/*
 * kvcache.h: the folder of KV snapshots ($XDG_CACHE_HOME/llama2-chat/kv/),
 * one file per conversation, kept under a size cap by evicting the least
 * recently used; and the `cache` command.
 */
#ifndef APP_KVCACHE_H
#define APP_KVCACHE_H

#include "app/cli.h"

/* malloc'd path of conversation pid's snapshot (folder created 0700), or
 * NULL when no cache folder can be had. */
char *kvcache_path(const char *pid);
/* Remove the least recently used snapshots until the folder holds at most
 * cap bytes; never the file `keep`. */
void kvcache_evict(long long cap, const char *keep);
/* Mark a snapshot as just used (for eviction order). */
void kvcache_touch(const char *path);
/* llama2-chat cache [list|clear] */
int cmd_cache(struct opts *o);

#endif
