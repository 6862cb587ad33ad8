/* brokers.h -- whether the stage can reach a broker, and what it does when
 * it cannot.
 *
 * librdkafka reconnects by itself, but never says when a broker is back,
 * and not reliably when the last one went. So the idle timer probes, once
 * a second, with a metadata request on the threadpool (never on the loop):
 * no answer starts an outage, an answer ends it. During an outage /health
 * says 503, and the end of the stage does not wait for acknowledgements
 * that cannot come (shutdown.h); after `broker_timeout` without a broker
 * the stage fails (exit 1) saying so, instead of waiting forever. Loop
 * thread only.
 */
#ifndef FS_BROKERS_H
#define FS_BROKERS_H

#include "stage_internal.h"

/* Every broker connection is down (librdkafka said so, or a probe found
 * none): the first call of an outage starts its clock. */
void fs_brokers_down(fs_stage *s);
/* Timer: probes now and then; fails the stage after broker_timeout of
 * outage. */
void fs_brokers_check(fs_stage *s);
/* Milliseconds the current outage has lasted; 0: a broker is up. */
uint64_t fs_brokers_down_ms(const fs_stage *s);

#endif
