// A waPC guest built for wasm32-wasi: reads the file named by its payload and answers its contents,
// or an error naming errno. Used to prove WASI grants nothing unless the manifest grants it.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wapc"), import_name("__guest_request"))) void guest_request(char *op, char *msg);
__attribute__((import_module("wapc"), import_name("__guest_response"))) void guest_response(const char *p, int n);
__attribute__((import_module("wapc"), import_name("__guest_error"))) void guest_error(const char *p, int n);

__attribute__((export_name("__guest_call"))) int guest_call(int op_len, int msg_len) {
    char *op = malloc(op_len + 1), *path = malloc(msg_len + 1), buf[256];
    guest_request(op, path);
    path[msg_len] = 0;
    if (op_len == 5 && memcmp(op, "Write", 5) == 0) {
        FILE *w = fopen(path, "w");
        if (!w) { int n = snprintf(buf, sizeof buf, "cannot write %s: %s", path, strerror(errno)); guest_error(buf, n); return 0; }
        fputs("written", w); fclose(w); guest_response("ok", 2); return 1;
    }
    if (op_len == 3 && memcmp(op, "Env", 3) == 0) {
        const char *v = getenv(path);
        if (!v) { guest_error("unset", 5); return 0; }
        guest_response(v, (int)strlen(v)); return 1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        int n = snprintf(buf, sizeof buf, "cannot open %s: %s", path, strerror(errno));
        guest_error(buf, n);
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    printf("read %zu bytes\n", n);
    fflush(stdout);
    guest_response(buf, (int)n);
    return 1;
}

int main(void) { return 0; }
