#ifndef CMESHSHIMS_H
#define CMESHSHIMS_H
/* C wrappers for what Swift cannot call directly: function-like macros and
   variadic functions of our C libraries. Every symbol is prefixed CMeshShims_. */
#include <stddef.h>

/* Creates a self-signed ECDSA P-256 certificate (CN = common_name, valid for
   `days`) and returns it and its private key as PEM strings allocated with
   malloc; the caller frees both. Returns 0 on success, -1 on failure. */
int CMeshShims_self_signed_pem(const char *common_name, int days,
                               char **cert_pem, char **key_pem);

/* GObject property setters for libnice's NiceAgent (g_object_set is variadic).
   `object` is a GObject*; `property` must name a property of that type and
   value type, or GLib logs a critical warning and ignores the call. */
void CMeshShims_object_set_bool(void *object, const char *property, int value);
void CMeshShims_object_set_uint(void *object, const char *property, unsigned int value);
void CMeshShims_object_set_string(void *object, const char *property, const char *value);

#endif
