/*
 * echo — answers every HTTP request with JSON describing it:
 * {"method":"POST","path":"/x","queryString":"a=1","body":"..."} (the body as text).
 *
 * Links: wasmcloud:httpserver only.
 */
#include "lattice.h"

static void json_field(lt_buf *b, const char *sep_and_key, lt_slice value) {
    lt_buf_append_slice(b, lt_cstr(sep_and_key));
    lt_buf_append_json_str(b, value);
}

static int handle_request(lt_slice msg, lt_buf *out) {
    lt_http_request req;
    if (!lt_http_parse_request(msg, &req)) return lattice_fail(LT_STR("echo: malformed HttpRequest"));
    lt_buf json = {0};
    json_field(&json, "{\"method\":", req.method);
    json_field(&json, ",\"path\":", req.path);
    json_field(&json, ",\"queryString\":", req.query_string);
    json_field(&json, ",\"body\":", req.body);
    lt_buf_append_slice(&json, LT_STR("}"));
    return lt_http_respond(out, 200, LT_STR("application/json"), lt_buf_slice(&json));
}

void actor_init(void) { lattice_register("HttpServer.HandleRequest", handle_request); }
