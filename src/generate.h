/* generate.h -- deterministic synthetic touchpoint traffic (SPEC §6 `generate`).
 *
 * The same options (seed included) always produce the same bytes. Traffic is
 * shaped to exercise every funnel rule against the bundled configs (configs/):
 * B2B and B2C segments, >= 6 channels, customers who enter mid-funnel, skip
 * stages, drop off, come back after the conversion window, buy again and
 * unsubscribe. Timestamps advance by 1000/rate ms per event on average from
 * start_ts; disorder_ms > 0 shuffles them by up to that much (bounded
 * disorder); malformed_ppm > 0 replaces that many per million records with
 * malformed ones (truncated, wrong types, garbage bytes, ...).
 */
#ifndef FS_GENERATE_H
#define FS_GENERATE_H

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

/* Writes opts->events records to out. Returns 0, or -1 with errno set on a
 * write error. */
int fs_generate(const fs_gen_opts *opts, FILE *out);

#endif
