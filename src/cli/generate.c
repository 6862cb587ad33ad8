/* generate.c -- deterministic synthetic touchpoint traffic (see generate.h).
 *
 * Model. Every customer has a segment (30 % B2B), a preferred channel and a
 * position on its segment's path (a list of stages, each a list of event
 * types, matching the bundled configs). Each record picks a customer, moves
 * it one step and writes the event that step produced. A step advances
 * (sometimes skipping a stage), touches an earlier stage, emits noise that no
 * funnel counts, drops out, unsubscribes or (B2B) is disqualified. A customer
 * without a position enters the path at stage 0, or mid-funnel. Reaching the
 * last stage is a sale carrying a value; some buyers come back for more.
 *
 * Side journeys, for the funnels of configs/checkout_optional.yaml and
 * configs/onboarding_unordered.yaml, made without changing the odds of the
 * path: a B2C customer with a cart who touches mostly applies a coupon (the
 * optional checkout step; most buyers skip it), and a B2B account that
 * starts a trial or signs usually onboards -- five steps in its own random
 * order, some of them never done -- taking a share of its records while it
 * does.
 *
 * Campaigns. Each channel has 20..60 campaigns with Zipf-like popularity (a
 * few carry most records) and a share of journeys without a campaign key.
 * On its preferred channel a customer keeps the journey's campaign (now and
 * then switching); a visit from another channel brings its own. A journey
 * that ends forgets its campaign. 1 record in 4096 has an empty campaign.
 *
 * Sessions. Customers act in bursts: a pool of recently active customers
 * supplies most records, the rest come from a uniform pick that also
 * replaces a pool member. So strict short-window funnels see sessions that
 * convert, and long-window ones see customers return hours later -- some
 * after their conversion window.
 *
 * Time. Record i has nominal time start_ts + floor(i * 1000 / rate); with
 * disorder_ms > 0 it is moved back by a uniform amount in [0, disorder_ms],
 * so no record is later than disorder_ms + one step behind the newest.
 *
 * Malformed records replace a good one with probability malformed_ppm / 1e6,
 * always as one complete object (or line) that the decoder rejects, so a
 * msgpack file and a JSON file of the same seed reject the same records.
 *
 * Encoding. fs_gen_next encodes one record into the generator's own buffer:
 * by hand for JSON (every string comes from a fixed vocabulary or is an
 * ASCII id, so nothing needs escaping), with msgpack-c's packer for
 * MessagePack. fs_generate is a loop over fs_gen_next that gathers the
 * records into 1 MiB writes, so a file and a Kafka topic fed from the same
 * options hold the same records. Everything random is drawn in the same
 * order whatever the output, which is what keeps them identical.
 */
#include "generate.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "util.h"

#define OUT_BUF_SIZE     (1u << 20)
#define MAX_STAGE_EVENTS 3
#define NO_POSITION      0xff

/* ---- vocabulary --------------------------------------------------------- */

typedef struct path_stage {
    const char *events[MAX_STAGE_EVENTS];
    int nevents;
} path_stage;

static const path_stage b2c_path[] = {
    {{"ad_impression", "social_view"}, 2},
    {{"page_view", "content_download"}, 2},
    {{"product_view", "compare"}, 2},
    {{"add_to_cart"}, 1},
    {{"checkout_start"}, 1},
    {{"purchase"}, 1},
};
static const path_stage b2b_path[] = {
    {{"ad_impression", "webinar_view", "page_view"}, 3},
    {{"content_download", "form_submit"}, 2},
    {{"demo_request", "sales_call"}, 2},
    {{"trial_start"}, 1},
    {{"contract_signed"}, 1},
};
#define B2C_STAGES ((int)(sizeof b2c_path / sizeof b2c_path[0]))
#define B2B_STAGES ((int)(sizeof b2b_path / sizeof b2b_path[0]))

static const char *const noise_events[] = {"email_open", "login", "newsletter_signup",
                                           "support_ticket", "search"};
#define N_NOISE 5

static const char *const channels[] = {"search", "social", "email", "display", "referral",
                                       "direct", "store",  "app",   "partner"};
enum {
    CH_SEARCH,
    CH_SOCIAL,
    CH_EMAIL,
    CH_DISPLAY,
    CH_REFERRAL,
    CH_DIRECT,
    CH_STORE,
    CH_APP,
    CH_PARTNER,
    N_CHANNELS
};

static const uint8_t channel_len[] = {6, 6, 5, 7, 8, 6, 5, 3, 7}; /* strlen of channels[] */
_Static_assert(sizeof channel_len == N_CHANNELS, "one length per channel");

/* Cumulative channel weights (out of 100) per segment. */
static const uint8_t b2c_channel_cdf[N_CHANNELS] = {25, 50, 60, 70, 75, 85, 93, 100, 100};
static const uint8_t b2b_channel_cdf[N_CHANNELS] = {20, 25, 50, 60, 70, 80, 80, 80, 100};

/* Campaigns. Each channel runs tens of campaigns named
 * "<channel>-<theme>-<nn>", the themes taken in turn (rank 0 is
 * "<channel>-<theme 0>-01", rank 1 "<channel>-<theme 1>-01", ...), so the
 * popular head mixes themes. Popularity by rank r (1-based) is Zipf-like,
 * weight 1 / r^1.25 (r * sqrt(sqrt(r)): IEEE sqrt is exactly rounded, so the
 * weights, and so the bytes, are the same on every platform). no_key_pct is
 * the share of journeys on the channel that carry no campaign key at all. */
typedef struct channel_campaigns {
    uint8_t count; /* <= MAX_CAMPAIGNS */
    uint8_t no_key_pct;
    const char *themes[5];
} channel_campaigns;

#define MAX_CAMPAIGNS   60
#define CAMPAIGN_NAME   40 /* longest: "referral-comparison_site-24" + NUL */
#define CAMPAIGN_STICKY 92 /* % of preferred-channel events that keep the journey's campaign */

static const channel_campaigns channel_camps[] = {
    [CH_SEARCH] = {60, 10, {"brand", "generic", "competitor", "shopping", "dsa"}},
    [CH_SOCIAL] = {48, 15, {"lookalike", "retarget", "influencer", "story", "video"}},
    [CH_EMAIL] = {40, 5, {"newsletter", "winback", "cart_reminder", "welcome", "promo"}},
    [CH_DISPLAY] = {36, 10, {"prospecting", "retarget", "banner", "native", "video"}},
    [CH_REFERRAL] = {24, 35, {"affiliate", "coupon_site", "blog", "comparison_site", "review"}},
    [CH_DIRECT] = {20, 80, {"vanity_url", "qr_code", "print", "podcast", "tv"}},
    [CH_STORE] = {24, 50, {"instore_promo", "flyer", "loyalty", "event", "window"}},
    [CH_APP] = {32, 20, {"push", "in_app", "deeplink", "onboarding", "rewards"}},
    [CH_PARTNER] = {28, 15, {"cobrand", "reseller", "marketplace", "webinar", "mdf"}},
};

/* touch.campaign when the record has no campaign string from the tables. */
#define CAMPAIGN_NO_KEY (-1) /* no campaign key */
#define CAMPAIGN_EMPTY  (-2) /* "campaign": "" */
/* Of every record, 1 in 4096 carries an empty campaign string (bad tagging). */
#define EMPTY_CAMPAIGN_SHIFT 52 /* rng_next() >> 52 == 0: p = 2^-12 */

/* customer.campaign: a rank among its preferred channel's campaigns, or */
#define STICKY_NO_KEY 0xfe /* the journey carries no campaign key */
#define STICKY_UNSET  0xff /* no journey campaign chosen yet */

/* The optional checkout step (configs/checkout_optional.yaml): a B2C
 * customer with a cart who "touches" instead of moving on applies a coupon
 * CART_COUPON_PCT % of the time. It is a touch in the path model, so the
 * advance and drop-out odds, and with them the shape of the existing
 * funnels, stay as they were; most buyers never apply one. */
#define B2C_CART_STAGE  3
#define CART_COUPON_PCT 75

/* Onboarding (configs/onboarding_unordered.yaml): a B2B account that starts a
 * trial (ONBOARD_AT_TRIAL_PCT %) or signs without one (ONBOARD_AT_SIGN_PCT %)
 * goes through these steps in its own random order; while it does, a share
 * ONBOARD_STEP_PCT of its records are onboarding steps rather than path
 * steps, and after each step it gives up with ONBOARD_QUIT_PCT %, leaving
 * steps out. An account onboards at most once. */
static const char *const onboard_events[] = {"signup", "profile_complete", "invite_sent",
                                             "integration_connected", "first_report"};
#define N_ONBOARD            5
#define ONBOARD_ALL          ((1u << N_ONBOARD) - 1) /* every step done */
#define ONBOARD_ACTIVE       0x20
#define ONBOARD_EVER         0x40
#define ONBOARD_AT_TRIAL_PCT 80
#define ONBOARD_AT_SIGN_PCT  50
#define ONBOARD_STEP_PCT     40
#define ONBOARD_QUIT_PCT     10
#define B2B_TRIAL_STAGE      3
_Static_assert(sizeof onboard_events / sizeof onboard_events[0] == N_ONBOARD, "N_ONBOARD");

/* ---- random numbers (xoshiro256**, seeded by splitmix64) ---------------- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) (n > 0), by multiply-shift: bias below 2^-32 for our n. */
static uint64_t rng_below(rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static unsigned rng_percent(rng *r)
{
    return (unsigned)rng_below(r, 100);
}

/* ---- customers and steps ----------------------------------------------- */

typedef struct customer {
    uint8_t position; /* last stage reached on its path, NO_POSITION if none */
    uint8_t b2b;
    uint8_t channel;  /* preferred channel */
    uint8_t campaign; /* the journey's campaign on the preferred channel, or STICKY_* */
    uint8_t onboard;  /* ONBOARD_*: bit i set = onboard_events[i] done */
} customer;

typedef struct touch {
    uint64_t customer;
    const char *event;
    int channel;
    int campaign;        /* index into generator.campaign_name, or CAMPAIGN_NO_KEY / _EMPTY */
    int64_t value_cents; /* < 0: no value key */
} touch;

/* Walker's alias table for one channel's campaign popularity: draw a rank i
 * uniformly, keep it when 32 random bits fall below keep[i], else take
 * alias[i] -- one random number per draw, whatever the count. */
typedef struct campaign_table {
    uint32_t first; /* index of rank 0 in generator.campaign_name */
    uint32_t count;
    uint64_t keep[MAX_CAMPAIGNS]; /* out of 2^32 */
    uint8_t alias[MAX_CAMPAIGNS];
} campaign_table;

#define N_CAMPAIGN_NAMES (N_CHANNELS * MAX_CAMPAIGNS)

#define AHEAD 4 /* a power of 2 */

typedef struct generator {
    const fs_gen_opts *opts;
    rng r;
    customer *cust;
    uint64_t *pool;
    uint64_t pool_size;
    /* The customers of the next AHEAD records, picked early so that their
     * records can be prefetched: a customer record is a cache miss (the
     * table is megabytes) that otherwise costs a quarter of the time. */
    uint64_t ahead[AHEAD];
    unsigned ahead_at; /* the next record's slot in ahead */
    campaign_table camps[N_CHANNELS];
    uint8_t campaign_len[N_CAMPAIGN_NAMES];
    char campaign_name[N_CAMPAIGN_NAMES][CAMPAIGN_NAME];
} generator;

static int pick_channel(generator *g, const customer *c)
{
    if (rng_percent(&g->r) < 60)
        return c->channel;
    const uint8_t *cdf = c->b2b ? b2b_channel_cdf : b2c_channel_cdf;
    unsigned p = rng_percent(&g->r);
    int i = 0;
    while (p >= cdf[i])
        i++;
    return i;
}

/* (inlined: it runs once per record, and a call costs ~2 % of the time) */
static inline __attribute__((always_inline)) uint64_t pick_customer(generator *g)
{
    if (rng_percent(&g->r) < 70)
        return g->pool[rng_below(&g->r, g->pool_size)];
    uint64_t c = rng_below(&g->r, g->opts->customers);
    g->pool[rng_below(&g->r, g->pool_size)] = c;
    return c;
}

static const char *stage_event(generator *g, const path_stage *stage)
{
    return stage->events[rng_below(&g->r, (uint64_t)stage->nevents)];
}

/* Where a customer without a position enters: mostly at the top. */
static int entry_stage(generator *g)
{
    unsigned p = rng_percent(&g->r);
    return p < 65 ? 0 : p < 85 ? 1 : p < 95 ? 2 : 3;
}

static int64_t sale_value_cents(generator *g, bool b2b)
{
    if (b2b)
        return (int64_t)(1000 + rng_below(&g->r, 99000)) * 100; /* whole currency units */
    return 500 + (int64_t)rng_below(&g->r, 49500);
}

/* Moves customer c one step and describes the event it produced. */
static void step(generator *g, customer *c, touch *t)
{
    const path_stage *path = c->b2b ? b2b_path : b2c_path;
    int last = (c->b2b ? B2B_STAGES : B2C_STAGES) - 1;
    int pos = c->position == NO_POSITION ? -1 : c->position;
    int next;
    unsigned p = rng_percent(&g->r);
    t->value_cents = -1;
    if (pos < 0) {
        next = entry_stage(g);
    } else if (p < 50) {
        next = pos + 1;
    } else if (p < 58) {
        next = pos + 2 > last ? last : pos + 2;
    } else if (p < 78) {
        if (!c->b2b && pos == B2C_CART_STAGE && rng_percent(&g->r) < CART_COUPON_PCT) {
            t->event = "coupon_applied"; /* a touch that is the optional checkout step */
            return;
        }
        next = (int)rng_below(&g->r, (uint64_t)pos + 1); /* touch */
    } else {
        const char *noise = noise_events[rng_below(&g->r, N_NOISE)];
        if (p >= 96) { /* leaves the funnel, by unsubscribing or disqualification */
            noise = (c->b2b && p >= 98) ? "disqualified" : "unsubscribe";
            c->position = NO_POSITION;
        } else if (p >= 90) { /* drops out silently */
            c->position = NO_POSITION;
        }
        t->event = noise;
        return;
    }
    if (next > last)
        next = last;
    t->event = stage_event(g, &path[next]);
    c->position = (uint8_t)next;
    if (c->b2b && !(c->onboard & ONBOARD_EVER) && (next == B2B_TRIAL_STAGE || next == last) &&
        rng_percent(&g->r) < (next == last ? ONBOARD_AT_SIGN_PCT : ONBOARD_AT_TRIAL_PCT))
        c->onboard = ONBOARD_ACTIVE | ONBOARD_EVER;
    if (next == last) {
        t->value_cents = sale_value_cents(g, c->b2b);
        if (!c->b2b && rng_percent(&g->r) < 15)
            t->channel = CH_STORE; /* bought in store after browsing online */
        c->position = rng_percent(&g->r) < 30 ? 1 : NO_POSITION; /* buys again later */
    }
}

/* One onboarding step of an onboarding customer: one of the steps not done
 * yet, uniformly, so every account has its own order. */
static void onboard_step(generator *g, customer *c, touch *t)
{
    unsigned todo = ~c->onboard & ONBOARD_ALL, i = 0;
    unsigned k = (unsigned)rng_below(&g->r, (uint64_t)__builtin_popcount(todo));
    for (;; i++) /* to the k-th step not done yet */
        if ((todo >> i & 1) && k-- == 0)
            break;
    c->onboard |= (uint8_t)(1u << i);
    t->event = onboard_events[i];
    t->value_cents = -1;
    if ((c->onboard & ONBOARD_ALL) == ONBOARD_ALL || rng_percent(&g->r) < ONBOARD_QUIT_PCT)
        c->onboard &= (uint8_t)~ONBOARD_ACTIVE;
}

/* The rank of a campaign of channel ch, drawn by popularity. */
static int draw_campaign(generator *g, int ch)
{
    const campaign_table *ct = &g->camps[ch];
    uint64_t r = rng_next(&g->r);
    uint32_t i = (uint32_t)(((r >> 32) * ct->count) >> 32);
    if ((r & 0xffffffffu) >= ct->keep[i])
        i = ct->alias[i];
    return (int)i;
}

/* The campaign of a record on channel ch. On the preferred channel a journey
 * keeps its campaign (or its lack of one), switching now and then; other
 * channels are one-off visits with a campaign of their own. */
static int pick_campaign(generator *g, customer *c, int ch)
{
    uint64_t r = rng_next(&g->r);
    if (r >> EMPTY_CAMPAIGN_SHIFT == 0)
        return CAMPAIGN_EMPTY;
    unsigned pct = (unsigned)((r & 0xffffffffu) * 100 >> 32);
    int idx;
    if (ch == c->channel && c->campaign != STICKY_UNSET && pct < CAMPAIGN_STICKY) {
        if (c->campaign == STICKY_NO_KEY)
            return CAMPAIGN_NO_KEY;
        idx = c->campaign;
    } else {
        /* bits 32..51 of r: the no-key draw (independent of pct's bits) */
        bool no_key = ((r >> 32) & 0xfffff) * 100 >> 20 < channel_camps[ch].no_key_pct;
        idx = no_key ? -1 : draw_campaign(g, ch);
        if (ch == c->channel)
            c->campaign = no_key ? STICKY_NO_KEY : (uint8_t)idx;
        if (no_key)
            return CAMPAIGN_NO_KEY;
    }
    return (int)g->camps[ch].first + idx;
}

static void next_touch(generator *g, touch *t)
{
    t->customer = g->ahead[g->ahead_at];
    g->ahead[g->ahead_at] = pick_customer(g);
    __builtin_prefetch(&g->cust[g->ahead[g->ahead_at]], 1);
    g->ahead_at = (g->ahead_at + 1) % AHEAD;
    customer *c = &g->cust[t->customer];
    t->channel = pick_channel(g, c);
    if ((c->onboard & ONBOARD_ACTIVE) && rng_percent(&g->r) < ONBOARD_STEP_PCT)
        onboard_step(g, c, t);
    else
        step(g, c, t);
    t->campaign = pick_campaign(g, c, t->channel);
    if (c->position == NO_POSITION)
        c->campaign = STICKY_UNSET; /* the journey is over: the next one picks afresh */
}

/* ---- encoding one record ------------------------------------------------- */

/* Every record fits: the longest is a malformed one with a 129-byte customer
 * id, under 400 bytes in either encoding. */
#define REC_BUF_SIZE 1024

/* A record is encoded at dst, which is rec -- except inside fs_generate,
 * which points dst into its output buffer before each fs_gen_next so that
 * records are encoded in place instead of copied (a copy per record costs
 * ~8 % of generating MessagePack). */
struct fs_gen {
    fs_gen_opts opts; /* gen.opts points here */
    generator gen;
    uint64_t next; /* index of the next record */
    char *dst;     /* where the record goes: REC_BUF_SIZE bytes of room */
    size_t len;    /* bytes of dst in use */
    size_t key_len;
    char key[FS_MAX_CUSTOMER_ID + 2];
    char rec[REC_BUF_SIZE];
};

static void rec_write(fs_gen *g, const void *p, size_t n)
{
    if (n > REC_BUF_SIZE - g->len)
        abort(); /* cannot happen: see REC_BUF_SIZE */
    memcpy(g->dst + g->len, p, n);
    g->len += n;
}

static int packer_write(void *data, const char *buf, size_t len)
{
    rec_write(data, buf, len);
    return 0;
}

/* How a malformed record is broken (the same in both encodings). */
enum corruption {
    BAD_NONE = -1,
    BAD_NO_CUSTOMER,
    BAD_FLOAT_TS,
    BAD_STRING_TS,
    BAD_EMPTY_EVENT,
    BAD_STRING_VALUE,
    BAD_NOT_A_MAP,
    BAD_UTF8_CHANNEL,
    BAD_LONG_CUSTOMER,
    BAD_GARBAGE,
    N_CORRUPTIONS
};

static const char invalid_utf8[] = "\xff\xfe";

static size_t put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

static size_t id_text(char *buf, uint64_t index, bool b2b, enum corruption bad)
{
    if (bad == BAD_LONG_CUSTOMER) {
        memset(buf, 'x', FS_MAX_CUSTOMER_ID + 1);
        return FS_MAX_CUSTOMER_ID + 1;
    }
    size_t n = b2b ? 5 : 1;
    memcpy(buf, b2b ? "acct-" : "c", n);
    return n + put_u64(buf + n, index);
}

static size_t put_i64(char *p, int64_t v)
{
    if (v < 0) {
        p[0] = '-';
        return 1 + put_u64(p + 1, 0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

static size_t put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return n;
}

/* Whether a record carries a customer_id key at all. */
static bool has_customer_id(enum corruption bad)
{
    return bad != BAD_NO_CUSTOMER && bad != BAD_NOT_A_MAP && bad != BAD_GARBAGE;
}

/* One JSON line, without its '\n', at g->dst. The line is built in place:
 * the bound in REC_BUF_SIZE leaves room for the longest one. (restrict: the
 * line is written through this pointer only, so the compiler need not
 * reload t and g after every byte; worth ~8 % of generating JSON.) */
static void encode_json(fs_gen *g, const touch *t, int64_t ts, enum corruption bad)
{
    char *restrict line = g->dst;
    size_t n = 0;
    if (bad == BAD_NOT_A_MAP) {
        rec_write(g, "[1,2,3]", 7);
        return;
    }
    if (bad == BAD_GARBAGE) {
        rec_write(g, "not json", 8);
        return;
    }
    const customer *c = &g->gen.cust[t->customer];
    line[n++] = '{';
    if (bad != BAD_NO_CUSTOMER) {
        n += put_str(line + n, "\"customer_id\":\"");
        memcpy(line + n, g->key, g->key_len);
        n += g->key_len;
        n += put_str(line + n, "\",");
    }
    n += put_str(line + n, "\"ts\":");
    if (bad == BAD_STRING_TS)
        line[n++] = '"';
    n += put_i64(line + n, ts);
    n += put_str(line + n, bad == BAD_FLOAT_TS ? ".0" : bad == BAD_STRING_TS ? "\"" : "");
    n += put_str(line + n, ",\"event\":\"");
    n += put_str(line + n, bad == BAD_EMPTY_EVENT ? "" : t->event);
    n += put_str(line + n, "\",\"channel\":\"");
    n += put_str(line + n, bad == BAD_UTF8_CHANNEL ? invalid_utf8 : channels[t->channel]);
    n += put_str(line + n, "\",\"segment\":\"");
    n += put_str(line + n, c->b2b ? "b2b" : "b2c");
    line[n++] = '"';
    if (t->campaign != CAMPAIGN_NO_KEY) {
        n += put_str(line + n, ",\"campaign\":\"");
        if (t->campaign >= 0) {
            memcpy(line + n, g->gen.campaign_name[t->campaign], g->gen.campaign_len[t->campaign]);
            n += g->gen.campaign_len[t->campaign];
        }
        line[n++] = '"';
    }
    if (t->value_cents >= 0 || bad == BAD_STRING_VALUE) {
        int64_t v = t->value_cents < 0 ? 0 : t->value_cents;
        n += put_str(line + n, bad == BAD_STRING_VALUE ? ",\"value\":\"" : ",\"value\":");
        n += put_i64(line + n, v / 100);
        line[n++] = '.';
        line[n++] = (char)('0' + v / 10 % 10);
        line[n++] = (char)('0' + v % 10);
        if (bad == BAD_STRING_VALUE)
            line[n++] = '"';
    }
    line[n++] = '}';
    g->len = n;
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* One MessagePack object at g->dst. flatten inlines msgpack-c's packers
 * here, so that the write callback becomes a direct, inlined copy rather
 * than a call through a pointer per field: ~25 % of generating MessagePack. */
__attribute__((flatten)) static void encode_msgpack(fs_gen *g, const touch *t, int64_t ts,
                                                    enum corruption bad)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, g, packer_write);
    if (bad == BAD_NOT_A_MAP) {
        msgpack_pack_array(&pk, 3);
        for (int i = 1; i <= 3; i++)
            msgpack_pack_int(&pk, i);
        return;
    }
    if (bad == BAD_GARBAGE) {
        rec_write(g, "\xc1", 1); /* a byte that never starts an object */
        return;
    }
    const customer *c = &g->gen.cust[t->customer];
    bool has_value = t->value_cents >= 0 || bad == BAD_STRING_VALUE;
    size_t keys =
        4 + (size_t)(bad != BAD_NO_CUSTOMER) + (size_t)(t->campaign != CAMPAIGN_NO_KEY) + has_value;
    msgpack_pack_map(&pk, keys);
    if (bad != BAD_NO_CUSTOMER) {
        pack_cstr(&pk, "customer_id", 11);
        pack_cstr(&pk, g->key, g->key_len);
    }
    pack_cstr(&pk, "ts", 2);
    if (bad == BAD_FLOAT_TS) {
        msgpack_pack_double(&pk, (double)ts);
    } else if (bad == BAD_STRING_TS) {
        char tmp[24];
        pack_cstr(&pk, tmp, put_i64(tmp, ts));
    } else {
        msgpack_pack_int64(&pk, ts);
    }
    pack_cstr(&pk, "event", 5);
    const char *ev = bad == BAD_EMPTY_EVENT ? "" : t->event;
    pack_cstr(&pk, ev, strlen(ev));
    pack_cstr(&pk, "channel", 7);
    if (bad == BAD_UTF8_CHANNEL)
        pack_cstr(&pk, invalid_utf8, sizeof invalid_utf8 - 1);
    else
        pack_cstr(&pk, channels[t->channel], channel_len[t->channel]);
    pack_cstr(&pk, "segment", 7);
    pack_cstr(&pk, c->b2b ? "b2b" : "b2c", 3);
    if (t->campaign != CAMPAIGN_NO_KEY) {
        pack_cstr(&pk, "campaign", 8);
        if (t->campaign >= 0)
            pack_cstr(&pk, g->gen.campaign_name[t->campaign], g->gen.campaign_len[t->campaign]);
        else
            pack_cstr(&pk, "", 0);
    }
    if (has_value) {
        int64_t v = t->value_cents < 0 ? 0 : t->value_cents;
        pack_cstr(&pk, "value", 5);
        if (bad == BAD_STRING_VALUE)
            pack_cstr(&pk, "12.50", 5);
        else if (v % 100 == 0)
            msgpack_pack_int64(&pk, v / 100);
        else
            msgpack_pack_double(&pk, (double)v / 100.0);
    }
}

/* ---- driver ------------------------------------------------------------- */

void fs_gen_opts_default(fs_gen_opts *opts)
{
    *opts = (fs_gen_opts){.events = 1000000,
                          .customers = 100000,
                          .seed = 1,
                          .format = FS_FORMAT_MSGPACK,
                          .start_ts = 1732280400000,
                          .rate = 1000,
                          .disorder_ms = 0,
                          .malformed_ppm = 0};
}

/* Vose's alias method on integer weights, so the table is exact: each
 * rank's share w[i] * n is compared with the total W; a rank below W keeps
 * itself with odds w[i] * n / W and hands the rest to a rank above W. */
static void build_alias(campaign_table *ct, const uint64_t *w)
{
    uint32_t n = ct->count;
    uint64_t total = 0, share[MAX_CAMPAIGNS];
    uint8_t small[MAX_CAMPAIGNS], large[MAX_CAMPAIGNS];
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++)
        total += w[i];
    for (uint32_t i = 0; i < n; i++) {
        share[i] = w[i] * n; /* w < 2^40, n <= 60: no overflow */
        ct->alias[i] = (uint8_t)i;
        ct->keep[i] = 1ull << 32;
        if (share[i] < total)
            small[ns++] = (uint8_t)i;
        else
            large[nl++] = (uint8_t)i;
    }
    while (ns && nl) {
        uint8_t s = small[--ns], l = large[nl - 1];
        ct->keep[s] = (uint64_t)(((unsigned __int128)share[s] << 32) / total);
        ct->alias[s] = l;
        share[l] -= total - share[s];
        if (share[l] < total) {
            nl--;
            small[ns++] = l;
        }
    }
}

static void init_campaigns(generator *g)
{
    uint32_t first = 0;
    for (int ch = 0; ch < N_CHANNELS; ch++) {
        const channel_campaigns *cc = &channel_camps[ch];
        campaign_table *ct = &g->camps[ch];
        uint64_t w[MAX_CAMPAIGNS];
        ct->first = first;
        ct->count = cc->count;
        for (uint32_t i = 0; i < cc->count; i++) {
            double r = (double)(i + 1);
            w[i] = (uint64_t)(0x1p40 / (r * sqrt(sqrt(r))));
            int len = snprintf(g->campaign_name[first + i], CAMPAIGN_NAME, "%s-%s-%02u",
                               channels[ch], cc->themes[i % 5], i / 5 + 1);
            if (len <= 0 || len >= CAMPAIGN_NAME)
                abort(); /* cannot happen: see CAMPAIGN_NAME */
            g->campaign_len[first + i] = (uint8_t)len;
        }
        build_alias(ct, w);
        first += cc->count;
    }
}

static void init_customers(generator *g)
{
    uint64_t m = g->opts->customers;
    g->cust = fs_xmalloc(m * sizeof *g->cust);
    for (uint64_t i = 0; i < m; i++) {
        customer *c = &g->cust[i];
        c->b2b = rng_percent(&g->r) < 30;
        c->position = NO_POSITION;
        c->campaign = STICKY_UNSET;
        c->onboard = 0;
        const uint8_t *cdf = c->b2b ? b2b_channel_cdf : b2c_channel_cdf;
        unsigned p = rng_percent(&g->r);
        uint8_t ch = 0;
        while (p >= cdf[ch])
            ch++;
        c->channel = ch;
    }
    g->pool_size = m / 50 + 1;
    if (g->pool_size > 4096)
        g->pool_size = 4096;
    g->pool = fs_xmalloc(g->pool_size * sizeof *g->pool);
    for (uint64_t i = 0; i < g->pool_size; i++)
        g->pool[i] = rng_below(&g->r, m);
    for (unsigned i = 0; i < AHEAD; i++)
        g->ahead[i] = pick_customer(g);
    g->ahead_at = 0;
}

static int64_t event_time(generator *g, uint64_t i)
{
    const fs_gen_opts *o = g->opts;
    int64_t ts = o->start_ts + (int64_t)((double)i * 1000.0 / o->rate);
    if (o->disorder_ms > 0)
        ts -= (int64_t)rng_below(&g->r, (uint64_t)o->disorder_ms + 1);
    return ts;
}

bool fs_gen_time_span(const fs_gen_opts *o, int64_t *first, int64_t *last)
{
    if (!fs_ts_valid(o->start_ts) || o->disorder_ms < 0 || o->disorder_ms > o->start_ts - FS_TS_MIN)
        return false; /* (start_ts - FS_TS_MIN <= 2^54: no overflow) */
    *first = o->start_ts - o->disorder_ms;
    /* The last record's offset exactly as event_time computes it. */
    double span = o->events ? (double)(o->events - 1) * 1000.0 / o->rate : 0;
    if (!(span < 0x1p62))
        return false;
    *last = o->start_ts + (int64_t)span;
    return *last <= FS_TS_MAX;
}

fs_gen *fs_gen_new(const fs_gen_opts *opts)
{
    if (!opts || opts->customers == 0 || !(opts->rate > 0)) {
        errno = EINVAL;
        return NULL;
    }
    fs_gen *g = fs_xmalloc(sizeof *g);
    g->opts = *opts;
    g->gen = (generator){.opts = &g->opts};
    g->next = 0;
    g->dst = g->rec;
    g->len = g->key_len = 0;
    rng_seed(&g->gen.r, opts->seed);
    init_campaigns(&g->gen);
    init_customers(&g->gen);
    return g;
}

/* The random draws happen in this order for every record, whatever the
 * output: the touch, the disorder, the corruption (and its kind). */
int fs_gen_next(fs_gen *g, int64_t ts_override, const char **value, size_t *value_len,
                const char **key, size_t *key_len)
{
    *value = *key = NULL;
    *value_len = *key_len = 0;
    if (g->opts.events && g->next >= g->opts.events)
        return 1;
    touch t;
    next_touch(&g->gen, &t);
    int64_t ts = event_time(&g->gen, g->next++);
    if (ts_override != INT64_MIN)
        ts = ts_override;
    enum corruption bad = BAD_NONE;
    if (g->opts.malformed_ppm && rng_below(&g->gen.r, 1000000) < g->opts.malformed_ppm)
        bad = (enum corruption)rng_below(&g->gen.r, N_CORRUPTIONS);
    bool has_id = has_customer_id(bad);
    g->key_len = has_id ? id_text(g->key, t.customer, g->gen.cust[t.customer].b2b, bad) : 0;
    g->len = 0;
    if (g->opts.format == FS_FORMAT_JSON)
        encode_json(g, &t, ts, bad);
    else
        encode_msgpack(g, &t, ts, bad);
    *value = g->dst;
    *value_len = g->len;
    if (has_id) {
        *key = g->key;
        *key_len = g->key_len;
    }
    return 0;
}

void fs_gen_free(fs_gen *g)
{
    if (!g)
        return;
    free(g->gen.cust);
    free(g->gen.pool);
    free(g);
}

/* ---- writing a whole stream ----------------------------------------------- */

/* Records are gathered into big writes: one fwrite per record costs more
 * than generating it. */
typedef struct out_buf {
    char *buf;
    size_t len;
    FILE *f;
    int err;
} out_buf;

static void out_flush(out_buf *o)
{
    if (o->len && !o->err && fwrite(o->buf, 1, o->len, o->f) != o->len)
        o->err = errno ? errno : EIO;
    o->len = 0;
}

int fs_generate(const fs_gen_opts *opts, FILE *out)
{
    int64_t first, last;
    if (!opts || !fs_gen_time_span(opts, &first, &last)) {
        errno = EINVAL;
        return -1;
    }
    fs_gen *g = fs_gen_new(opts);
    if (!g)
        return -1;
    out_buf o = {.buf = fs_xmalloc(OUT_BUF_SIZE), .f = out};
    bool json = opts->format == FS_FORMAT_JSON;
    /* Counted here: for fs_gen_next, events == 0 means no end. */
    for (uint64_t i = 0; i < opts->events && !o.err; i++) {
        if (o.len + REC_BUF_SIZE + 1 > OUT_BUF_SIZE)
            out_flush(&o);
        g->dst = o.buf + o.len; /* encode in place, see struct fs_gen */
        const char *value, *key;
        size_t value_len, key_len;
        fs_gen_next(g, INT64_MIN, &value, &value_len, &key, &key_len);
        o.len += value_len;
        if (json)
            o.buf[o.len++] = '\n';
    }
    out_flush(&o);
    if (!o.err && fflush(out) != 0)
        o.err = errno ? errno : EIO;
    free(o.buf);
    fs_gen_free(g);
    if (o.err) {
        errno = o.err;
        return -1;
    }
    return 0;
}
