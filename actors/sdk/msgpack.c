/*
 * msgpack.c — the subset of MessagePack the contracts use: nil, bool, ints, str, bin, array, map.
 *
 * The writer picks the smallest encoding (as msgpack-python and rmp do); the reader accepts every width and
 * takes str and bin interchangeably, because senders differ in which one they use for text and bytes.
 * Floats and ext values are never produced, only skipped.
 */
#include "lattice.h"

/* ---- writer ------------------------------------------------------------------------------------------ */

/* A tag byte followed by `n` big-endian bytes of `v`. */
static void put_tagged(lt_buf *b, uint8_t tag, uint64_t v, int n) {
    uint8_t tmp[9];
    tmp[0] = tag;
    for (int i = n; i > 0; i--, v >>= 8) tmp[i] = (uint8_t)v;
    lt_buf_append(b, tmp, (size_t)n + 1);
}

/* The header of a str/bin/array/map: `fix` (or 0 when the type has no fix form) for n < fix_max, else the
 * 8-, 16- or 32-bit length forms starting at `tag8` (0 when there is no 8-bit form). */
static void put_header(lt_buf *b, uint8_t fix, uint32_t fix_max, uint8_t tag8, uint8_t tag16, uint32_t n) {
    if (fix && n < fix_max) put_tagged(b, (uint8_t)(fix | n), 0, 0);
    else if (tag8 && n <= 0xff) put_tagged(b, tag8, n, 1);
    else if (n <= 0xffff) put_tagged(b, tag16, n, 2);
    else put_tagged(b, (uint8_t)(tag16 + 1), n, 4);
}

void lt_mp_nil(lt_buf *b) { put_tagged(b, 0xc0, 0, 0); }
void lt_mp_bool(lt_buf *b, int v) { put_tagged(b, v ? 0xc3 : 0xc2, 0, 0); }

void lt_mp_int(lt_buf *b, int64_t v) {
    if (v >= 0 && v < 128) put_tagged(b, (uint8_t)v, 0, 0);
    else if (v >= 0) {
        uint64_t u = (uint64_t)v;
        if (u <= 0xff) put_tagged(b, 0xcc, u, 1);
        else if (u <= 0xffff) put_tagged(b, 0xcd, u, 2);
        else if (u <= 0xffffffff) put_tagged(b, 0xce, u, 4);
        else put_tagged(b, 0xcf, u, 8);
    } else if (v >= -32) put_tagged(b, (uint8_t)v, 0, 0); /* negative fixint: 0xe0..0xff */
    else if (v >= -128) put_tagged(b, 0xd0, (uint64_t)v, 1);
    else if (v >= -32768) put_tagged(b, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN) put_tagged(b, 0xd2, (uint64_t)v, 4);
    else put_tagged(b, 0xd3, (uint64_t)v, 8);
}

void lt_mp_str(lt_buf *b, lt_slice s) {
    put_header(b, 0xa0, 32, 0xd9, 0xda, (uint32_t)s.len);
    lt_buf_append_slice(b, s);
}

void lt_mp_bin(lt_buf *b, lt_slice s) {
    put_header(b, 0, 0, 0xc4, 0xc5, (uint32_t)s.len);
    lt_buf_append_slice(b, s);
}

void lt_mp_array(lt_buf *b, uint32_t n) { put_header(b, 0x90, 16, 0, 0xdc, n); }
void lt_mp_map(lt_buf *b, uint32_t n) { put_header(b, 0x80, 16, 0, 0xde, n); }

/* ---- reader ------------------------------------------------------------------------------------------ */

lt_reader lt_reader_new(lt_slice s) { return (lt_reader){s.ptr, s.len, 0, 0}; }

static int fail(lt_reader *r) {
    r->err = 1;
    return 0;
}

/* Consumes `n` bytes and returns their big-endian value (n <= 8), or fails on truncation. */
static int take(lt_reader *r, uint64_t n, uint64_t *v) {
    if (r->err || n > r->len - r->pos) return fail(r);
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < 8; i++) x = x << 8 | r->p[r->pos + i];
    r->pos += (size_t)n;
    if (v) *v = x;
    return 1;
}

static int peek(lt_reader *r, uint8_t *tag) {
    if (r->err || r->pos >= r->len) return fail(r);
    *tag = r->p[r->pos];
    return 1;
}

/* The kinds of value a tag starts, and how long its length field or payload is. */
enum kind { K_BAD, K_NIL, K_BOOL, K_UINT, K_INT, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT, K_FIXEXT };

typedef struct {
    enum kind kind;
    uint64_t value; /* inline value (fix forms) */
    int width;      /* bytes of the length / value field that follow the tag; -1 = value is inline */
} tag_info;

static tag_info classify(uint8_t t) {
    if (t <= 0x7f) return (tag_info){K_UINT, t, -1};
    if (t >= 0xe0) return (tag_info){K_INT, (uint64_t)(int64_t)(int8_t)t, -1};
    if (t <= 0x8f) return (tag_info){K_MAP, t & 0x0f, -1};
    if (t <= 0x9f) return (tag_info){K_ARRAY, t & 0x0f, -1};
    if (t <= 0xbf) return (tag_info){K_STR, t & 0x1f, -1};
    switch (t) {
    case 0xc0: return (tag_info){K_NIL, 0, -1};
    case 0xc2: case 0xc3: return (tag_info){K_BOOL, t == 0xc3, -1};
    case 0xc4: case 0xc5: case 0xc6: return (tag_info){K_BIN, 0, 1 << (t - 0xc4)};
    case 0xc7: case 0xc8: case 0xc9: return (tag_info){K_EXT, 0, 1 << (t - 0xc7)};
    case 0xca: return (tag_info){K_FLOAT, 0, 4};
    case 0xcb: return (tag_info){K_FLOAT, 0, 8};
    case 0xcc: case 0xcd: case 0xce: case 0xcf: return (tag_info){K_UINT, 0, 1 << (t - 0xcc)};
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: return (tag_info){K_INT, 0, 1 << (t - 0xd0)};
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return (tag_info){K_FIXEXT, 1u << (t - 0xd4), -1};
    case 0xd9: case 0xda: case 0xdb: return (tag_info){K_STR, 0, 1 << (t - 0xd9)};
    case 0xdc: case 0xdd: return (tag_info){K_ARRAY, 0, 2 << (t - 0xdc)};
    case 0xde: case 0xdf: return (tag_info){K_MAP, 0, 2 << (t - 0xde)};
    default: return (tag_info){K_BAD, 0, -1}; /* 0xc1 is never used */
    }
}

/* Reads a tag of one of the kinds `a`/`b` and its inline value or length field. */
static int read_head(lt_reader *r, enum kind a, enum kind b, enum kind *kind, uint64_t *value) {
    uint8_t t;
    if (!peek(r, &t)) return 0;
    tag_info info = classify(t);
    if (info.kind != a && info.kind != b) return fail(r);
    r->pos++;
    *kind = info.kind;
    *value = info.value;
    return info.width < 0 || take(r, (uint64_t)info.width, value);
}

static int read_bytes(lt_reader *r, enum kind a, enum kind b, lt_slice *v) {
    enum kind k;
    uint64_t n;
    if (!read_head(r, a, b, &k, &n)) return 0;
    if (n > r->len - r->pos) return fail(r);
    *v = (lt_slice){r->p + r->pos, (size_t)n};
    r->pos += (size_t)n;
    return 1;
}

int lt_mp_read_nil(lt_reader *r) {
    if (r->err || r->pos >= r->len || r->p[r->pos] != 0xc0) return 0;
    r->pos++;
    return 1;
}

int lt_mp_read_bool(lt_reader *r, int *v) {
    enum kind k;
    uint64_t x;
    if (!read_head(r, K_BOOL, K_BOOL, &k, &x)) return 0;
    *v = (int)x;
    return 1;
}

int lt_mp_read_int(lt_reader *r, int64_t *v) {
    enum kind k;
    uint64_t x;
    uint8_t t;
    if (!peek(r, &t) || !read_head(r, K_UINT, K_INT, &k, &x)) return 0;
    if (k == K_INT && t >= 0xd0 && t <= 0xd2) { /* sign-extend int8/16/32 */
        int bits = 8 << (t - 0xd0);
        x = (uint64_t)((int64_t)(x << (64 - bits)) >> (64 - bits));
    }
    if (k == K_UINT && x > INT64_MAX) return fail(r);
    *v = (int64_t)x;
    return 1;
}

int lt_mp_read_str(lt_reader *r, lt_slice *v) { return read_bytes(r, K_STR, K_BIN, v); }
int lt_mp_read_bin(lt_reader *r, lt_slice *v) { return read_bytes(r, K_BIN, K_STR, v); }

int lt_mp_read_array(lt_reader *r, uint32_t *n) {
    enum kind k;
    uint64_t x;
    if (!read_head(r, K_ARRAY, K_ARRAY, &k, &x)) return 0;
    *n = (uint32_t)x;
    return 1;
}

int lt_mp_read_map(lt_reader *r, uint32_t *n) {
    enum kind k;
    uint64_t x;
    if (!read_head(r, K_MAP, K_MAP, &k, &x)) return 0;
    *n = (uint32_t)x;
    return 1;
}

/* Iterative, so hostile nesting cannot exhaust the stack: `pending` counts values still to skip, and each
 * needs at least one byte, which bounds it by the input length. */
int lt_mp_skip(lt_reader *r) {
    uint64_t pending = 1;
    while (pending--) {
        uint8_t t;
        if (!peek(r, &t)) return 0;
        tag_info info = classify(t);
        uint64_t n = info.value;
        r->pos++;
        if (info.kind == K_BAD || (info.width >= 0 && !take(r, (uint64_t)info.width, &n))) return fail(r);
        uint64_t body = 0;
        switch (info.kind) {
        case K_STR: case K_BIN: body = n; break;
        case K_EXT: body = n + 1; break; /* type byte + data */
        case K_FIXEXT: body = info.value + 1; break;
        case K_ARRAY: pending += n; break;
        case K_MAP: pending += 2 * n; break;
        default: break; /* nil, bool and numbers: the width already covered them */
        }
        if (!take(r, body, NULL) || pending > r->len - r->pos) return fail(r);
    }
    return 1;
}
