/* fuzz_config.c -- libFuzzer target: the YAML config loader (config.c).
 *
 * Every input goes to fs_config_parse as the text of a config file. Besides
 * "no crash, no leak, no sanitizer report" and libFuzzer's memory and time
 * limits (run.sh: -rss_limit_mb, -timeout), which are what catch an alias
 * bomb or a quadratic path that slips past the loader's bounds:
 *   - a refusal has a one-line message that starts with the file name;
 *   - an accepted config keeps every promise of config.h: funnel count and
 *     names, stage counts, event types non-empty and short, no event type in
 *     two stages of a funnel nor both in a stage and in exclude, names unique,
 *     durations positive, hop dividing size within FS_MAX_WINDOWS_PER_TIME,
 *     strings without a NUL (every string's strlen is the length it was given
 *     with, so none was cut), kafka: within its key bound;
 *   - loading is deterministic: the same text gives the same message, or a
 *     config with the same funnels.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_check.h"

#define ERR_LEN 512

/* 1..max bytes of the characters Kafka allows in a topic name */
static bool chars_ok(const char *s, size_t max)
{
    size_t len = s ? strlen(s) : 0;

    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", s[i]))
            return false;
    return true;
}

static bool name_ok(const char *s)
{
    return chars_ok(s, 64);
}

static bool topic_ok(const char *s)
{
    return s == NULL || (chars_ok(s, 249) && strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
}

static bool event_ok(const char *s)
{
    return s && strlen(s) >= 1 && strlen(s) <= FS_MAX_EVENT_TYPE;
}

/* Whether ev is among the events of f's stages, other than (stage, index). */
static bool in_other_stage(const fs_funnel_cfg *f, const char *ev, size_t stage, size_t index)
{
    for (size_t s = 0; s < f->n_stages; s++)
        for (size_t e = 0; e < f->stages[s].n_events; e++)
            if ((s != stage || e != index) && strcmp(f->stages[s].events[e], ev) == 0)
                return true;
    return false;
}

static void check_funnel(const fs_funnel_cfg *f)
{
    CHECK(name_ok(f->name));
    CHECK(f->mode == FS_MODE_OPEN || f->mode == FS_MODE_STRICT);
    CHECK(f->conversion_window_ms > 0);
    CHECK(f->n_stages >= 2 && f->n_stages <= FS_MAX_STAGES);
    for (size_t s = 0; s < f->n_stages; s++) {
        const fs_stage_cfg *st = &f->stages[s];
        CHECK(st->name && st->name[0] != '\0');
        CHECK(st->n_events >= 1);
        for (size_t t = 0; t < s; t++)
            CHECK(strcmp(f->stages[t].name, st->name) != 0);
        for (size_t e = 0; e < st->n_events; e++) {
            CHECK(event_ok(st->events[e]));
            CHECK(!in_other_stage(f, st->events[e], s, e));
        }
    }
    for (size_t x = 0; x < f->n_exclude; x++) {
        CHECK(event_ok(f->exclude[x]));
        CHECK(!in_other_stage(f, f->exclude[x], SIZE_MAX, SIZE_MAX));
        for (size_t y = 0; y < x; y++)
            CHECK(strcmp(f->exclude[y], f->exclude[x]) != 0);
    }
}

static void check_config(const fs_config *cfg)
{
    CHECK(cfg->n_funnels >= 1 && cfg->n_funnels <= FS_MAX_FUNNELS);
    for (size_t i = 0; i < cfg->n_funnels; i++) {
        check_funnel(&cfg->funnels[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(cfg->funnels[j].name, cfg->funnels[i].name) != 0);
    }
    CHECK(cfg->input_topic && cfg->output_topic);
    CHECK(topic_ok(cfg->input_topic) && topic_ok(cfg->output_topic));
    CHECK(topic_ok(cfg->dead_letter_topic) && topic_ok(cfg->state_topic));
    CHECK(cfg->window_size_ms > 0 && cfg->window_hop_ms > 0);
    CHECK(cfg->window_hop_ms <= cfg->window_size_ms);
    CHECK(cfg->window_size_ms % cfg->window_hop_ms == 0);
    CHECK(cfg->window_size_ms / cfg->window_hop_ms <= FS_MAX_WINDOWS_PER_TIME);
    CHECK(cfg->max_out_of_orderness_ms >= 0);
    CHECK(cfg->idle_timeout_ms > 0 && cfg->commit_interval_ms > 0);
    CHECK(cfg->cohort_emit_interval_ms > 0);
    CHECK(cfg->threads >= 0);
    CHECK(cfg->http_listen && strchr(cfg->http_listen, ':'));
    CHECK(cfg->n_kafka <= FS_CONFIG_MAX_MAP_KEYS);
    for (size_t i = 0; i < cfg->n_kafka; i++)
        CHECK(cfg->kafka[i].key && cfg->kafka[i].key[0] != '\0' && cfg->kafka[i].value);
}

static void check_error(const char *err)
{
    CHECK(strncmp(err, "fuzz.yaml", 9) == 0);
    CHECK(strlen(err) > 10);
    for (const char *p = err; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ERR_LEN], again_err[ERR_LEN];
    fs_config *cfg = fs_config_parse((const char *)data, size, "fuzz.yaml", err, sizeof err);
    fs_config *again =
        fs_config_parse((const char *)data, size, "fuzz.yaml", again_err, sizeof again_err);

    CHECK((cfg == NULL) == (again == NULL));
    if (cfg == NULL) {
        check_error(err);
        CHECK(strcmp(err, again_err) == 0);
        return 0;
    }
    check_config(cfg);
    CHECK(cfg->n_funnels == again->n_funnels && cfg->n_kafka == again->n_kafka);
    for (size_t i = 0; i < cfg->n_funnels; i++)
        CHECK(strcmp(cfg->funnels[i].name, again->funnels[i].name) == 0);
    fs_config_free(cfg);
    fs_config_free(again);
    return 0;
}
