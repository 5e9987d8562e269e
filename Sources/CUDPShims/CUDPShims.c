#define _GNU_SOURCE
#include "CUDPShims.h"
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#ifdef __linux__
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <netinet/udp.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* A batch is at most this many datagrams (the engine's read vector). */
#define CUDPSHIMS_MAX_BATCH 64

/* The system calls of the data path go through syscall(2), not glibc's wrappers: recvmmsg,
   sendmsg, sendmmsg and epoll_wait are POSIX cancellation points, and each wrapper switches
   asynchronous cancellation on and off around the call (about 3% of the engine's CPU in perf
   at 80,000 packets/s). The engine's threads are never cancelled. */
#include <sys/syscall.h>

/* Each engine thread receives into one array of datagrams (its own); its message headers are
   built once and only the fields the kernel overwrites are reset per call (a memset of 32
   headers per call was about 1.5%). */
static __thread struct mmsghdr receive_headers[CUDPSHIMS_MAX_BATCH];
static __thread CUDPShims_datagram *receive_headers_for;
static __thread unsigned int receive_headers_count;

int CUDPShims_receive(int fd, CUDPShims_datagram *datagrams, unsigned int count) {
    struct mmsghdr *headers = receive_headers;
    if (count > CUDPSHIMS_MAX_BATCH) count = CUDPSHIMS_MAX_BATCH;
    if (receive_headers_for != datagrams || receive_headers_count < count) {
        for (unsigned int i = 0; i < count; i++) {
            memset(&headers[i], 0, sizeof headers[i]);
            headers[i].msg_hdr.msg_iov = &datagrams[i].iov;
            headers[i].msg_hdr.msg_iovlen = 1;
            headers[i].msg_hdr.msg_name = &datagrams[i].address;
        }
        receive_headers_for = datagrams;
        receive_headers_count = count;
    }
    /* The kernel writes the sender's length into msg_namelen: give every slot its room back. */
    for (unsigned int i = 0; i < count; i++) headers[i].msg_hdr.msg_namelen = sizeof datagrams[i].address;
    long received = syscall(SYS_recvmmsg, fd, headers, count, MSG_DONTWAIT, NULL);
    if (received < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (long i = 0; i < received; i++) {
        datagrams[i].length = headers[i].msg_len;
        datagrams[i].address_length = headers[i].msg_hdr.msg_namelen;
        datagrams[i].flags = headers[i].msg_hdr.msg_flags;
    }
    return (int)received;
}

int CUDPShims_send_each(int fd, const struct iovec *iov, unsigned int count, const struct sockaddr *to, socklen_t to_length) {
    struct mmsghdr headers[CUDPSHIMS_MAX_BATCH];
    if (count > CUDPSHIMS_MAX_BATCH) count = CUDPSHIMS_MAX_BATCH;
    for (unsigned int i = 0; i < count; i++) {
        memset(&headers[i], 0, sizeof headers[i]);
        headers[i].msg_hdr.msg_iov = (struct iovec *)&iov[i];
        headers[i].msg_hdr.msg_iovlen = 1;
        headers[i].msg_hdr.msg_name = (void *)to;
        headers[i].msg_hdr.msg_namelen = to ? to_length : 0;
    }
    return (int)syscall(SYS_sendmmsg, fd, headers, count, MSG_DONTWAIT);
}

ssize_t CUDPShims_send_segmented(int fd, const struct iovec *iov, unsigned int count, uint16_t segment_size,
                                 const struct sockaddr *to, socklen_t to_length) {
    char control[CMSG_SPACE(sizeof(uint16_t))];
    memset(control, 0, sizeof control);
    struct msghdr header;
    memset(&header, 0, sizeof header);
    header.msg_iov = (struct iovec *)iov;
    header.msg_iovlen = count;
    header.msg_name = (void *)to;
    header.msg_namelen = to ? to_length : 0;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header);
    cmsg->cmsg_level = SOL_UDP;
    cmsg->cmsg_type = UDP_SEGMENT;
    cmsg->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(cmsg), &segment_size, sizeof segment_size);
    return (ssize_t)syscall(SYS_sendmsg, fd, &header, MSG_DONTWAIT);
}

int CUDPShims_bound_socket(const struct sockaddr *address, socklen_t length, int buffer_bytes, int reuse_port,
                           const struct sockaddr *connect_to, socklen_t connect_length) {
    int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    if ((reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        (address->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes) < 0 ||
        bind(fd, address, length) < 0 ||
        (connect_to && connect(fd, connect_to, connect_length) < 0)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int CUDPShims_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int CUDPShims_epoll_add(int epoll, int fd, uint64_t token) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = EPOLLIN;
    event.data.u64 = token;
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int CUDPShims_epoll_remove(int epoll, int fd) { return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL); }

int CUDPShims_epoll_wait(int epoll, uint64_t *tokens, int capacity, int timeout_ms) {
    struct epoll_event events[CUDPSHIMS_MAX_BATCH];
    if (capacity > CUDPSHIMS_MAX_BATCH) capacity = CUDPSHIMS_MAX_BATCH;
    /* epoll_pwait with no mask is epoll_wait (which arm64 lacks as a system call). */
    int ready = (int)syscall(SYS_epoll_pwait, epoll, events, capacity, timeout_ms, NULL, 0);
    for (int i = 0; i < ready; i++) tokens[i] = events[i].data.u64;
    return ready;
}

int CUDPShims_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void CUDPShims_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t written = write(fd, &one, sizeof one);
    (void)written; /* EAGAIN: the counter is already non-zero, the loop wakes anyway. */
}

void CUDPShims_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t got = read(fd, &value, sizeof value);
    (void)got;
}

int CUDPShims_thread_adopt_process_niceness(void) {
    /* PRIO_PROCESS with the process id names the main thread; -1 is a valid niceness, so errno
       tells a failure. */
    errno = 0;
    int main_niceness = getpriority(PRIO_PROCESS, (id_t)getpid());
    if (main_niceness == -1 && errno != 0) return -1;
    pid_t self = gettid();
    errno = 0;
    int own = getpriority(PRIO_PROCESS, (id_t)self);
    if (own == -1 && errno != 0) return -1;
    if (own == main_niceness) return 0;
    return setpriority(PRIO_PROCESS, (id_t)self, main_niceness);
}

void CUDPShims_thread_set_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, sizeof short_name - 1);
    short_name[sizeof short_name - 1] = 0;
    pthread_setname_np(pthread_self(), short_name);
}

#else
int CUDPShims_thread_adopt_process_niceness(void) { errno = ENOSYS; return -1; }
void CUDPShims_thread_set_name(const char *name) { (void)name; }
int CUDPShims_receive(int fd, CUDPShims_datagram *d, unsigned int c) { (void)fd; (void)d; (void)c; errno = ENOSYS; return -1; }
int CUDPShims_send_each(int fd, const struct iovec *i, unsigned int c, const struct sockaddr *t, socklen_t tl) { (void)fd; (void)i; (void)c; (void)t; (void)tl; errno = ENOSYS; return -1; }
ssize_t CUDPShims_send_segmented(int fd, const struct iovec *i, unsigned int c, uint16_t s, const struct sockaddr *t, socklen_t tl) { (void)fd; (void)i; (void)c; (void)s; (void)t; (void)tl; errno = ENOSYS; return -1; }
int CUDPShims_bound_socket(const struct sockaddr *a, socklen_t l, int b, int r, const struct sockaddr *t, socklen_t tl) { (void)a; (void)l; (void)b; (void)r; (void)t; (void)tl; errno = ENOSYS; return -1; }
int CUDPShims_epoll_create(void) { errno = ENOSYS; return -1; }
int CUDPShims_epoll_add(int e, int f, uint64_t t) { (void)e; (void)f; (void)t; errno = ENOSYS; return -1; }
int CUDPShims_epoll_remove(int e, int f) { (void)e; (void)f; errno = ENOSYS; return -1; }
int CUDPShims_epoll_wait(int e, uint64_t *t, int c, int m) { (void)e; (void)t; (void)c; (void)m; errno = ENOSYS; return -1; }
int CUDPShims_eventfd(void) { errno = ENOSYS; return -1; }
void CUDPShims_eventfd_signal(int fd) { (void)fd; }
void CUDPShims_eventfd_drain(int fd) { (void)fd; }
#endif

uint64_t CUDPShims_monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}
