/*
 * transform — an untrusted record transform for examples/pipeline (wasm32-freestanding, no libc).
 *
 * Plain-function ABI (docs/embedding.md): exports `memory`, `alloc(len) -> ptr` and
 * `transform_record(ptr, len) -> i64`, which turns one CSV record `id,name,city,amount` into JSON:
 *
 *     3,grace hopper,new york,100   →   {"id":3,"name":"Grace Hopper","city":"NEW YORK","cents":10000}
 *
 * A record without a name or with a malformed amount is refused (a negative result packing the
 * reason). Two bugs are planted on purpose, to show that one bad record fails alone:
 *   - an amount ending in '.' ("3.") makes the decimal parser spin forever: the host's deadline stops it;
 *   - an amount of 13 digits or more trips an assertion (a trap).
 */
#include <stddef.h>
#include <stdint.h>

/* ---- memory: one arena, reset by `alloc`, which the host calls once at the start of every call ---- */

extern uint8_t __heap_base;
static uintptr_t top;

static uint8_t *bump(size_t n) {
    uintptr_t start = top, end = top + n;
    size_t have = __builtin_wasm_memory_size(0) * 65536;
    if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) return 0;
    top = end;
    return (uint8_t *)start;
}

__attribute__((export_name("alloc"))) uint8_t *alloc(size_t n) {
    top = (uintptr_t)&__heap_base;
    return bump(n);
}

/* ---- results ---------------------------------------------------------------------------------------- */

static int64_t pack(const void *ptr, size_t len) { return (int64_t)((uint64_t)(uintptr_t)ptr << 32 | len); }

static int64_t refuse(const char *reason) {
    size_t n = 0;
    while (reason[n]) n++;
    return -pack(reason, n);
}

typedef struct {
    uint8_t *ptr;
    size_t len;
} out_buf;

static void put(out_buf *o, uint8_t c) { o->ptr[o->len++] = c; }

static void put_str(out_buf *o, const char *s) {
    while (*s) put(o, (uint8_t)*s++);
}

static void put_int(out_buf *o, int64_t v) {
    char tmp[20];
    int i = sizeof tmp;
    do tmp[--i] = (char)('0' + v % 10);
    while (v /= 10);
    while (i < (int)sizeof tmp) put(o, (uint8_t)tmp[i++]);
}

/* A JSON string of `s`, re-cased: 'U' upper, 'T' title case (upper after a space or '-', else lower). */
static void put_text(out_buf *o, const uint8_t *s, size_t n, char casing) {
    put(o, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        int upper = casing == 'U' || i == 0 || s[i - 1] == ' ' || s[i - 1] == '-';
        if (upper && c >= 'a' && c <= 'z') c -= 32;
        if (!upper && c >= 'A' && c <= 'Z') c += 32;
        if (c == '"' || c == '\\') put(o, '\\');
        put(o, c);
    }
    put(o, '"');
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static volatile uint32_t spins; /* volatile: the optimizer must keep the planted endless loop */

/* "12", "12.5", "12.50" → cents; 0 if malformed. */
static int parse_cents(const uint8_t *s, size_t n, int64_t *cents) {
    size_t i = 0;
    int64_t whole = 0;
    if (n == 0 || s[0] == '.') return 0;
    for (; i < n && s[i] != '.'; i++) {
        if (!is_digit(s[i])) return 0;
        whole = whole * 10 + (s[i] - '0');
    }
    if (i > 12) __builtin_trap(); /* PLANTED BUG: an "assertion" where a refusal belongs */
    int64_t frac = 0;
    if (i < n) { /* s[i] == '.' */
        size_t j = i + 1;
        int digits = 0;
        while (digits < 2) {
            if (j < n) {
                if (!is_digit(s[j])) return 0;
                frac = frac * 10 + (s[j++] - '0');
                digits++;
            } else if (digits > 0) {
                frac *= 10; /* "12.5" → 50 cents */
                digits++;
            } else {
                spins++; /* PLANTED BUG: nothing after the '.', so nothing ever changes: spins forever */
            }
        }
        if (j < n) return 0; /* more than two decimals */
    }
    *cents = whole * 100 + frac;
    return 1;
}

__attribute__((export_name("transform_record"))) int64_t transform_record(const uint8_t *rec, size_t len) {
    while (len && (rec[len - 1] == '\n' || rec[len - 1] == '\r')) len--;
    const uint8_t *field[4];
    size_t flen[4], nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && rec[i] != ',') continue;
        if (nf == 4) return refuse("expected 4 fields: id,name,city,amount");
        field[nf] = rec + start;
        flen[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 4) return refuse("expected 4 fields: id,name,city,amount");
    int64_t id = 0;
    if (flen[0] == 0 || flen[0] > 9) return refuse("malformed id");
    for (size_t i = 0; i < flen[0]; i++) {
        if (!is_digit(field[0][i])) return refuse("malformed id");
        id = id * 10 + (field[0][i] - '0');
    }
    if (flen[1] == 0) return refuse("empty name");
    for (int f = 1; f <= 2; f++)
        for (size_t i = 0; i < flen[f]; i++)
            if (field[f][i] < 0x20) return refuse("control character in a text field");
    int64_t cents;
    if (!parse_cents(field[3], flen[3], &cents)) return refuse("malformed amount");

    out_buf o = {bump(64 + 2 * (flen[1] + flen[2])), 0};
    if (!o.ptr) return refuse("out of memory");
    put_str(&o, "{\"id\":");
    put_int(&o, id);
    put_str(&o, ",\"name\":");
    put_text(&o, field[1], flen[1], 'T');
    put_str(&o, ",\"city\":");
    put_text(&o, field[2], flen[2], 'U');
    put_str(&o, ",\"cents\":");
    put_int(&o, cents);
    put(&o, '}');
    return pack(o.ptr, o.len);
}
