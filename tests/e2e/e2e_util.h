/* e2e_util.h -- helpers for end-to-end tests that run the real funnelstream binary.
 *
 * Include after <cmocka.h> (which needs <stdarg.h>, <stddef.h>, <stdint.h>,
 * <setjmp.h> first). The environment (set by ctest) provides:
 *   FS_BIN         path of the funnelstream binary
 *   FS_TMP         scratch directory (shared with other test programs)
 *   FS_SOURCE_DIR  repository root
 *
 * Output records are JSON lines; fields are addressed by a dotted path from
 * the top-level object ("reached", "ttc_ms.p50", "by_channel.search.reached",
 * "reached.2" for an array element). Raw field text is returned with the
 * whitespace outside strings removed, so "[2, 1, 0]" and "[2,1,0]" compare
 * equal. Floats must be compared with fs_e2e_json_close / assert_field_close,
 * never as text.
 */
#ifndef FS_E2E_UTIL_H
#define FS_E2E_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2024-11-22T13:00:00Z: aligned to 1m, 10m and 1h windows. */
#define FS_E2E_T0 1732280400000LL

/* ---- running the binary ---- */

typedef struct fs_e2e_run {
    int status; /* exit code; 128 + signal number when killed; -1 when spawning failed */
    char *out;  /* all of stdout, NUL-terminated */
    size_t out_len;
    char *err; /* all of stderr, NUL-terminated */
    size_t err_len;
} fs_e2e_run;

const char *fs_e2e_bin(void);
const char *fs_e2e_tmpdir(void);

/* Runs FS_BIN with args (NULL-terminated, not including argv[0]). stdin gets
 * in[0..in_len) when in is not NULL, else /dev/null. Never deadlocks: stdin,
 * stdout and stderr all go through temporary files. */
void fs_e2e_exec(fs_e2e_run *run, const char *in, size_t in_len, const char *const *args);
#define FS_E2E_EXEC(run, in, in_len, ...)                                                          \
    fs_e2e_exec((run), (in), (in_len), (const char *const[]){__VA_ARGS__, NULL})
void fs_e2e_run_free(fs_e2e_run *run);

/* Writes data to a new file FS_TMP/e2e-XXXXXX<suffix> and returns its path
 * (malloc'd). The file is removed at exit unless FS_E2E_KEEP is set. */
char *fs_e2e_write_file(const char *suffix, const void *data, size_t len);
char *fs_e2e_write_text(const char *suffix, const char *text);

/* Writes config and input (.jsonl) to files, runs
 *   funnelstream replay --config C --input I [--threads N]
 * (threads <= 0: option left out), fails the test unless it exits 0, and
 * returns stdout (malloc'd). */
char *fs_e2e_replay_at(const char *config_yaml, const char *jsonl, int threads, const char *file,
                       int line);
#define fs_e2e_replay(cfg, jsonl) fs_e2e_replay_at((cfg), (jsonl), 0, __FILE__, __LINE__)
/* Same with the input already in a file (any name, any format). */
char *fs_e2e_replay_file_at(const char *config_yaml, const char *input_path, int threads,
                            const char *file, int line);

/* ---- building inputs ---- */

/* One touchpoint; ts = FS_E2E_T0 + dt. channel, segment, value: NULL = key left
 * out. value is JSON number text ("5", "12.5"); in MessagePack it becomes an
 * integer when it has no '.', 'e' or 'E', else a float64. */
typedef struct fs_e2e_event {
    const char *customer;
    int64_t dt;
    const char *event;
    const char *channel;
    const char *segment;
    const char *value;
} fs_e2e_event;

/* Newline-delimited JSON (malloc'd, NUL-terminated). */
char *fs_e2e_jsonl(const fs_e2e_event *evs, size_t n);
/* Concatenated MessagePack maps (malloc'd), length in *len. */
char *fs_e2e_msgpack(const fs_e2e_event *evs, size_t n, size_t *len);

/* ---- reading outputs ---- */

typedef struct fs_e2e_lines {
    char **v; /* each NUL-terminated, without the newline */
    size_t n;
} fs_e2e_lines;

/* Splits text into non-empty lines. */
void fs_e2e_split_lines(const char *text, fs_e2e_lines *lines);
void fs_e2e_lines_free(fs_e2e_lines *lines);

/* Raw JSON text (whitespace-stripped, malloc'd) of the value at path in the
 * single JSON object json, or NULL when the path does not exist or json is not
 * one JSON object. path NULL or "" means the whole object. */
char *fs_e2e_field(const char *json, const char *path);
/* The keys of the object at path joined with ',' (malloc'd; "" for {}), or
 * NULL when there is no object there. */
char *fs_e2e_keys(const char *json, const char *path);
/* Number of elements (array) or keys (object) at path; -1 if absent/scalar. */
int fs_e2e_size(const char *json, const char *path);

/* The record line (malloc'd copy) with this kind ("flow"/"cohort"), funnel
 * and window_start; for cohort the LAST such line. NULL when there is none. */
char *fs_e2e_find_record(const char *out, const char *kind, const char *funnel,
                         int64_t window_start);
/* Number of record lines of this kind; funnel NULL = any funnel. */
size_t fs_e2e_count_records(const char *out, const char *kind, const char *funnel);
/* The flow records and the final cohort records of out, sorted, one per line
 * (malloc'd): what must not depend on threads, input format or source. */
char *fs_e2e_canonical(const char *out);

/* ---- comparing ---- */

/* |got - want| <= rel * max(|got|, |want|) (both 0 counts as equal). */
int fs_e2e_num_close(double got, double want, double rel);
/* Structural comparison of two JSON texts: same shape, same keys in the same
 * order, same strings and literals; numbers within rel (relative). */
int fs_e2e_json_close(const char *got, const char *want, double rel);

/* ---- cmocka assertions (print the record on failure) ---- */

char *fs_e2e_expect_record_at(const char *out, const char *kind, const char *funnel,
                              int64_t window_start, const char *file, int line);
void fs_e2e_expect_no_record_at(const char *out, const char *kind, const char *funnel,
                                int64_t window_start, const char *file, int line);
void fs_e2e_assert_field_at(const char *json, const char *path, const char *want, const char *file,
                            int line);
void fs_e2e_assert_close_at(const char *json, const char *path, const char *want, double rel,
                            const char *file, int line);
void fs_e2e_assert_contains_at(const char *hay, const char *needle, const char *what,
                               const char *file, int line);

/* The record for (kind, funnel, FS_E2E_T0 + dt) or a test failure. */
#define expect_record(out, kind, funnel, dt)                                                       \
    fs_e2e_expect_record_at((out), (kind), (funnel), FS_E2E_T0 + (dt), __FILE__, __LINE__)
#define expect_no_record(out, kind, funnel, dt)                                                    \
    fs_e2e_expect_no_record_at((out), (kind), (funnel), FS_E2E_T0 + (dt), __FILE__, __LINE__)
/* Raw text equality (whitespace-insensitive): integers, arrays of integers,
 * strings (with their quotes), null, booleans. */
#define assert_field(json, path, want)                                                             \
    fs_e2e_assert_field_at((json), (path), (want), __FILE__, __LINE__)
/* JSON equality with numbers within 1e-9 relative: revenue, conversion, linear. */
#define assert_field_close(json, path, want)                                                       \
    fs_e2e_assert_close_at((json), (path), (want), 1e-9, __FILE__, __LINE__)
/* Same with a caller-chosen tolerance (ttc quantiles: 1e-2). */
#define assert_field_near(json, path, want, rel)                                                   \
    fs_e2e_assert_close_at((json), (path), (want), (rel), __FILE__, __LINE__)
#define assert_contains(hay, needle, what)                                                         \
    fs_e2e_assert_contains_at((hay), (needle), (what), __FILE__, __LINE__)

/* ---- processes in the background ---- */

#include <sys/types.h>

/* A running `FS_BIN dev-broker` (librdkafka's mock cluster). */
typedef struct fs_e2e_broker {
    pid_t pid;
    char bootstrap[256]; /* "host:port", the first line it printed */
} fs_e2e_broker;

/* Starts the binary with args (NULL-terminated, without the binary) and its
 * stdout on a pipe, whose read end is returned; stdin and stderr are the
 * test's. own_group: a process group of its own, so kill(-pid, sig) reaches
 * its children too. The child is killed if the test fails before
 * fs_e2e_wait. */
int fs_e2e_spawn_piped(const char *const *args, bool own_group, pid_t *pid);
/* Waits for a child of fs_e2e_spawn_piped: its exit code, 128 + signal
 * number when killed, -1 when unknown. */
int fs_e2e_wait(pid_t pid);

/* Starts the dev broker with extra arguments (NULL-terminated, may be NULL)
 * and waits for its bootstrap line; fails the test without one. */
void fs_e2e_broker_start(fs_e2e_broker *b, const char *const *extra);
/* Sends sig and waits: the exit code, 128 + signal number when killed. */
int fs_e2e_broker_stop(fs_e2e_broker *b, int sig);

/* FS_BIN with args (NULL-terminated, not including argv[0]) running in the
 * background: stdin /dev/null, stdout and stderr to temporary files. */
typedef struct fs_e2e_bg {
    pid_t pid;
    int out_fd, err_fd;
} fs_e2e_bg;

void fs_e2e_bg_start(fs_e2e_bg *bg, const char *const *args);
#define FS_E2E_BG_START(bg, ...) fs_e2e_bg_start((bg), (const char *const[]){__VA_ARGS__, NULL})
/* Sends sig (0: none), waits for the exit and fills run as fs_e2e_exec does. */
void fs_e2e_bg_finish(fs_e2e_bg *bg, int sig, fs_e2e_run *run);
/* Whether bg's stderr shows `needle` within deadline_ms (false at once if
 * bg exits without it). */
bool fs_e2e_bg_await_log(const fs_e2e_bg *bg, const char *needle, int deadline_ms);

/* A whole file (malloc'd, NUL-terminated), its length in *len; NULL when it
 * cannot be read. */
char *fs_e2e_read_file(const char *path, size_t *len);

#endif
