/* generate.h -- deterministic synthetic touchpoint traffic (SPEC §6 `generate`).
 *
 * The same options (seed included) always produce the same bytes. Traffic is
 * shaped to exercise every funnel rule against the bundled configs (configs/):
 * B2B and B2C segments, >= 6 channels with tens of campaigns each (long-tail
 * popularity, sticky within a journey, some records without one), customers
 * who enter mid-funnel, skip stages, drop off, come back after the
 * conversion window, buy again and unsubscribe, apply a coupon (or not)
 * between cart and checkout, and onboard in any order. Timestamps advance by 1000/rate ms per event
 * on average from start_ts; disorder_ms > 0 shuffles them by up to that much (bounded disorder);
 * malformed_ppm > 0 replaces that many per million records with malformed ones (truncated, wrong
 * types, garbage bytes, ...).
 *
 * Two ways to get the records: fs_generate writes them all to a stream;
 * fs_gen_new / fs_gen_next / fs_gen_free hand them out one at a time with
 * the customer id as a key (to produce them to Kafka, or to stamp them with
 * the wall clock). fs_generate is a loop over fs_gen_next, so both give the
 * same records.
 */
#ifndef FS_GENERATE_H
#define FS_GENERATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "decode.h"

typedef struct fs_gen_opts {
    uint64_t events;
    uint64_t customers;
    uint64_t seed;          /* default 1 */
    fs_format format;       /* default msgpack */
    int64_t start_ts;       /* ms since epoch; default 1732280400000 (2024-11-22T13:00Z) */
    double rate;            /* events per second of event time; default 1000 */
    int64_t disorder_ms;    /* default 0 */
    uint32_t malformed_ppm; /* default 0 */
} fs_gen_opts;

void fs_gen_opts_default(fs_gen_opts *opts);

/* The event times a run of opts can write: *first the earliest (the first
 * record moved back by the whole disorder), *last the latest (the last
 * record's nominal time; with events == 0, the first's). False when either
 * lies outside the valid range FS_TS_MIN..FS_TS_MAX (event.h), whose events
 * the stage would reject. */
bool fs_gen_time_span(const fs_gen_opts *opts, int64_t *first, int64_t *last);

/* A record-at-a-time generator. */
typedef struct fs_gen fs_gen;

/* Copies opts. Returns NULL with errno = EINVAL when customers is 0 or rate
 * is not positive. Here events == 0 means "no end". The caller checks the
 * times (fs_gen_time_span) unless it overrides them (fs_gen_next). */
fs_gen *fs_gen_new(const fs_gen_opts *opts);

/* Encodes record i (the i-th call, from 0) into a buffer of g and points
 * *value at it: one MessagePack object, or one JSON line WITHOUT its '\n'.
 * *key is the record's customer_id string, malformed ones included (for
 * the malformed records that have none: NULL, *key_len 0). Both stay valid until the next call or
 * fs_gen_free. Returns 0, or 1 when opts->events records were handed out.
 *
 * ts_override INT64_MIN: the event time is start_ts + i * 1000 / rate moved
 * back by the disorder, exactly as fs_generate writes it. Any other value is
 * the record's ts instead (e.g. the wall clock); the random draw for the
 * disorder is still made and thrown away, so everything but ts stays the
 * same record for record. */
int fs_gen_next(fs_gen *g, int64_t ts_override, const char **value, size_t *value_len,
                const char **key, size_t *key_len);

void fs_gen_free(fs_gen *g);

/* Writes opts->events records to out (JSON: each line ends in '\n').
 * Returns 0, or -1 with errno set: EINVAL for bad opts (times outside the
 * valid range included), else a write error. */
int fs_generate(const fs_gen_opts *opts, FILE *out);

#endif
