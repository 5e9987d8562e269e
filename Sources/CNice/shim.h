#include <nice/agent.h>
#include <glib.h>
#include <glib-object.h>
