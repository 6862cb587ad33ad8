/* e2e_util.c -- helpers for end-to-end tests that run the real binary.
 *
 * Running: the binary is started with posix_spawn; stdin, stdout and stderr
 * are temporary files under FS_TMP (never pipes), so a child that writes a
 * lot before reading cannot deadlock against the test, and the test simply
 * waits for it with waitpid and then reads the files back.
 *
 * Reading: output records are one JSON object per line. Instead of a JSON
 * library the tests use a tiny recursive scanner: skip_value() finds where a
 * value ends, and a dotted path ("ttc_ms.p50", "reached.2") is walked by
 * skipping siblings. It validates enough structure to reject garbage (an
 * unterminated string, a missing ':'), which is all test code needs: the
 * assertions compare the raw text of a field (whitespace outside strings
 * removed) or, for floats, parse numbers and compare with a tolerance.
 *
 * Temporary files written by fs_e2e_write_file are removed at exit unless
 * FS_E2E_KEEP is set (handy when a failure has to be reproduced by hand).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "e2e_util.h"

extern char **environ;

/* ---- small utilities ---- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "e2e: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* A growable byte buffer, always NUL-terminated. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            abort();
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_byte(sbuf *b, unsigned c)
{
    unsigned char ch = (unsigned char)c;
    sb_add(b, &ch, 1);
}

static void sb_printf(sbuf *b, const char *fmt, ...) CMOCKA_PRINTF_ATTRIBUTE(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if ((size_t)n < sizeof(tmp)) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

static char *sb_take(sbuf *b)
{
    if (!b->p)
        return xstrndup("", 0);
    return b->p;
}

const char *fs_e2e_bin(void)
{
    const char *b = getenv("FS_BIN");
    return b && *b ? b : "funnelstream";
}

const char *fs_e2e_tmpdir(void)
{
    const char *t = getenv("FS_TMP");
    return t && *t ? t : "/tmp";
}

/* ---- temporary files ---- */

static char **cleanup_paths;
static size_t cleanup_n;
static bool cleanup_registered;

static void cleanup_files(void)
{
    for (size_t i = 0; i < cleanup_n; i++) {
        unlink(cleanup_paths[i]);
        free(cleanup_paths[i]);
    }
    free(cleanup_paths);
    cleanup_paths = NULL;
    cleanup_n = 0;
}

static void remember_for_cleanup(const char *path)
{
    if (getenv("FS_E2E_KEEP"))
        return;
    if (!cleanup_registered) {
        atexit(cleanup_files);
        cleanup_registered = true;
    }
    char **np = realloc(cleanup_paths, (cleanup_n + 1) * sizeof(*np));
    if (!np)
        abort();
    cleanup_paths = np;
    cleanup_paths[cleanup_n++] = xstrndup(path, strlen(path));
}

/* Creates FS_TMP/e2e-XXXXXX<suffix>, returns the open fd and the path. */
static int make_temp(const char *suffix, char **path_out)
{
    sbuf p = {0};
    sb_printf(&p, "%s/e2e-XXXXXX%s", fs_e2e_tmpdir(), suffix ? suffix : "");
    int fd = mkstemps(p.p, suffix ? (int)strlen(suffix) : 0);
    if (fd < 0) {
        fprintf(stderr, "e2e: mkstemps %s: %s\n", p.p, strerror(errno));
        abort();
    }
    *path_out = p.p;
    return fd;
}

static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "e2e: write: %s\n", strerror(errno));
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

char *fs_e2e_write_file(const char *suffix, const void *data, size_t len)
{
    char *path;
    int fd = make_temp(suffix, &path);
    write_all(fd, data, len);
    close(fd);
    remember_for_cleanup(path);
    return path;
}

char *fs_e2e_write_text(const char *suffix, const char *text)
{
    return fs_e2e_write_file(suffix, text, strlen(text));
}

/* Reads a whole file descriptor from offset 0. */
static char *read_fd(int fd, size_t *len)
{
    sbuf b = {0};
    char tmp[65536];
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sb_add(&b, tmp, (size_t)n);
    }
    *len = b.len;
    return sb_take(&b);
}

/* ---- running the binary ---- */

/* FS_BIN with args (NULL-terminated, without argv[0]) and the given stdin,
 * stdout and stderr. Returns posix_spawn's result. */
/* Spawns the binary with args; a descriptor < 0 is inherited. own_group:
 * in a process group of its own, so a signal to -pid reaches its children
 * as Ctrl-C in a terminal would. */
static int spawn_bin(const char *const *args, int in_fd, int out_fd, int err_fd, bool own_group,
                     pid_t *pid)
{
    size_t argc = 0;
    while (args[argc])
        argc++;
    char **argv = xmalloc((argc + 2) * sizeof(*argv));
    argv[0] = (char *)fs_e2e_bin();
    for (size_t i = 0; i < argc; i++)
        argv[i + 1] = (char *)args[i];
    argv[argc + 1] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const int fds[3] = {in_fd, out_fd, err_fd};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    if (own_group) {
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&at, 0);
    }
    int rc = posix_spawn(pid, argv[0], &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    return rc;
}

/* The exit code; 128 + signal number when killed; -1 when unknown. */
static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

void fs_e2e_exec(fs_e2e_run *run, const char *in, size_t in_len, const char *const *args)
{
    memset(run, 0, sizeof(*run));
    run->status = -1;
    char *in_path = NULL, *out_path, *err_path;
    int in_fd;
    if (in) {
        in_fd = make_temp(".in", &in_path);
        write_all(in_fd, in, in_len);
        lseek(in_fd, 0, SEEK_SET);
    } else {
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    int out_fd = make_temp(".out", &out_path);
    int err_fd = make_temp(".err", &err_path);

    pid_t pid;
    int rc = spawn_bin(args, in_fd, out_fd, err_fd, false, &pid);
    if (rc == 0) {
        run->status = wait_status(pid);
    } else {
        fprintf(stderr, "e2e: posix_spawn %s: %s\n", fs_e2e_bin(), strerror(rc));
    }
    run->out = read_fd(out_fd, &run->out_len);
    run->err = read_fd(err_fd, &run->err_len);
    close(in_fd);
    close(out_fd);
    close(err_fd);
    if (in_path)
        unlink(in_path);
    unlink(out_path);
    unlink(err_path);
    free(in_path);
    free(out_path);
    free(err_path);
}

void fs_e2e_run_free(fs_e2e_run *run)
{
    free(run->out);
    free(run->err);
    run->out = run->err = NULL;
}

char *fs_e2e_replay_file_at(const char *config_yaml, const char *input_path, int threads,
                            const char *file, int line)
{
    char *cfg = fs_e2e_write_text(".yaml", config_yaml);
    char nthreads[32];
    snprintf(nthreads, sizeof(nthreads), "%d", threads);
    fs_e2e_run r;
    if (threads > 0)
        FS_E2E_EXEC(&r, NULL, 0, "replay", "--quiet", "--config", cfg, "--input", input_path,
                    "--threads", nthreads);
    else
        FS_E2E_EXEC(&r, NULL, 0, "replay", "--quiet", "--config", cfg, "--input", input_path);
    if (r.status != 0) {
        print_error("replay --config %s --input %s exited %d\nstderr:\n%s\nconfig:\n%s\n", cfg,
                    input_path, r.status, r.err, config_yaml);
        fs_e2e_run_free(&r);
        free(cfg);
        _fail(file, line);
        return NULL;
    }
    free(cfg);
    free(r.err);
    return r.out;
}

char *fs_e2e_replay_at(const char *config_yaml, const char *jsonl, int threads, const char *file,
                       int line)
{
    char *in = fs_e2e_write_text(".jsonl", jsonl);
    char *out = fs_e2e_replay_file_at(config_yaml, in, threads, file, line);
    free(in);
    return out;
}

/* ---- building inputs ---- */

static void json_string(sbuf *b, const char *s)
{
    sb_byte(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            sb_byte(b, '\\');
            sb_byte(b, c);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_byte(b, c);
        }
    }
    sb_byte(b, '"');
}

char *fs_e2e_jsonl(const fs_e2e_event *evs, size_t n)
{
    sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        const fs_e2e_event *e = &evs[i];
        sb_puts(&b, "{\"customer_id\":");
        json_string(&b, e->customer);
        sb_printf(&b, ",\"ts\":%lld,\"event\":", (long long)(FS_E2E_T0 + e->dt));
        json_string(&b, e->event);
        if (e->channel) {
            sb_puts(&b, ",\"channel\":");
            json_string(&b, e->channel);
        }
        if (e->segment) {
            sb_puts(&b, ",\"segment\":");
            json_string(&b, e->segment);
        }
        if (e->value)
            sb_printf(&b, ",\"value\":%s", e->value);
        sb_puts(&b, "}\n");
    }
    return sb_take(&b);
}

static int sb_write(void *data, const char *buf, size_t len)
{
    sb_add(data, buf, len);
    return 0;
}

static void mp_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* A value written as text in the test: a float if it looks like one. */
static void mp_value(msgpack_packer *pk, const char *text)
{
    if (strpbrk(text, ".eE"))
        msgpack_pack_double(pk, strtod(text, NULL));
    else
        msgpack_pack_int64(pk, strtoll(text, NULL, 10));
}

char *fs_e2e_msgpack(const fs_e2e_event *evs, size_t n, size_t *len)
{
    sbuf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, sb_write);
    for (size_t i = 0; i < n; i++) {
        const fs_e2e_event *e = &evs[i];
        msgpack_pack_map(&pk, 3 + !!e->channel + !!e->segment + !!e->value);
        mp_str(&pk, "customer_id");
        mp_str(&pk, e->customer);
        mp_str(&pk, "ts");
        msgpack_pack_int64(&pk, FS_E2E_T0 + e->dt);
        mp_str(&pk, "event");
        mp_str(&pk, e->event);
        if (e->channel) {
            mp_str(&pk, "channel");
            mp_str(&pk, e->channel);
        }
        if (e->segment) {
            mp_str(&pk, "segment");
            mp_str(&pk, e->segment);
        }
        if (e->value) {
            mp_str(&pk, "value");
            mp_value(&pk, e->value);
        }
    }
    *len = b.len;
    return sb_take(&b);
}

/* ---- reading outputs ---- */

void fs_e2e_split_lines(const char *text, fs_e2e_lines *lines)
{
    lines->v = NULL;
    lines->n = 0;
    size_t cap = 0;
    const char *p = text ? text : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            if (lines->n == cap) {
                cap = cap ? cap * 2 : 16;
                char **nv = realloc(lines->v, cap * sizeof(*nv));
                if (!nv)
                    abort();
                lines->v = nv;
            }
            lines->v[lines->n++] = xstrndup(p, len);
        }
        p += len + (nl ? 1 : 0);
    }
}

void fs_e2e_lines_free(fs_e2e_lines *lines)
{
    for (size_t i = 0; i < lines->n; i++)
        free(lines->v[i]);
    free(lines->v);
    lines->v = NULL;
    lines->n = 0;
}

/* The scanner. Each function takes a position and returns the position after
 * what it consumed, or NULL on a syntax error. */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *skip_string(const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p)
            return NULL;
    return *p == '"' ? p + 1 : NULL;
}

static const char *skip_value(const char *p);

/* Walks an object or array, calling nothing: just finds its end. */
static const char *skip_container(const char *p, char close, bool keyed)
{
    p = skip_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keyed) {
            p = skip_string(p);
            if (!p)
                return NULL;
            p = skip_ws(p);
            if (*p != ':')
                return NULL;
            p = skip_ws(p + 1);
        }
        p = skip_value(p);
        if (!p)
            return NULL;
        p = skip_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1);
    }
}

static const char *skip_value(const char *p)
{
    p = skip_ws(p);
    switch (*p) {
    case '"':
        return skip_string(p);
    case '{':
        return skip_container(p, '}', true);
    case '[':
        return skip_container(p, ']', false);
    default:
        break;
    }
    const char *start = p;
    while (*p && strchr("+-0123456789.eEtruefalsn", *p))
        p++;
    return p > start ? p : NULL;
}

/* In the object at p, the value of key (raw comparison of the key text), or
 * NULL. */
static const char *object_get(const char *p, const char *key, size_t key_len)
{
    p = skip_ws(p);
    if (*p != '{')
        return NULL;
    p = skip_ws(p + 1);
    if (*p == '}')
        return NULL;
    for (;;) {
        const char *k = p;
        p = skip_string(p);
        if (!p)
            return NULL;
        bool match = (size_t)(p - k) == key_len + 2 && !memcmp(k + 1, key, key_len);
        p = skip_ws(p);
        if (*p != ':')
            return NULL;
        p = skip_ws(p + 1);
        if (match)
            return p;
        p = skip_value(p);
        if (!p)
            return NULL;
        p = skip_ws(p);
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1);
    }
}

static const char *array_get(const char *p, long idx)
{
    p = skip_ws(p);
    if (*p != '[' || idx < 0)
        return NULL;
    p = skip_ws(p + 1);
    if (*p == ']')
        return NULL;
    for (long i = 0;; i++) {
        if (i == idx)
            return p;
        p = skip_value(p);
        if (!p)
            return NULL;
        p = skip_ws(p);
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1);
    }
}

/* Start of the value at path inside json (already checked to be one object). */
static const char *locate(const char *json, const char *path)
{
    const char *p = skip_ws(json);
    if (*p != '{')
        return NULL;
    const char *end = skip_value(p);
    if (!end || *skip_ws(end))
        return NULL;
    while (path && *path) {
        const char *dot = strchr(path, '.');
        size_t seg = dot ? (size_t)(dot - path) : strlen(path);
        p = skip_ws(p);
        if (*p == '[') {
            char *e;
            long idx = strtol(path, &e, 10);
            if (e != path + seg || seg == 0)
                return NULL;
            p = array_get(p, idx);
        } else {
            p = object_get(p, path, seg);
        }
        if (!p)
            return NULL;
        path += seg + (dot ? 1 : 0);
    }
    return skip_ws(p);
}

/* Copies [p, end) without whitespace outside strings. */
static char *strip_ws(const char *p, const char *end)
{
    sbuf b = {0};
    bool in_str = false;
    for (; p < end; p++) {
        if (in_str) {
            sb_byte(&b, (unsigned char)*p);
            if (*p == '\\' && p + 1 < end)
                sb_byte(&b, (unsigned char)*++p);
            else if (*p == '"')
                in_str = false;
        } else if (!strchr(" \t\r\n", *p)) {
            sb_byte(&b, (unsigned char)*p);
            if (*p == '"')
                in_str = true;
        }
    }
    return sb_take(&b);
}

char *fs_e2e_field(const char *json, const char *path)
{
    if (!json)
        return NULL;
    const char *p = locate(json, path);
    if (!p)
        return NULL;
    const char *end = skip_value(p);
    return end ? strip_ws(p, end) : NULL;
}

char *fs_e2e_keys(const char *json, const char *path)
{
    if (!json)
        return NULL;
    const char *p = locate(json, path);
    if (!p || *p != '{')
        return NULL;
    sbuf b = {0};
    p = skip_ws(p + 1);
    bool first = true;
    while (*p == '"') {
        const char *k = p;
        p = skip_string(p);
        if (!first)
            sb_byte(&b, ',');
        first = false;
        sb_add(&b, k + 1, (size_t)(p - k) - 2);
        p = skip_ws(p);
        p = skip_ws(skip_value(skip_ws(p + 1)));
        if (*p == ',')
            p = skip_ws(p + 1);
    }
    return sb_take(&b);
}

int fs_e2e_size(const char *json, const char *path)
{
    if (!json)
        return -1;
    const char *p = locate(json, path);
    if (!p || (*p != '{' && *p != '['))
        return -1;
    bool keyed = *p == '{';
    char close = keyed ? '}' : ']';
    p = skip_ws(p + 1);
    if (*p == close)
        return 0;
    int n = 0;
    for (;;) {
        n++;
        if (keyed)
            p = skip_ws(skip_ws(skip_string(p)) + 1);
        p = skip_ws(skip_value(p));
        if (*p != ',')
            return n;
        p = skip_ws(p + 1);
    }
}

/* Whether the field at path has exactly the (stripped) text want. */
static bool field_is(const char *json, const char *path, const char *want)
{
    char *got = fs_e2e_field(json, path);
    bool ok = got && !strcmp(got, want);
    free(got);
    return ok;
}

static bool record_matches(const char *line, const char *kind, const char *funnel,
                           const int64_t *window_start)
{
    char want[160];
    snprintf(want, sizeof(want), "\"%s\"", kind);
    if (!field_is(line, "kind", want))
        return false;
    if (funnel) {
        snprintf(want, sizeof(want), "\"%s\"", funnel);
        if (!field_is(line, "funnel", want))
            return false;
    }
    if (window_start) {
        snprintf(want, sizeof(want), "%lld", (long long)*window_start);
        if (!field_is(line, "window_start", want))
            return false;
    }
    return true;
}

char *fs_e2e_find_record(const char *out, const char *kind, const char *funnel,
                         int64_t window_start)
{
    fs_e2e_lines l;
    fs_e2e_split_lines(out, &l);
    char *found = NULL;
    for (size_t i = 0; i < l.n; i++) {
        if (!record_matches(l.v[i], kind, funnel, &window_start))
            continue;
        free(found);
        found = xstrndup(l.v[i], strlen(l.v[i]));
        if (strcmp(kind, "cohort"))
            break; /* flow: the first (and only) one */
    }
    fs_e2e_lines_free(&l);
    return found;
}

size_t fs_e2e_count_records(const char *out, const char *kind, const char *funnel)
{
    fs_e2e_lines l;
    fs_e2e_split_lines(out, &l);
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += record_matches(l.v[i], kind, funnel, NULL);
    fs_e2e_lines_free(&l);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *fs_e2e_canonical(const char *out)
{
    fs_e2e_lines l;
    fs_e2e_split_lines(out, &l);
    size_t keep = 0;
    for (size_t i = 0; i < l.n; i++) {
        bool flow = record_matches(l.v[i], "flow", NULL, NULL);
        bool final_cohort =
            record_matches(l.v[i], "cohort", NULL, NULL) && field_is(l.v[i], "final", "true");
        if (flow || final_cohort)
            l.v[keep++] = l.v[i];
        else
            free(l.v[i]);
    }
    l.n = keep;
    if (l.n > 1) /* l.v is NULL when there are no lines */
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    sbuf b = {0};
    for (size_t i = 0; i < l.n; i++) {
        sb_puts(&b, l.v[i]);
        sb_byte(&b, '\n');
    }
    fs_e2e_lines_free(&l);
    return sb_take(&b);
}

/* ---- comparing ---- */

int fs_e2e_num_close(double got, double want, double rel)
{
    if (got == want)
        return 1;
    if (isnan(got) || isnan(want))
        return 0;
    double scale = fmax(fabs(got), fabs(want));
    return fabs(got - want) <= rel * scale;
}

/* Compares the values at *g and *w, advancing both; false on a mismatch. */
static bool close_value(const char **g, const char **w, double rel)
{
    const char *a = skip_ws(*g), *b = skip_ws(*w);
    const char *ae = skip_value(a), *be = skip_value(b);
    if (!ae || !be)
        return false;
    *g = ae;
    *w = be;
    if (*a == '{' || *a == '[') {
        if (*b != *a)
            return false;
        bool keyed = *a == '{';
        char close = keyed ? '}' : ']';
        a = skip_ws(a + 1);
        b = skip_ws(b + 1);
        for (;;) {
            if (*a == close || *b == close)
                return *a == close && *b == close;
            if (keyed) {
                const char *ka = a, *kb = b;
                a = skip_string(a);
                b = skip_string(b);
                if (a - ka != b - kb || memcmp(ka, kb, (size_t)(a - ka)))
                    return false;
                a = skip_ws(skip_ws(a) + 1);
                b = skip_ws(skip_ws(b) + 1);
            }
            if (!close_value(&a, &b, rel))
                return false;
            a = skip_ws(a);
            b = skip_ws(b);
            if (*a == ',')
                a = skip_ws(a + 1);
            if (*b == ',')
                b = skip_ws(b + 1);
        }
    }
    bool anum = *a == '-' || (*a >= '0' && *a <= '9');
    bool bnum = *b == '-' || (*b >= '0' && *b <= '9');
    if (anum && bnum)
        return fs_e2e_num_close(strtod(a, NULL), strtod(b, NULL), rel);
    return ae - a == be - b && !memcmp(a, b, (size_t)(ae - a));
}

int fs_e2e_json_close(const char *got, const char *want, double rel)
{
    if (!got || !want)
        return 0;
    const char *g = got, *w = want;
    if (!close_value(&g, &w, rel))
        return 0;
    return !*skip_ws(g) && !*skip_ws(w);
}

/* ---- cmocka assertions ---- */

char *fs_e2e_expect_record_at(const char *out, const char *kind, const char *funnel,
                              int64_t window_start, const char *file, int line)
{
    char *rec = fs_e2e_find_record(out, kind, funnel, window_start);
    if (!rec) {
        print_error("no %s record for funnel %s window_start %lld (T0%+lld ms) in output:\n%s\n",
                    kind, funnel, (long long)window_start, (long long)(window_start - FS_E2E_T0),
                    out);
        _fail(file, line);
    }
    return rec;
}

void fs_e2e_expect_no_record_at(const char *out, const char *kind, const char *funnel,
                                int64_t window_start, const char *file, int line)
{
    char *rec = fs_e2e_find_record(out, kind, funnel, window_start);
    if (rec) {
        print_error("unexpected %s record for funnel %s window_start %lld (T0%+lld ms):\n%s\n",
                    kind, funnel, (long long)window_start, (long long)(window_start - FS_E2E_T0),
                    rec);
        free(rec);
        _fail(file, line);
    }
}

void fs_e2e_assert_field_at(const char *json, const char *path, const char *want, const char *file,
                            int line)
{
    char *got = fs_e2e_field(json, path);
    char *w = strip_ws(want, want + strlen(want));
    bool ok = got && !strcmp(got, w);
    if (!ok)
        print_error("field %s: got %s, want %s\nrecord: %s\n", path, got ? got : "(absent)", w,
                    json ? json : "(none)");
    free(got);
    free(w);
    if (!ok)
        _fail(file, line);
}

void fs_e2e_assert_close_at(const char *json, const char *path, const char *want, double rel,
                            const char *file, int line)
{
    char *got = fs_e2e_field(json, path);
    bool ok = got && fs_e2e_json_close(got, want, rel);
    if (!ok)
        print_error("field %s: got %s, want %s (rel %g)\nrecord: %s\n", path,
                    got ? got : "(absent)", want, rel, json ? json : "(none)");
    free(got);
    if (!ok)
        _fail(file, line);
}

void fs_e2e_assert_contains_at(const char *hay, const char *needle, const char *what,
                               const char *file, int line)
{
    if (!hay || !strstr(hay, needle)) {
        print_error("%s does not contain \"%s\":\n%s\n", what, needle, hay ? hay : "(null)");
        _fail(file, line);
    }
}

/* ---- processes in the background ---- */

#include <signal.h>

/* Children still running. A failing assertion jumps out of the test that
 * would have stopped them, so they are killed at exit: a leftover broker
 * holds ctest's output pipe open and ctest would wait for it forever. */
static pid_t live_pids[64];
static size_t n_live;

static void kill_live(void)
{
    for (size_t i = 0; i < n_live; i++) {
        kill(live_pids[i], SIGKILL);
        waitpid(live_pids[i], NULL, 0);
    }
    n_live = 0;
}

static void track_child(pid_t pid)
{
    static bool registered;
    if (!registered) {
        atexit(kill_live);
        registered = true;
    }
    if (n_live < sizeof live_pids / sizeof live_pids[0])
        live_pids[n_live++] = pid;
}

static void untrack_child(pid_t pid)
{
    for (size_t i = 0; i < n_live; i++)
        if (live_pids[i] == pid)
            live_pids[i] = live_pids[--n_live];
}

int fs_e2e_spawn_piped(const char *const *args, bool own_group, pid_t *pid)
{
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0); /* dup2 onto stdout clears the flag there */
    int rc = spawn_bin(args, -1, out[1], -1, own_group, pid);
    close(out[1]);
    if (rc != 0) {
        print_error("posix_spawn %s: %s\n", fs_e2e_bin(), strerror(rc));
        fail();
    }
    track_child(*pid);
    return out[0];
}

int fs_e2e_wait(pid_t pid)
{
    int status = wait_status(pid);
    untrack_child(pid);
    return status;
}

void fs_e2e_broker_start(fs_e2e_broker *b, const char *const *extra)
{
    const char *args[32] = {"dev-broker"};
    int argc = 1;
    for (; extra && *extra && argc < 31; extra++)
        args[argc++] = *extra;
    args[argc] = NULL;
    int out = fs_e2e_spawn_piped(args, false, &b->pid);
    /* The broker prints its address once it listens: reading blocks until then. */
    size_t n = 0;
    char c;
    while (n + 1 < sizeof b->bootstrap && read(out, &c, 1) == 1 && c != '\n')
        b->bootstrap[n++] = c;
    b->bootstrap[n] = '\0';
    close(out);
    if (!strchr(b->bootstrap, ':')) {
        print_error("dev-broker printed no bootstrap address: '%s'\n", b->bootstrap);
        fail(); /* kill_live stops it */
    }
}

int fs_e2e_broker_stop(fs_e2e_broker *b, int sig)
{
    kill(b->pid, sig);
    return fs_e2e_wait(b->pid);
}

void fs_e2e_bg_start(fs_e2e_bg *bg, const char *const *args)
{
    char *out_path, *err_path;
    bg->out_fd = make_temp(".out", &out_path);
    bg->err_fd = make_temp(".err", &err_path);
    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = spawn_bin(args, in_fd, bg->out_fd, bg->err_fd, false, &bg->pid);
    close(in_fd);
    unlink(out_path); /* the open descriptors keep the files */
    unlink(err_path);
    free(out_path);
    free(err_path);
    if (rc != 0) {
        print_error("posix_spawn %s: %s\n", fs_e2e_bin(), strerror(rc));
        fail();
    }
    track_child(bg->pid);
}

void fs_e2e_bg_finish(fs_e2e_bg *bg, int sig, fs_e2e_run *run)
{
    memset(run, 0, sizeof(*run));
    if (sig)
        kill(bg->pid, sig);
    run->status = wait_status(bg->pid);
    untrack_child(bg->pid);
    run->out = read_fd(bg->out_fd, &run->out_len);
    run->err = read_fd(bg->err_fd, &run->err_len);
    close(bg->out_fd);
    close(bg->err_fd);
}

char *fs_e2e_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *data = read_fd(fd, len);
    close(fd);
    return data;
}

/* Polls rather than waits on an event: the child's stderr is a plain file.
 * The 5 ms between looks only bounds how late the caller learns of the
 * line; nothing is assumed to have happened because time passed. */
bool fs_e2e_bg_await_log(const fs_e2e_bg *bg, const char *needle, int deadline_ms)
{
    size_t cap = 1 << 20;
    char *log = malloc(cap);
    bool found = false;
    for (int waited = 0; waited < deadline_ms && !found; waited += 5) {
        ssize_t n = pread(bg->err_fd, log, cap - 1, 0);
        log[n > 0 ? n : 0] = '\0';
        found = strstr(log, needle) != NULL;
        siginfo_t info = {0};
        if (!found && (waitid(P_PID, (id_t)bg->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
                       info.si_pid == bg->pid))
            break; /* exited without it */
        if (!found)
            nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    free(log);
    return found;
}
