/*
 * todo — a small JSON REST API over wasmcloud:keyvalue.
 *
 *   POST   /todos       {"title": "buy milk", "done": false}  → 201 the new todo {"id":1,"title":...,"done":...}
 *   GET    /todos                                             → 200 [todo, ...] in creation order
 *   GET    /todos/{id}                                        → 200 todo, or 404
 *   DELETE /todos/{id}                                        → 204, or 404
 *
 * A body that is not a JSON object with a non-empty string "title" (at most 200 characters) and an optional
 * boolean "done" is refused with 400 {"error": "..."} saying what is wrong; other paths answer 404, other
 * methods 405. When the store fails the answer is 500 {"error": "<the host's error text>"}.
 *
 * Storage, on the keyvalue link named "todo" (see manifest.yaml; a link of its own lets todo run beside
 * other applications' stores): "todo:next_id" counts ids (KeyValue.Increment), "todo:item:<id>" holds each
 * todo as JSON text, and the list "todo:ids" keeps the ids in creation order.
 */
#include "json.h"

#define MAX_TITLE 200
#define NEXT_ID "todo:next_id"
#define IDS "todo:ids"
#define KV "todo" /* the link name */

static int respond_json(lt_buf *out, uint16_t status, lt_slice json) {
    return lt_http_respond(out, status, LT_STR("application/json"), json);
}

static int respond_error(lt_buf *out, uint16_t status, lt_slice message) {
    lt_buf json = {0};
    lt_buf_append_slice(&json, LT_STR("{\"error\":"));
    lt_buf_append_json_str(&json, message);
    lt_buf_append_slice(&json, LT_STR("}"));
    return respond_json(out, status, lt_buf_slice(&json));
}

static int store_failed(lt_buf *out) { return respond_error(out, 500, lattice_last_error()); }

static lt_slice item_key(lt_slice id) {
    lt_buf key = {0};
    lt_buf_append_slice(&key, LT_STR("todo:item:"));
    lt_buf_append_slice(&key, id);
    return lt_buf_slice(&key);
}

/* ---- POST /todos ------------------------------------------------------------------------------------- */

typedef struct {
    lt_slice title;
    int done;
} todo_input;

/* Validates a create body; on failure returns 0 with `*error` set to a message for the 400 answer. */
static int parse_input(lt_slice body, todo_input *in, lt_slice *error) {
    int has_title = 0;
    lt_slice key;
    json_value v;
    *in = (todo_input){0};
    if (!utf8_valid(body)) return *error = LT_STR("body is not valid UTF-8"), 0;
    json_reader j = json_reader_new(body);
    if (!json_object_begin(&j)) return *error = lt_cstr(j.error), 0;
    while (json_object_next(&j, &key, &v)) {
        if (lt_slice_eq(key, LT_STR("title"))) {
            if (v.type != JSON_STRING) return *error = LT_STR("\"title\" must be a string"), 0;
            in->title = v.str;
            has_title = 1;
        } else if (lt_slice_eq(key, LT_STR("done"))) {
            if (v.type != JSON_BOOL) return *error = LT_STR("\"done\" must be true or false"), 0;
            in->done = v.boolean;
        } else {
            lt_buf text = {0};
            lt_buf_append_slice(&text, LT_STR("unknown field "));
            lt_buf_append_json_str(&text, key);
            lt_buf_append_slice(&text, LT_STR(": a todo has \"title\" and \"done\""));
            return *error = lt_buf_slice(&text), 0;
        }
    }
    if (j.error || !json_end(&j)) return *error = lt_cstr(j.error), 0;
    if (!has_title) return *error = LT_STR("\"title\" is required"), 0;
    int blank = 1;
    for (size_t i = 0; i < in->title.len; i++) blank &= in->title.ptr[i] == ' ' || in->title.ptr[i] == '\t';
    if (blank) return *error = LT_STR("\"title\" must not be empty"), 0;
    if (utf8_length(in->title) > MAX_TITLE) return *error = LT_STR("\"title\" must be at most 200 characters"), 0;
    return 1;
}

static int create(lt_slice body, lt_buf *out) {
    todo_input in;
    lt_slice error;
    int32_t n;
    uint32_t count;
    if (!parse_input(body, &in, &error)) return respond_error(out, 400, error);
    if (!lt_kv_increment(KV, LT_STR(NEXT_ID), 1, &n)) return store_failed(out);
    lt_buf id = {0}, json = {0};
    lt_buf_append_int(&id, n);
    lt_buf_append_slice(&json, LT_STR("{\"id\":"));
    lt_buf_append_int(&json, n);
    lt_buf_append_slice(&json, LT_STR(",\"title\":"));
    lt_buf_append_json_str(&json, in.title);
    lt_buf_append_slice(&json, in.done ? LT_STR(",\"done\":true}") : LT_STR(",\"done\":false}"));
    if (!lt_kv_set(KV, item_key(lt_buf_slice(&id)), lt_buf_slice(&json), 0)) return store_failed(out);
    if (!lt_kv_list_add(KV, LT_STR(IDS), lt_buf_slice(&id), &count)) return store_failed(out);
    return respond_json(out, 201, lt_buf_slice(&json));
}

/* ---- GET /todos, GET and DELETE /todos/{id} ---------------------------------------------------------- */

static int list(lt_buf *out) {
    lt_strings ids;
    if (!lt_kv_list_range(KV, LT_STR(IDS), 0, -1, &ids)) return store_failed(out);
    lt_buf json = {0};
    lt_buf_append_slice(&json, LT_STR("["));
    int first = 1;
    for (size_t i = 0; i < ids.len; i++) {
        lt_slice item;
        int exists;
        if (!lt_kv_get(KV, item_key(ids.items[i]), &item, &exists)) return store_failed(out);
        if (!exists) continue; /* deleted between the two calls */
        if (!first) lt_buf_append_slice(&json, LT_STR(","));
        lt_buf_append_slice(&json, item);
        first = 0;
    }
    lt_buf_append_slice(&json, LT_STR("]"));
    return respond_json(out, 200, lt_buf_slice(&json));
}

static int not_found(lt_buf *out, lt_slice id) {
    lt_buf text = {0};
    lt_buf_append_slice(&text, LT_STR("no todo with id "));
    lt_buf_append_slice(&text, id);
    return respond_error(out, 404, lt_buf_slice(&text));
}

static int get_one(lt_buf *out, lt_slice id) {
    lt_slice item;
    int exists;
    if (!lt_kv_get(KV, item_key(id), &item, &exists)) return store_failed(out);
    return exists ? respond_json(out, 200, item) : not_found(out, id);
}

static int delete_one(lt_buf *out, lt_slice id) {
    int existed, listed;
    if (!lt_kv_del(KV, item_key(id), &existed)) return store_failed(out);
    if (!existed) return not_found(out, id);
    if (!lt_kv_list_del(KV, LT_STR(IDS), id, &listed)) return store_failed(out);
    return lt_http_respond(out, 204, LT_STR("application/json"), LT_STR(""));
}

/* ---- routing ----------------------------------------------------------------------------------------- */

static int starts_with(lt_slice s, lt_slice prefix) {
    return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

/* An id is 1 to 9 digits without a leading zero, so it always names a key this actor could have made. */
static int is_id(lt_slice s) {
    if (s.len == 0 || s.len > 9 || s.ptr[0] == '0') return 0;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return 0;
    return 1;
}

static int method_not_allowed(lt_buf *out) { return respond_error(out, 405, LT_STR("method not allowed")); }

static int handle_request(lt_slice msg, lt_buf *out) {
    lt_http_request req;
    if (!lt_http_parse_request(msg, &req)) return lattice_fail(LT_STR("todo: malformed HttpRequest"));
    lt_slice path = req.path;
    if (path.len > 1 && path.ptr[path.len - 1] == '/') path.len--;
    int get = lt_slice_eq(req.method, LT_STR("GET")), post = lt_slice_eq(req.method, LT_STR("POST"));
    if (lt_slice_eq(path, LT_STR("/todos"))) {
        if (get) return list(out);
        if (post) return create(req.body, out);
        return method_not_allowed(out);
    }
    if (starts_with(path, LT_STR("/todos/"))) {
        lt_slice id = {path.ptr + 7, path.len - 7};
        if (!is_id(id)) return not_found(out, id);
        if (get) return get_one(out, id);
        if (lt_slice_eq(req.method, LT_STR("DELETE"))) return delete_one(out, id);
        return method_not_allowed(out);
    }
    return respond_error(out, 404, LT_STR("not found: try GET /todos"));
}

void actor_init(void) { lattice_register("HttpServer.HandleRequest", handle_request); }
