/* commands.h -- the subcommands of the funnelstream binary (SPEC §6).
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit code: 0 success, 1 runtime
 * failure (I/O, broker), 2 usage or configuration error.
 */
#ifndef FS_COMMANDS_H
#define FS_COMMANDS_H

int fs_cmd_replay(int argc, char **argv);
int fs_cmd_generate(int argc, char **argv);
int fs_cmd_dev_broker(int argc, char **argv);
int fs_cmd_run(int argc, char **argv);
int fs_cmd_demo(int argc, char **argv);

#endif
