/* stage.h -- `funnelstream run`: the engine between a Kafka input topic and
 * an output topic, driven by a libuv loop (stage.c explains the threads). */
#ifndef FS_STAGE_H
#define FS_STAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct fs_stage_opts {
    const fs_config *cfg;
    uint32_t threads; /* workers; 0: fs_config_threads */
    bool until_eof;   /* stop at the end of every assigned partition, watermark +inf */
    /* HTTP (http.listen): when the configured address is taken, fall back
     * to any free port instead of running without HTTP (the demo). */
    bool http_any_port;
    _Atomic int *http_port; /* if not NULL: set to the bound port (0: none) */
} fs_stage_opts;

/* Runs until SIGINT/SIGTERM (or the end, with until_eof). Returns the exit
 * code: 0 after a clean stop, 1 when the stage could not go on (broker,
 * delivery or configuration failure reported by librdkafka). */
int fs_stage_run(const fs_stage_opts *opts);

#endif
