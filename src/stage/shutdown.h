/* shutdown.h -- the stage's end, in steps that never block the loop.
 *
 * Once the input has ended and the sink's last step is in, the stage
 * (1) drains the producer: every produced message acknowledged, within
 *     FLUSH_TIMEOUT_MS (at once when no broker is up: nothing can drain);
 * (2) drained: ends the open transaction (nothing in it after a clean
 *     stop) and commits the safe offsets; not drained: purges the
 *     producer, commits nothing and exits 1, saying how many messages were
 *     lost from the producer (a restart produces them again);
 * (3) leaves the consumer group (rd_kafka_consumer_close_queue), within
 *     LEAVE_TIMEOUT_MS, so that the next member's join does not wait for
 *     this one's session to time out;
 * then closes the loop's handles. A timer drives the steps, so signals,
 * HTTP and delivery reports are served meanwhile.
 *
 * A second SIGINT/SIGTERM (fs_shutdown_force) does not wait for anything
 * the broker has to answer: it logs what is not flushed or committed,
 * leaves the group as in (3) and ends the process with exit 1 -- without
 * joining the engine, whose sink may be blocked in a transaction call.
 * Loop thread only.
 */
#ifndef FS_SHUTDOWN_H
#define FS_SHUTDOWN_H

#include "stage_internal.h"

/* The input ended and the sink is through: starts the end (once). */
void fs_shutdown_begin(fs_stage *s);
/* A second signal: stop now, exit 1. */
void fs_shutdown_force(fs_stage *s);

#endif
