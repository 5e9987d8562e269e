#ifndef CNICESHIMS_H
#define CNICESHIMS_H
/* C wrappers for what Swift cannot call in GLib/libnice: g_object_set is variadic and
   G_OBJECT is a macro; the kernel's receive stamp needs an ioctl. Every symbol is prefixed CNiceShims_. */

/* GObject property setters for libnice's NiceAgent. `object` is a GObject*; `property` must
   name a property of that type and value type, or GLib logs a critical warning and ignores
   the call. */
void CNiceShims_object_set_bool(void *object, const char *property, int value);
void CNiceShims_object_set_uint(void *object, const char *property, unsigned int value);
void CNiceShims_object_set_string(void *object, const char *property, const char *value);

/* The file descriptor of the socket of the component's selected pair (for a relayed pair, the
   socket to the TURN server), or -1. It stays the agent's: valid while the agent lives. */
int CNiceShims_selected_socket_fd(void *agent, unsigned int stream, unsigned int component);

/* How long ago, in ns, the kernel received the datagram last read from UDP socket `fd`
   (SIOCGSTAMPNS), or -1 when it cannot tell (not a socket, a TCP socket, nothing read since the
   first call turned the stamping on). */
long long CNiceShims_receive_age_ns(int fd);

#endif
