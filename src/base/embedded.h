/* embedded.h -- files built into the binary (CMakeLists.txt, fs_embed). Each
 * is NUL-terminated; the length excludes the NUL. */
#ifndef FS_EMBEDDED_H
#define FS_EMBEDDED_H

#include <stddef.h>

extern const char fs_embedded_demo_yaml[]; /* configs/demo.yaml */
extern const size_t fs_embedded_demo_yaml_len;
extern const char fs_embedded_dashboard_html[]; /* web/dashboard.html */
extern const size_t fs_embedded_dashboard_html_len;

#endif
