/* lookup.c -- one customer's live journeys as JSON (see lookup.h). */
#include "lookup.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

long fs_lookup_id(const fs_http_request *req, char *id, size_t cap, int *status, const char **error)
{
    const char *raw = NULL;
    size_t raw_len = 0;
    if (req->path_len > 1 && req->path[0] == '/') {
        raw = req->path + 1;
        raw_len = req->path_len - 1;
    } else if (req->path_len == 0) {
        raw = fs_http_query_param(req, "id", &raw_len);
    }
    long n = raw ? fs_http_unescape(raw, raw_len, id, cap) : -1;
    *error = !raw     ? "want /api/journeys/<customer_id> or /api/journeys?id=<id>"
             : n < 0  ? "the id is badly percent-encoded or longer than 128 bytes"
             : n == 0 ? "the id is empty"
             : !fs_utf8_valid(id, (size_t)n) ? "the id is not UTF-8: no event can carry it"
                                             : NULL;
    if (!*error)
        return n;
    *status = raw ? 400 : 404;
    return -1;
}

static void put_label(fs_buf *out, fs_engine *e, uint32_t owner, uint32_t label)
{
    uint32_t len;
    const char *name = fs_engine_label(e, owner, label, &len);
    if (name)
        fs_buf_json_str(out, name, len);
    else
        fs_buf_puts(out, "null"); /* not reachable for a validated copy */
}

static void render_journey(fs_buf *out, fs_engine *e, const fs_config *cfg, uint32_t owner,
                           const fs_journey_view *v)
{
    const fs_funnel_cfg *f = &cfg->funnels[v->funnel];
    fs_buf_puts(out, "{\"funnel\":");
    fs_buf_json_str(out, f->name, strlen(f->name));
    fs_buf_puts(out, ",\"stage\":");
    fs_buf_u64(out, v->max_stage);
    fs_buf_puts(out, ",\"stage_name\":");
    const char *stage = v->max_stage < f->n_stages ? f->stages[v->max_stage].name : "";
    fs_buf_json_str(out, stage, strlen(stage));
    fs_buf_puts(out, ",\"started_at\":");
    fs_buf_i64(out, v->start_ts);
    fs_buf_puts(out, ",\"expires_at\":");
    fs_buf_i64(out, v->expiry_ts);
    fs_buf_puts(out, ",\"first_channel\":");
    put_label(out, e, owner, v->first_channel);
    fs_buf_puts(out, ",\"touches\":[");
    for (uint32_t i = 0; i < v->n_touches; i++) {
        fs_buf_puts(out, i ? ",{\"channel\":" : "{\"channel\":");
        put_label(out, e, owner, v->touch[i].label);
        fs_buf_puts(out, ",\"count\":");
        fs_buf_u64(out, v->touch[i].count);
        fs_buf_putc(out, '}');
    }
    fs_buf_puts(out, "]}");
}

void fs_lookup_render(fs_engine *e, const fs_config *cfg, const char *id, size_t len, fs_buf *out)
{
    uint32_t nf = fs_engine_funnels(e), owner;
    fs_journey_view *views = fs_xmalloc(nf * sizeof(*views));
    uint32_t n = fs_engine_read_journeys(e, id, len, views, &owner);
    fs_buf_puts(out, "{\"customer_id\":");
    fs_buf_json_str(out, id, len);
    fs_buf_puts(out, ",\"journeys\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fs_buf_putc(out, ',');
        render_journey(out, e, cfg, owner, &views[i]);
    }
    fs_buf_puts(out, "]}\n");
    free(views);
}
