/* brokers.c -- broker reachability (see brokers.h).
 *
 * librdkafka's own "all brokers down" error does not come reliably (a
 * coordinator connection counts as a broker of its own), so the stage
 * asks: every PROBE_EVERY_MS, a probe asks for the metadata of the topics
 * the producer knows (no topic named, so nothing is created) with a short
 * timeout, on the threadpool; its result comes back to the loop in
 * after_probe. A failed probe starts an outage (brokers_down_at, the loop
 * time it began; 0: none), a successful one ends it. `probing` says a probe
 * is out, and at most one is. A metadata request every second is nothing
 * to a broker, and it also sees a broker that accepts connections but
 * answers nothing (frozen).
 */
#include "brokers.h"

#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "util.h"

#define PROBE_TIMEOUT_MS 1000
#define PROBE_EVERY_MS   1000

typedef struct probe {
    uv_work_t work;
    fs_stage *s;
    rd_kafka_resp_err_t err;
} probe;

static probe the_probe; /* one stage per process, one probe at a time */

void fs_brokers_down(fs_stage *s)
{
    if (s->brokers_down_at)
        return;
    s->brokers_down_at = uv_now(&s->loop);
    if (!s->brokers_down_at)
        s->brokers_down_at = 1; /* 0 means up */
    fs_log(FS_LOG_WARN, "every broker is down",
           "broker_timeout_ms=%" PRId64
           " hint=\"waiting for one to come back; /health says 503 meanwhile\"",
           s->cfg->broker_timeout_ms);
}

uint64_t fs_brokers_down_ms(const fs_stage *s)
{
    if (!s->brokers_down_at)
        return 0;
    uint64_t now = uv_now((uv_loop_t *)&s->loop);
    return now > s->brokers_down_at ? now - s->brokers_down_at : 1;
}

static void run_probe(uv_work_t *w)
{
    probe *p = w->data;
    const struct rd_kafka_metadata *md = NULL;
    p->err = rd_kafka_metadata(p->s->producer, 0, NULL, &md, PROBE_TIMEOUT_MS);
    if (md)
        rd_kafka_metadata_destroy(md);
}

static void after_probe(uv_work_t *w, int status)
{
    probe *p = w->data;
    fs_stage *s = p->s;
    s->probing = false;
    if (status != 0)
        return;
    if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fs_brokers_down(s);
        return;
    }
    if (s->brokers_down_at) {
        fs_log(FS_LOG_INFO, "a broker is reachable again", "outage_ms=%" PRIu64,
               fs_brokers_down_ms(s));
        s->brokers_down_at = 0;
    }
}

void fs_brokers_check(fs_stage *s)
{
    if (s->probing || s->exit_code != 0 || s->end_step == FS_END_CLOSED)
        return;
    uint64_t down = fs_brokers_down_ms(s), now = uv_now(&s->loop);
    if (down > (uint64_t)s->cfg->broker_timeout_ms) {
        char why[200];
        snprintf(why, sizeof why,
                 "no broker reachable for %" PRIu64 " ms (broker_timeout); a restart goes on "
                 "from the last commit",
                 down);
        fs_stage_fail(s, why);
        return;
    }
    if (s->last_probe_at && now - s->last_probe_at < PROBE_EVERY_MS)
        return;
    s->last_probe_at = now;
    the_probe = (probe){.s = s};
    the_probe.work.data = &the_probe;
    s->probing = true;
    fs_xcheck(uv_queue_work(&s->loop, &the_probe.work, run_probe, after_probe), "uv_queue_work");
}
