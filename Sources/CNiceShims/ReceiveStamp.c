#include "CNiceShims.h"
#include <nice/agent.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <time.h>

int CNiceShims_selected_socket_fd(void *agent, unsigned int stream, unsigned int component) {
    GSocket *socket = nice_agent_get_selected_socket((NiceAgent *)agent, stream, component);
    if (socket == NULL) return -1;
    int fd = g_socket_get_fd(socket);
    g_object_unref(socket);
    return fd;
}

long long CNiceShims_receive_age_ns(int fd) {
    struct timespec stamp, now;
    /* socket(7): SIOCGSTAMPNS is the kernel's receive time (CLOCK_REALTIME) of the last
       datagram read from the socket; the first call turns the stamping on. */
    if (fd < 0 || ioctl(fd, SIOCGSTAMPNS, &stamp) != 0) return -1;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return -1;
    return (long long)(now.tv_sec - stamp.tv_sec) * 1000000000LL + (now.tv_nsec - stamp.tv_nsec);
}
