/*
 * __NAME__ — a lattice actor in C: answers every HTTP request with a greeting naming the request.
 *
 * lattice.h (in sdk/) is the whole SDK API: msgpack, the four capability contracts, the waPC plumbing.
 * Build with `python build.py`; deploy with `lattice apply manifest.yaml --wait`.
 */
#include "lattice.h"

static int handle_request(lt_slice msg, lt_buf *out) {
    lt_http_request req;
    if (!lt_http_parse_request(msg, &req)) return lattice_fail(LT_STR("__NAME__: malformed HttpRequest"));
    lt_buf body = {0};
    lt_buf_append_slice(&body, LT_STR("Hello from __NAME__! You requested "));
    lt_buf_append_slice(&body, req.method);
    lt_buf_append_slice(&body, LT_STR(" "));
    lt_buf_append_slice(&body, req.path);
    lt_buf_append_slice(&body, LT_STR("\n"));
    return lt_http_respond(out, 200, LT_STR("text/plain; charset=utf-8"), lt_buf_slice(&body));
}

/* Every actor defines actor_init() and registers its operations there. */
void actor_init(void) { lattice_register("HttpServer.HandleRequest", handle_request); }
