/*
 * json.h — a small validating JSON reader for the todo actor's request bodies (RFC 8259).
 *
 * Reads one object member by member; values are validated (numbers, escapes, nesting up to 32 levels)
 * and strings are decoded into the call arena. On any error `error` says what is wrong, in words fit for
 * a 400 response. Writing JSON needs no help: see lt_buf_append_json_str() in lattice.h.
 */
#ifndef TODO_JSON_H
#define TODO_JSON_H

#include "lattice.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct {
    json_type type;
    lt_slice str; /* the decoded text of a string */
    int boolean;
} json_value;

typedef struct {
    lt_slice text;
    size_t pos;
    int members; /* of the object being read, so far */
    const char *error; /* NULL until something is wrong */
} json_reader;

json_reader json_reader_new(lt_slice text);
/* Expects the text to be one object: consumes its '{'. */
int json_object_begin(json_reader *j);
/* The next member of the object: 1 with its key and value, 0 at the end (check `error`). */
int json_object_next(json_reader *j, lt_slice *key, json_value *value);
/* 1 if nothing but whitespace follows. */
int json_end(json_reader *j);
/* Whether `s` is well-formed UTF-8. */
int utf8_valid(lt_slice s);
/* The number of code points of well-formed UTF-8 `s`. */
size_t utf8_length(lt_slice s);

#endif /* TODO_JSON_H */
