#include "CNiceShims.h"
#include <glib-object.h>

void CNiceShims_object_set_bool(void *object, const char *property, int value) {
    g_object_set(G_OBJECT(object), property, (gboolean)(value != 0), NULL);
}

void CNiceShims_object_set_uint(void *object, const char *property, unsigned int value) {
    g_object_set(G_OBJECT(object), property, (guint)value, NULL);
}

void CNiceShims_object_set_string(void *object, const char *property, const char *value) {
    g_object_set(G_OBJECT(object), property, value, NULL);
}
