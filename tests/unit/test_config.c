/* test_config.c -- the YAML config loader (src/core/config.c, SPEC §6).
 *
 * Every validation rule has a failing case whose message must name the right
 * line and field; the SPEC example and the bundled configs must load with the
 * values they state; defaults and durations are checked value by value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define ERR_LEN 512

static const char spec_example[] =
    "input:  {topic: touchpoints, format: msgpack}\n"
    "output: {topic: funnel-metrics, format: json}\n"
    "dead_letter: {topic: touchpoints-dlq}\n"
    "kafka:\n"
    "  bootstrap.servers: localhost:9092\n"
    "  group.id: funnelstream\n"
    "window: {size: 1m, max_out_of_orderness: 5s, idle_timeout: 30s}\n"
    "cohort: {emit_interval: 10s}\n"
    "threads: 2                  # workers; --threads overrides\n"
    "http: {listen: 127.0.0.1:8080}\n"
    "funnels:\n"
    "  - name: aida\n"
    "    mode: open\n"
    "    conversion_window: 7d\n"
    "    exclude: [unsubscribe]\n"
    "    stages:\n"
    "      - {name: awareness,     events: [ad_impression, social_view]}\n"
    "      - {name: interest,      events: [page_view, content_download]}\n"
    "      - {name: consideration, events: [product_view, compare]}\n"
    "      - {name: intent,        events: [add_to_cart, demo_request]}\n"
    "      - {name: evaluation,    events: [checkout_start, trial_start]}\n"
    "      - {name: purchase,      events: [purchase]}\n";

/* A minimal valid funnel list, appended to configs that test other keys. */
#define MIN_FUNNELS                                                                                \
    "funnels:\n"                                                                                   \
    "  - name: f\n"                                                                                \
    "    stages:\n"                                                                                \
    "      - {name: a, events: [x]}\n"                                                             \
    "      - {name: b, events: [y]}\n"

static fs_config *parse(const char *yaml, char *err)
{
    return fs_config_parse(yaml, strlen(yaml), "cfg.yaml", err, ERR_LEN);
}

static fs_config *must_parse(const char *yaml)
{
    char err[ERR_LEN];
    fs_config *cfg = parse(yaml, err);

    if (cfg == NULL)
        fail_msg("unexpected error: %s\n--- config:\n%s", err, yaml);
    return cfg;
}

/* The config must fail, with a one-line message holding every given substring. */
static void expect_error_(const char *yaml, const char *file, int line, ...)
{
    char err[ERR_LEN];
    fs_config *cfg = parse(yaml, err);
    va_list ap;
    const char *want;

    if (cfg != NULL) {
        fs_config_free(cfg);
        _fail(file, line);
    }
    if (strchr(err, '\n') != NULL || strncmp(err, "cfg.yaml", 8) != 0) {
        print_error("bad message shape: '%s'\n", err);
        _fail(file, line);
    }
    va_start(ap, line);
    while ((want = va_arg(ap, const char *)) != NULL) {
        if (strstr(err, want) == NULL) {
            print_error("message '%s' lacks '%s'\n", err, want);
            va_end(ap);
            _fail(file, line);
        }
    }
    va_end(ap);
}
#define expect_error(yaml, ...) expect_error_(yaml, __FILE__, __LINE__, __VA_ARGS__, (char *)NULL)

/* ---- valid configs ----------------------------------------------------- */

static void test_spec_example(void **state)
{
    (void)state;
    fs_config *cfg = must_parse(spec_example);
    static const char *stage_names[] = {"awareness", "interest",   "consideration",
                                        "intent",    "evaluation", "purchase"};

    assert_string_equal(cfg->path, "cfg.yaml");
    assert_string_equal(cfg->input_topic, "touchpoints");
    assert_int_equal(cfg->input_format, FS_FORMAT_MSGPACK);
    assert_string_equal(cfg->output_topic, "funnel-metrics");
    assert_int_equal(cfg->output_format, FS_FORMAT_JSON);
    assert_string_equal(cfg->dead_letter_topic, "touchpoints-dlq");
    assert_int_equal(cfg->n_kafka, 2);
    assert_string_equal(cfg->kafka[0].key, "bootstrap.servers");
    assert_string_equal(cfg->kafka[0].value, "localhost:9092");
    assert_string_equal(cfg->kafka[1].key, "group.id");
    assert_string_equal(cfg->kafka[1].value, "funnelstream");
    assert_int_equal(cfg->window_size_ms, 60000);
    assert_int_equal(cfg->window_hop_ms, 60000);
    assert_int_equal(cfg->max_out_of_orderness_ms, 5000);
    assert_int_equal(cfg->idle_timeout_ms, 30000);
    assert_int_equal(cfg->cohort_emit_interval_ms, 10000);
    assert_int_equal(cfg->threads, 2);
    assert_string_equal(cfg->http_listen, "127.0.0.1:8080");
    assert_int_equal(cfg->n_funnels, 1);

    fs_funnel_cfg *f = &cfg->funnels[0];
    assert_string_equal(f->name, "aida");
    assert_int_equal(f->mode, FS_MODE_OPEN);
    assert_int_equal(f->conversion_window_ms, INT64_C(7) * 86400000);
    assert_int_equal(f->n_exclude, 1);
    assert_string_equal(f->exclude[0], "unsubscribe");
    assert_int_equal(f->n_stages, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(f->stages[i].name, stage_names[i]);
    assert_int_equal(f->stages[0].n_events, 2);
    assert_string_equal(f->stages[0].events[0], "ad_impression");
    assert_string_equal(f->stages[0].events[1], "social_view");
    assert_string_equal(f->stages[2].events[1], "compare");
    assert_int_equal(f->stages[5].n_events, 1);
    assert_string_equal(f->stages[5].events[0], "purchase");
    fs_config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    fs_config *cfg = must_parse(MIN_FUNNELS);

    assert_string_equal(cfg->input_topic, "touchpoints");
    assert_int_equal(cfg->input_format, FS_FORMAT_MSGPACK);
    assert_string_equal(cfg->output_topic, "funnel-metrics");
    assert_int_equal(cfg->output_format, FS_FORMAT_JSON);
    assert_null(cfg->dead_letter_topic);
    assert_int_equal(cfg->n_kafka, 0);
    assert_int_equal(cfg->window_size_ms, 60000);
    assert_int_equal(cfg->window_hop_ms, 60000);
    assert_int_equal(cfg->max_out_of_orderness_ms, 0);
    assert_int_equal(cfg->idle_timeout_ms, 30000);
    assert_int_equal(cfg->cohort_emit_interval_ms, 60000);
    assert_int_equal(cfg->threads, 0);
    assert_string_equal(cfg->http_listen, "127.0.0.1:8080");
    assert_int_equal(cfg->n_funnels, 1);
    assert_int_equal(cfg->funnels[0].mode, FS_MODE_OPEN);
    assert_int_equal(cfg->funnels[0].conversion_window_ms, INT64_C(7) * 86400000);
    assert_int_equal(cfg->funnels[0].n_exclude, 0);
    fs_config_free(cfg);

    /* hop and cohort.emit_interval follow a non-default window.size */
    cfg = must_parse("window: {size: 5m}\n" MIN_FUNNELS);
    assert_int_equal(cfg->window_size_ms, 300000);
    assert_int_equal(cfg->window_hop_ms, 300000);
    assert_int_equal(cfg->cohort_emit_interval_ms, 300000);
    fs_config_free(cfg);

    /* a null value means "use the default" for optional keys */
    cfg = must_parse("input:\n"
                     "threads: ~\n"
                     "dead_letter: null\n"
                     "window: {size: 2m, hop: }\n" MIN_FUNNELS "    exclude:\n"
                     "    mode:\n");
    assert_string_equal(cfg->input_topic, "touchpoints");
    assert_int_equal(cfg->threads, 0);
    assert_null(cfg->dead_letter_topic);
    assert_int_equal(cfg->window_hop_ms, 120000);
    assert_int_equal(cfg->funnels[0].n_exclude, 0);
    assert_int_equal(cfg->funnels[0].mode, FS_MODE_OPEN);
    fs_config_free(cfg);
}

/* SPEC §5: delivery, the state topic, the commit interval. */
static void test_delivery_and_state(void **state)
{
    (void)state;
    fs_config *cfg = must_parse(MIN_FUNNELS);
    assert_int_equal(cfg->delivery, FS_DELIVERY_EXACTLY_ONCE);
    assert_null(cfg->state_topic); /* the stage makes it <group.id>-state */
    assert_int_equal(cfg->commit_interval_ms, 1000);
    fs_config_free(cfg);
    cfg = must_parse(
        "delivery: at_least_once\nstate: {topic: my-state}\ncommit_interval: 250ms\n" MIN_FUNNELS);
    assert_int_equal(cfg->delivery, FS_DELIVERY_AT_LEAST_ONCE);
    assert_string_equal(cfg->state_topic, "my-state");
    assert_int_equal(cfg->commit_interval_ms, 250);
    fs_config_free(cfg);
    expect_error("delivery: twice\n" MIN_FUNNELS, "delivery", "exactly_once", "at_least_once");
    expect_error("commit_interval: 0s\n" MIN_FUNNELS, "commit_interval");
    expect_error("state: {topic: [x]}\n" MIN_FUNNELS, "state.topic");
}

/* Issue 13 item 15: limits: {max_active_journeys, policy}, both required;
 * absent, no bound. */
static void test_limits(void **state)
{
    (void)state;
    fs_config *cfg = must_parse(MIN_FUNNELS);
    assert_int_equal(cfg->limit_policy, FS_LIMIT_NONE);
    assert_int_equal(cfg->max_active_journeys, 0);
    fs_config_free(cfg);
    cfg = must_parse("limits: ~\n" MIN_FUNNELS); /* null: the default, no bound */
    assert_int_equal(cfg->limit_policy, FS_LIMIT_NONE);
    fs_config_free(cfg);
    cfg = must_parse("limits: {max_active_journeys: 1000000, policy: reject_new}\n" MIN_FUNNELS);
    assert_int_equal(cfg->limit_policy, FS_LIMIT_REJECT_NEW);
    assert_int_equal(cfg->max_active_journeys, 1000000);
    fs_config_free(cfg);
    cfg = must_parse(
        "limits:\n  policy: evict_oldest\n  max_active_journeys: 4294967295\n" MIN_FUNNELS);
    assert_int_equal(cfg->limit_policy, FS_LIMIT_EVICT_OLDEST);
    assert_int_equal(cfg->max_active_journeys, UINT32_MAX);
    fs_config_free(cfg);
    expect_error("limits: {max_active_journeys: 10}\n" MIN_FUNNELS,
                 "cfg.yaml:1:9: limits.policy: required key is missing");
    expect_error("limits: {policy: reject_new}\n" MIN_FUNNELS,
                 "limits.max_active_journeys: required key is missing");
    expect_error("limits: {max_active_journeys: 10, policy: drop}\n" MIN_FUNNELS,
                 ":1:43: limits.policy: expected 'reject_new' or 'evict_oldest', got 'drop'");
    expect_error("limits: {max_active_journeys: 0, policy: reject_new}\n" MIN_FUNNELS,
                 ":1:31: limits.max_active_journeys: expected an integer from 1 to 4294967295, "
                 "got '0'");
    expect_error("limits: {max_active_journeys: 4294967296, policy: reject_new}\n" MIN_FUNNELS,
                 "limits.max_active_journeys", "got '4294967296'");
    expect_error("limits: {max_active_journeys: 1e6, policy: reject_new}\n" MIN_FUNNELS,
                 "limits.max_active_journeys", "got '1e6'");
    expect_error("limits: {max_active_journeys: -1, policy: reject_new}\n" MIN_FUNNELS,
                 "limits.max_active_journeys");
    expect_error("limits: {max_journeys: 10, policy: reject_new}\n" MIN_FUNNELS,
                 "limits.max_journeys: unknown key", "max_active_journeys, policy");
    expect_error("limits: 10\n" MIN_FUNNELS, "limits", "a mapping");
}

static void test_block_and_flow_styles_agree(void **state)
{
    (void)state;
    fs_config *flow =
        must_parse("window: {size: 10m, hop: 5m}\n"
                   "funnels: [{name: p, mode: strict, exclude: [quit], conversion_window: 1h,\n"
                   "           stages: [{name: s1, events: [a, b]}, {name: s2, events: [c]}]}]\n");
    fs_config *block = must_parse("window:\n"
                                  "  size: 10m\n"
                                  "  hop: 5m\n"
                                  "funnels:\n"
                                  "- name: p\n"
                                  "  mode: strict\n"
                                  "  exclude:\n"
                                  "  - quit\n"
                                  "  conversion_window: 1h\n"
                                  "  stages:\n"
                                  "  - name: s1\n"
                                  "    events:\n"
                                  "    - a\n"
                                  "    - b\n"
                                  "  - name: s2\n"
                                  "    events:\n"
                                  "    - c\n");
    fs_config *v[2] = {flow, block};

    for (int i = 0; i < 2; i++) {
        fs_config *cfg = v[i];
        assert_int_equal(cfg->window_size_ms, 600000);
        assert_int_equal(cfg->window_hop_ms, 300000);
        assert_int_equal(cfg->n_funnels, 1);
        assert_string_equal(cfg->funnels[0].name, "p");
        assert_int_equal(cfg->funnels[0].mode, FS_MODE_STRICT);
        assert_int_equal(cfg->funnels[0].conversion_window_ms, 3600000);
        assert_string_equal(cfg->funnels[0].exclude[0], "quit");
        assert_int_equal(cfg->funnels[0].n_stages, 2);
        assert_int_equal(cfg->funnels[0].stages[0].n_events, 2);
        assert_string_equal(cfg->funnels[0].stages[0].events[1], "b");
        assert_string_equal(cfg->funnels[0].stages[1].name, "s2");
        assert_string_equal(cfg->funnels[0].stages[1].events[0], "c");
        fs_config_free(cfg);
    }
}

static void test_kafka_passthrough(void **state)
{
    (void)state;
    fs_config *cfg = must_parse("kafka:\n"
                                "  bootstrap.servers: \"b1:9092,b2:9092\"\n"
                                "  session.timeout.ms: 6000\n"
                                "  enable.auto.commit: false\n"
                                "  linger.ms: 0.5\n"
                                "  any.unknown.key: 'x y'\n" MIN_FUNNELS);

    assert_int_equal(cfg->n_kafka, 5);
    assert_string_equal(cfg->kafka[0].value, "b1:9092,b2:9092");
    assert_string_equal(cfg->kafka[1].key, "session.timeout.ms");
    assert_string_equal(cfg->kafka[1].value, "6000");
    assert_string_equal(cfg->kafka[2].value, "false");
    assert_string_equal(cfg->kafka[3].value, "0.5");
    assert_string_equal(cfg->kafka[4].key, "any.unknown.key");
    assert_string_equal(cfg->kafka[4].value, "x y");
    fs_config_free(cfg);

    expect_error("kafka:\n"
                 "  group.id: g\n"
                 "  sasl: {mechanism: PLAIN}\n" MIN_FUNNELS,
                 "cfg.yaml:3:9: kafka.sasl: expected a scalar value, got a mapping");
    expect_error("kafka:\n  group.id:\n" MIN_FUNNELS, ":2:3: kafka.group.id:", "got nothing");
    expect_error("kafka: [a]\n" MIN_FUNNELS, ":1:8: kafka:", "got a sequence");
}

static void test_threads(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int value; /* -1: rejected */
    } cases[] = {
        {"0", 0},       {"1", 1},     {"2", 2},
        {"1024", 1024}, {"1025", -1}, {"-1", -1},
        {"abc", -1},    {"1.5", -1},  {"99999999999999999999", -1},
        {"'8'", 8},     {"+4", -1},   {"[4]", -1},
    };
    char yaml[512];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(yaml, sizeof yaml,
                 "funnels: [{name: f, stages: [{name: a, events: [x]}, "
                 "{name: b, events: [y]}]}]\n"
                 "threads: %s\n",
                 cases[i].text);
        if (cases[i].value < 0) {
            expect_error(yaml, "cfg.yaml:2:10: threads: ");
        } else {
            fs_config *cfg = must_parse(yaml);
            assert_int_equal(cfg->threads, cases[i].value);
            fs_config_free(cfg);
        }
    }
}

/* in_flight_batches: 0 (the default) or 2..1024; broker_timeout: a duration. */
static void test_stage_knobs(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int value; /* -1: rejected */
    } cases[] = {{"0", 0}, {"1", -1}, {"2", 2}, {"1024", 1024}, {"1025", -1}, {"x", -1}};
    char yaml[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(yaml, sizeof yaml,
                 "funnels: [{name: f, stages: [{name: a, events: [x]}, "
                 "{name: b, events: [y]}]}]\n"
                 "in_flight_batches: %s\n",
                 cases[i].text);
        if (cases[i].value < 0) {
            expect_error(yaml, "cfg.yaml:2:20: in_flight_batches: ");
        } else {
            fs_config *cfg = must_parse(yaml);
            assert_int_equal(cfg->in_flight_batches, cases[i].value);
            fs_config_free(cfg);
        }
    }
    fs_config *cfg = must_parse(MIN_FUNNELS);
    assert_int_equal(cfg->broker_timeout_ms, 30000);
    fs_config_free(cfg);
    cfg = must_parse("broker_timeout: 5s\n" MIN_FUNNELS);
    assert_int_equal(cfg->broker_timeout_ms, 5000);
    fs_config_free(cfg);
    expect_error("broker_timeout: 0s\n" MIN_FUNNELS, "cfg.yaml:1:17: broker_timeout: ");
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"500ms", 500},
        {"1ms", 1},
        {"30s", 30000},
        {"5m", 300000},
        {"2h", 7200000},
        {"7d", 604800000},
        {"30d", INT64_C(2592000000)},
        {"007s", 7000},
        /* capped at 2^53 - 1 ms, as event times are (event.h) */
        {"9007199254740991ms", INT64_C(9007199254740991)},
        {"9007199254740992ms", -1},
        {"104249991d", INT64_C(104249991) * 86400000},
        {"104249992d", -1}, /* over the cap after the unit */
        {"9223372036854775807ms", -1},
        {"106751991168d", -1}, /* would overflow int64 after the unit */
        {"9223372036854775808ms", -1},
        {"99999999999999999999999s", -1},
        {"0s", -1},
        {"0ms", -1},
        {"0", -1},
        {"", -1},
        {"5", -1},
        {"s", -1},
        {"ms", -1},
        {"-5s", -1},
        {"+5s", -1},
        {"5 s", -1},
        {" 5s", -1},
        {"5s ", -1},
        {"1.5s", -1},
        {"5S", -1},
        {"5sec", -1},
        {"5us", -1},
        {"5w", -1},
        {"5m5s", -1},
        {"1e3ms", -1},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = fs_parse_duration(cases[i].text);
        if (got != cases[i].ms)
            fail_msg("fs_parse_duration(\"%s\") = %lld, want %lld", cases[i].text, (long long)got,
                     (long long)cases[i].ms);
    }
    assert_int_equal(fs_parse_duration(NULL), -1);
}

static void test_duration_fields(void **state)
{
    (void)state;
    fs_config *cfg =
        must_parse("window: {size: 10s, hop: 500ms, max_out_of_orderness: 0s,\n"
                   "         idle_timeout: 2m}\n"
                   "cohort: {emit_interval: 1h}\n" MIN_FUNNELS "    conversion_window: 30m\n");

    assert_int_equal(cfg->window_size_ms, 10000);
    assert_int_equal(cfg->window_hop_ms, 500);
    assert_int_equal(cfg->max_out_of_orderness_ms, 0);
    assert_int_equal(cfg->idle_timeout_ms, 120000);
    assert_int_equal(cfg->cohort_emit_interval_ms, 3600000);
    assert_int_equal(cfg->funnels[0].conversion_window_ms, 1800000);
    fs_config_free(cfg);

    cfg = must_parse("window: {max_out_of_orderness: 0}\n" MIN_FUNNELS);
    assert_int_equal(cfg->max_out_of_orderness_ms, 0);
    fs_config_free(cfg);

    expect_error("window: {size: 0s}\n" MIN_FUNNELS,
                 "cfg.yaml:1:16: window.size:", "greater than zero");
    expect_error("window: {idle_timeout: 30}\n" MIN_FUNNELS,
                 ":1:24: window.idle_timeout:", "invalid duration '30'");
    expect_error("window:\n  max_out_of_orderness: -5s\n" MIN_FUNNELS,
                 ":2:25: window.max_out_of_orderness:", "invalid duration");
    expect_error("cohort: {emit_interval: 99999999999999d}\n" MIN_FUNNELS,
                 ":1:25: cohort.emit_interval:", "too large");
    expect_error(MIN_FUNNELS "    conversion_window: 104249992d\n",
                 "funnels[0].conversion_window:", "too large (at most 2^53 - 1 ms");
    expect_error(MIN_FUNNELS "    conversion_window: 1 week\n",
                 "cfg.yaml:6:24: funnels[0].conversion_window: invalid duration '1 week'");
    expect_error(MIN_FUNNELS "    conversion_window: {d: 7}\n",
                 ":6:24:", "funnels[0].conversion_window: expected a duration", "got a mapping");
}

static void test_window_hop(void **state)
{
    (void)state;
    fs_config *cfg = must_parse("window: {size: 1h, hop: 1h}\n" MIN_FUNNELS);
    assert_int_equal(cfg->window_hop_ms, 3600000);
    fs_config_free(cfg);
    cfg = must_parse("window: {hop: 15s}\n" MIN_FUNNELS); /* default size 1m */
    assert_int_equal(cfg->window_size_ms, 60000);
    assert_int_equal(cfg->window_hop_ms, 15000);
    fs_config_free(cfg);

    expect_error("window:\n  size: 1m\n  hop: 7s\n" MIN_FUNNELS,
                 "cfg.yaml:3:8: window.hop:", "must divide size");
    expect_error("window:\n  hop: 2m\n  size: 1m\n" MIN_FUNNELS,
                 "cfg.yaml:2:8: window.hop:", "must not be larger than size");
}

/* ---- validation failures ----------------------------------------------- */

static void test_bundled_style_errors(void **state)
{
    (void)state;
    /* the example of config.h: an event type in two stages of one funnel */
    char yaml[sizeof spec_example + 64];
    strcpy(yaml, spec_example);
    char *p = strstr(yaml, "[purchase]");
    memcpy(p, "[compare] ", 10);
    expect_error(yaml, "cfg.yaml:22:40: funnels[0].stages[5].events[0]: 'compare' is already "
                       "in stage 'consideration' of funnel 'aida'");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("windows: {size: 1m}\n" MIN_FUNNELS, "cfg.yaml:1:1: windows: unknown key",
                 "funnels");
    expect_error("window:\n  size: 1m\n  sise: 2m\n" MIN_FUNNELS,
                 "cfg.yaml:3:3: window.sise: unknown key (expected one of: size, hop, "
                 "max_out_of_orderness, idle_timeout)");
    expect_error("input: {topic: t, fromat: json}\n" MIN_FUNNELS, ":1:19: input.fromat: unknown");
    expect_error(MIN_FUNNELS "    conversion: 1d\n",
                 "cfg.yaml:6:5: funnels[0].conversion:", "unknown key");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, event: [y]}\n",
                 "cfg.yaml:5:19: funnels[0].stages[1].event: unknown key");
    expect_error("http: {listen: '127.0.0.1:1', port: 80}\n" MIN_FUNNELS,
                 ":1:31: http.port: unknown");
    expect_error("dead_letter: {topic: d, partitions: 3}\n" MIN_FUNNELS,
                 ":1:25: dead_letter.partitions: unknown");
    expect_error("cohort: {interval: 1m}\n" MIN_FUNNELS, ":1:10: cohort.interval: unknown");
    expect_error("? [a, b]\n: 1\n" MIN_FUNNELS, ":1:3:", "expected a plain key", "got a sequence");
}

static void test_missing_keys(void **state)
{
    (void)state;
    expect_error("threads: 2\n", "cfg.yaml:1:1: funnels: required key is missing");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, events: [y]}\n"
                 "  - mode: strict\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:6:5: funnels[1].name: required key is missing");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    mode: open\n",
                 "cfg.yaml:2:5: funnels[0].stages: required key is missing");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {events: [y]}\n",
                 "cfg.yaml:5:9: funnels[0].stages[1].name: required key is missing");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - name: a\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:4:9: funnels[0].stages[0].events: required key is missing");
    expect_error("dead_letter: {}\n" MIN_FUNNELS, "cfg.yaml:1:14: dead_letter.topic: required");
    expect_error("funnels:\n", "cfg.yaml:1:1: funnels: a value is required");
    expect_error(MIN_FUNNELS "  - name:\n    stages: []\n",
                 "cfg.yaml:6:5: funnels[1].name:", "a value is required");
}

static void test_wrong_kinds(void **state)
{
    (void)state;
    expect_error("window: 1m\n" MIN_FUNNELS, "cfg.yaml:1:9: window: expected a mapping, got '1m'");
    expect_error("input: [touchpoints]\n" MIN_FUNNELS, "cfg.yaml:1:8: input:", "got a sequence");
    expect_error("input:\n  - topic: t\n" MIN_FUNNELS, "cfg.yaml:2:3: input:", "got a sequence");
    expect_error("input: {topic: {name: t}}\n" MIN_FUNNELS,
                 "cfg.yaml:1:16: input.topic:", "got a mapping");
    expect_error("threads: {n: 2}\n" MIN_FUNNELS, "cfg.yaml:1:10: threads:", "got a mapping");
    expect_error("funnels: aida\n", "cfg.yaml:1:10: funnels: expected a sequence of funnels");
    expect_error("funnels: {name: aida}\n", "cfg.yaml:1:10: funnels:", "got a mapping");
    expect_error("funnels: [aida]\n", "cfg.yaml:1:11: funnels[0]: expected a mapping, got 'aida'");
    expect_error(MIN_FUNNELS "    exclude: unsubscribe\n",
                 "cfg.yaml:6:14: funnels[0].exclude: expected a sequence", "got 'unsubscribe'");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: x}\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:4:27: funnels[0].stages[0].events: expected a sequence");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x, [y]]}\n"
                 "      - {name: b, events: [z]}\n",
                 "cfg.yaml:4:31: funnels[0].stages[0].events[1]: expected an event type",
                 "got a sequence");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - b\n",
                 "cfg.yaml:5:9: funnels[0].stages[1]: expected a mapping, got 'b'");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      -\n",
                 "funnels[0].stages[1]: expected a mapping, got nothing");
    expect_error("- a\n- b\n", "cfg.yaml:1:1: config: expected a mapping, got a sequence");
    expect_error("just text\n", "cfg.yaml:1:1: config: expected a mapping, got 'just text'");
    expect_error(MIN_FUNNELS "    name: [f]\n", "yaml syntax error", "duplicate key");
}

static void test_funnel_rules(void **state)
{
    (void)state;
    /* name: charset and length */
    expect_error("funnels:\n  - name: my funnel\n    stages: [{name: a, events: [x]}, {name: b, "
                 "events: [y]}]\n",
                 "cfg.yaml:2:11: funnels[0].name: invalid funnel name 'my funnel'");
    expect_error("funnels:\n  - name: a/b\n    stages: [{name: a, events: [x]}, {name: b, "
                 "events: [y]}]\n",
                 "cfg.yaml:2:11: funnels[0].name: invalid funnel name 'a/b'");
    expect_error("funnels:\n  - name: ''\n    stages: [{name: a, events: [x]}, {name: b, "
                 "events: [y]}]\n",
                 "cfg.yaml:2:11: funnels[0].name: a funnel name must be 1..64 bytes, got 0");
    char yaml[512], name[80];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(yaml, sizeof yaml,
             "funnels:\n  - name: %s\n    stages: [{name: a, events: [x]}, {name: b, "
             "events: [y]}]\n",
             name);
    expect_error(yaml, "cfg.yaml:2:11: funnels[0].name:", "1..64 bytes, got 65");
    name[64] = '\0';
    snprintf(yaml, sizeof yaml,
             "funnels:\n  - name: %s\n    stages: [{name: a, events: [x]}, {name: b, "
             "events: [y]}]\n",
             name);
    fs_config *cfg = must_parse(yaml);
    assert_int_equal(strlen(cfg->funnels[0].name), 64);
    fs_config_free(cfg);
    cfg = must_parse("funnels:\n  - name: Web-2.0_x\n    stages: [{name: a, events: [x]}, "
                     "{name: b, events: [y]}]\n");
    assert_string_equal(cfg->funnels[0].name, "Web-2.0_x");
    fs_config_free(cfg);

    /* duplicate funnel names */
    expect_error(MIN_FUNNELS "  - name: g\n"
                             "    stages: [{name: a, events: [x]}, {name: b, events: [y]}]\n"
                             "  - stages: [{name: a, events: [x]}, {name: b, events: [y]}]\n"
                             "    name: f\n",
                 "cfg.yaml:9:11: funnels[2].name: funnel name 'f' is already used by funnels[0]");

    /* mode */
    expect_error(
        MIN_FUNNELS "    mode: Strict\n",
        "cfg.yaml:6:11: funnels[0].mode: expected 'strict', 'open' or 'unordered', got 'Strict'");

    /* stage count */
    expect_error("funnels:\n  - name: f\n    stages:\n      - {name: a, events: [x]}\n",
                 "cfg.yaml:4:7: funnels[0].stages: a funnel needs 2 to 32 stages, got 1");
    expect_error("funnels:\n  - name: f\n    stages: []\n",
                 "cfg.yaml:3:13: funnels[0].stages:", "got 0");
    char big[4096];
    size_t used = (size_t)snprintf(big, sizeof big, "funnels:\n  - name: f\n    stages:\n");
    for (int i = 0; i < 33; i++)
        used += (size_t)snprintf(big + used, sizeof big - used,
                                 "      - {name: s%d, events: [e%d]}\n", i, i);
    expect_error(big, "cfg.yaml:4:7: funnels[0].stages:", "got 33");
    big[strlen(big) - strlen("      - {name: s32, events: [e32]}\n")] = '\0';
    cfg = must_parse(big);
    assert_int_equal(cfg->funnels[0].n_stages, FS_MAX_STAGES);
    fs_config_free(cfg);

    /* more funnels than FS_MAX_FUNNELS */
    static char many[65536];
    used = (size_t)snprintf(many, sizeof many, "funnels:\n");
    for (int i = 0; i <= FS_MAX_FUNNELS; i++)
        used += (size_t)snprintf(many + used, sizeof many - used,
                                 "  - {name: f%d, stages: [{name: a, events: [x]}, "
                                 "{name: b, events: [y]}]}\n",
                                 i);
    expect_error(many, "cfg.yaml:66:5: funnels[64]: too many funnels (at most 64)");
}

static void test_stage_rules(void **state)
{
    (void)state;
    /* stage names: non-empty, unique within a funnel; may repeat across funnels */
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: '', events: [x]}\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:4:16: funnels[0].stages[0].name: a stage name must not be empty");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, events: [y]}\n"
                 "      - {name: a, events: [z]}\n",
                 "cfg.yaml:6:16: funnels[0].stages[2].name: stage name 'a' is already used by "
                 "stages[0]");
    fs_config *cfg = must_parse(MIN_FUNNELS "  - name: g\n"
                                            "    stages: [{name: a, events: [x]}, "
                                            "{name: b, events: [y]}]\n");
    assert_int_equal(cfg->n_funnels, 2); /* event types and stage names repeat across funnels */
    fs_config_free(cfg);

    /* events: at least one, 1..64 bytes */
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: []}\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:4:27: funnels[0].stages[0].events: a stage needs at least one event");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - name: a\n"
                 "        events:\n"
                 "          - x\n"
                 "          - \"\"\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:7:13: funnels[0].stages[0].events[1]: an event type must be 1..64 "
                 "bytes, got 0");
    char yaml[512], ev[80];
    memset(ev, 'e', 65);
    ev[65] = '\0';
    snprintf(yaml, sizeof yaml,
             "funnels:\n  - name: f\n    stages:\n      - {name: a, events: [%s]}\n"
             "      - {name: b, events: [y]}\n",
             ev);
    expect_error(yaml, "cfg.yaml:4:28: funnels[0].stages[0].events[0]:", "got 65");
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x, ~]}\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:4:31: funnels[0].stages[0].events[1]: expected an event type, got "
                 "nothing");

    /* an event type in at most one stage (also twice in one stage) */
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x, y]}\n"
                 "      - {name: b, events: [z]}\n"
                 "      - {name: c, events: [w, y]}\n",
                 "cfg.yaml:6:31: funnels[0].stages[2].events[1]: 'y' is already in stage 'a' "
                 "of funnel 'f'");
    expect_error("funnels:\n"
                 "  - stages:\n"
                 "      - {name: a, events: [x, x]}\n"
                 "      - {name: b, events: [z]}\n"
                 "    name: late\n",
                 "cfg.yaml:3:31: funnels[0].stages[0].events[1]: 'x' is already in stage 'a' "
                 "of funnel 'late'");
}

static void test_exclude_rules(void **state)
{
    (void)state;
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    exclude: [quit, y]\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, events: [y]}\n",
                 "cfg.yaml:3:21: funnels[0].exclude[1]: 'y' is in stage 'b' of funnel 'f'");
    /* key order is free: exclude after stages */
    expect_error("funnels:\n"
                 "  - name: f\n"
                 "    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, events: [y]}\n"
                 "    exclude:\n"
                 "      - x\n",
                 "cfg.yaml:7:9: funnels[0].exclude[0]: 'x' is in stage 'a'");
    expect_error(MIN_FUNNELS "    exclude: [q, r, q]\n",
                 "cfg.yaml:6:21: funnels[0].exclude[2]: 'q' is already listed in exclude");
    fs_config *cfg = must_parse(MIN_FUNNELS "    exclude: []\n");
    assert_int_equal(cfg->funnels[0].n_exclude, 0);
    fs_config_free(cfg);
}

static void test_io_rules(void **state)
{
    (void)state;
    fs_config *cfg = must_parse("input: {format: json, topic: in.v2}\n"
                                "output: {format: msgpack}\n"
                                "dead_letter: {topic: dlq_1}\n"
                                "http: {listen: '[::1]:0'}\n" MIN_FUNNELS);
    assert_int_equal(cfg->input_format, FS_FORMAT_JSON);
    assert_string_equal(cfg->input_topic, "in.v2");
    assert_int_equal(cfg->output_format, FS_FORMAT_MSGPACK);
    assert_string_equal(cfg->output_topic, "funnel-metrics");
    assert_string_equal(cfg->dead_letter_topic, "dlq_1");
    assert_string_equal(cfg->http_listen, "[::1]:0");
    fs_config_free(cfg);

    expect_error("input: {format: xml}\n" MIN_FUNNELS,
                 "cfg.yaml:1:17: input.format: expected 'msgpack' or 'json', got 'xml'");
    expect_error("output:\n  format: JSON\n" MIN_FUNNELS, "cfg.yaml:2:11: output.format:");
    expect_error("input: {topic: 'my topic'}\n" MIN_FUNNELS,
                 "cfg.yaml:1:16: input.topic: invalid topic name 'my topic'");
    expect_error("output: {topic: ''}\n" MIN_FUNNELS, "cfg.yaml:1:17: output.topic:");
    expect_error("dead_letter: {topic: ..}\n" MIN_FUNNELS, "cfg.yaml:1:22: dead_letter.topic:");
    expect_error("http: {listen: 8080}\n" MIN_FUNNELS,
                 "cfg.yaml:1:16: http.listen: expected HOST:PORT");
    expect_error("http: {listen: 'localhost:99999'}\n" MIN_FUNNELS, ":1:16: http.listen:");
    expect_error("http: {listen: 'localhost:'}\n" MIN_FUNNELS, ":1:16: http.listen:");
    expect_error("http: {listen: ':80'}\n" MIN_FUNNELS, ":1:16: http.listen:");
}

/* http.listen is checked at load, so that a stage never starts without the
 * HTTP it was asked for: a numeric IPv4 address, [IPv6] or localhost (no
 * name is resolved), and a port 0..65535. */
static void test_http_listen(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:8080", "0.0.0.0:0",   "[::1]:0",
                                       "[::]:65535",     "localhost:1", "10.1.2.3:080"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "http: {listen: '%s'}\n" MIN_FUNNELS, good[i]);
        fs_config *cfg = must_parse(yaml);
        assert_string_equal(cfg->http_listen, good[i]);
        fs_config_free(cfg);
    }
    static const char *const bad[] = {"notahost:80",
                                      "example.com:80",
                                      "localhost:65536",
                                      "127.0.0.1:-1",
                                      "127.0.0.1:8o",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      "256.0.0.1:80",
                                      "1.2.3:80",
                                      "::1:80",
                                      "[::1:80",
                                      "[]:80",
                                      "[127.0.0.1]:80",
                                      " 127.0.0.1:80",
                                      "127.0.0.1 :80",
                                      "127.0.0.1:80 ",
                                      "[::1]:99999999999999999999",
                                      "LOCALHOST:80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "http: {listen: '%s'}\n" MIN_FUNNELS, bad[i]);
        expect_error(yaml, "cfg.yaml:1:16: http.listen: expected HOST:PORT");
    }
    /* the same rules for the HTTP module, which maps localhost */
    char host[64];
    bool ipv6;
    int port;
    assert_int_equal(fs_config_parse_listen("localhost:8080", 14, host, sizeof host, &ipv6, &port),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_false(ipv6);
    assert_int_equal(port, 8080);
    assert_int_equal(fs_config_parse_listen("[::1]:0", 7, host, sizeof host, &ipv6, &port), 0);
    assert_string_equal(host, "::1");
    assert_true(ipv6);
    assert_int_equal(port, 0);
    assert_int_equal(fs_config_parse_listen("1.2.3.4:5\0x", 11, host, sizeof host, &ipv6, &port),
                     -1); /* a NUL inside */
    assert_int_equal(fs_config_parse_listen("[::1]:0", 7, host, 3, &ipv6, &port), -1);
}

static void test_yaml_level(void **state)
{
    (void)state;
    expect_error("window: {size: 1m\n" MIN_FUNNELS, "cfg.yaml:", "yaml syntax error");
    expect_error("threads: 1\nthreads: 2\n" MIN_FUNNELS,
                 "cfg.yaml:2:1: yaml syntax error: duplicate key");
    expect_error("window: {size: *nope}\n" MIN_FUNNELS,
                 "cfg.yaml:1:17: yaml syntax error: invalid alias");
    expect_error(MIN_FUNNELS "  bad: indentation\n", "cfg.yaml:6:", "yaml syntax error");
    expect_error(MIN_FUNNELS "---\n" MIN_FUNNELS,
                 "cfg.yaml:7:1: config: the file holds more than one YAML document");
    expect_error("", "cfg.yaml:1:1: funnels: required key is missing");
    expect_error("# only a comment\n", "cfg.yaml:1:1: funnels: required key is missing");
    expect_error("~\n", "cfg.yaml:1:1: funnels:");
    /* a byte order mark is not a column */
    expect_error("\xef\xbb\xbfthreads: x\n" MIN_FUNNELS, "cfg.yaml:1:10: threads:");

    /* a NUL byte must not silently cut the file short */
    static const char with_nul[] = "threads: 1\n\0\nthreads: 2\n";
    char err[ERR_LEN];
    assert_null(fs_config_parse(with_nul, sizeof with_nul - 1, "cfg.yaml", err, sizeof err));
    assert_string_equal(err, "cfg.yaml:2:1: config: the file contains a NUL byte");

    /* nor a byte that is not UTF-8, where libfyaml stops as quietly */
    expect_error(MIN_FUNNELS "\xff\nthreads: x\n",
                 "cfg.yaml:6:1: config: the file is not valid UTF-8 (byte 0xff)");
    expect_error("funnels: [caf\xc3\xa9, caf\xe9]\n",
                 "cfg.yaml:1:20: config: the file is not valid UTF-8 (byte 0xe9)");
    /* in a directive, libfyaml 0.7 looped for ever (found by fuzz_config) */
    expect_error("%\xb3", "cfg.yaml:1:2: config: the file is not valid UTF-8 (byte 0xb3)");
    expect_error("%YAML\xe9 1.2\n---\n" MIN_FUNNELS, "cfg.yaml:1:6: config: the file is not "
                                                     "valid UTF-8");
}

static void test_anchors(void **state)
{
    (void)state;
    /* anchors, aliases and merge keys are resolved */
    fs_config *cfg = must_parse("funnels:\n"
                                "  - &base\n"
                                "    name: a\n"
                                "    exclude: &stop [unsubscribe, churn]\n"
                                "    stages: [{name: s, events: [x]}, {name: t, events: [y]}]\n"
                                "  - <<: *base\n"
                                "    name: b\n"
                                "    mode: strict\n"
                                "  - name: c\n"
                                "    exclude: *stop\n"
                                "    stages: [{name: s, events: [x]}, {name: t, events: [y]}]\n");
    assert_int_equal(cfg->n_funnels, 3);
    assert_string_equal(cfg->funnels[1].name, "b");
    assert_int_equal(cfg->funnels[1].mode, FS_MODE_STRICT);
    assert_int_equal(cfg->funnels[1].n_stages, 2);
    assert_int_equal(cfg->funnels[1].n_exclude, 2);
    assert_string_equal(cfg->funnels[2].exclude[1], "churn");
    fs_config_free(cfg);
}

/* ---- bounds on the YAML itself ------------------------------------------ */

/* "Billion laughs": nine levels of nine aliases each would expand to 9^9
 * scalars, gigabytes once libfyaml copies every alias out. The loader must
 * refuse it from the event stream, before it builds anything: were the
 * document built, this test would run out of memory or time. */
static void test_alias_bomb(void **state)
{
    (void)state;
    static const char bomb[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                               "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                               "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n" MIN_FUNNELS;
    /* d holds 7381 nodes: the 6th *d in e passes 50000 */
    expect_error(bomb, "cfg.yaml:5:28: config: alias '*d' expands the config to more than 50000 "
                       "YAML nodes");
    /* the same through merge keys */
    expect_error("a: &a {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v, k9: v}\n"
                 "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                 "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                 "e: [{<<: *d}, {<<: *d}, {<<: *d}, {<<: *d}, {<<: *d}, {<<: *d}]\n",
                 "cfg.yaml:5:", "alias '*d' expands the config to more than 50000");
    /* an alias inside the node it names */
    expect_error("a: &a [x, *a]\n" MIN_FUNNELS, "cfg.yaml:1:11: config: alias '*a' refers to a "
                                                "node that contains it");
    /* aliases that stay small are fine (see test_anchors), even many of them */
    char *yaml = malloc(64 * 1024);
    size_t n = (size_t)sprintf(yaml, "kafka: &k {client.id: x}\nfunnels:\n");
    for (int i = 0; i < FS_MAX_FUNNELS; i++)
        n += (size_t)sprintf(yaml + n,
                             "  - {name: f%d, exclude: &x%d [z], stages: [{name: a, events: [x]}, "
                             "{name: b, events: [y]}]}\n",
                             i, i);
    fs_config *cfg = must_parse(yaml);
    assert_int_equal(cfg->n_funnels, FS_MAX_FUNNELS);
    fs_config_free(cfg);
    free(yaml);
}

/* libfyaml checks the keys of a mapping in quadratic time (10k keys took
 * 13 s): the number of keys per mapping, of nodes, and the file size are
 * bounded, each refusal naming the limit. */
static void test_size_limits(void **state)
{
    (void)state;
    size_t cap = 4u << 20, n;
    char *yaml = malloc(cap);
    fs_config *cfg;

    /* 1000 kafka properties load; 1001 do not */
    n = (size_t)sprintf(yaml, MIN_FUNNELS "kafka:\n");
    for (int i = 0; i < FS_CONFIG_MAX_MAP_KEYS; i++)
        n += (size_t)sprintf(yaml + n, "  p%d: v\n", i);
    cfg = must_parse(yaml);
    assert_int_equal(cfg->n_kafka, FS_CONFIG_MAX_MAP_KEYS);
    fs_config_free(cfg);
    sprintf(yaml + n, "  p%d: v\n", FS_CONFIG_MAX_MAP_KEYS);
    expect_error(yaml, "cfg.yaml:1007:3: config: a mapping has more than 1000 keys");
    /* 20k keys: refused at once, not after a minute */
    for (int i = FS_CONFIG_MAX_MAP_KEYS; i < 20000; i++)
        n += (size_t)sprintf(yaml + n, "  p%d: v\n", i);
    expect_error(yaml, "cfg.yaml:1007:3: config: a mapping has more than 1000 keys");

    /* nodes: a long event list */
    n = (size_t)sprintf(yaml, "funnels:\n  - name: f\n    stages:\n      - {name: b, events: [y]}\n"
                              "      - name: a\n        events:\n");
    for (int i = 0; i < FS_CONFIG_MAX_NODES; i++)
        n += (size_t)sprintf(yaml + n, "          - e%d\n", i);
    expect_error(yaml, "cfg.yaml:", "config: the config has more than 50000 YAML nodes");

    /* nesting */
    n = (size_t)sprintf(yaml, "x: ");
    for (int i = 0; i < FS_CONFIG_MAX_DEPTH + 1; i++)
        yaml[n++] = '[';
    for (int i = 0; i < FS_CONFIG_MAX_DEPTH + 1; i++)
        yaml[n++] = ']';
    sprintf(yaml + n, "\n" MIN_FUNNELS);
    expect_error(yaml, "cfg.yaml:1:", "nested more than 64 deep");

    /* the file: a config padded with a comment past 1 MiB */
    n = (size_t)sprintf(yaml, MIN_FUNNELS "#");
    memset(yaml + n, 'x', FS_CONFIG_MAX_BYTES);
    yaml[n + FS_CONFIG_MAX_BYTES] = '\0';
    expect_error(yaml, "cfg.yaml: config: the config is larger than 1048576 bytes");
    free(yaml);
}

/* An escaped NUL ("\0", "\x00", "\u0000") in a quoted scalar would cut the
 * C string at it: refused wherever a string is read, naming the field. */
static void test_nul_in_strings(void **state)
{
    (void)state;
    const char *msg = "a NUL character (\\0) is not allowed";

    expect_error("input: {topic: \"x\\0y\"}\n" MIN_FUNNELS, "cfg.yaml:1:16: input.topic: ", msg);
    expect_error("funnels:\n  - name: \"f\\x00g\"\n    stages: [{name: a, events: [x]}, "
                 "{name: b, events: [y]}]\n",
                 "cfg.yaml:2:11: funnels[0].name: ", msg);
    expect_error("funnels:\n  - name: f\n    stages: [{name: \"a\\0\", events: [x]}, "
                 "{name: b, events: [y]}]\n",
                 "cfg.yaml:3:21: funnels[0].stages[0].name: ", msg);
    expect_error("funnels:\n  - name: f\n    stages: [{name: a, events: [\"x\\u0000y\"]}, "
                 "{name: b, events: [y]}]\n",
                 "cfg.yaml:3:33: funnels[0].stages[0].events[0]: ", msg);
    expect_error("funnels:\n  - name: f\n    exclude: [\"z\\0\"]\n    stages: [{name: a, events: "
                 "[x]}, {name: b, events: [y]}]\n",
                 "cfg.yaml:3:15: funnels[0].exclude[0]: ", msg);
    expect_error("kafka: {client.id: \"a\\0b\"}\n" MIN_FUNNELS,
                 "cfg.yaml:1:20: kafka.client.id: ", msg);
    expect_error("kafka: {\"client\\0.id\": a}\n" MIN_FUNNELS, "cfg.yaml:1:9: kafka: ", msg);
    expect_error("\"threads\\0\": 1\n" MIN_FUNNELS, "cfg.yaml:1:1: config: ", msg);
}

static void test_message_shape(void **state)
{
    (void)state;
    char err[16];
    const char *bad = "threads: x\n" MIN_FUNNELS;

    /* a short buffer still gets a NUL-terminated prefix */
    memset(err, 'Z', sizeof err);
    assert_null(fs_config_parse(bad, strlen(bad), "cfg.yaml", err, sizeof err));
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_memory_equal(err, "cfg.yaml:1:10: ", 15);
    assert_null(fs_config_parse(bad, strlen(bad), "cfg.yaml", NULL, 0));

    /* control characters from the YAML never break the line */
    expect_error("input: {format: \"a\\nb\"}\n" MIN_FUNNELS, ":1:17: input.format:", "'a b'");
    /* long values are shortened */
    char yaml[1024], errbuf[ERR_LEN];
    char longv[600];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    snprintf(yaml, sizeof yaml, "input: {format: %s}\n" MIN_FUNNELS, longv);
    assert_null(parse(yaml, errbuf));
    assert_non_null(strstr(errbuf, "...'"));

    /* a successful parse leaves an empty message */
    strcpy(errbuf, "junk");
    fs_config *cfg = parse(MIN_FUNNELS, errbuf);
    assert_non_null(cfg);
    assert_string_equal(errbuf, "");
    fs_config_free(cfg);
    fs_config_free(NULL);
}

/* ---- files --------------------------------------------------------------- */

static void source_path(char *out, size_t size, const char *rel)
{
    const char *dir = getenv("FS_SOURCE_DIR");
    snprintf(out, size, "%s/%s", dir ? dir : ".", rel);
}

static fs_config *load_bundled(const char *rel)
{
    char path[1024], err[ERR_LEN];
    fs_config *cfg;

    source_path(path, sizeof path, rel);
    cfg = fs_config_load(path, err, sizeof err);
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->path, path);
    return cfg;
}

static void test_load_errors(void **state)
{
    (void)state;
    char err[ERR_LEN], path[1024];

    assert_null(fs_config_load("/nonexistent/dir/x.yaml", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/dir/x.yaml: cannot open"));
    source_path(path, sizeof path, "configs");
    assert_null(fs_config_load(path, err, sizeof err)); /* a directory */
    assert_non_null(strstr(err, path));
    assert_null(fs_config_load(NULL, err, sizeof err));
}

static void test_bundled_aida(void **state)
{
    (void)state;
    fs_config *cfg = load_bundled("configs/aida.yaml");
    fs_config *spec = must_parse(spec_example);

    /* the SPEC example verbatim */
    assert_int_equal(cfg->n_funnels, 1);
    assert_string_equal(cfg->funnels[0].name, "aida");
    assert_int_equal(cfg->funnels[0].n_stages, 6);
    for (size_t s = 0; s < 6; s++) {
        assert_string_equal(cfg->funnels[0].stages[s].name, spec->funnels[0].stages[s].name);
        assert_int_equal(cfg->funnels[0].stages[s].n_events, spec->funnels[0].stages[s].n_events);
        for (size_t e = 0; e < spec->funnels[0].stages[s].n_events; e++)
            assert_string_equal(cfg->funnels[0].stages[s].events[e],
                                spec->funnels[0].stages[s].events[e]);
    }
    assert_string_equal(cfg->funnels[0].exclude[0], "unsubscribe");
    assert_int_equal(cfg->funnels[0].conversion_window_ms, spec->funnels[0].conversion_window_ms);
    assert_int_equal(cfg->window_size_ms, 60000);
    assert_int_equal(cfg->max_out_of_orderness_ms, 5000);
    assert_int_equal(cfg->cohort_emit_interval_ms, 10000);
    assert_string_equal(cfg->dead_letter_topic, "touchpoints-dlq");
    fs_config_free(spec);
    fs_config_free(cfg);
}

static void test_bundled_b2b(void **state)
{
    (void)state;
    fs_config *cfg = load_bundled("configs/b2b_pipeline.yaml");
    fs_funnel_cfg *f = &cfg->funnels[0];

    assert_int_equal(cfg->n_funnels, 1);
    assert_string_equal(f->name, "b2b_pipeline");
    assert_int_equal(f->mode, FS_MODE_OPEN);
    assert_int_equal(f->conversion_window_ms, INT64_C(30) * 86400000);
    assert_int_equal(f->n_exclude, 2);
    assert_string_equal(f->exclude[1], "disqualified");
    assert_int_equal(f->n_stages, 4);
    assert_string_equal(f->stages[0].name, "suspect");
    assert_int_equal(f->stages[0].n_events, 3);
    assert_string_equal(f->stages[0].events[1], "webinar_view");
    assert_string_equal(f->stages[2].name, "opportunity");
    assert_string_equal(f->stages[2].events[1], "sales_call");
    assert_string_equal(f->stages[3].events[0], "contract_signed");
    fs_config_free(cfg);
}

static void test_bundled_product(void **state)
{
    (void)state;
    fs_config *cfg = load_bundled("configs/product_strict.yaml");
    fs_funnel_cfg *f = &cfg->funnels[0];
    static const char *names[] = {"view", "cart", "checkout", "purchase"};
    static const char *events[] = {"product_view", "add_to_cart", "checkout_start", "purchase"};

    assert_int_equal(cfg->n_funnels, 1);
    assert_string_equal(f->name, "product");
    assert_int_equal(f->mode, FS_MODE_STRICT);
    assert_int_equal(f->conversion_window_ms, 3600000);
    assert_int_equal(f->n_exclude, 1);
    assert_int_equal(f->n_stages, 4);
    for (size_t s = 0; s < 4; s++) {
        assert_string_equal(f->stages[s].name, names[s]);
        assert_int_equal(f->stages[s].n_events, 1);
        assert_string_equal(f->stages[s].events[0], events[s]);
    }
    fs_config_free(cfg);
}

static void test_bundled_default(void **state)
{
    (void)state;
    fs_config *cfg = load_bundled("configs/default.yaml");

    assert_int_equal(cfg->n_funnels, 3);
    assert_string_equal(cfg->funnels[0].name, "aida");
    assert_string_equal(cfg->funnels[1].name, "product");
    assert_string_equal(cfg->funnels[2].name, "b2b_pipeline");
    assert_int_equal(cfg->funnels[1].mode, FS_MODE_STRICT);
    assert_int_equal(cfg->funnels[2].n_stages, 4);
    assert_int_equal(cfg->input_format, FS_FORMAT_MSGPACK);
    assert_int_equal(cfg->output_format, FS_FORMAT_JSON);
    assert_string_equal(cfg->input_topic, "touchpoints");
    assert_string_equal(cfg->output_topic, "funnel-metrics");
    assert_string_equal(cfg->dead_letter_topic, "touchpoints-dlq");
    assert_int_equal(cfg->n_kafka, 2);
    assert_string_equal(cfg->kafka[0].value, "localhost:9092");
    assert_string_equal(cfg->kafka[1].value, "funnelstream");
    assert_int_equal(cfg->window_size_ms, 60000);
    assert_int_equal(cfg->max_out_of_orderness_ms, 5000);
    assert_int_equal(cfg->idle_timeout_ms, 30000);
    assert_int_equal(cfg->cohort_emit_interval_ms, 60000);
    fs_config_free(cfg);
}

#define THREE_STAGES                                                                               \
    "funnels:\n"                                                                                   \
    "  - name: f\n"                                                                                \
    "    stages:\n"                                                                                \
    "      - {name: a, events: [x]}\n"                                                             \
    "      - {name: b, events: [y]}\n"                                                             \
    "      - {name: c, events: [z]}\n"

/* Issue 14's options: defaults, values, and each refusal naming its field. */
static void test_funnel_options(void **state)
{
    (void)state;
    fs_config *cfg = must_parse(MIN_FUNNELS);
    const fs_funnel_cfg *f = &cfg->funnels[0];
    assert_int_equal(f->breakdowns, FS_BREAKDOWN_CHANNEL | FS_BREAKDOWN_SEGMENT);
    assert_int_equal(f->max_breakdown_values, 1000);
    assert_true(f->stage_time);
    assert_false(f->stages[0].optional);
    fs_config_free(cfg);

    cfg = must_parse("funnels:\n  - name: f\n    mode: unordered\n    stage_time: false\n"
                     "    breakdowns: [campaign, channel]\n    max_breakdown_values: 7\n"
                     "    stages: [{name: a, events: [x]}, {name: b, events: [y]}]\n");
    f = &cfg->funnels[0];
    assert_int_equal(f->mode, FS_MODE_UNORDERED);
    assert_false(f->stage_time);
    assert_int_equal(f->breakdowns, FS_BREAKDOWN_CAMPAIGN | FS_BREAKDOWN_CHANNEL);
    assert_int_equal(f->max_breakdown_values, 7);
    fs_config_free(cfg);

    cfg = must_parse(MIN_FUNNELS "    breakdowns: []\n");
    assert_int_equal(cfg->funnels[0].breakdowns, 0);
    fs_config_free(cfg);

    cfg = must_parse("funnels:\n  - name: f\n    mode: strict\n    stages:\n"
                     "      - {name: a, events: [x]}\n"
                     "      - {name: b, events: [y], optional: true}\n"
                     "      - {name: c, events: [z], optional: false}\n");
    assert_true(cfg->funnels[0].stages[1].optional);
    assert_false(cfg->funnels[0].stages[2].optional);
    fs_config_free(cfg);

    expect_error(
        "funnels:\n  - name: f\n    stages:\n"
        "      - {name: a, events: [x], optional: true}\n"
        "      - {name: b, events: [y]}\n      - {name: c, events: [z]}\n",
        "cfg.yaml:4:42: funnels[0].stages[0].optional: the first stage cannot be optional");
    expect_error(THREE_STAGES "      - {name: d, events: [w], optional: true}\n",
                 "funnels[0].stages[3].optional: the last stage cannot be optional");
    expect_error("funnels:\n  - name: f\n    stages:\n"
                 "      - {name: a, events: [x]}\n"
                 "      - {name: b, events: [y], optional: true}\n      - {name: c, events: [z]}\n"
                 "    mode: unordered\n",
                 "funnels[0].stages[1].optional: optional stages are for strict and open funnels");
    expect_error(THREE_STAGES "    x: 1\n", "funnels[0].x: unknown key");
    expect_error("funnels:\n  - name: f\n    stages:\n"
                 "      - {name: a, events: [x]}\n      - {name: b, events: [y], optional: yes}\n",
                 "funnels[0].stages[1].optional: expected 'false' or 'true', got 'yes'");
    expect_error(MIN_FUNNELS "    breakdowns: [channel, region]\n",
                 "cfg.yaml:6:27: funnels[0].breakdowns[1]: unknown breakdown field 'region' "
                 "(expected channel, segment or campaign)");
    expect_error(MIN_FUNNELS "    breakdowns: [campaign, campaign]\n",
                 "funnels[0].breakdowns[1]: 'campaign' is already listed");
    expect_error(MIN_FUNNELS "    breakdowns: campaign\n", "funnels[0].breakdowns:");
    expect_error(MIN_FUNNELS "    max_breakdown_values: 0\n",
                 "funnels[0].max_breakdown_values: expected an integer from 1 to 1000000, got '0'");
    expect_error(MIN_FUNNELS "    max_breakdown_values: 1000001\n",
                 "funnels[0].max_breakdown_values: expected an integer from 1 to 1000000");
    expect_error(MIN_FUNNELS "    max_breakdown_values: -3\n",
                 "funnels[0].max_breakdown_values: expected an integer from 1 to 1000000");
    expect_error(MIN_FUNNELS "    stage_time: 1\n",
                 "funnels[0].stage_time: expected 'false' or 'true'");
    expect_error(MIN_FUNNELS "    mode: any\n",
                 "funnels[0].mode: expected 'strict', 'open' or 'unordered', got 'any'");
}

/* The examples of issue 14's options load with what they show. */
static void test_bundled_issue14_examples(void **state)
{
    (void)state;
    fs_config *cfg = load_bundled("configs/onboarding_unordered.yaml");
    assert_int_equal(cfg->funnels[0].mode, FS_MODE_UNORDERED);
    fs_config_free(cfg);
    cfg = load_bundled("configs/checkout_optional.yaml");
    bool any = false;
    for (size_t s = 0; s < cfg->funnels[0].n_stages; s++)
        any |= cfg->funnels[0].stages[s].optional;
    assert_true(any && cfg->funnels[0].mode == FS_MODE_STRICT);
    fs_config_free(cfg);
    cfg = load_bundled("configs/campaigns.yaml");
    assert_true(cfg->funnels[0].breakdowns & FS_BREAKDOWN_CAMPAIGN);
    assert_int_equal(cfg->funnels[0].max_breakdown_values, 50);
    fs_config_free(cfg);
    cfg = load_bundled("configs/b2b_velocity.yaml");
    assert_true(cfg->funnels[0].stage_time);
    fs_config_free(cfg);
}

/* The docker-compose stage: containers reach the broker as kafka:19092. */
static void test_bundled_docker(void **state)
{
    (void)state;
    fs_config *cfg = load_bundled("configs/docker.yaml");
    assert_int_equal(cfg->n_funnels, 1);
    assert_string_equal(cfg->funnels[0].name, "aida");
    assert_string_equal(cfg->input_topic, "touchpoints");
    assert_string_equal(cfg->dead_letter_topic, "touchpoints-dlq");
    assert_string_equal(cfg->kafka[0].key, "bootstrap.servers");
    assert_string_equal(cfg->kafka[0].value, "kafka:19092");
    assert_int_equal(cfg->window_size_ms, 10000);
    fs_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_delivery_and_state),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_block_and_flow_styles_agree),
        cmocka_unit_test(test_kafka_passthrough),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_stage_knobs),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_duration_fields),
        cmocka_unit_test(test_window_hop),
        cmocka_unit_test(test_bundled_style_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_missing_keys),
        cmocka_unit_test(test_wrong_kinds),
        cmocka_unit_test(test_funnel_rules),
        cmocka_unit_test(test_stage_rules),
        cmocka_unit_test(test_exclude_rules),
        cmocka_unit_test(test_io_rules),
        cmocka_unit_test(test_http_listen),
        cmocka_unit_test(test_yaml_level),
        cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_nul_in_strings),
        cmocka_unit_test(test_message_shape),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_bundled_aida),
        cmocka_unit_test(test_bundled_b2b),
        cmocka_unit_test(test_bundled_product),
        cmocka_unit_test(test_bundled_default),
        cmocka_unit_test(test_bundled_issue14_examples),
        cmocka_unit_test(test_funnel_options),
        cmocka_unit_test(test_bundled_docker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
