/* lookup.h -- one customer's live journeys, for /api/journeys/<customer_id>.
 *
 * Reads the journey table while the workers write to it (the copy protocol
 * is in journey_table.h) and renders what it finds as JSON:
 *
 *   {"customer_id":"c1","journeys":[{"funnel":"aida","stage":1,
 *     "stage_name":"interest","started_at":..,"expires_at":..,
 *     "first_channel":"email","touches":[{"channel":"email","count":2}]}]}
 *
 * Times are event-time milliseconds, like the records'. A customer the
 * table does not hold and one whose journeys have all ended look the same:
 * ended journeys hold no memory (SPEC §2), so "journeys" is empty. The
 * calling thread must be between fs_engine_reader_enter and _leave.
 */
#ifndef FS_LOOKUP_H
#define FS_LOOKUP_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "engine.h"
#include "request.h"

/* The customer id a request to /api/journeys names: "/<id>" after the
 * route, percent-encoded as a path segment, or with no path at all the
 * query's first id=<id> (for ids no path can carry, such as ".."). Decodes
 * it into id (cap bytes, FS_MAX_CUSTOMER_ID for any id an event can carry)
 * and returns its length, or returns -1 with the HTTP status in *status
 * (404: the request names no id; 400: a malformed escape, an id that is
 * empty, longer than cap or not UTF-8) and the reason in *error. */
long fs_lookup_id(const fs_http_request *req, char *id, size_t cap, int *status,
                  const char **error);
/* id: fs_lookup_id's (UTF-8, any bytes). */
void fs_lookup_render(fs_engine *e, const fs_config *cfg, const char *id, size_t len, fs_buf *out);

#endif
