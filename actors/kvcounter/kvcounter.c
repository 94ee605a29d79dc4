/*
 * kvcounter — the demo: counts requests per path in the linked key-value store.
 *
 * On HttpServer.HandleRequest it increments "counter:<path>" by 1 on the default wasmcloud:keyvalue link,
 * logs a line through wasmcloud:builtin:logging and answers 200
 * {"path":"/hello","count":N,"actor":"kvcounter"}. When the increment fails the actor answers 500
 * {"error":"<the host's error text>"} instead, so a missing link is visible to whoever calls it.
 */
#include "lattice.h"

static int respond_json(lt_buf *out, uint16_t status, const lt_buf *json) {
    return lt_http_respond(out, status, LT_STR("application/json"), lt_buf_slice(json));
}

static int handle_request(lt_slice msg, lt_buf *out) {
    lt_http_request req;
    if (!lt_http_parse_request(msg, &req)) return lattice_fail(LT_STR("kvcounter: malformed HttpRequest"));

    lt_buf key = {0}, json = {0};
    lt_buf_append_slice(&key, LT_STR("counter:"));
    lt_buf_append_slice(&key, req.path);
    int32_t count;
    if (!lt_kv_increment("", lt_buf_slice(&key), 1, &count)) {
        lt_buf_append_slice(&json, LT_STR("{\"error\":"));
        lt_buf_append_json_str(&json, lattice_last_error());
        lt_buf_append_slice(&json, LT_STR("}"));
        return respond_json(out, 500, &json);
    }

    lt_buf line = {0};
    lt_buf_append_slice(&line, LT_STR("kvcounter: "));
    lt_buf_append_slice(&line, req.path);
    lt_buf_append_slice(&line, LT_STR(" -> "));
    lt_buf_append_int(&line, count);
    /* The logging link is optional: a failed log must not fail the request. */
    (void)lt_log_write("info", lt_buf_slice(&line));

    lt_buf_append_slice(&json, LT_STR("{\"path\":"));
    lt_buf_append_json_str(&json, req.path);
    lt_buf_append_slice(&json, LT_STR(",\"count\":"));
    lt_buf_append_int(&json, count);
    lt_buf_append_slice(&json, LT_STR(",\"actor\":\"kvcounter\"}"));
    return respond_json(out, 200, &json);
}

void actor_init(void) { lattice_register("HttpServer.HandleRequest", handle_request); }
