/*
 * contracts.c — typed helpers for the capability contracts of SPEC §2, with their exact msgpack keys.
 *
 * Each host-call helper encodes the request, calls lattice_host_call() and decodes the reply; it returns 1
 * on success and 0 on failure, with lattice_last_error() holding the host's error text (or a note that
 * the reply was malformed). Operations without input send an empty payload, as wasmCloud 0.x actors do.
 */
#include "lattice.h"

#define NS_KEYVALUE "wasmcloud:keyvalue"
#define NS_LOGGING "wasmcloud:builtin:logging"
#define NS_NUMBERGEN "wasmcloud:builtin:numbergen"

/* Sends `payload` and hands back a reader over the reply. */
static int call(const char *binding, const char *ns, const char *op, const lt_buf *payload, lt_reader *r) {
    lt_slice reply = {0};
    if (payload->oom) return lattice_set_last_error(LT_STR("actor out of memory encoding a host call"));
    if (!lattice_host_call(binding, ns, op, lt_buf_slice(payload), &reply)) return 0;
    *r = lt_reader_new(reply);
    return 1;
}

static int bad_reply(const lt_reader *r, int ok) {
    return ok && !r->err ? 1 : lattice_set_last_error(LT_STR("malformed reply from the host"));
}

/* Host calls whose reply is one integer / one bool. */
static int call_int(const char *bd, const char *ns, const char *op, const lt_buf *payload, int64_t *v) {
    lt_reader r;
    return call(bd, ns, op, payload, &r) && bad_reply(&r, lt_mp_read_int(&r, v));
}

static int call_bool(const char *bd, const char *ns, const char *op, const lt_buf *payload, int *v) {
    lt_reader r;
    return call(bd, ns, op, payload, &r) && bad_reply(&r, lt_mp_read_bool(&r, v));
}

/* A str value where nil also means "empty". */
static int read_text(lt_reader *r, lt_slice *v) {
    *v = (lt_slice){0};
    return lt_mp_read_nil(r) || lt_mp_read_str(r, v);
}

/* ---- wasmcloud:httpserver ---------------------------------------------------------------------------- */

int lt_http_parse_request(lt_slice msg, lt_http_request *req) {
    *req = (lt_http_request){0};
    lt_reader r = lt_reader_new(msg);
    uint32_t n;
    if (!lt_mp_read_map(&r, &n)) return 0;
    while (n-- && !r.err) {
        lt_slice key;
        if (!lt_mp_read_str(&r, &key)) return 0;
        if (lt_slice_eq(key, LT_STR("method"))) read_text(&r, &req->method);
        else if (lt_slice_eq(key, LT_STR("path"))) read_text(&r, &req->path);
        else if (lt_slice_eq(key, LT_STR("queryString"))) read_text(&r, &req->query_string);
        else if (lt_slice_eq(key, LT_STR("body"))) {
            if (!lt_mp_read_nil(&r)) lt_mp_read_bin(&r, &req->body);
        }
        else if (lt_slice_eq(key, LT_STR("header"))) {
            size_t start = r.pos;
            lt_mp_skip(&r);
            req->header = (lt_slice){msg.ptr + start, r.pos - start};
        } else lt_mp_skip(&r);
    }
    return !r.err;
}

static uint8_t ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

/* HTTP header names compare case-insensitively (RFC 9110 §5.1). */
static int ascii_ieq(lt_slice a, lt_slice b) {
    if (a.len != b.len) return 0;
    for (size_t i = 0; i < a.len; i++)
        if (ascii_lower(a.ptr[i]) != ascii_lower(b.ptr[i])) return 0;
    return 1;
}

int lt_http_header(const lt_http_request *req, lt_slice name, lt_slice *value) {
    lt_reader r = lt_reader_new(req->header);
    uint32_t n, count;
    if (!req->header.len || !lt_mp_read_map(&r, &n)) return 0;
    while (n--) {
        lt_slice key;
        if (!lt_mp_read_str(&r, &key)) return 0;
        if (ascii_ieq(key, name)) return lt_mp_read_array(&r, &count) && count && lt_mp_read_str(&r, value);
        lt_mp_skip(&r);
    }
    return 0;
}

int lt_http_write_response(lt_buf *out, uint16_t status, const lt_http_header_pair *headers, size_t n,
                           lt_slice body) {
    lt_mp_map(out, 3);
    lt_mp_str(out, LT_STR("statusCode"));
    lt_mp_int(out, status);
    lt_mp_str(out, LT_STR("header"));
    lt_mp_map(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        lt_mp_str(out, headers[i].name);
        lt_mp_array(out, 1);
        lt_mp_str(out, headers[i].value);
    }
    lt_mp_str(out, LT_STR("body"));
    lt_mp_bin(out, body);
    return !out->oom;
}

int lt_http_respond(lt_buf *out, uint16_t status, lt_slice content_type, lt_slice body) {
    lt_http_header_pair h = {LT_STR("Content-Type"), content_type};
    return lt_http_write_response(out, status, &h, 1, body);
}

/* ---- wasmcloud:keyvalue ------------------------------------------------------------------------------ */

int lt_kv_get(const char *binding, lt_slice key, lt_slice *value, int *exists) {
    lt_buf p = {0};
    lt_reader r;
    uint32_t n;
    lt_mp_str(&p, key);
    if (!call(binding, NS_KEYVALUE, "KeyValue.Get", &p, &r)) return 0;
    *value = (lt_slice){0};
    *exists = 0;
    if (!lt_mp_read_map(&r, &n)) return bad_reply(&r, 0);
    while (n-- && !r.err) {
        lt_slice k = {0};
        lt_mp_read_str(&r, &k);
        if (lt_slice_eq(k, LT_STR("value"))) read_text(&r, value);
        else if (lt_slice_eq(k, LT_STR("exists"))) lt_mp_read_bool(&r, exists);
        else lt_mp_skip(&r);
    }
    return bad_reply(&r, 1);
}

int lt_kv_set(const char *binding, lt_slice key, lt_slice value, uint32_t expires_s) {
    lt_buf p = {0};
    lt_reader r;
    lt_mp_map(&p, 3);
    lt_mp_str(&p, LT_STR("key"));
    lt_mp_str(&p, key);
    lt_mp_str(&p, LT_STR("value"));
    lt_mp_str(&p, value);
    lt_mp_str(&p, LT_STR("expires"));
    lt_mp_int(&p, expires_s);
    return call(binding, NS_KEYVALUE, "KeyValue.Set", &p, &r);
}

int lt_kv_del(const char *binding, lt_slice key, int *existed) {
    lt_buf p = {0};
    lt_mp_str(&p, key);
    return call_bool(binding, NS_KEYVALUE, "KeyValue.Del", &p, existed);
}

int lt_kv_contains(const char *binding, lt_slice key, int *exists) {
    lt_buf p = {0};
    lt_mp_str(&p, key);
    return call_bool(binding, NS_KEYVALUE, "KeyValue.Contains", &p, exists);
}

int lt_kv_increment(const char *binding, lt_slice key, int32_t by, int32_t *new_value) {
    lt_buf p = {0};
    int64_t v;
    lt_mp_map(&p, 2);
    lt_mp_str(&p, LT_STR("key"));
    lt_mp_str(&p, key);
    lt_mp_str(&p, LT_STR("value"));
    lt_mp_int(&p, by);
    if (!call_int(binding, NS_KEYVALUE, "KeyValue.Increment", &p, &v)) return 0;
    *new_value = (int32_t)v;
    return 1;
}

/* {<name_key>: name, value: value}: the argument of ListAdd/ListDel/SetAdd/SetDel. */
static void name_value(lt_buf *p, lt_slice name_key, lt_slice name, lt_slice value) {
    lt_mp_map(p, 2);
    lt_mp_str(p, name_key);
    lt_mp_str(p, name);
    lt_mp_str(p, LT_STR("value"));
    lt_mp_str(p, value);
}

/* Host calls whose reply is an array of strings. */
static int call_strings(const char *bd, const char *op, const lt_buf *payload, lt_strings *out) {
    lt_reader r;
    uint32_t n;
    *out = (lt_strings){0};
    if (!call(bd, NS_KEYVALUE, op, payload, &r)) return 0;
    if (!lt_mp_read_array(&r, &n)) return bad_reply(&r, 0);
    /* Each item takes at least one byte: a count beyond the reply is malformed, not an allocation. */
    if (n > r.len - r.pos) return bad_reply(&r, 0);
    lt_slice *items = n ? lt_alloc(n * sizeof(lt_slice)) : 0;
    if (n && !items) return lattice_set_last_error(LT_STR("actor out of memory reading a host reply"));
    for (uint32_t i = 0; i < n; i++)
        if (!read_text(&r, &items[i])) return bad_reply(&r, 0);
    *out = (lt_strings){items, n};
    return bad_reply(&r, 1);
}

static int call_u32(const char *bd, const char *op, const lt_buf *payload, uint32_t *v) {
    int64_t x;
    if (!call_int(bd, NS_KEYVALUE, op, payload, &x)) return 0;
    *v = (uint32_t)x;
    return 1;
}

int lt_kv_list_add(const char *binding, lt_slice list, lt_slice value, uint32_t *new_len) {
    lt_buf p = {0};
    name_value(&p, LT_STR("listName"), list, value);
    return call_u32(binding, "KeyValue.ListAdd", &p, new_len);
}

int lt_kv_list_del(const char *binding, lt_slice list, lt_slice value, int *deleted) {
    lt_buf p = {0};
    name_value(&p, LT_STR("listName"), list, value);
    return call_bool(binding, NS_KEYVALUE, "KeyValue.ListDel", &p, deleted);
}

int lt_kv_list_range(const char *binding, lt_slice list, int32_t start, int32_t stop, lt_strings *items) {
    lt_buf p = {0};
    lt_mp_map(&p, 3);
    lt_mp_str(&p, LT_STR("listName"));
    lt_mp_str(&p, list);
    lt_mp_str(&p, LT_STR("start"));
    lt_mp_int(&p, start);
    lt_mp_str(&p, LT_STR("stop"));
    lt_mp_int(&p, stop);
    return call_strings(binding, "KeyValue.ListRange", &p, items);
}

int lt_kv_list_clear(const char *binding, lt_slice list, int *existed) {
    lt_buf p = {0};
    lt_mp_str(&p, list);
    return call_bool(binding, NS_KEYVALUE, "KeyValue.ListClear", &p, existed);
}

int lt_kv_set_add(const char *binding, lt_slice set, lt_slice value, uint32_t *new_len) {
    lt_buf p = {0};
    name_value(&p, LT_STR("setName"), set, value);
    return call_u32(binding, "KeyValue.SetAdd", &p, new_len);
}

int lt_kv_set_del(const char *binding, lt_slice set, lt_slice value, uint32_t *removed) {
    lt_buf p = {0};
    name_value(&p, LT_STR("setName"), set, value);
    return call_u32(binding, "KeyValue.SetDel", &p, removed);
}

int lt_kv_set_query(const char *binding, lt_slice set, lt_strings *members) {
    lt_buf p = {0};
    lt_mp_str(&p, set);
    return call_strings(binding, "KeyValue.SetQuery", &p, members);
}

static int set_combine(const char *bd, const char *op, const lt_slice *sets, size_t n, lt_strings *members) {
    lt_buf p = {0};
    lt_mp_array(&p, (uint32_t)n);
    for (size_t i = 0; i < n; i++) lt_mp_str(&p, sets[i]);
    return call_strings(bd, op, &p, members);
}

int lt_kv_set_intersection(const char *binding, const lt_slice *sets, size_t n, lt_strings *members) {
    return set_combine(binding, "KeyValue.SetIntersection", sets, n, members);
}

int lt_kv_set_union(const char *binding, const lt_slice *sets, size_t n, lt_strings *members) {
    return set_combine(binding, "KeyValue.SetUnion", sets, n, members);
}

int lt_kv_set_clear(const char *binding, lt_slice set, int *existed) {
    lt_buf p = {0};
    lt_mp_str(&p, set);
    return call_bool(binding, NS_KEYVALUE, "KeyValue.SetClear", &p, existed);
}

/* ---- wasmcloud:builtin:logging ----------------------------------------------------------------------- */

int lt_log_write(const char *level, lt_slice text) {
    lt_buf p = {0};
    lt_reader r;
    lt_mp_map(&p, 2);
    lt_mp_str(&p, LT_STR("level"));
    lt_mp_str(&p, lt_cstr(level));
    lt_mp_str(&p, LT_STR("text"));
    lt_mp_str(&p, text);
    return call("", NS_LOGGING, "Logging.WriteLog", &p, &r);
}

/* ---- wasmcloud:builtin:numbergen --------------------------------------------------------------------- */

int lt_numbergen_guid(lt_slice *guid) {
    lt_buf p = {0};
    lt_reader r;
    if (!call("", NS_NUMBERGEN, "NumberGen.GenerateGuid", &p, &r)) return 0;
    return bad_reply(&r, lt_mp_read_str(&r, guid));
}

int lt_numbergen_random32(uint32_t *v) {
    lt_buf p = {0};
    int64_t x;
    if (!call_int("", NS_NUMBERGEN, "NumberGen.Random32", &p, &x)) return 0;
    *v = (uint32_t)x;
    return 1;
}

int lt_numbergen_random_in_range(uint32_t min, uint32_t max, uint32_t *v) {
    lt_buf p = {0};
    int64_t x;
    lt_mp_map(&p, 2);
    lt_mp_str(&p, LT_STR("min"));
    lt_mp_int(&p, min);
    lt_mp_str(&p, LT_STR("max"));
    lt_mp_int(&p, max);
    if (!call_int("", NS_NUMBERGEN, "NumberGen.RandomInRange", &p, &x)) return 0;
    *v = (uint32_t)x;
    return 1;
}
