/* cli.h -- option parsing shared by the subcommands (SPEC §6: every error
 * names the command and the flag at fault, and exits 2). Each returns 0 on
 * success or 2 after printing the message. */
#ifndef FS_CLI_H
#define FS_CLI_H

#include <stdint.h>

/* An integer in [min, max]. */
int fs_cli_long(const char *cmd, const char *flag, const char *arg, long min, long max, long *out);
/* --log-level: sets the global level. */
int fs_cli_log_level(const char *cmd, const char *arg);
/* After getopt: no stray arguments. */
int fs_cli_no_extra(const char *cmd, int argc, char **argv, int optind_now);

#endif
