/*
 * lattice.h — the guest-side C SDK for lattice actors (waPC guests, SPEC §1 and §2).
 *
 * Build with `zig cc --target=wasm32-freestanding -nostdlib` (see actors/build.py): no libc, so this SDK
 * brings its own memcpy/memset, a per-call arena allocator, a msgpack reader/writer and typed helpers for
 * the four capability contracts. It owns the waPC exports (`__guest_call`, `wapc_init`,
 * `__wasmbus_rpc_version`) and imports the nine host functions from the module `wapc`.
 *
 * An actor:
 *
 *     #include "lattice.h"
 *
 *     static int handle(lt_slice msg, lt_buf *out) {
 *         return lt_http_respond(out, 200, LT_STR("text/plain"), LT_STR("hi"));
 *     }
 *
 *     void actor_init(void) { lattice_register("HttpServer.HandleRequest", handle); }
 *
 * `actor_init` is the one function every actor must define. The SDK's exported `wapc_init` calls it (and
 * `__guest_call` does so too if the host skipped `wapc_init`), so handlers are registered before the first
 * call. A handler reads the request payload `msg`, writes its msgpack reply into `out` and returns 1; to fail
 * the call it returns `lattice_fail(text)`, which hands `text` to the host through `__guest_error`.
 *
 * Memory: everything allocated while a call runs (the request, `out`, host-call replies, scratch buffers)
 * lives in an arena that is reset when the next call starts, so handlers never free. Slices returned by the
 * SDK stay valid until the handler returns.
 *
 * Host calls: every helper returns 1 on success and 0 on failure; after a failure `lattice_last_error()`
 * holds the host's error text (SPEC: a contract error is a host-call error, never a trap). `binding` is the
 * link name; "" (or NULL) means the `default` link.
 */
#ifndef LATTICE_H
#define LATTICE_H

#include <stddef.h>
#include <stdint.h>

/* ---- bytes ------------------------------------------------------------------------------------------ */

/* A borrowed byte string; not NUL-terminated. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} lt_slice;

/* A growable byte buffer in the call arena; start one as `lt_buf b = {0};`. `oom` latches on allocation
 * failure so writers can be chained and checked once. If any buffer runs out of memory during a call, the
 * SDK fails the call ("actor out of memory ...") instead of sending a possibly truncated reply. */
typedef struct {
    uint8_t *ptr;
    size_t len;
    size_t cap;
    int oom;
} lt_buf;

#define LT_STR(lit) ((lt_slice){(const uint8_t *)(lit), sizeof(lit) - 1})
lt_slice lt_cstr(const char *s);
lt_slice lt_buf_slice(const lt_buf *b);
int lt_slice_eq(lt_slice a, lt_slice b);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Arena allocation for the current call (NULL when memory cannot grow). */
void *lt_alloc(size_t n);

void lt_buf_append(lt_buf *b, const void *p, size_t n);
void lt_buf_append_slice(lt_buf *b, lt_slice s);
void lt_buf_append_int(lt_buf *b, int64_t v); /* decimal text */
void lt_buf_append_json_str(lt_buf *b, lt_slice s); /* a quoted, escaped JSON string */

/* ---- waPC call plumbing ------------------------------------------------------------------------------ */

typedef int (*lt_handler)(lt_slice msg, lt_buf *out);

void actor_init(void); /* defined by the actor; registers its handlers */
void lattice_register(const char *operation, lt_handler fn); /* `operation` must be a static string */
int lattice_fail(lt_slice text); /* sets the call's error text; returns 0 for `return lattice_fail(...)` */
void lattice_log(lt_slice text); /* __console_log: the host's own log, no link needed */

/* Raw host call. On success (1) `*reply` is the msgpack reply; on failure (0) see lattice_last_error(). */
int lattice_host_call(const char *binding, const char *ns, const char *operation, lt_slice payload,
                      lt_slice *reply);
lt_slice lattice_last_error(void);
/* Records `text` as lattice_last_error() and returns 0: for helpers that reject a host's reply. */
int lattice_set_last_error(lt_slice text);

/* ---- msgpack ----------------------------------------------------------------------------------------- */

void lt_mp_nil(lt_buf *b);
void lt_mp_bool(lt_buf *b, int v);
void lt_mp_int(lt_buf *b, int64_t v); /* smallest encoding, unsigned forms for v >= 0 like msgpack-python */
void lt_mp_str(lt_buf *b, lt_slice s);
void lt_mp_bin(lt_buf *b, lt_slice s);
void lt_mp_array(lt_buf *b, uint32_t n);
void lt_mp_map(lt_buf *b, uint32_t n);

/* A cursor over msgpack bytes. Readers return 1 on success; on a type mismatch or truncation they return
 * 0 and set `err`, and every later read fails too, so a parse can be checked once at the end. */
typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;
} lt_reader;

lt_reader lt_reader_new(lt_slice s);
int lt_mp_read_nil(lt_reader *r); /* 1 and consumes it if the next value is nil, else 0 (no error) */
int lt_mp_read_bool(lt_reader *r, int *v);
int lt_mp_read_int(lt_reader *r, int64_t *v);
int lt_mp_read_str(lt_reader *r, lt_slice *v); /* accepts str or bin: senders differ */
int lt_mp_read_bin(lt_reader *r, lt_slice *v); /* accepts bin or str */
int lt_mp_read_array(lt_reader *r, uint32_t *n);
int lt_mp_read_map(lt_reader *r, uint32_t *n);
int lt_mp_skip(lt_reader *r); /* skips one whole value, nested or not */

/* ---- wasmcloud:httpserver ---------------------------------------------------------------------------- */

typedef struct {
    lt_slice method;
    lt_slice path;
    lt_slice query_string;
    lt_slice header; /* the raw msgpack map {str: [str]}; use lt_http_header() */
    lt_slice body;
} lt_http_request;

typedef struct {
    lt_slice name;
    lt_slice value;
} lt_http_header_pair;

/* Decodes an HttpRequest map; unknown keys are skipped and missing ones stay empty. */
int lt_http_parse_request(lt_slice msg, lt_http_request *req);
/* First value of header `name` (ASCII case-insensitive); 0 if absent. */
int lt_http_header(const lt_http_request *req, lt_slice name, lt_slice *value);
/* Writes an HttpResponse map {statusCode, header: {name: [value]}, body}; returns 1 unless out of memory. */
int lt_http_write_response(lt_buf *out, uint16_t status, const lt_http_header_pair *headers, size_t n,
                           lt_slice body);
/* The common case: one Content-Type header. */
int lt_http_respond(lt_buf *out, uint16_t status, lt_slice content_type, lt_slice body);

/* ---- wasmcloud:keyvalue ------------------------------------------------------------------------------ */

int lt_kv_get(const char *binding, lt_slice key, lt_slice *value, int *exists);
int lt_kv_set(const char *binding, lt_slice key, lt_slice value, uint32_t expires_s);
int lt_kv_del(const char *binding, lt_slice key, int *existed);
int lt_kv_contains(const char *binding, lt_slice key, int *exists);
int lt_kv_increment(const char *binding, lt_slice key, int32_t by, int32_t *new_value);

/* Strings decoded from a host reply (KeyValue.ListRange, SetQuery, ...); `items` live in the call arena. */
typedef struct {
    lt_slice *items;
    size_t len;
} lt_strings;

/* Lists keep insertion order; ListRange is inclusive with negative indexes from the end (Redis). */
int lt_kv_list_add(const char *binding, lt_slice list, lt_slice value, uint32_t *new_len);
int lt_kv_list_del(const char *binding, lt_slice list, lt_slice value, int *deleted);
int lt_kv_list_range(const char *binding, lt_slice list, int32_t start, int32_t stop, lt_strings *items);
int lt_kv_list_clear(const char *binding, lt_slice list, int *existed);

/* Sets: SetAdd answers the new size, SetDel how many members were removed (0 or 1). */
int lt_kv_set_add(const char *binding, lt_slice set, lt_slice value, uint32_t *new_len);
int lt_kv_set_del(const char *binding, lt_slice set, lt_slice value, uint32_t *removed);
int lt_kv_set_query(const char *binding, lt_slice set, lt_strings *members);
int lt_kv_set_intersection(const char *binding, const lt_slice *sets, size_t n, lt_strings *members);
int lt_kv_set_union(const char *binding, const lt_slice *sets, size_t n, lt_strings *members);
int lt_kv_set_clear(const char *binding, lt_slice set, int *existed);

/* ---- wasmcloud:builtin:logging ----------------------------------------------------------------------- */

/* level: "debug" | "info" | "warn" | "error". Fails like any host call when no logger is linked. */
int lt_log_write(const char *level, lt_slice text);

/* ---- wasmcloud:builtin:numbergen --------------------------------------------------------------------- */

int lt_numbergen_guid(lt_slice *guid);
int lt_numbergen_random32(uint32_t *v);
int lt_numbergen_random_in_range(uint32_t min, uint32_t max, uint32_t *v);

#endif /* LATTICE_H */
