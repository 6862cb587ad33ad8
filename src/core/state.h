/* state.h -- the records of the state (changelog) topic: one input
 * partition's state, in versioned MessagePack (SPEC §5).
 *
 * A partition's state is
 *   - one record per customer with an active journey, key "c" + customer id,
 *     value: the customer's active journeys (fs_state_customer); a
 *     tombstone (null value) when the customer's last journey ends;
 *   - one partition record, key "p", value: the partition's clock, its
 *     counts for windows not emitted yet and its cohort counts for cohorts
 *     not final yet (fs_state_part).
 * Compaction keeps the last record per key, which is the live state.
 *
 * Every value starts with the format version (FS_STATE_VERSION); a value of
 * another version is an error (FS_STATE_EVERSION), never a guess. Labels
 * (channels, segments) are written by name, so a record does not depend on
 * the label ids of the process that wrote it: encoding takes a label -> name
 * function, decoding a name -> label one (interning into the reader's
 * dictionary).
 *
 * Decoding never trusts its input: any malformed value is an error with a
 * message, never a crash or an unbounded allocation. The byte layout is
 * described at the top of state.c.
 */
#ifndef FS_STATE_H
#define FS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"
#include "buf.h"
#include "config.h"
#include "funnel.h"
#include "pane.h"

#define FS_STATE_VERSION 1

typedef enum fs_state_err {
    FS_STATE_OK = 0,
    FS_STATE_EMALFORMED = -1, /* not a value this module writes */
    FS_STATE_EVERSION = -2,   /* written by another format version */
    FS_STATE_ECONFIG = -3,    /* written for another funnel configuration */
} fs_state_err;

/* Label ids <-> names, provided by the caller. */
typedef struct fs_state_labels {
    /* id -> name (encoding) */
    const char *(*name)(void *ctx, uint32_t label, uint32_t *len);
    /* name -> id, interned (decoding) */
    uint32_t (*intern)(void *ctx, const char *name, uint32_t len);
    void *ctx;
} fs_state_labels;

/* ---- customers ---------------------------------------------------------- */

typedef struct fs_state_journey {
    uint32_t funnel; /* index in the config */
    int64_t start_ts;
    uint32_t max_stage;
    uint32_t n_touches;    /* at most FS_STATE_MAX_TOUCHES */
    fs_touch_count *touch; /* first-touch order; label = the channel's id */
    /* The extension (funnel.h), for the funnels that use it: */
    bool timed;               /* stage_ts is known (a stage_time funnel) */
    int64_t stage_ts;         /* when max_stage was reached */
    uint32_t reached;         /* unordered: bit s, stage s reached; else 0 */
    uint32_t n_campaigns;     /* campaign breakdown: the campaign touches; else 0 */
    fs_touch_count *campaign; /* the first, then the last touched (journey_table.h) */
} fs_state_journey;

/* fs_journey counts its touches in 16 bits, so no writer has more; a record
 * claiming more is malformed. */
#define FS_STATE_MAX_TOUCHES UINT16_MAX

typedef struct fs_state_customer {
    const char *id;  /* not in the value: the key carries it (fs_state_key_parse); */
    uint32_t id_len; /* decoding leaves id and id_len as they are */
    uint32_t n_journeys;
    fs_state_journey *journey; /* ascending funnel */
    uint64_t checkpoint;       /* the checkpoint that wrote it (fs_state_peek_checkpoint) */
} fs_state_customer;

/* Keys. */
void fs_state_key_customer(fs_buf *out, const char *id, uint32_t len);
void fs_state_key_part(fs_buf *out);
typedef enum fs_state_key_kind {
    FS_STATE_KEY_BAD = 0,
    FS_STATE_KEY_CUSTOMER = 1,
    FS_STATE_KEY_PART = 2,
    FS_STATE_KEY_MERGE = 3, /* a merger's state (fs_state_merge) */
} fs_state_key_kind;
/* What a key names; for a customer key, *id and *len get the id. */
fs_state_key_kind fs_state_key_parse(const char *key, size_t len, const char **id,
                                     uint32_t *id_len);

void fs_state_encode_customer(fs_buf *out, const fs_state_customer *c, const fs_state_labels *l);
/* Decodes into *c; c->journey and their touch arrays are allocated
 * (fs_state_customer_free). Checks funnel < n_funnels, funnels strictly
 * ascending, max_stage < n_stages[funnel], channel names (valid UTF-8, at
 * most FS_MAX_LABEL bytes). On error *c holds no journey. */
fs_state_err fs_state_decode_customer(const char *p, size_t n, uint32_t n_funnels,
                                      const uint32_t *n_stages, const fs_state_labels *l,
                                      fs_state_customer *c, char *err, size_t err_len);
void fs_state_customer_free(fs_state_customer *c);

/* ---- a partition -------------------------------------------------------- */

/* A cohort's counts in one partition (cumulative, not a delta). pane: the
 * cohort of every window holding the pane starting at `start` (worker.h).
 * cohort->dirty is the sink's, not state: it is not written and decodes as
 * false. */
typedef struct fs_state_cohort {
    uint32_t funnel;
    bool pane;
    int64_t start;
    fs_cohort *cohort;
} fs_state_cohort;

typedef struct fs_state_part {
    uint64_t config_hash; /* fs_state_config_hash of the writer's config */
    bool seen;            /* the partition has a clock: */
    int64_t max_ts;       /* its highest valid ts */
    int64_t instance_wm;  /* the writer's instance watermark (INT64_MIN: none) */
    int64_t closed_upto;  /* windows ending at or before it are closed for the partition */
    uint32_t n_panes, n_extras, n_parked, n_cohorts;
    fs_window_slot **panes;  /* by pane start (pane.h) */
    fs_window_slot **extras; /* window-level counts by window start */
    fs_window_slot **parked; /* windows closed for the partition, not emitted */
    fs_state_cohort *cohorts;
    uint64_t checkpoint; /* the checkpoint that wrote it */
} fs_state_part;
/* Each list is keyed (slots by start, cohorts by funnel, pane, start): the
 * encoder writes it in ascending key order whatever order it is given in,
 * so equal states give equal bytes; the decoder returns it in that order
 * and refuses a key given twice. Every flow's n_stages is that of its
 * funnel. */

/* A fingerprint of what the state depends on: funnel names, their stages'
 * names and event types, modes, conversion windows, the window size and hop,
 * max_out_of_orderness. Restoring under another configuration is refused
 * (FS_STATE_ECONFIG). */
uint64_t fs_state_config_hash(const fs_config *cfg);

/* n_stages: per funnel, as for decoding (a cohort does not know its own). */
void fs_state_encode_part(fs_buf *out, const fs_state_part *s, uint32_t n_funnels,
                          const uint32_t *n_stages, const fs_state_labels *l);
/* Decodes into *s (every slot, flow and cohort allocated: fs_state_part_free);
 * FS_STATE_ECONFIG when the value's config hash is not config_hash (checked
 * right after the version, before the rest is read). Label names are
 * checked as for customers. On error *s holds nothing to free. */
fs_state_err fs_state_decode_part(const char *p, size_t n, uint64_t config_hash, uint32_t n_funnels,
                                  const uint32_t *n_stages, const fs_state_labels *l,
                                  fs_state_part *s, char *err, size_t err_len);
void fs_state_part_free(fs_state_part *s, uint32_t n_funnels);

/* The checkpoint number every value carries after its version. A
 * checkpoint's records and its input offsets are committed together (one
 * transaction; under at_least_once the offsets after the records, with the
 * number as their commit metadata), so a restore keeps, per key, the last
 * value of a checkpoint at or below the committed one: the records of a
 * checkpoint that never committed (a crash, an aborted transaction on a
 * broker that does not filter them) are ignored. A customer record without
 * journeys marks a customer gone (a null tombstone could not say which
 * checkpoint removed it). */
fs_state_err fs_state_peek_checkpoint(const char *p, size_t n, uint64_t *checkpoint);

/* Only the clock of a partition record (the router's part of a restore):
 * reads the version, then the clock, and stops; the config hash and the
 * rest are not checked (fs_state_decode_part does). *c is set only on
 * FS_STATE_OK. */
typedef struct fs_state_clock {
    bool seen;
    int64_t max_ts, instance_wm;
} fs_state_clock;
fs_state_err fs_state_decode_clock(const char *p, size_t n, fs_state_clock *c);

/* ---- partials (merge.h) -------------------------------------------------- */

#define FS_STATE_MAX_PARTS 32768 /* input partitions a partial or merger may name */

/* What one input partition adds to the merge since its previous partial:
 * the windows that closed for it, its cohorts that changed (cumulative,
 * window form: pane false) and where its clock stands. Not state: these
 * travel on the partials topic (checkpoint 0). */
typedef struct fs_state_partial {
    uint64_t config_hash;
    uint32_t part;    /* input partition */
    uint32_t n_parts; /* input partitions the writer knows of (0: it does not know) */
    int64_t wm;       /* the partition's watermark (INT64_MIN: none yet); every window
                         ending at or before it has been in some partial */
    bool idle;        /* holds no window back (SPEC §3) */
    uint32_t n_slots, n_cohorts;
    fs_window_slot **slots; /* ascending start */
    /* n_slots x n_funnels: per window and funnel, the events that counted in
     * its newest pane (how many events to call late if it comes too late) */
    uint64_t *events;
    fs_state_cohort *cohorts;
} fs_state_partial;

void fs_state_encode_partial(fs_buf *out, const fs_state_partial *pt, uint32_t n_funnels,
                             const uint32_t *n_stages, const fs_state_labels *l);
fs_state_err fs_state_decode_partial(const char *p, size_t n, uint64_t config_hash,
                                     uint32_t n_funnels, const uint32_t *n_stages,
                                     const fs_state_labels *l, fs_state_partial *pt, char *err,
                                     size_t err_len);
void fs_state_partial_free(fs_state_partial *pt, uint32_t n_funnels);

/* The merger's state for one partials partition (merge.h), key "m". */
typedef struct fs_state_merge_clock {
    uint32_t part;
    int64_t wm;
    bool idle;
} fs_state_merge_clock;

typedef struct fs_state_merge {
    uint64_t checkpoint, config_hash;
    uint32_t n_parts;  /* input partitions expected (0: those heard of) */
    bool have_emitted; /* windows ending at or before `emitted` are out */
    int64_t emitted;
    uint32_t n_clocks, n_pending, n_cohorts;
    fs_state_merge_clock *clocks; /* ascending part */
    fs_window_slot **pending;     /* sums of windows not emitted, ascending start */
    fs_state_cohort *cohorts;     /* per input partition (cohort_part), window form */
    uint32_t *cohort_part;
} fs_state_merge;

void fs_state_key_merge(fs_buf *out);
void fs_state_encode_merge(fs_buf *out, const fs_state_merge *m, uint32_t n_funnels,
                           const uint32_t *n_stages, const fs_state_labels *l);
fs_state_err fs_state_decode_merge(const char *p, size_t n, uint64_t config_hash,
                                   uint32_t n_funnels, const uint32_t *n_stages,
                                   const fs_state_labels *l, fs_state_merge *m, char *err,
                                   size_t err_len);
void fs_state_merge_free(fs_state_merge *m, uint32_t n_funnels);

#endif
