/* test_demo.c -- `funnelstream demo`, the README's one-command quick start.
 *
 * Starts the demo as a user would, reads its stdout until every funnel of
 * configs/demo.yaml has shown a closed window, then sends SIGINT (Ctrl-C):
 * the demo must stop its parts and exit 0. Each funnel line must show the
 * stages in order with counts that never grow down the funnel (reached[s+1]
 * <= reached[s] in a window, SPEC §2: reaching a stage passes the ones
 * below). Reading stops at the lines, not at a clock; the deadline only
 * turns a hang into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

extern char **environ;

static const char *const funnels[] = {"aida", "product", "b2b_pipeline"};
static const char *const first_stage[] = {"awareness", "view", "suspect"};

/* "... aida  awareness 540 > interest 403 (75%) > ..." -> counts never grow. */
static void check_line(const char *line, int f)
{
    const char *p = strstr(line, first_stage[f]);
    assert_non_null(p);
    long prev = -1;
    while (p) {
        const char *sp = strchr(p, ' ');
        assert_non_null(sp);
        long v = strtol(sp + 1, NULL, 10);
        if (prev >= 0)
            assert_true(v <= prev);
        prev = v;
        p = strstr(sp, " > ");
        if (p)
            p += 3;
    }
    assert_non_null(strstr(line, "| completed "));
}

static void test_demo_shows_every_funnel(void **state)
{
    (void)state;
    const char *argv[] = {fs_e2e_bin(), "demo", "--rate", "400", NULL};
    int out[2];
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, out[1]);
    /* its own process group, so the SIGINT below reaches the traffic child
     * as Ctrl-C in a terminal would */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, &at, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    bool seen[3] = {false, false, false};
    char line[4096];
    while ((!seen[0] || !seen[1] || !seen[2]) && fgets(line, sizeof line, f)) {
        for (int i = 0; i < 3; i++) {
            char name[64];
            snprintf(name, sizeof name, "  %s ", funnels[i]);
            if (strstr(line, name)) {
                check_line(line, i);
                seen[i] = true;
            }
        }
    }
    for (int i = 0; i < 3; i++)
        assert_true(seen[i]);
    kill(-pid, SIGINT);
    while (fgets(line, sizeof line, f)) /* lines of windows already closed */
        ;
    fclose(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_shows_every_funnel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
