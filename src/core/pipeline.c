/* pipeline.c -- the embedding API of include/funnelstream.h over the engine.
 *
 * A pipeline owns one engine and at most one open batch. push appends a
 * message to the open batch and publishes it when it is full, so messages
 * reach the engine in push order and in batches big enough to spread
 * decoding over every core. feed_fd first publishes the open batch, then
 * lets the replay source cut the stream, which keeps file order. finish
 * publishes whatever is open as the last batch and joins the engine.
 */
#include "funnelstream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "replay.h"
#include "util.h"

struct fs_pipeline {
    fs_config *cfg;
    fs_engine *engine;
    fs_batch *open; /* NULL when no batch is being filled */
    bool finished;
};

int fs_pipeline_new(const char *config_path, unsigned threads, fs_record_cb on_record, void *ctx,
                    fs_pipeline **out, char *err, size_t err_len)
{
    *out = NULL;
    fs_config *cfg = fs_config_load(config_path, err, err_len);
    if (!cfg)
        return -1;
    fs_pipeline *p = fs_xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    fs_output output = {.write = on_record, .ctx = ctx, .format = cfg->output_format};
    p->engine = fs_engine_new(cfg, threads ? threads : fs_config_threads(cfg), output);
    *out = p;
    return 0;
}

static void publish_open(fs_pipeline *p, bool last)
{
    if (!p->open && last)
        p->open = fs_engine_batch_get(p->engine, p->cfg->input_format);
    if (p->open)
        fs_engine_batch_publish(p->engine, p->open, last);
    p->open = NULL;
}

void fs_pipeline_push(fs_pipeline *p, const void *msg, size_t len)
{
    if (p->finished)
        return;
    if (p->open && p->open->n > 0 && p->open->len + len > p->open->cap)
        publish_open(p, false);
    if (!p->open)
        p->open = fs_engine_batch_get(p->engine, p->cfg->input_format);
    fs_batch *b = p->open;
    if (len > FS_MAX_MESSAGE) { /* counted, never copied */
        fs_batch_add(b, (uint32_t)b->len, 0, FS_REJECT_MALFORMED);
    } else {
        fs_batch_reserve(b, len);
        memcpy(b->buf + b->len, msg, len);
        fs_batch_add(b, (uint32_t)b->len, (uint32_t)len, FS_OK);
        b->len += len;
    }
    if (fs_batch_full(b))
        publish_open(p, false);
}

int fs_pipeline_feed_fd(fs_pipeline *p, int fd)
{
    if (p->finished)
        return 0;
    publish_open(p, false);
    return fs_replay_feed(p->engine, fd, p->cfg->input_format, false, NULL, NULL);
}

void fs_pipeline_finish(fs_pipeline *p, fs_pipeline_stats *stats)
{
    if (!p->finished) {
        publish_open(p, true);
        fs_engine_join(p->engine);
        p->finished = true;
    }
    if (!stats)
        return;
    fs_engine_stats st = fs_engine_get_stats(p->engine);
    *stats = (fs_pipeline_stats){
        .messages = st.messages,
        .valid = st.valid,
        .rejected = st.rejected,
        .late_events = st.late_events,
        .journeys_started = st.journeys_started,
        .journeys_completed = st.journeys_completed,
        .journeys_abandoned = st.journeys_abandoned,
        .journeys_excluded = st.journeys_excluded,
        .flow_records = st.flow_records,
        .cohort_records = st.cohort_records,
        .write_errors = st.write_errors,
    };
}

void fs_pipeline_free(fs_pipeline *p)
{
    if (!p)
        return;
    fs_pipeline_finish(p, NULL);
    fs_engine_free(p->engine);
    fs_config_free(p->cfg);
    free(p);
}
