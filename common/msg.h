/*
 * msg.h: the enums a message carries wherever it goes (the engine's chat
 * format, the database, the session, the view), defined once.  Leaf: no
 * includes, nothing to link.
 */
#ifndef COMMON_MSG_H
#define COMMON_MSG_H

/* Who wrote a message.  The values are stored (by name) and exported. */
enum role { ROLE_SYSTEM = 0, ROLE_USER = 1, ROLE_ASSISTANT = 2 };

/*
 * Why a reply ended.  NONE for user and system messages.  EOS: the model
 * emitted end-of-sequence.  LENGTH: the token limit or the context ran
 * out.  STOPPED: the user stopped it.  INTERRUPTED: it never finished
 * (every reply is INTERRUPTED from the moment its row exists until it is
 * finished, so a process killed mid-reply leaves it marked that way).
 */
enum finish { FINISH_NONE, FINISH_EOS, FINISH_LENGTH, FINISH_STOPPED, FINISH_INTERRUPTED };

#endif
