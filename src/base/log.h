/* log.h -- structured logs (logfmt) to stderr.
 *
 * One line per message: `ts=2026-11-23T10:00:00.123Z level=info msg="..." k=v ...`.
 * The level threshold is global and set once at start-up (--log-level).
 */
#ifndef FS_LOG_H
#define FS_LOG_H

typedef enum fs_log_level { FS_LOG_DEBUG, FS_LOG_INFO, FS_LOG_WARN, FS_LOG_ERROR } fs_log_level;

void fs_log_set_level(fs_log_level level);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int fs_log_parse_level(const char *s);
/* fields: pre-formatted "k=v k2=v2" (may be NULL). */
void fs_log(fs_log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
