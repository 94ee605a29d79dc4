/*
 * A wasmCloud 0.x-style actor for compatibility tests: imports the host functions from `wasmbus` (as the
 * 0.50+ Rust SDK does), is signed with a `jwt` section, and uses the contracts by their 0.x operation names.
 * The same module answers `Ponger.Ping` (when deployed as the ponger, found by its call alias) and
 * `HttpServer.HandleRequest` (as the pinger): it logs, draws a GUID, increments a counter and pings.
 */
#include "lattice.h"

static int ping(lt_slice msg, lt_buf *out) {
    (void)msg;
    lt_mp_str(out, LT_STR("pong"));
    return 1;
}

static int handle(lt_slice msg, lt_buf *out) {
    (void)msg;
    lt_slice guid, pong;
    int32_t hits;
    if (!lt_log_write("info", LT_STR("handling a request"))) return lattice_fail(lattice_last_error());
    if (!lt_numbergen_guid(&guid)) return lattice_fail(lattice_last_error());
    if (!lt_kv_increment("", LT_STR("hits"), 1, &hits)) return lattice_fail(lattice_last_error());
    if (!lattice_host_call("", "wasmcloud/ponger", "Ponger.Ping", LT_STR(""), &pong))
        return lattice_fail(lattice_last_error());
    lt_reader r = lt_reader_new(pong);
    lt_slice text;
    if (!lt_mp_read_str(&r, &text)) return lattice_fail(LT_STR("ponger answered no string"));
    lt_buf body = {0};
    lt_buf_append(&body, "{\"guid\":", 8);
    lt_buf_append_json_str(&body, guid);
    lt_buf_append(&body, ",\"hits\":", 8);
    lt_buf_append_int(&body, hits);
    lt_buf_append(&body, ",\"pong\":", 8);
    lt_buf_append_json_str(&body, text);
    lt_buf_append(&body, "}", 1);
    return lt_http_respond(out, 200, LT_STR("application/json"), lt_buf_slice(&body));
}

void actor_init(void) {
    lattice_register("HttpServer.HandleRequest", handle);
    lattice_register("Ponger.Ping", ping);
}
