/*
 * hello — the smallest useful actor: every HTTP request gets 200 {"hello":"world"}.
 *
 * Links: wasmcloud:httpserver only. The request is not even decoded.
 */
#include "lattice.h"

static int handle_request(lt_slice msg, lt_buf *out) {
    (void)msg;
    return lt_http_respond(out, 200, LT_STR("application/json"), LT_STR("{\"hello\":\"world\"}"));
}

void actor_init(void) { lattice_register("HttpServer.HandleRequest", handle_request); }
