/* board.c -- latest and recent flow records per funnel (see board.h).
 *
 * Each funnel keeps a ring of FS_BOARD_RECENT record copies; `next` is the
 * slot the next record goes to, so the ring read from `next` onwards is
 * oldest first. Records arrive in window order per funnel (the sink emits
 * windows ascending), so the newest is always the latest window.
 */
#include "board.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct funnel_board {
    const fs_funnel_cfg *cfg;
    char *recent[FS_BOARD_RECENT];
    size_t len[FS_BOARD_RECENT];
    uint32_t next, count;
} funnel_board;

struct fs_board {
    pthread_mutex_t lock;
    int64_t window_size;
    size_t n;
    funnel_board *f;
};

fs_board *fs_board_new(const fs_config *cfg)
{
    fs_board *b = fs_xcalloc(1, sizeof(*b));
    fs_xcheck(pthread_mutex_init(&b->lock, NULL), "pthread_mutex_init");
    b->n = cfg->n_funnels;
    b->window_size = cfg->window_size_ms;
    b->f = fs_xcalloc(b->n, sizeof(*b->f));
    for (size_t i = 0; i < b->n; i++)
        b->f[i].cfg = &cfg->funnels[i];
    return b;
}

void fs_board_free(fs_board *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        for (uint32_t k = 0; k < FS_BOARD_RECENT; k++)
            free(b->f[i].recent[k]);
    free(b->f);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void fs_board_post(fs_board *b, uint32_t funnel, const char *json, size_t len)
{
    assert(funnel < b->n && len > 0 && json[0] == '{');
    funnel_board *f = &b->f[funnel];
    pthread_mutex_lock(&b->lock);
    free(f->recent[f->next]);
    f->recent[f->next] = fs_xmemdup0(json, len);
    f->len[f->next] = len;
    f->next = (f->next + 1) % FS_BOARD_RECENT;
    if (f->count < FS_BOARD_RECENT)
        f->count++;
    pthread_mutex_unlock(&b->lock);
}

static void put_counts(fs_buf *out, const char *name, const uint64_t *v, uint32_t n)
{
    fs_buf_puts(out, name);
    for (uint32_t s = 0; s < n; s++) {
        fs_buf_putc(out, s ? ',' : '[');
        fs_buf_u64(out, v[s]);
    }
    fs_buf_putc(out, ']');
}

/* The open windows of funnel `f`: a run of the sorted array. */
static void render_open(const fs_board *b, uint32_t f, const fs_open_count *open, uint32_t n,
                        fs_buf *out)
{
    fs_buf_puts(out, ",\"open\":[");
    bool first = true;
    for (uint32_t i = 0; i < n; i++) {
        const fs_open_count *o = &open[i];
        if (o->funnel != f)
            continue;
        fs_buf_puts(out, first ? "{\"window_start\":" : ",{\"window_start\":");
        first = false;
        fs_buf_i64(out, o->start);
        fs_buf_puts(out, ",\"window_end\":");
        fs_buf_i64(out, fs_sat_add(o->start, b->window_size));
        put_counts(out, ",\"entered\":", o->entered, o->n_stages);
        put_counts(out, ",\"reached\":", o->reached, o->n_stages);
        fs_buf_puts(out, ",\"completed\":");
        fs_buf_u64(out, o->completed);
        fs_buf_putc(out, '}');
    }
    fs_buf_putc(out, ']');
}

/* The config's spelling of a funnel mode. A mode this file does not know
 * yet reads as the default, "open": the page then shows stage names, which
 * is right for every ordered mode. */
static const char *mode_name(fs_mode m)
{
    switch (m) {
    case FS_MODE_STRICT:
        return "strict";
    case FS_MODE_UNORDERED:
        return "unordered";
    case FS_MODE_OPEN:
    default:
        return "open";
    }
}

static void render_funnel(const funnel_board *f, fs_buf *out)
{
    const fs_funnel_cfg *cfg = f->cfg;
    fs_buf_puts(out, "{\"name\":");
    fs_buf_json_str(out, cfg->name, strlen(cfg->name));
    fs_buf_puts(out, ",\"mode\":\"");
    fs_buf_puts(out, mode_name(cfg->mode));
    fs_buf_puts(out, "\",\"stages\":[");
    for (size_t s = 0; s < cfg->n_stages; s++) {
        if (s)
            fs_buf_putc(out, ',');
        fs_buf_json_str(out, cfg->stages[s].name, strlen(cfg->stages[s].name));
    }
    fs_buf_puts(out, "],\"optional\":[");
    for (size_t s = 0; s < cfg->n_stages; s++) {
        if (s)
            fs_buf_putc(out, ',');
        fs_buf_puts(out, cfg->stages[s].optional ? "true" : "false");
    }
    fs_buf_puts(out, "],\"latest\":");
    uint32_t newest = (f->next + FS_BOARD_RECENT - 1) % FS_BOARD_RECENT;
    if (f->count)
        fs_buf_put(out, f->recent[newest], f->len[newest]);
    else
        fs_buf_puts(out, "null");
    fs_buf_puts(out, ",\"recent\":[");
    uint32_t first = (f->next + FS_BOARD_RECENT - f->count) % FS_BOARD_RECENT;
    for (uint32_t k = 0; k < f->count; k++) {
        uint32_t slot = (first + k) % FS_BOARD_RECENT;
        if (k)
            fs_buf_putc(out, ',');
        fs_buf_put(out, f->recent[slot], f->len[slot]);
    }
    fs_buf_putc(out, ']');
}

void fs_board_render(fs_board *b, int64_t watermark, const fs_open_count *open, uint32_t n_open,
                     fs_buf *out)
{
    fs_buf_puts(out, "{\"watermark\":");
    if (watermark == INT64_MIN || watermark == INT64_MAX)
        fs_buf_puts(out, "null");
    else
        fs_buf_i64(out, watermark);
    fs_buf_puts(out, ",\"funnels\":[");
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        if (i)
            fs_buf_putc(out, ',');
        render_funnel(&b->f[i], out);
        render_open(b, (uint32_t)i, open, n_open, out);
        fs_buf_putc(out, '}');
    }
    pthread_mutex_unlock(&b->lock);
    fs_buf_puts(out, "]}\n");
}
