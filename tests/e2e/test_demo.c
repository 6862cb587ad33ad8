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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"

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
    const char *args[] = {"demo", "--rate", "400", NULL};
    /* its own process group, so the SIGINT below reaches the traffic child
     * as Ctrl-C in a terminal would */
    pid_t pid;
    FILE *f = fdopen(fs_e2e_spawn_piped(args, true, &pid), "r");
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
    assert_int_equal(fs_e2e_wait(pid), 0); /* exited, with 0 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_shows_every_funnel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
