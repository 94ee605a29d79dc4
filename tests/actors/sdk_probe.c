/*
 * sdk_probe — a test-only actor that exposes each SDK helper as an operation, so the tests can drive the
 * SDK from Python: arguments arrive as a msgpack array, results go back as msgpack, and a failed host call
 * fails the operation with lattice_last_error() as the error text.
 */
#include "lattice.h"

static lt_slice str_arg(lt_reader *r) {
    lt_slice s = {0};
    lt_mp_read_str(r, &s);
    return s;
}

static int64_t int_arg(lt_reader *r) {
    int64_t v = 0;
    lt_mp_read_int(r, &v);
    return v;
}

/* Opens the argument array; the probe trusts its tests, so a bad shape just fails the call. */
static int args(lt_slice msg, lt_reader *r, uint32_t want) {
    uint32_t n = 0;
    *r = lt_reader_new(msg);
    return lt_mp_read_array(r, &n) && n == want;
}

static int host_failed(void) { return lattice_fail(lattice_last_error()); }
static int bad_args(void) { return lattice_fail(LT_STR("probe: bad arguments")); }

/* Copies one value from `r` to `out` through the SDK's typed reader and writer. */
static int copy_value(lt_reader *r, lt_buf *out) {
    if (r->err || r->pos >= r->len) return 0;
    uint8_t tag = r->p[r->pos];
    lt_slice s;
    int64_t i;
    int b;
    uint32_t n;
    if (lt_mp_read_nil(r)) return lt_mp_nil(out), 1;
    if ((tag >= 0xa0 && tag <= 0xbf) || (tag >= 0xd9 && tag <= 0xdb))
        return lt_mp_read_str(r, &s) && (lt_mp_str(out, s), 1);
    if (tag >= 0xc4 && tag <= 0xc6) return lt_mp_read_bin(r, &s) && (lt_mp_bin(out, s), 1);
    if (tag == 0xc2 || tag == 0xc3) return lt_mp_read_bool(r, &b) && (lt_mp_bool(out, b), 1);
    if ((tag >= 0x90 && tag <= 0x9f) || tag == 0xdc || tag == 0xdd) {
        if (!lt_mp_read_array(r, &n)) return 0;
        lt_mp_array(out, n);
        while (n--)
            if (!copy_value(r, out)) return 0;
        return 1;
    }
    if ((tag >= 0x80 && tag <= 0x8f) || tag == 0xde || tag == 0xdf) {
        if (!lt_mp_read_map(r, &n)) return 0;
        lt_mp_map(out, n);
        while (n--)
            if (!copy_value(r, out) || !copy_value(r, out)) return 0;
        return 1;
    }
    return lt_mp_read_int(r, &i) && (lt_mp_int(out, i), 1);
}

static int roundtrip(lt_slice msg, lt_buf *out) {
    lt_reader r = lt_reader_new(msg);
    if (!copy_value(&r, out) || r.pos != r.len) return lattice_fail(LT_STR("probe: cannot copy value"));
    return 1;
}

/* Skips the first of two concatenated values and answers the rest verbatim. */
static int skip(lt_slice msg, lt_buf *out) {
    lt_reader r = lt_reader_new(msg);
    if (!lt_mp_skip(&r)) return lattice_fail(LT_STR("probe: cannot skip value"));
    lt_buf_append(out, msg.ptr + r.pos, msg.len - r.pos);
    return 1;
}

/* Answers [method, path, queryString, body, content-type or nil]. */
static int http_request(lt_slice msg, lt_buf *out) {
    lt_http_request req;
    lt_slice ct;
    if (!lt_http_parse_request(msg, &req)) return lattice_fail(LT_STR("probe: malformed HttpRequest"));
    lt_mp_array(out, 5);
    lt_mp_str(out, req.method);
    lt_mp_str(out, req.path);
    lt_mp_str(out, req.query_string);
    lt_mp_bin(out, req.body);
    if (lt_http_header(&req, LT_STR("content-type"), &ct)) lt_mp_str(out, ct);
    else lt_mp_nil(out);
    return 1;
}

static int kv_get(lt_slice msg, lt_buf *out) {
    lt_reader r;
    lt_slice value;
    int exists;
    if (!args(msg, &r, 1)) return bad_args();
    if (!lt_kv_get("", str_arg(&r), &value, &exists)) return host_failed();
    lt_mp_array(out, 2);
    lt_mp_str(out, value);
    lt_mp_bool(out, exists);
    return 1;
}

static int kv_set(lt_slice msg, lt_buf *out) {
    lt_reader r;
    if (!args(msg, &r, 3)) return bad_args();
    lt_slice key = str_arg(&r), value = str_arg(&r);
    if (!lt_kv_set("", key, value, (uint32_t)int_arg(&r))) return host_failed();
    lt_mp_nil(out);
    return 1;
}

static int kv_del(lt_slice msg, lt_buf *out) {
    lt_reader r;
    int existed;
    if (!args(msg, &r, 1)) return bad_args();
    if (!lt_kv_del("", str_arg(&r), &existed)) return host_failed();
    lt_mp_bool(out, existed);
    return 1;
}

static int kv_contains(lt_slice msg, lt_buf *out) {
    lt_reader r;
    int exists;
    if (!args(msg, &r, 1)) return bad_args();
    if (!lt_kv_contains("", str_arg(&r), &exists)) return host_failed();
    lt_mp_bool(out, exists);
    return 1;
}

/* [binding, key, by]: the binding is passed through, to pin down named links. */
static int kv_increment(lt_slice msg, lt_buf *out) {
    lt_reader r;
    int32_t v;
    if (!args(msg, &r, 3)) return bad_args();
    static char binding[64];
    lt_slice bd = str_arg(&r);
    if (bd.len >= sizeof binding) return bad_args();
    memcpy(binding, bd.ptr, bd.len);
    binding[bd.len] = 0;
    lt_slice key = str_arg(&r);
    if (!lt_kv_increment(binding, key, (int32_t)int_arg(&r), &v)) return host_failed();
    lt_mp_int(out, v);
    return 1;
}

static int put_strings(lt_buf *out, const lt_strings *s) {
    lt_mp_array(out, (uint32_t)s->len);
    for (size_t i = 0; i < s->len; i++) lt_mp_str(out, s->items[i]);
    return 1;
}

/* [list, value] → new length / deleted; [list, start, stop] → [str]; [list] → existed. */
static int kv_list_add(lt_slice msg, lt_buf *out) {
    lt_reader r;
    uint32_t n;
    if (!args(msg, &r, 2)) return bad_args();
    lt_slice list = str_arg(&r);
    if (!lt_kv_list_add("", list, str_arg(&r), &n)) return host_failed();
    lt_mp_int(out, n);
    return 1;
}

static int kv_list_del(lt_slice msg, lt_buf *out) {
    lt_reader r;
    int deleted;
    if (!args(msg, &r, 2)) return bad_args();
    lt_slice list = str_arg(&r);
    if (!lt_kv_list_del("", list, str_arg(&r), &deleted)) return host_failed();
    lt_mp_bool(out, deleted);
    return 1;
}

static int kv_list_range(lt_slice msg, lt_buf *out) {
    lt_reader r;
    lt_strings items;
    if (!args(msg, &r, 3)) return bad_args();
    lt_slice list = str_arg(&r);
    int32_t start = (int32_t)int_arg(&r);
    if (!lt_kv_list_range("", list, start, (int32_t)int_arg(&r), &items)) return host_failed();
    return put_strings(out, &items);
}

static int kv_list_clear(lt_slice msg, lt_buf *out) {
    lt_reader r;
    int existed;
    if (!args(msg, &r, 1)) return bad_args();
    if (!lt_kv_list_clear("", str_arg(&r), &existed)) return host_failed();
    lt_mp_bool(out, existed);
    return 1;
}

static int kv_set_add(lt_slice msg, lt_buf *out) {
    lt_reader r;
    uint32_t n;
    if (!args(msg, &r, 2)) return bad_args();
    lt_slice set = str_arg(&r);
    if (!lt_kv_set_add("", set, str_arg(&r), &n)) return host_failed();
    lt_mp_int(out, n);
    return 1;
}

static int kv_set_del(lt_slice msg, lt_buf *out) {
    lt_reader r;
    uint32_t n;
    if (!args(msg, &r, 2)) return bad_args();
    lt_slice set = str_arg(&r);
    if (!lt_kv_set_del("", set, str_arg(&r), &n)) return host_failed();
    lt_mp_int(out, n);
    return 1;
}

static int kv_set_query(lt_slice msg, lt_buf *out) {
    lt_reader r;
    lt_strings members;
    if (!args(msg, &r, 1)) return bad_args();
    if (!lt_kv_set_query("", str_arg(&r), &members)) return host_failed();
    return put_strings(out, &members);
}

static int kv_set_clear(lt_slice msg, lt_buf *out) {
    lt_reader r;
    int existed;
    if (!args(msg, &r, 1)) return bad_args();
    if (!lt_kv_set_clear("", str_arg(&r), &existed)) return host_failed();
    lt_mp_bool(out, existed);
    return 1;
}

/* [union?, [set, ...]] */
static int kv_set_combine(lt_slice msg, lt_buf *out) {
    lt_reader r;
    lt_strings members;
    uint32_t n;
    int is_union;
    if (!args(msg, &r, 2) || !lt_mp_read_bool(&r, &is_union) || !lt_mp_read_array(&r, &n)) return bad_args();
    lt_slice *sets = lt_alloc(n * sizeof(lt_slice) + 1);
    for (uint32_t i = 0; i < n; i++) sets[i] = str_arg(&r);
    int ok = is_union ? lt_kv_set_union("", sets, n, &members) : lt_kv_set_intersection("", sets, n, &members);
    return ok ? put_strings(out, &members) : host_failed();
}

static int log_write(lt_slice msg, lt_buf *out) {
    lt_reader r;
    static char level[16];
    if (!args(msg, &r, 2)) return bad_args();
    lt_slice lv = str_arg(&r);
    if (lv.len >= sizeof level) return bad_args();
    memcpy(level, lv.ptr, lv.len);
    level[lv.len] = 0;
    if (!lt_log_write(level, str_arg(&r))) return host_failed();
    lt_mp_nil(out);
    return 1;
}

static int guid(lt_slice msg, lt_buf *out) {
    lt_slice g;
    (void)msg;
    if (!lt_numbergen_guid(&g)) return host_failed();
    lt_mp_str(out, g);
    return 1;
}

static int random32(lt_slice msg, lt_buf *out) {
    uint32_t v;
    (void)msg;
    if (!lt_numbergen_random32(&v)) return host_failed();
    lt_mp_int(out, v);
    return 1;
}

static int random_in_range(lt_slice msg, lt_buf *out) {
    lt_reader r;
    uint32_t v;
    if (!args(msg, &r, 2)) return bad_args();
    uint32_t min = (uint32_t)int_arg(&r);
    if (!lt_numbergen_random_in_range(min, (uint32_t)int_arg(&r), &v)) return host_failed();
    lt_mp_int(out, v);
    return 1;
}

static int console(lt_slice msg, lt_buf *out) {
    lattice_log(msg);
    lt_mp_nil(out);
    return 1;
}

void actor_init(void) {
    lattice_register("Probe.Roundtrip", roundtrip);
    lattice_register("Probe.Skip", skip);
    lattice_register("Probe.HttpRequest", http_request);
    lattice_register("Probe.KvGet", kv_get);
    lattice_register("Probe.KvSet", kv_set);
    lattice_register("Probe.KvDel", kv_del);
    lattice_register("Probe.KvContains", kv_contains);
    lattice_register("Probe.KvIncrement", kv_increment);
    lattice_register("Probe.KvListAdd", kv_list_add);
    lattice_register("Probe.KvListDel", kv_list_del);
    lattice_register("Probe.KvListRange", kv_list_range);
    lattice_register("Probe.KvListClear", kv_list_clear);
    lattice_register("Probe.KvSetAdd", kv_set_add);
    lattice_register("Probe.KvSetDel", kv_set_del);
    lattice_register("Probe.KvSetQuery", kv_set_query);
    lattice_register("Probe.KvSetClear", kv_set_clear);
    lattice_register("Probe.KvSetCombine", kv_set_combine);
    lattice_register("Probe.Log", log_write);
    lattice_register("Probe.Guid", guid);
    lattice_register("Probe.Random32", random32);
    lattice_register("Probe.RandomInRange", random_in_range);
    lattice_register("Probe.Console", console);
}
