/*
 * ponger — pingpong's back end: answers PingPong.Ping (a msgpack str) with the str "pong <text>".
 *
 * Other actors reach it by its call alias "lattice/ponger" (SPEC §1): actors/build.py signs the module with
 * the example keys in ../keys/ and puts the alias in its claims (SPEC §3). It has no links and its claims
 * list no capabilities: calls from actors carry no contract ID, so it needs none.
 */
#include "lattice.h"

static int ping(lt_slice msg, lt_buf *out) {
    lt_reader r = lt_reader_new(msg);
    lt_slice text;
    if (!lt_mp_read_str(&r, &text)) return lattice_fail(LT_STR("ponger: PingPong.Ping takes a string"));
    lt_buf reply = {0};
    lt_buf_append_slice(&reply, LT_STR("pong "));
    lt_buf_append_slice(&reply, text);
    lt_mp_str(out, lt_buf_slice(&reply));
    return 1;
}

void actor_init(void) { lattice_register("PingPong.Ping", ping); }
