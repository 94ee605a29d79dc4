/*
 * json.c — the reader declared in json.h. Recursive descent with a depth limit; no allocation except the
 * decoded strings, which live in the call arena like everything else an actor allocates.
 */
#include "json.h"

#define MAX_DEPTH 32

static int fail(json_reader *j, const char *error) {
    if (!j->error) j->error = error;
    return 0;
}

static int at_end(const json_reader *j) { return j->pos >= j->text.len; }
static uint8_t peek(const json_reader *j) { return at_end(j) ? 0 : j->text.ptr[j->pos]; }

static void skip_ws(json_reader *j) {
    while (!at_end(j) && (peek(j) == ' ' || peek(j) == '\t' || peek(j) == '\n' || peek(j) == '\r')) j->pos++;
}

static int expect(json_reader *j, uint8_t c, const char *error) {
    skip_ws(j);
    if (peek(j) != c) return fail(j, error);
    j->pos++;
    return 1;
}

static int literal(json_reader *j, const char *word) {
    lt_slice w = lt_cstr(word);
    if (j->text.len - j->pos < w.len || memcmp(j->text.ptr + j->pos, w.ptr, w.len) != 0)
        return fail(j, "body is not valid JSON");
    j->pos += w.len;
    return 1;
}

static int digits(json_reader *j) {
    size_t start = j->pos;
    while (peek(j) >= '0' && peek(j) <= '9') j->pos++;
    return j->pos > start;
}

static int number(json_reader *j) {
    if (peek(j) == '-') j->pos++;
    if (peek(j) == '0') j->pos++;
    else if (!digits(j)) return fail(j, "body is not valid JSON");
    if (peek(j) == '.' && (j->pos++, !digits(j))) return fail(j, "body is not valid JSON");
    if (peek(j) == 'e' || peek(j) == 'E') {
        j->pos++;
        if (peek(j) == '+' || peek(j) == '-') j->pos++;
        if (!digits(j)) return fail(j, "body is not valid JSON");
    }
    return 1;
}

static int hex4(json_reader *j, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++, j->pos++) {
        uint8_t c = peek(j);
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (at_end(j) || d < 0) return fail(j, "body is not valid JSON: bad \\u escape");
        *v = *v << 4 | (uint32_t)d;
    }
    return 1;
}

static void put_utf8(lt_buf *b, uint32_t cp) {
    uint8_t tmp[4];
    size_t n;
    if (cp < 0x80) tmp[0] = (uint8_t)cp, n = 1;
    else if (cp < 0x800) tmp[0] = (uint8_t)(0xc0 | cp >> 6), tmp[1] = (uint8_t)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        tmp[0] = (uint8_t)(0xe0 | cp >> 12), tmp[1] = (uint8_t)(0x80 | (cp >> 6 & 63)),
        tmp[2] = (uint8_t)(0x80 | (cp & 63)), n = 3;
    else
        tmp[0] = (uint8_t)(0xf0 | cp >> 18), tmp[1] = (uint8_t)(0x80 | (cp >> 12 & 63)),
        tmp[2] = (uint8_t)(0x80 | (cp >> 6 & 63)), tmp[3] = (uint8_t)(0x80 | (cp & 63)), n = 4;
    lt_buf_append(b, tmp, n);
}

/* A \uXXXX escape (the "\u" consumed), joining a surrogate pair into one code point. */
static int unicode_escape(json_reader *j, lt_buf *out) {
    uint32_t cp, low;
    if (!hex4(j, &cp)) return 0;
    if (cp >= 0xdc00 && cp <= 0xdfff) return fail(j, "body is not valid JSON: lone surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        int escaped = j->text.len - j->pos >= 2 && j->text.ptr[j->pos] == '\\' && j->text.ptr[j->pos + 1] == 'u';
        if (!escaped || (j->pos += 2, !hex4(j, &low)) || low < 0xdc00 || low > 0xdfff)
            return fail(j, "body is not valid JSON: lone surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    put_utf8(out, cp);
    return 1;
}

/* A string (the opening quote consumed), decoded into `out`. */
static int string(json_reader *j, lt_buf *out) {
    for (;;) {
        if (at_end(j)) return fail(j, "body is not valid JSON: unterminated string");
        uint8_t c = j->text.ptr[j->pos++];
        if (c == '"') return 1;
        if (c < 0x20) return fail(j, "body is not valid JSON: control character in a string");
        if (c != '\\') {
            lt_buf_append(out, &c, 1);
            continue;
        }
        uint8_t e = peek(j);
        j->pos++;
        const char *simple = e == '"' ? "\"" : e == '\\' ? "\\" : e == '/' ? "/" : e == 'b' ? "\b" : e == 'f' ? "\f"
                           : e == 'n' ? "\n" : e == 'r' ? "\r" : e == 't' ? "\t" : 0;
        if (simple) lt_buf_append(out, simple, 1);
        else if (e != 'u' || !unicode_escape(j, out)) return fail(j, "body is not valid JSON: bad escape");
    }
}

static int value(json_reader *j, json_value *v, int depth);

/* The rest of an array or object after its opening bracket, values validated and dropped. */
static int container(json_reader *j, uint8_t close, int depth) {
    json_value ignored;
    lt_buf key = {0};
    if (depth > MAX_DEPTH) return fail(j, "body is nested too deeply");
    skip_ws(j);
    if (peek(j) == close) return j->pos++, 1;
    for (;;) {
        if (close == '}') {
            if (!expect(j, '"', "body is not valid JSON: expected a member name") || !string(j, &key)) return 0;
            if (!expect(j, ':', "body is not valid JSON: expected ':'")) return 0;
        }
        if (!value(j, &ignored, depth)) return 0;
        skip_ws(j);
        if (peek(j) == close) return j->pos++, 1;
        if (!expect(j, ',', "body is not valid JSON: expected ',' or the end of a list")) return 0;
    }
}

static int value(json_reader *j, json_value *v, int depth) {
    lt_buf s = {0};
    skip_ws(j);
    *v = (json_value){0};
    switch (peek(j)) {
    case '"':
        j->pos++;
        v->type = JSON_STRING;
        if (!string(j, &s)) return 0;
        v->str = lt_buf_slice(&s);
        return 1;
    case '{': j->pos++; v->type = JSON_OBJECT; return container(j, '}', depth + 1);
    case '[': j->pos++; v->type = JSON_ARRAY; return container(j, ']', depth + 1);
    case 't': v->type = JSON_BOOL; v->boolean = 1; return literal(j, "true");
    case 'f': v->type = JSON_BOOL; return literal(j, "false");
    case 'n': v->type = JSON_NULL; return literal(j, "null");
    default: v->type = JSON_NUMBER; return number(j);
    }
}

json_reader json_reader_new(lt_slice text) { return (json_reader){text, 0, 0, 0}; }

int json_object_begin(json_reader *j) { return expect(j, '{', "body must be a JSON object"); }

int json_object_next(json_reader *j, lt_slice *key, json_value *v) {
    lt_buf k = {0};
    if (j->error) return 0;
    skip_ws(j);
    if (peek(j) == '}') return j->pos++, 0;
    if (j->members && !expect(j, ',', "body is not valid JSON: expected ',' or '}'")) return 0;
    if (!expect(j, '"', "body is not valid JSON: expected a member name") || !string(j, &k)) return 0;
    if (!expect(j, ':', "body is not valid JSON: expected ':'") || !value(j, v, 1)) return 0;
    j->members++;
    *key = lt_buf_slice(&k);
    return 1;
}

int json_end(json_reader *j) {
    skip_ws(j);
    return at_end(j) || fail(j, "body is not valid JSON: text after the object");
}

int utf8_valid(lt_slice s) {
    for (size_t i = 0; i < s.len;) {
        uint8_t c = s.ptr[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!n || n > s.len - i || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4)) return 0;
        uint32_t cp = n == 1 ? c : c & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s.ptr[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s.ptr[i + k] & 63);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += n;
    }
    return 1;
}

size_t utf8_length(lt_slice s) {
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) n += (s.ptr[i] & 0xc0) != 0x80;
    return n;
}
