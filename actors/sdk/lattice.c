/*
 * lattice.c — the waPC guest runtime behind lattice.h: exports, host imports, arena, msgpack, contracts.
 *
 * Owns the module's whole ABI surface (SPEC §1): the exports, the `wapc` imports and the per-call arena.
 * The msgpack codec lives in msgpack.c and the contract helpers in contracts.c; actors only see lattice.h.
 */
#include "lattice.h"

/* ---- host imports (SPEC §1; module `wapc`) ----------------------------------------------------------- */

/* `wapc` by default; -DLATTICE_IMPORT_MODULE=\"wasmbus\" builds a wasmCloud 0.50+-style actor. */
#ifndef LATTICE_IMPORT_MODULE
#define LATTICE_IMPORT_MODULE "wapc"
#endif
#define WAPC(name) __attribute__((import_module(LATTICE_IMPORT_MODULE), import_name(#name)))
WAPC(__guest_request) void wapc_guest_request(uint8_t *op, uint8_t *msg);
WAPC(__guest_response) void wapc_guest_response(const uint8_t *ptr, size_t len);
WAPC(__guest_error) void wapc_guest_error(const uint8_t *ptr, size_t len);
WAPC(__host_call) int32_t wapc_host_call(const uint8_t *bd, size_t bd_len, const uint8_t *ns, size_t ns_len,
                                         const uint8_t *op, size_t op_len, const uint8_t *ptr, size_t len);
WAPC(__host_response_len) size_t wapc_host_response_len(void);
WAPC(__host_response) void wapc_host_response(uint8_t *ptr);
WAPC(__host_error_len) size_t wapc_host_error_len(void);
WAPC(__host_error) void wapc_host_error(uint8_t *ptr);
WAPC(__console_log) void wapc_console_log(const uint8_t *ptr, size_t len);

/* ---- libc bits the compiler may call on its own ------------------------------------------------------ */

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

lt_slice lt_cstr(const char *s) { return (lt_slice){(const uint8_t *)s, s ? strlen(s) : 0}; }
lt_slice lt_buf_slice(const lt_buf *b) { return (lt_slice){b->ptr, b->len}; }
int lt_slice_eq(lt_slice a, lt_slice b) { return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0; }

/* ---- arena --------------------------------------------------------------------------------------------
 * A bump allocator reset at the start of every call: a call's data never outlives it (the host copies
 * the reply during __guest_response), so there is nothing to free and nothing can leak between calls. */

extern uint8_t __heap_base;
static uintptr_t heap_floor; /* first byte after what actor_init allocated */
static uintptr_t heap_top;
/* Set when any lt_buf runs out of memory during a call: the call then fails as a whole, so a handler that
 * forgot to check `oom` can never send a silently truncated reply. */
static int call_oom;

void *lt_alloc(size_t n) {
    uint64_t start = (heap_top + 7) & ~(uintptr_t)7;
    uint64_t end = start + n; /* 64-bit: no wrap-around, even at the 4 GiB edge of wasm32 */
    uint64_t limit = (uint64_t)__builtin_wasm_memory_size(0) * 65536;
    if (end > limit) {
        if (end > (uint64_t)SIZE_MAX) return NULL;
        size_t pages = (size_t)((end - limit + 65535) / 65536);
        if (__builtin_wasm_memory_grow(0, pages) == SIZE_MAX) return NULL;
    }
    heap_top = (uintptr_t)end;
    return (void *)(uintptr_t)start;
}

static int buf_oom(lt_buf *b) {
    b->oom = call_oom = 1;
    return 0;
}

static int buf_reserve(lt_buf *b, size_t extra) {
    if (b->oom) return 0;
    if (extra <= b->cap - b->len) return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) return buf_oom(b);
        cap *= 2;
    }
    if (b->ptr && (uintptr_t)b->ptr + b->cap == heap_top) {
        /* The buffer is the newest block: grow it in place. */
        heap_top = (uintptr_t)b->ptr;
        if (lt_alloc(cap) != b->ptr) {
            heap_top = (uintptr_t)b->ptr + b->cap;
            return buf_oom(b);
        }
    } else {
        uint8_t *p = lt_alloc(cap);
        if (!p) return buf_oom(b);
        if (b->len) memcpy(p, b->ptr, b->len);
        b->ptr = p;
    }
    b->cap = cap;
    return 1;
}

void lt_buf_append(lt_buf *b, const void *p, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
}

void lt_buf_append_slice(lt_buf *b, lt_slice s) { lt_buf_append(b, s.ptr, s.len); }

static void put1(lt_buf *b, uint8_t c) { lt_buf_append(b, &c, 1); }

void lt_buf_append_int(lt_buf *b, int64_t v) {
    char tmp[20];
    int i = sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* no overflow for INT64_MIN */
    do tmp[--i] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) put1(b, '-');
    lt_buf_append(b, tmp + i, sizeof tmp - i);
}

void lt_buf_append_json_str(lt_buf *b, lt_slice s) {
    static const char hex[] = "0123456789abcdef";
    put1(b, '"');
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (c == '"' || c == '\\') {
            put1(b, '\\');
            put1(b, c);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            lt_buf_append(b, esc, sizeof esc);
        } else {
            put1(b, c); /* bytes >= 0x80 pass through: UTF-8 in, UTF-8 out */
        }
    }
    put1(b, '"');
}

/* ---- waPC call plumbing ------------------------------------------------------------------------------ */

#define MAX_HANDLERS 32
struct registration {
    const char *op;
    lt_handler fn;
};
static struct registration handlers[MAX_HANDLERS];
static size_t handler_count;
static int initialized;
static lt_slice call_error;
static lt_slice last_error;

void lattice_register(const char *operation, lt_handler fn) {
    for (size_t i = 0; i < handler_count; i++)
        if (lt_slice_eq(lt_cstr(handlers[i].op), lt_cstr(operation))) {
            handlers[i].fn = fn;
            return;
        }
    if (handler_count < MAX_HANDLERS) handlers[handler_count++] = (struct registration){operation, fn};
}

static void ensure_init(void) {
    if (initialized) return;
    initialized = 1;
    heap_top = (uintptr_t)&__heap_base;
    actor_init();
    heap_floor = heap_top;
}

__attribute__((export_name("wapc_init"))) void wapc_init(void) { ensure_init(); }

__attribute__((export_name("__wasmbus_rpc_version"))) int32_t wasmbus_rpc_version(void) { return 1; }

int lattice_fail(lt_slice text) {
    call_error = text;
    return 0;
}

lt_slice lattice_last_error(void) { return last_error; }

int lattice_set_last_error(lt_slice text) {
    last_error = text;
    return 0;
}

void lattice_log(lt_slice text) { wapc_console_log(text.ptr, text.len); }

static int32_t guest_fail(lt_slice text) {
    wapc_guest_error(text.ptr, text.len);
    return 0;
}

__attribute__((export_name("__guest_call"))) int32_t guest_call(size_t op_len, size_t msg_len) {
    ensure_init(); /* for hosts that skip wapc_init */
    heap_top = heap_floor;
    call_error = last_error = (lt_slice){0};
    call_oom = 0;
    uint8_t *op = lt_alloc(op_len), *msg = lt_alloc(msg_len);
    if (!op || !msg) return guest_fail(LT_STR("actor out of memory reading the request"));
    wapc_guest_request(op, msg);
    lt_slice operation = {op, op_len};
    for (size_t i = 0; i < handler_count; i++) {
        if (!lt_slice_eq(operation, lt_cstr(handlers[i].op))) continue;
        lt_buf out = {0};
        int ok = handlers[i].fn((lt_slice){msg, msg_len}, &out) == 1;
        if (ok && !call_oom) {
            wapc_guest_response(out.ptr, out.len);
            return 1;
        }
        if (!ok && call_error.len) return guest_fail(call_error); /* the handler's own words first */
        if (call_oom) return guest_fail(LT_STR("actor out of memory building the reply"));
        return guest_fail(LT_STR("operation failed"));
    }
    lt_buf text = {0};
    lt_buf_append_slice(&text, LT_STR("actor has no handler for operation "));
    lt_buf_append_slice(&text, operation);
    return guest_fail(text.oom ? LT_STR("no handler for operation") : lt_buf_slice(&text));
}

int lattice_host_call(const char *binding, const char *ns, const char *operation, lt_slice payload,
                      lt_slice *reply) {
    lt_slice bd = lt_cstr(binding), n = lt_cstr(ns), op = lt_cstr(operation);
    if (wapc_host_call(bd.ptr, bd.len, n.ptr, n.len, op.ptr, op.len, payload.ptr, payload.len) != 1) {
        size_t len = wapc_host_error_len();
        uint8_t *p = lt_alloc(len);
        if (!p) return last_error = LT_STR("actor out of memory reading a host error"), 0;
        wapc_host_error(p);
        last_error = (lt_slice){p, len};
        return 0;
    }
    size_t len = wapc_host_response_len();
    uint8_t *p = lt_alloc(len);
    if (!p) return last_error = LT_STR("actor out of memory reading a host reply"), 0;
    wapc_host_response(p);
    if (reply) *reply = (lt_slice){p, len};
    return 1;
}
