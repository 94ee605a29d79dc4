/*
 * snoop — a text-filter plugin that tries to read files (waPC guest over WASI, wasm32-wasi + wasi-libc).
 *
 * `Filter.Apply`: the payload is one line of text; snoop tries to read /secrets/token.txt and append it
 * to the line. The host preopens no directory unless the program grants one (SPEC §1), so by default the
 * open fails inside the guest and the call fails with "cannot open /secrets/token.txt: ...".
 * Probes, for the tests of WASI grants: `File.Read` (payload: a path) → its contents; `File.Write`
 * (payload: "path\ncontent") → "wrote N bytes"; `Env.Get` (payload: a name) → its value.
 *
 * This is not built on actors/sdk: wasi-libc brings its own malloc and memcpy, and the SDK its own arena.
 * Built as a WASI reactor: the host never runs `_initialize` for a waPC guest, which is fine here since
 * wasi-libc finds preopens and the environment lazily and snoop has no constructors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAPC(name) __attribute__((import_module("wapc"), import_name(#name)))
WAPC(__guest_request) void wapc_guest_request(uint8_t *op, uint8_t *msg);
WAPC(__guest_response) void wapc_guest_response(const uint8_t *ptr, size_t len);
WAPC(__guest_error) void wapc_guest_error(const uint8_t *ptr, size_t len);

static char reply[4096];

static int respond(size_t len) {
    wapc_guest_response((const uint8_t *)reply, len);
    return 1;
}

static int fail_with(const char *what, const char *path, const char *reason) {
    int n = snprintf(reply, sizeof reply, "snoop: cannot %s %s: %s", what, path, reason);
    wapc_guest_error((const uint8_t *)reply, (size_t)n);
    return 0;
}

static int fail(const char *what, const char *path) { return fail_with(what, path, strerror(errno)); }

/* Reads up to `cap` bytes of `path` into `buf`; returns the length, or -1 with errno set. */
static long read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

static int filter_apply(const char *line) {
    static const char secret[] = "/secrets/token.txt";
    fprintf(stderr, "snoop: reading %s\n", secret);
    char token[256];
    long n = read_file(secret, token, sizeof token - 1);
    if (n < 0) return fail("open", secret);
    while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r')) n--;
    token[n] = 0;
    return respond((size_t)snprintf(reply, sizeof reply, "%s [token: %s]", line, token));
}

static int file_read(const char *path) {
    long n = read_file(path, reply, sizeof reply);
    return n < 0 ? fail("open", path) : respond((size_t)n);
}

static int file_write(char *msg) {
    char *content = strchr(msg, '\n');
    if (!content) return fail("parse", "(File.Write wants \"path\\ncontent\")");
    *content++ = 0;
    FILE *f = fopen(msg, "w");
    if (!f) return fail("open for writing", msg);
    size_t n = fwrite(content, 1, strlen(content), f);
    if (fclose(f) != 0) return fail("write", msg);
    return respond((size_t)snprintf(reply, sizeof reply, "wrote %zu bytes", n));
}

static int env_get(const char *name) {
    const char *value = getenv(name);
    if (!value) return fail_with("read environment variable", name, "not set");
    return respond((size_t)snprintf(reply, sizeof reply, "%s", value));
}

__attribute__((export_name("__guest_call"))) int32_t guest_call(size_t op_len, size_t msg_len) {
    char *op = malloc(op_len + 1), *msg = malloc(msg_len + 1);
    if (!op || !msg) {
        free(op);
        free(msg);
        static const char oom[] = "snoop: out of memory";
        wapc_guest_error((const uint8_t *)oom, sizeof oom - 1);
        return 0;
    }
    wapc_guest_request((uint8_t *)op, (uint8_t *)msg);
    op[op_len] = msg[msg_len] = 0;
    int ok;
    if (strcmp(op, "Filter.Apply") == 0)
        ok = filter_apply(msg);
    else if (strcmp(op, "File.Read") == 0)
        ok = file_read(msg);
    else if (strcmp(op, "File.Write") == 0)
        ok = file_write(msg);
    else if (strcmp(op, "Env.Get") == 0)
        ok = env_get(msg);
    else
        ok = fail_with("handle operation", op, "unknown operation");
    free(op);
    free(msg);
    return ok;
}
