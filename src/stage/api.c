/* api.c -- the stage's HTTP endpoints (api.h). */
#include "api.h"
#include "brokers.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "log.h"
#include "lookup.h"
#include "merge.h"
#include "metrics.h"
#include "util.h"

#define READY_MAX_LAG 100000 /* messages behind, over all partitions */

static int64_t partition_lag(fs_stage *s, int32_t p)
{
    int64_t lo, hi;
    const fs_part *ps = &s->parts.v[p];
    int32_t partition;
    const char *topic = fs_stage_topic_of(s, (uint32_t)p, &partition);
    if (ps->next < 0 ||
        rd_kafka_get_watermark_offsets(s->consumer, topic, partition, &lo, &hi) != 0 || hi < 0)
        return -1;
    return hi > ps->next ? hi - ps->next : 0;
}

static bool is_ready(fs_stage *s, int64_t *lag_total)
{
    bool any = false;
    *lag_total = 0;
    for (uint32_t p = 0; p < s->parts.n && p < s->n_input; p++) {
        if (!s->parts.v[p].assigned)
            continue;
        any = true;
        int64_t lag = partition_lag(s, (int32_t)p);
        if (lag > 0)
            *lag_total += lag;
    }
    return any && s->exit_code == 0 && s->phase == FS_STAGE_RUNNING && !s->restoring &&
           *lag_total < READY_MAX_LAG;
}

static void serve_metrics(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    (void)req;
    fs_stage *s = ctx;
    fs_metrics_partition *parts = fs_xcalloc(s->parts.n ? s->parts.n : 1, sizeof(*parts));
    size_t n = 0;
    for (uint32_t p = 0; p < s->parts.n && p < s->n_input; p++)
        if (s->parts.v[p].assigned)
            parts[n++] = (fs_metrics_partition){
                (int32_t)p,
                partition_lag(s, (int32_t)p),
                s->parts.v[p].committed,
                s->parts.v[p].idle,
                s->state_bytes ? atomic_load_explicit(&s->state_bytes[p], memory_order_relaxed) : 0,
                s->record_bytes ? atomic_load_explicit(&s->record_bytes[p], memory_order_relaxed)
                                : 0};
    bool merging = s->partials_index < s->parts.n && s->parts.v[s->partials_index].assigned;
    fs_merge_stats ms = fs_engine_merge_stats(s->engine);
    fs_engine_stats es = fs_engine_live_stats(s->engine);
    int64_t lag;
    fs_metrics m = {
        .engine = fs_engine_live_stats(s->engine),
        .consumed = s->consumed,
        .consumed_bytes = s->consumed_bytes,
        .records_acked = s->acked_records,
        .dead_letters_acked = s->acked_dead_letters,
        .commits = s->commits,
        .rebalances = s->rebalances,
        .producer_queue = rd_kafka_outq_len(s->producer),
        .restore_seconds = s->restore_seconds,
        .restored_keys = s->restored_keys,
        .checkpoints = s->checkpoints,
        .acked_watermark_ms = fs_commit_acked_wm(s->plan),
        .ready = is_ready(s, &lag),
        .parts = parts,
        .n_parts = n,
        .latency = &s->latency.hist,
        .merge = {.merging = merging,
                  .partials_lag = merging ? partition_lag(s, (int32_t)s->partials_index) : -1,
                  .partials_made = es.partials,
                  .partial_bytes = es.partial_bytes,
                  .partials_merged = merging ? ms.partials : 0,
                  .late_windows = ms.late_windows,
                  .duplicate_windows = ms.duplicate_windows,
                  .pending_windows = merging ? ms.pending_windows : 0,
                  .emitted_ms = merging ? ms.emitted : INT64_MIN},
        .faults = {.unkeyed = s->unkeyed,
                   .offsets_skipped = s->offsets_skipped,
                   .dead_letters_cut = atomic_load(&s->dead_letters_cut),
                   .input_pauses = s->input_pauses,
                   .input_paused = s->input_paused,
                   .brokers_up = s->brokers_down_at == 0},
    };
    fs_metrics_render(&m, &res->body);
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    free(parts);
}

/* Alive, and able to reach a broker: a stage that cannot will fail after
 * broker_timeout (brokers.h), and an orchestrator should know before. */
static void serve_health(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    (void)req;
    fs_stage *s = ctx;
    uint64_t down = fs_brokers_down_ms(s);
    if (!down) {
        fs_buf_puts(&res->body, "ok\n");
        return;
    }
    char text[120];
    snprintf(text, sizeof text, "no broker reachable for %" PRIu64 " ms\n", down);
    res->status = 503;
    fs_buf_puts(&res->body, text);
}

static void serve_ready(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    (void)req;
    fs_stage *s = ctx;
    int64_t lag;
    bool ready = is_ready(s, &lag);
    char text[160];
    snprintf(text, sizeof text, "%s: lag=%" PRId64 " phase=%s\n", ready ? "ready" : "not ready",
             lag, s->phase == FS_STAGE_RUNNING ? "running" : "stopping");
    res->status = ready ? 200 : 503;
    fs_buf_puts(&res->body, text);
}

static void serve_funnels(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    (void)req;
    fs_stage *s = ctx;
    fs_open_count *open;
    uint32_t n = fs_engine_open_counts(s->engine, &open);
    fs_board_render(s->board, fs_commit_acked_wm(s->plan), open, n, &res->body);
    free(open);
    res->content_type = "application/json";
}

static void json_error(fs_http_response *res, int status, const char *msg)
{
    res->status = status;
    fs_buf_puts(&res->body, "{\"error\":");
    fs_buf_json_str(&res->body, msg, strlen(msg));
    fs_buf_puts(&res->body, "}\n");
}

/* /api/journeys/<customer_id>, the id percent-encoded as a path segment, or
 * /api/journeys?id=<customer_id> for the ids a path cannot carry (h2o
 * resolves "." and ".." segments before routing). */
static void serve_journeys(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    fs_stage *s = ctx;
    res->content_type = "application/json";
    char id[FS_MAX_CUSTOMER_ID];
    int status;
    const char *error;
    long n = fs_lookup_id(req, id, sizeof id, &status, &error);
    if (n < 0)
        json_error(res, status, error);
    else
        fs_lookup_render(s->engine, s->cfg, id, (size_t)n, &res->body);
}

static void serve_dashboard(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    (void)ctx;
    if (req->path_len > 0 && !(req->path_len == 10 && !memcmp(req->path, "index.html", 10))) {
        res->status = 404;
        fs_buf_puts(&res->body, "not found\n");
        return;
    }
    fs_buf_put(&res->body, fs_embedded_dashboard_html, fs_embedded_dashboard_html_len);
    res->content_type = "text/html; charset=utf-8";
}

void fs_api_start(fs_stage *s, const fs_stage_opts *opts)
{
    s->board = fs_board_new(s->cfg);
    const fs_http_route routes[] = {
        {"/metrics", serve_metrics, s},       {"/health", serve_health, s},
        {"/ready", serve_ready, s},           {"/api/funnels", serve_funnels, s},
        {"/api/journeys", serve_journeys, s}, {"/", serve_dashboard, s},
    };
    size_t n = sizeof(routes) / sizeof(*routes);
    char err[256];
    s->http = fs_http_start(&s->loop, s->cfg->http_listen, routes, n, err, sizeof err);
    if (!s->http && opts->http_any_port) {
        char any[160];
        const char *colon = strrchr(s->cfg->http_listen, ':');
        snprintf(any, sizeof any, "%.*s:0", (int)(colon ? colon - s->cfg->http_listen : 0),
                 s->cfg->http_listen);
        s->http = fs_http_start(&s->loop, any, routes, n, err, sizeof err);
    }
    if (!s->http) {
        fs_log(FS_LOG_ERROR, "no HTTP: metrics, API and dashboard are off", "error=\"%s\"", err);
        return;
    }
    fs_log(FS_LOG_INFO, "http listening", "listen=%s port=%d", s->cfg->http_listen,
           fs_http_port(s->http));
    if (opts->http_port)
        atomic_store(opts->http_port, fs_http_port(s->http));
}

void fs_api_stop(fs_stage *s)
{
    fs_http_stop(s->http);
}

void fs_api_free(fs_stage *s)
{
    fs_http_free(s->http);
    fs_board_free(s->board);
}

void fs_api_flow_from_sink(void *ctx, const fs_flow_json *rec)
{
    fs_stage *s = ctx;
    fs_board_post(s->board, rec->funnel, rec->json, rec->len);
}
