/* inbox.c -- from any thread to the loop thread (inbox.h). */
#include "inbox.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void fs_inbox_init(fs_inbox *in)
{
    *in = (fs_inbox){0};
    fs_xcheck(pthread_mutex_init(&in->lock, NULL), "pthread_mutex_init");
}

void fs_inbox_free(fs_inbox *in)
{
    fs_inbox_mail_free(&in->mail);
    pthread_mutex_destroy(&in->lock);
}

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? 2 * *cap : 64;
    return fs_xrealloc(v, *cap * size);
}

void fs_inbox_post_ack(fs_inbox *in, uint64_t ack)
{
    pthread_mutex_lock(&in->lock);
    fs_inbox_mail *m = &in->mail;
    m->acks = grow(m->acks, &in->cap_acks, m->n_acks, sizeof(*m->acks));
    m->acks[m->n_acks++] = ack;
    pthread_mutex_unlock(&in->lock);
}

void fs_inbox_post_step(fs_inbox *in, const fs_inbox_step *step)
{
    pthread_mutex_lock(&in->lock);
    fs_inbox_mail *m = &in->mail;
    m->steps = grow(m->steps, &in->cap_steps, m->n_steps, sizeof(*m->steps));
    m->steps[m->n_steps++] = *step;
    pthread_mutex_unlock(&in->lock);
}

void fs_inbox_post_failure(fs_inbox *in, const char *why)
{
    pthread_mutex_lock(&in->lock);
    if (!in->mail.failed) {
        snprintf(in->mail.failure, sizeof(in->mail.failure), "%s", why);
        in->mail.failed = true;
    }
    pthread_mutex_unlock(&in->lock);
}

void fs_inbox_take(fs_inbox *in, fs_inbox_mail *out)
{
    pthread_mutex_lock(&in->lock);
    *out = in->mail;
    in->mail = (fs_inbox_mail){0};
    in->cap_acks = in->cap_steps = 0;
    pthread_mutex_unlock(&in->lock);
}

void fs_inbox_mail_free(fs_inbox_mail *m)
{
    free(m->acks);
    free(m->steps);
    m->acks = NULL;
    m->steps = NULL;
    m->n_acks = m->n_steps = 0;
}
