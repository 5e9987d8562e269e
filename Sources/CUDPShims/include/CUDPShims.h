#ifndef CUDPSHIMS_H
#define CUDPSHIMS_H
/* The Linux UDP and epoll calls the TURN relay engine uses (TURNServer/Engine/), which
   Swift's Glibc module does not show: recvmmsg/sendmmsg need _GNU_SOURCE, epoll and eventfd
   are not in it, and a UDP_SEGMENT control message is built with CMSG_* macros. Every
   symbol is prefixed CUDPShims_. On other systems every call fails with ENOSYS. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* One datagram of a batch: where its bytes are and, filled in by a receive, its length,
   its sender (a sockaddr_in or sockaddr_in6 in `address`) and flags. */
typedef struct {
    struct iovec iov;
    struct sockaddr_storage address;
    socklen_t address_length;
    unsigned int length;
    int flags;
} CUDPShims_datagram;

/* recvmmsg(2) of at most `count` datagrams without waiting; returns how many arrived
   (0 when none was queued) or -1 with errno. Every slot's iov says where its bytes go. */
int CUDPShims_receive(int fd, CUDPShims_datagram *datagrams, unsigned int count);

/* Sends `count` datagrams with sendmmsg(2), one per iovec, to `to` (NULL on a connected
   socket); returns how many left or -1 with errno. */
int CUDPShims_send_each(int fd, const struct iovec *iov, unsigned int count, const struct sockaddr *to, socklen_t to_length);

/* Sends the concatenation of `count` iovecs as one UDP GSO write (UDP_SEGMENT, Linux 4.18+)
   cut into datagrams of `segment_size` bytes (the last may be shorter), to `to` (NULL on a
   connected socket); returns the bytes sent or -1 with errno. */
ssize_t CUDPShims_send_segmented(int fd, const struct iovec *iov, unsigned int count, uint16_t segment_size,
                                 const struct sockaddr *to, socklen_t to_length);

/* A UDP socket of the family of `address`, non-blocking and close-on-exec, with the given
   buffer sizes, bound to `address` (IPV6_V6ONLY for IPv6), with SO_REUSEADDR and SO_REUSEPORT
   when `reuse_port` is 1 and, when `connect_to` is not NULL, connected to it; -1 with errno. */
int CUDPShims_bound_socket(const struct sockaddr *address, socklen_t length, int buffer_bytes, int reuse_port,
                           const struct sockaddr *connect_to, socklen_t connect_length);

/* epoll and eventfd, for the engine's own loop. */
int CUDPShims_epoll_create(void);
/* Watches `fd` for input (level-triggered), with `token` handed back by wait. */
int CUDPShims_epoll_add(int epoll, int fd, uint64_t token);
int CUDPShims_epoll_remove(int epoll, int fd);
/* Waits up to `timeout_ms` (-1: forever); fills `tokens`, returns how many or -1 with errno. */
int CUDPShims_epoll_wait(int epoll, uint64_t *tokens, int capacity, int timeout_ms);
int CUDPShims_eventfd(void);
/* Adds 1 to the counter (wakes the loop) / reads and clears it. */
void CUDPShims_eventfd_signal(int fd);
void CUDPShims_eventfd_drain(int fd);
/* Gives the calling thread the niceness of the process's main thread (setpriority(2) works per
   thread on Linux). Threads inherit niceness from the thread that creates them, and the Swift
   runtime's worker threads set their own by quality of service, so a thread created from one of
   them loses what the process was started with (`nice -n -10`, systemd `Nice=`). Returns 0, or
   -1 with errno (EACCES/EPERM: the process may not raise its threads' priority). */
int CUDPShims_thread_adopt_process_niceness(void);
/* Names the calling thread (at most 15 bytes are kept), as `ps -L`, perf and /proc show it. */
void CUDPShims_thread_set_name(const char *name);
/* CLOCK_MONOTONIC in nanoseconds: the clock NIODeadline counts on. */
uint64_t CUDPShims_monotonic_nanoseconds(void);

#endif
