#ifndef CNICESHIMS_H
#define CNICESHIMS_H
/* C wrappers for what Swift cannot call in GLib/libnice: g_object_set is variadic and
   G_OBJECT is a macro. Every symbol is prefixed CNiceShims_. */

/* GObject property setters for libnice's NiceAgent. `object` is a GObject*; `property` must
   name a property of that type and value type, or GLib logs a critical warning and ignores
   the call. */
void CNiceShims_object_set_bool(void *object, const char *property, int value);
void CNiceShims_object_set_uint(void *object, const char *property, unsigned int value);
void CNiceShims_object_set_string(void *object, const char *property, const char *value);

#endif
