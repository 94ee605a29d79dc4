/*
 * censor — a text-filter plugin (waPC guest on the lattice C SDK, wasm32-freestanding).
 *
 * `Filter.Apply`: the payload is one line of text; the reply is the same line with every word of the
 * host's word list masked by '*' (ASCII case-insensitive, whole words only).
 *
 * Capabilities: `example:wordlist` `Words.List` → the words, one per line. The host program grants it
 * with `sandbox.grant("example:wordlist", handler)`; without that grant the host call fails and so does
 * the call, with the host's reason.
 */
#include "lattice.h"

static int is_word_char(uint8_t c) {
    uint8_t l = c | 0x20;
    return (l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '\'';
}

static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

static int same_word(lt_slice a, const uint8_t *b, size_t n) {
    if (a.len != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(a.ptr[i]) != lower(b[i])) return 0;
    return 1;
}

/* Is b[0..n) one of the lines of `words`? */
static int listed(lt_slice words, const uint8_t *b, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= words.len; i++) {
        if (i < words.len && words.ptr[i] != '\n') continue;
        if (same_word((lt_slice){words.ptr + start, i - start}, b, n)) return 1;
        start = i + 1;
    }
    return 0;
}

static int apply(lt_slice line, lt_buf *out) {
    lt_slice words;
    if (!lattice_host_call("", "example:wordlist", "Words.List", (lt_slice){0}, &words)) {
        lt_buf msg = {0};
        lt_buf_append_slice(&msg, LT_STR("censor: no word list: "));
        lt_buf_append_slice(&msg, lattice_last_error());
        return lattice_fail(lt_buf_slice(&msg));
    }
    int64_t masked = 0;
    for (size_t i = 0; i < line.len;) {
        if (!is_word_char(line.ptr[i])) {
            lt_buf_append(out, line.ptr + i++, 1);
            continue;
        }
        size_t j = i;
        while (j < line.len && is_word_char(line.ptr[j])) j++;
        if (listed(words, line.ptr + i, j - i)) {
            for (size_t k = i; k < j; k++) lt_buf_append(out, "*", 1);
            masked++;
        } else {
            lt_buf_append(out, line.ptr + i, j - i);
        }
        i = j;
    }
    if (masked) {
        lt_buf note = {0};
        lt_buf_append_slice(&note, LT_STR("masked "));
        lt_buf_append_int(&note, masked);
        lt_buf_append_slice(&note, lt_cstr(masked == 1 ? " word" : " words"));
        lattice_log(lt_buf_slice(&note));
    }
    return 1;
}

void actor_init(void) { lattice_register("Filter.Apply", apply); }
