/* inbox.h -- what other threads tell the loop thread: delivery reports,
 * finished steps and the first failure.
 *
 * librdkafka runs the delivery callback on whichever thread polls the
 * producer (the loop, or the sink thread when fs_kafka_produce finds the
 * queue full); the sink thread reports the steps it finishes; any of them
 * may fail. Posting appends under a mutex; the loop takes everything posted
 * so far in one go (fs_inbox_take) and works on it outside the lock. The
 * inbox does not wake the loop: whoever posts does (deliver.c sends a
 * uv_async after every post). What an acknowledgement's number means is the
 * poster's business too (deliver.c tags records and dead letters).
 */
#ifndef FS_INBOX_H
#define FS_INBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commit.h"

#define FS_INBOX_FAILURE 256 /* bytes of a failure's text, with its NUL */

typedef struct fs_inbox_step {
    fs_commit_step step;
    uint64_t src_ns;     /* when the batch that closed its windows was published */
    bool merge_complete; /* fs_step_info.merge_complete */
} fs_inbox_step;

/* What was posted, in posting order (per kind). */
typedef struct fs_inbox_mail {
    uint64_t *acks;
    size_t n_acks;
    fs_inbox_step *steps;
    size_t n_steps;
    bool failed;
    char failure[FS_INBOX_FAILURE]; /* the first failure posted, if failed */
} fs_inbox_mail;

typedef struct fs_inbox {
    pthread_mutex_t lock;
    fs_inbox_mail mail; /* under lock */
    size_t cap_acks, cap_steps;
} fs_inbox;

void fs_inbox_init(fs_inbox *in);
void fs_inbox_free(fs_inbox *in);
/* Any thread. */
void fs_inbox_post_ack(fs_inbox *in, uint64_t ack);
void fs_inbox_post_step(fs_inbox *in, const fs_inbox_step *step);
/* Keeps the first failure (truncated to FS_INBOX_FAILURE - 1 bytes) until
 * it is taken; later ones are dropped. */
void fs_inbox_post_failure(fs_inbox *in, const char *why);
/* Moves everything posted so far to *out, leaving the inbox empty; the
 * caller frees it with fs_inbox_mail_free. */
void fs_inbox_take(fs_inbox *in, fs_inbox_mail *out);
void fs_inbox_mail_free(fs_inbox_mail *m);

#endif
