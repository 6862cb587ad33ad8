/* config.h -- the YAML configuration (SPEC §6), loaded and validated up front.
 *
 * fs_config_load either returns a fully validated config or fails with a
 * message naming the file, line, column and field at fault. Everything the
 * engine relies on is checked here, so later stages never re-validate:
 *   - at least one funnel; funnel names unique, 1..64 bytes, [A-Za-z0-9_.-]
 *   - every funnel has 2..FS_MAX_STAGES stages, each with >= 1 event type
 *   - an event type is in at most one stage of a funnel; exclude types in no stage
 *   - durations positive; window.hop divides window.size, size/hop <= 1000
 *   - limits.max_active_journeys from 1 to 2^32 - 1, with a policy
 *   - unknown keys are errors (a typo must not silently change results),
 *     except under kafka:, whose properties pass through untouched
 *   - no string holds a NUL (C strings would silently cut it short)
 *   - the YAML stays within FS_CONFIG_MAX_* below, aliases expanded, so a
 *     small file cannot make the loader use gigabytes or minutes
 */
#ifndef FS_CONFIG_H
#define FS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

#define FS_MAX_STAGES           32
#define FS_MAX_FUNNELS          64
#define FS_MAX_WINDOWS_PER_TIME 1000 /* window.size / window.hop */
/* Bounds on the YAML itself, checked before libfyaml builds the document
 * (whose memory and time grow with the expanded document, and quadratically
 * with the keys of one mapping): */
#define FS_CONFIG_MAX_BYTES    (1u << 20) /* the file */
#define FS_CONFIG_MAX_MAP_KEYS 1000       /* keys of any one mapping (kafka: included) */
#define FS_CONFIG_MAX_NODES    50000      /* nodes, with every alias expanded */
#define FS_CONFIG_MAX_DEPTH    64         /* nesting of mappings and sequences */

typedef enum fs_mode { FS_MODE_OPEN = 0, FS_MODE_STRICT = 1, FS_MODE_UNORDERED = 2 } fs_mode;

typedef struct fs_stage_cfg {
    char *name;
    char **events; /* event types that reach this stage */
    size_t n_events;
    bool optional;
} fs_stage_cfg;

typedef struct fs_funnel_cfg {
    char *name;
    fs_mode mode;
    int64_t conversion_window_ms; /* default 7d */
    char **exclude;
    size_t n_exclude;
    fs_stage_cfg *stages;
    size_t n_stages;
} fs_funnel_cfg;

/* delivery (SPEC §5): exactly_once (default) or at_least_once */
typedef enum fs_delivery {
    FS_DELIVERY_EXACTLY_ONCE = 0,
    FS_DELIVERY_AT_LEAST_ONCE = 1,
} fs_delivery;

/* limits.policy (README "Journey limits"): what a worker does with a new
 * customer when its share of limits.max_active_journeys is full. */
typedef enum fs_limit_policy {
    FS_LIMIT_NONE = 0,     /* no limits: section (memory grows with customers) */
    FS_LIMIT_REJECT_NEW,   /* the new customer's journeys do not start (counted) */
    FS_LIMIT_EVICT_OLDEST, /* the customer held longest is evicted (abandoned, counted) */
} fs_limit_policy;

#define FS_MAX_ACTIVE_JOURNEYS_MAX UINT32_MAX /* record indexes are 32-bit */

typedef struct fs_kv {
    char *key;
    char *value;
} fs_kv;

typedef struct fs_config {
    char *path;
    /* input: {topic, format} -- topic default "touchpoints", format default msgpack */
    char *input_topic;
    fs_format input_format;
    /* output: {topic, format} -- default "funnel-metrics", json */
    char *output_topic;
    fs_format output_format;
    /* dead_letter: {topic} -- NULL when not configured */
    char *dead_letter_topic;
    /* state: {topic} -- the changelog topic; NULL: "<group.id>-state" */
    char *state_topic;
    fs_delivery delivery;
    /* commit_interval (default 1s): how often state and offsets are
     * committed (one transaction each under exactly_once) */
    int64_t commit_interval_ms;
    /* broker_timeout (default 30s): how long `run` waits for a broker, at
     * start and once every connection is down, before it exits 1 */
    int64_t broker_timeout_ms;
    /* kafka: pass-through librdkafka properties, in file order */
    fs_kv *kafka;
    size_t n_kafka;
    /* window: {size (default 1m), hop (default = size), max_out_of_orderness
     * (default 0), idle_timeout (default 30s)} */
    int64_t window_size_ms;
    int64_t window_hop_ms;
    int64_t max_out_of_orderness_ms;
    int64_t idle_timeout_ms;
    /* cohort: {emit_interval (default = window.size)} */
    int64_t cohort_emit_interval_ms;
    /* threads: default 0 = number of online cores */
    int threads;
    /* in_flight_batches: batches of input the engine holds at once (each
     * up to 1 MiB of messages and their decoded events): how far the input
     * runs ahead of the workers before it pauses. 0: 2 x threads + 4 */
    int in_flight_batches;
    /* http: {listen} -- default "127.0.0.1:8080"; valid (fs_config_parse_listen) */
    char *http_listen;
    /* limits: {max_active_journeys, policy}, both required when the
     * section is given. max_active_journeys bounds the customer records of
     * the journey table (one per customer with any active journey, holding
     * its journeys of every funnel), split equally between the workers.
     * Absent: 0 and FS_LIMIT_NONE, no bound. */
    uint64_t max_active_journeys;
    fs_limit_policy limit_policy;
    fs_funnel_cfg *funnels;
    size_t n_funnels;
} fs_config;

/* Returns NULL on error and writes a one-line message such as
 *   "configs/x.yaml:12:7: funnels[0].stages[2].events: 'compare' is already in stage 'interest'"
 * into err (always NUL-terminated). */
fs_config *fs_config_load(const char *path, char *err, size_t err_len);
/* Same, from a string in memory; name stands in for the file in messages. */
fs_config *fs_config_parse(const char *yaml, size_t len, const char *name, char *err,
                           size_t err_len);
void fs_config_free(fs_config *cfg);

/* "500ms", "30s", "5m", "2h", "7d" -> milliseconds. Returns -1 when malformed,
 * not positive, or overflowing. */
int64_t fs_parse_duration(const char *s);

/* Sets (or adds) a kafka: property, for commands that know better than the
 * file (the demo's own broker). */
void fs_config_set_kafka(fs_config *cfg, const char *key, const char *value);

/* An http.listen value, "HOST:PORT": HOST a numeric IPv4 address, a numeric
 * IPv6 address in brackets ("[::1]:8080") or "localhost" (127.0.0.1), PORT
 * from 0 (any free port) to 65535. Writes the numeric host (without the
 * brackets) into host, whether it is IPv6, and the port; returns 0, or -1
 * when s is not that. No name is resolved. */
int fs_config_parse_listen(const char *s, size_t len, char *host, size_t host_cap, bool *ipv6,
                           int *port);

/* Worker threads to run: the config's `threads`, else one per online core. */
uint32_t fs_config_threads(const fs_config *cfg);

#endif
