/* latency.c -- close -> acknowledged latency samples (latency.h). */
#include "latency.h"

typedef struct pending {
    uint64_t records_end, src_ns;
} pending;

void fs_ack_latency_init(fs_ack_latency *l)
{
    *l = (fs_ack_latency){0};
    fs_fifo_init(&l->pending, sizeof(pending));
    fs_sketch_init(&l->us);
}

void fs_ack_latency_free(fs_ack_latency *l)
{
    fs_fifo_free(&l->pending);
    fs_sketch_free(&l->us);
}

void fs_ack_latency_push(fs_ack_latency *l, uint64_t records_end, uint64_t src_ns)
{
    if (records_end <= l->last_end)
        return;
    *(pending *)fs_fifo_push(&l->pending) = (pending){records_end, src_ns};
    l->last_end = records_end;
}

void fs_ack_latency_settle(fs_ack_latency *l, uint64_t records_acked, uint64_t now_ns)
{
    const pending *p;
    while ((p = fs_fifo_front(&l->pending)) && p->records_end <= records_acked) {
        uint64_t from = p->src_ns;
        uint64_t ns = now_ns > from ? now_ns - from : 0;
        fs_sketch_add(&l->us, (int64_t)(ns / 1000));
        fs_latency_observe(&l->hist, (double)ns / 1e9);
        fs_fifo_pop(&l->pending);
    }
}

double fs_ack_latency_ms(const fs_ack_latency *l, double q)
{
    int64_t us;
    return fs_sketch_quantile(&l->us, q, &us) ? (double)us / 1000 : 0;
}
