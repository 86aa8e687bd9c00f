#ifndef QMP_BROKER_CJANSSON_SHIM_H
#define QMP_BROKER_CJANSSON_SHIM_H
#include <jansson.h>

/* Swift cannot see jansson's function-like macros; these wrap what we use. */
static inline int cj_typeof(const json_t *j) { return (int)json_typeof(j); }
static inline int cj_is_object(const json_t *j) { return json_is_object(j); }
static inline int cj_is_array(const json_t *j) { return json_is_array(j); }
static inline int cj_is_string(const json_t *j) { return json_is_string(j); }
static inline int cj_is_integer(const json_t *j) { return json_is_integer(j); }
static inline int cj_is_real(const json_t *j) { return json_is_real(j); }
static inline int cj_is_boolean(const json_t *j) { return json_is_boolean(j); }
static inline json_t *cj_incref(json_t *j) { return json_incref(j); }
static inline void cj_decref(json_t *j) { json_decref(j); }
static inline json_t *cj_true(void) { return json_true(); }
static inline json_t *cj_false(void) { return json_false(); }
static inline json_t *cj_null(void) { return json_null(); }
static inline json_t *cj_boolean(int v) { return json_boolean(v); }
static inline size_t cj_flags_compact(void) { return JSON_COMPACT; }
static inline size_t cj_flags_pretty(void) { return JSON_INDENT(2); }
static inline size_t cj_flag_decode_any(void) { return JSON_DECODE_ANY; }
static inline size_t cj_flag_encode_any(void) { return JSON_ENCODE_ANY; }
#endif
