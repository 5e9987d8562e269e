#include <xcb/xcb.h>
#include <xcb/shm.h>
