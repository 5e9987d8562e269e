/*
 * loadgen: a small TURN/STUN load generator for meshnode's benchmark (bench/run).
 *
 * Modes (each prints one JSON object on stdout; diagnostics go to stderr):
 *
 *   loadgen echo    --bind IP:PORT [--duration S]
 *       UDP echo peer: returns every datagram to its source.
 *
 *   loadgen ping    --server IP:PORT [--timeout S]
 *       Exit 0 once the server answers one STUN Binding request (readiness probe).
 *
 *   loadgen binding --server IP:PORT [--duration S] [--sockets K] [--window W] [--server-pid PID]
 *       Keeps W Binding requests in flight on each of K sockets for S seconds and counts the
 *       answered requests per second.
 *
 *   loadgen relay   --server IP:PORT --peer IP:PORT [--user U --pass P] [--allocs N]
 *                   [--rate R] [--size B] [--duration S] [--drain MS] [--server-pid PID]
 *                   [--direct | --paired]
 *       Makes N TURN allocations over UDP (long-term credentials, RFC 8489 §9.2), installs a
 *       permission and binds a channel to the echo peer on each, then sends R ChannelData
 *       messages per second in total (B payload bytes each) round-robin over the allocations for
 *       S seconds. Each payload carries a sequence number and a send timestamp; the echo comes
 *       back through the relay, and the kernel receive timestamp gives the round trip.
 *       --direct skips TURN and sends the same payloads straight to the echo peer: the baseline
 *       round trip that the relay's added latency is measured against. --paired does both at
 *       once: every payload goes through the relay and, in the same tick, straight to the peer,
 *       and both round-trip distributions are reported (direct_rtt_*).
 *
 * --server-pid PID: utime+stime of that process (all its threads) is read from /proc/PID/stat
 * just before the first packet and after the last answer, and reported as server_cpu_s.
 *
 * Every loop is bounded by a count and by a deadline.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKS 64
#define BATCH 64
#define MAX_PKT 2048
#define HIST_US 200000 /* RTT histogram: 1 µs buckets up to 200 ms, then one overflow bucket */
#define STUN_COOKIE 0x2112A442u
#define PAYLOAD_MAGIC 0x4d4e4231u /* "MNB1" */
#define CHANNEL 0x4000

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(2);
}

static void fail(const char *msg) {
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* utime+stime of a whole process in seconds, or -1. Fields 14 and 15 of /proc/PID/stat,
 * counted after the ")" that closes the command name (which may contain spaces). */
static double proc_cpu_s(int pid) {
    if (pid <= 0) return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static struct sockaddr_in parse_addr(const char *s) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) fail("address must be IPv4:PORT");
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) fail("bad IPv4 address");
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535) fail("bad port");
    a.sin_port = htons((uint16_t)port);
    /* Loopback only: this tool must never load a real network. */
    if ((ntohl(a.sin_addr.s_addr) >> 24) != 127) fail("only 127.0.0.0/8 addresses are allowed");
    return a;
}

static void set_bufs(int fd) {
    int sz = 4 << 20;
    /* SO_*BUFFORCE passes rmem_max when we are allowed to; otherwise take what the limit gives. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);   /* count our own socket's drops */
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one); /* kernel receive time for RTTs */
}

static int udp_socket(const struct sockaddr_in *bind_to, const struct sockaddr_in *connect_to) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    set_bufs(fd);
    if (bind_to && bind(fd, (const struct sockaddr *)bind_to, sizeof *bind_to) < 0) die("bind");
    if (connect_to && connect(fd, (const struct sockaddr *)connect_to, sizeof *connect_to) < 0) die("connect");
    return fd;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

/* ---------- STUN messages (RFC 8489) ---------- */

typedef struct {
    uint8_t b[MAX_PKT];
    size_t len;
} msg_t;

static uint64_t tid_counter;

static void stun_begin(msg_t *m, uint16_t type) {
    put16(m->b, type);
    put16(m->b + 2, 0);
    put32(m->b + 4, STUN_COOKIE);
    uint32_t pid = (uint32_t)getpid();
    uint64_t c = ++tid_counter ^ ((uint64_t)real_ns() << 20);
    memcpy(m->b + 8, &pid, 4);
    memcpy(m->b + 12, &c, 8);
    m->len = 20;
}

static void stun_attr(msg_t *m, uint16_t type, const void *val, size_t n) {
    size_t padded = (n + 3) & ~(size_t)3;
    if (m->len + 4 + padded > sizeof m->b) fail("STUN message too long");
    put16(m->b + m->len, type);
    put16(m->b + m->len + 2, (uint16_t)n);
    memcpy(m->b + m->len + 4, val, n);
    memset(m->b + m->len + 4 + n, 0, padded - n);
    m->len += 4 + padded;
    put16(m->b + 2, (uint16_t)(m->len - 20));
}

static void stun_xor_addr(msg_t *m, uint16_t type, const struct sockaddr_in *a) {
    uint8_t v[8] = {0, 1};
    put16(v + 2, (uint16_t)(ntohs(a->sin_port) ^ (STUN_COOKIE >> 16)));
    put32(v + 4, ntohl(a->sin_addr.s_addr) ^ STUN_COOKIE);
    stun_attr(m, type, v, sizeof v);
}

/* MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to the attribute, with the length field
 * already counting the attribute (RFC 8489 §14.5). */
static void stun_integrity(msg_t *m, const uint8_t key[16]) {
    uint8_t zero[20] = {0};
    size_t at = m->len;
    stun_attr(m, 0x0008, zero, 20);
    size_t outl = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, key, 16, m->b, at, m->b + at + 4, 20, &outl) || outl != 20)
        fail("HMAC-SHA1 failed");
}

/* Finds an attribute in a STUN message; returns its value and length or NULL. */
static const uint8_t *stun_find(const uint8_t *p, size_t n, uint16_t type, uint16_t *len) {
    if (n < 20) return NULL;
    size_t end = 20 + get16(p + 2);
    if (end > n) end = n;
    size_t off = 20;
    for (int i = 0; i < 128 && off + 4 <= end; i++) {
        uint16_t t = get16(p + off), l = get16(p + off + 2);
        if (off + 4 + l > end) return NULL;
        if (t == type) {
            *len = l;
            return p + off + 4;
        }
        off += 4 + ((l + 3u) & ~3u);
    }
    return NULL;
}

static int stun_error_code(const uint8_t *p, size_t n) {
    uint16_t l;
    const uint8_t *v = stun_find(p, n, 0x0009, &l);
    if (!v || l < 4) return 0;
    return (v[2] & 7) * 100 + v[3];
}

/* Sends a request and waits for the response with the same transaction ID. Retransmits every
 * 250 ms, at most 8 times. Returns the response length or -1. */
static ssize_t stun_transact(int fd, const msg_t *req, uint8_t *resp, size_t cap) {
    for (int attempt = 0; attempt < 8; attempt++) {
        if (send(fd, req->b, req->len, 0) < 0) die("send");
        uint64_t deadline = mono_ns() + 250000000ull;
        for (int i = 0; i < 1000; i++) {
            uint64_t now = mono_ns();
            if (now >= deadline) break;
            struct pollfd pf = {fd, POLLIN, 0};
            int r = poll(&pf, 1, (int)((deadline - now) / 1000000ull) + 1);
            if (r <= 0) continue;
            ssize_t n = recv(fd, resp, cap, MSG_DONTWAIT);
            if (n >= 20 && (resp[0] & 0xC0) == 0 && memcmp(resp + 8, req->b + 8, 12) == 0) return n;
        }
    }
    return -1;
}

/* ---------- echo peer ---------- */

static volatile sig_atomic_t echo_stop;
static void echo_on_term(int sig) { (void)sig; echo_stop = 1; }

static int mode_echo(const struct sockaddr_in *bind_to, double duration) {
    int fd = udp_socket(bind_to, NULL);
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static uint8_t bufs[BATCH][MAX_PKT];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    uint64_t echoed = 0, send_fail = 0;
    uint64_t end = mono_ns() + (uint64_t)(duration * 1e9);
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM ends the echo like its deadline does, with its counts printed (bench/soak). */
    signal(SIGTERM, echo_on_term);
    fprintf(stderr, "loadgen echo: listening on %s:%d\n", inet_ntoa(bind_to->sin_addr), ntohs(bind_to->sin_port));
    /* Bounded by the deadline; each pass takes at most the 200 ms receive timeout. */
    for (uint64_t pass = 0; pass < 100000000ull && mono_ns() < end && !echo_stop; pass++) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = MAX_PKT;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        /* MSG_WAITFORONE: block for the first datagram, then take what is already queued. */
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
        int done = 0;
        for (int tries = 0; tries < 16 && done < n; tries++) {
            int s = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
            if (s <= 0) break;
            done += s;
        }
        echoed += (uint64_t)done;
        send_fail += (uint64_t)(n - done);
    }
    printf("{\"mode\":\"echo\",\"echoed\":%" PRIu64 ",\"send_failures\":%" PRIu64 "}\n", echoed, send_fail);
    fflush(stdout);
    return 0;
}

/* ---------- readiness probe ---------- */

static int mode_ping(const struct sockaddr_in *server, double timeout) {
    uint64_t end = mono_ns() + (uint64_t)(timeout * 1e9);
    uint8_t resp[MAX_PKT];
    for (int i = 0; i < 1000 && mono_ns() < end; i++) {
        /* A fresh source port for every try: a server that saw our first packet before it was
         * ready may have tied that 5-tuple to a session that never answers (coturn does). */
        int fd = udp_socket(NULL, server);
        msg_t m;
        stun_begin(&m, 0x0001);
        send(fd, m.b, m.len, 0);
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t n = recv(fd, resp, sizeof resp, MSG_DONTWAIT);
            if (n >= 20 && get16(resp) == 0x0101 && memcmp(resp + 8, m.b + 8, 12) == 0) {
                close(fd);
                printf("{\"mode\":\"ping\",\"ok\":true}\n");
                return 0;
            }
        }
        close(fd);
        /* refused (ICMP), silent or not a Binding answer: wait a little before the next try */
        usleep(50000);
    }
    printf("{\"mode\":\"ping\",\"ok\":false}\n");
    return 1;
}

/* ---------- STUN Binding throughput ---------- */

static int mode_binding(const struct sockaddr_in *server, double duration, int nsocks, int window, int server_pid) {
    if (nsocks < 1 || nsocks > MAX_SOCKS) fail("--sockets must be 1..64");
    if (window < 1 || window > BATCH) fail("--window must be 1..64");
    int fds[MAX_SOCKS];
    int inflight[MAX_SOCKS];
    uint64_t last_answer[MAX_SOCKS];
    struct pollfd pfs[MAX_SOCKS];
    for (int s = 0; s < nsocks; s++) {
        fds[s] = udp_socket(NULL, server);
        fcntl(fds[s], F_SETFL, O_NONBLOCK);
        pfs[s] = (struct pollfd){fds[s], POLLIN, 0};
        inflight[s] = 0;
    }
    /* Requests are identical apart from the transaction ID: "MNBB" + socket + counter. */
    static uint8_t out[BATCH][20], in[BATCH][256];
    struct mmsghdr om[BATCH], im[BATCH];
    struct iovec oiov[BATCH], iiov[BATCH];
    uint64_t sent = 0, answered = 0, bad = 0, timeouts = 0, ctr = 0;
    double cpu0 = proc_cpu_s(server_pid), self0 = self_cpu_s();
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(duration * 1e9);
    for (int s = 0; s < nsocks; s++) last_answer[s] = t0;
    for (uint64_t pass = 0; pass < 1000000000ull; pass++) {
        uint64_t now = mono_ns();
        if (now >= end) break;
        for (int s = 0; s < nsocks; s++) {
            /* A socket that heard nothing for 100 ms has lost its requests: start again. */
            if (inflight[s] > 0 && now - last_answer[s] > 100000000ull) {
                timeouts += (uint64_t)inflight[s];
                inflight[s] = 0;
                last_answer[s] = now;
            }
            int k = window - inflight[s];
            if (k <= 0) continue;
            for (int i = 0; i < k; i++) {
                put16(out[i], 0x0001);
                put16(out[i] + 2, 0);
                put32(out[i] + 4, STUN_COOKIE);
                memcpy(out[i] + 8, "MNBB", 4);
                uint64_t id = ((uint64_t)s << 56) | ++ctr;
                memcpy(out[i] + 12, &id, 8);
                oiov[i] = (struct iovec){out[i], 20};
                memset(&om[i], 0, sizeof om[i]);
                om[i].msg_hdr.msg_iov = &oiov[i];
                om[i].msg_hdr.msg_iovlen = 1;
            }
            int r = sendmmsg(fds[s], om, (unsigned)k, 0);
            if (r > 0) {
                inflight[s] += r;
                sent += (uint64_t)r;
            }
        }
        if (poll(pfs, (nfds_t)nsocks, 10) <= 0) continue;
        for (int s = 0; s < nsocks; s++) {
            if (!(pfs[s].revents & POLLIN)) continue;
            for (int i = 0; i < BATCH; i++) {
                iiov[i] = (struct iovec){in[i], sizeof in[i]};
                memset(&im[i], 0, sizeof im[i]);
                im[i].msg_hdr.msg_iov = &iiov[i];
                im[i].msg_hdr.msg_iovlen = 1;
            }
            int n = recvmmsg(fds[s], im, BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0) continue;
            for (int i = 0; i < n; i++) {
                if (im[i].msg_len >= 20 && get16(in[i]) == 0x0101 && memcmp(in[i] + 8, "MNBB", 4) == 0) {
                    answered++;
                    if (inflight[s] > 0) inflight[s]--;
                } else {
                    bad++;
                }
            }
            last_answer[s] = mono_ns();
        }
    }
    double elapsed = (mono_ns() - t0) / 1e9;
    double cpu1 = proc_cpu_s(server_pid);
    printf("{\"mode\":\"binding\",\"duration_s\":%.3f,\"sockets\":%d,\"window\":%d,\"sent\":%" PRIu64
           ",\"answered\":%" PRIu64 ",\"unexpected\":%" PRIu64 ",\"timed_out\":%" PRIu64
           ",\"answered_per_s\":%.1f,\"server_cpu_s\":%.3f,\"loadgen_cpu_s\":%.3f}\n",
           elapsed, nsocks, window, sent, answered, bad, timeouts, answered / elapsed,
           (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0, self_cpu_s() - self0);
    return 0;
}

/* ---------- TURN client setup ---------- */

typedef struct {
    const char *user, *pass;
    char realm[256], nonce[256];
    uint8_t key[16];
    int have_key;
} creds_t;

static void update_realm_nonce(creds_t *c, const uint8_t *resp, size_t n) {
    uint16_t l;
    const uint8_t *v;
    if ((v = stun_find(resp, n, 0x0014, &l)) && l < sizeof c->realm) {
        memcpy(c->realm, v, l);
        c->realm[l] = 0;
    }
    if ((v = stun_find(resp, n, 0x0015, &l)) && l < sizeof c->nonce) {
        memcpy(c->nonce, v, l);
        c->nonce[l] = 0;
    }
    /* key = MD5(username ":" realm ":" password), RFC 8489 §9.2.2 */
    char buf[1024];
    int bl = snprintf(buf, sizeof buf, "%s:%s:%s", c->user, c->realm, c->pass);
    unsigned int kl = 0;
    if (bl <= 0 || !EVP_Digest(buf, (size_t)bl, c->key, &kl, EVP_md5(), NULL) || kl != 16) fail("MD5 failed");
    c->have_key = 1;
}

static void add_auth(msg_t *m, const creds_t *c) {
    stun_attr(m, 0x0006, c->user, strlen(c->user));
    stun_attr(m, 0x0014, c->realm, strlen(c->realm));
    stun_attr(m, 0x0015, c->nonce, strlen(c->nonce));
    stun_integrity(m, c->key);
}

/* Builds the request with fill(), signs it once credentials are known, and follows 401/438.
 * Returns 0 on a success response (class 0b10). */
typedef void (*fill_fn)(msg_t *, const void *);

static int turn_request(int fd, creds_t *c, uint16_t type, fill_fn fill, const void *arg, const char *what,
                        uint8_t *resp, ssize_t *resp_len) {
    for (int attempt = 0; attempt < 4; attempt++) {
        msg_t m;
        stun_begin(&m, type);
        fill(&m, arg);
        if (c->have_key) add_auth(&m, c);
        ssize_t n = stun_transact(fd, &m, resp, MAX_PKT);
        if (n < 0) {
            fprintf(stderr, "loadgen: %s: no answer from the server\n", what);
            return -1;
        }
        uint16_t rtype = get16(resp);
        if ((rtype & 0x0110) == 0x0100) {
            *resp_len = n;
            return 0;
        }
        int code = stun_error_code(resp, (size_t)n);
        if (code == 401 || code == 438) {
            update_realm_nonce(c, resp, (size_t)n);
            continue;
        }
        fprintf(stderr, "loadgen: %s: error %d\n", what, code);
        return -1;
    }
    fprintf(stderr, "loadgen: %s: authentication did not converge\n", what);
    return -1;
}

static void fill_allocate(msg_t *m, const void *arg) {
    (void)arg;
    uint8_t transport[4] = {17, 0, 0, 0}; /* REQUESTED-TRANSPORT: UDP */
    stun_attr(m, 0x0019, transport, 4);
    uint8_t lifetime[4];
    put32(lifetime, 600);
    stun_attr(m, 0x000D, lifetime, 4);
}

static void fill_permission(msg_t *m, const void *arg) { stun_xor_addr(m, 0x0012, arg); }

static void fill_channel(msg_t *m, const void *arg) {
    uint8_t ch[4] = {0};
    put16(ch, CHANNEL);
    stun_attr(m, 0x000C, ch, 4);
    stun_xor_addr(m, 0x0012, arg);
}

static void fill_dealloc(msg_t *m, const void *arg) {
    (void)arg;
    uint8_t zero[4] = {0};
    stun_attr(m, 0x000D, zero, 4);
}

/* Allocate → CreatePermission → ChannelBind on one socket. Returns 0 on success. */
static int turn_setup(int fd, creds_t *c, const struct sockaddr_in *peer, struct sockaddr_in *relayed) {
    uint8_t resp[MAX_PKT];
    ssize_t n;
    c->have_key = 0; /* each 5-tuple starts with an unauthenticated Allocate (→ 401, realm, nonce) */
    if (turn_request(fd, c, 0x0003, fill_allocate, NULL, "Allocate", resp, &n) < 0) return -1;
    uint16_t l;
    const uint8_t *v = stun_find(resp, (size_t)n, 0x0016, &l);
    if (!v || l != 8 || v[1] != 1) {
        fprintf(stderr, "loadgen: Allocate: no IPv4 XOR-RELAYED-ADDRESS\n");
        return -1;
    }
    memset(relayed, 0, sizeof *relayed);
    relayed->sin_family = AF_INET;
    relayed->sin_port = htons((uint16_t)(get16(v + 2) ^ (STUN_COOKIE >> 16)));
    relayed->sin_addr.s_addr = htonl(get32(v + 4) ^ STUN_COOKIE);
    if (turn_request(fd, c, 0x0008, fill_permission, peer, "CreatePermission", resp, &n) < 0) return -1;
    if (turn_request(fd, c, 0x0009, fill_channel, peer, "ChannelBind", resp, &n) < 0) return -1;
    return 0;
}

static void turn_release(int fd, creds_t *c) {
    msg_t m;
    stun_begin(&m, 0x0004); /* Refresh with LIFETIME 0 deletes the allocation (RFC 8656 §7.2) */
    fill_dealloc(&m, NULL);
    add_auth(&m, c);
    send(fd, m.b, m.len, 0);
}

/* ---------- relay load ---------- */

typedef struct {
    uint32_t magic, index;
    uint64_t seq, ts_ns;
} payload_hdr_t;

static double hist_pct(const uint32_t *hist, uint64_t total, double q) {
    if (total == 0) return -1;
    uint64_t target = (uint64_t)(q * (double)(total - 1)) + 1, acc = 0;
    for (int i = 0; i <= HIST_US; i++) {
        acc += hist[i];
        if (acc >= target) return (double)i;
    }
    return HIST_US;
}

/* Per-path receive state: path 0 is the measured one (relayed, or direct with --direct), path 1
 * the direct companion of --paired. */
typedef struct {
    uint8_t *seen;
    uint32_t *hist;
    uint64_t received, rtt_n, dup;
    uint32_t own_drops_max[MAX_SOCKS];
    /* Round trips above SLOW_US: per allocation, and when they were sent (ms after the first
     * send): tells a stall of one allocation or one moment from a slow path as a whole. */
    uint64_t slow, slow_by_alloc[MAX_SOCKS];
    double slow_first_ms, slow_last_ms;
} path_t;

#define SLOW_US 10000

static int mode_relay(const struct sockaddr_in *server, const struct sockaddr_in *peer, const char *user,
                      const char *pass, int nallocs, double rate, int size, double duration, int drain_ms,
                      int server_pid, int direct, int paired, double tick_us) {
    if (paired && direct) fail("--paired and --direct exclude each other");
    if (nallocs < 1 || nallocs > (paired ? MAX_SOCKS / 2 : MAX_SOCKS)) fail("--allocs must be 1..64 (1..32 paired)");
    if (size < (int)sizeof(payload_hdr_t) || size > 1400) fail("--size must be 24..1400");
    if (rate <= 0 || duration <= 0) fail("--rate and --duration must be positive");
    uint64_t total = (uint64_t)(rate * duration) + 1;
    if (total < 1 || total > 50000000ull) fail("rate x duration must be 1..50M packets");

    /* Sockets 0..nallocs-1 carry the measured path; with --paired, sockets nallocs..2*nallocs-1
     * send the very same payloads straight to the peer in the same ticks, so the relayed and the
     * direct round trips are sampled under the same conditions on the box. */
    const int nsock = paired ? 2 * nallocs : nallocs;
    int fds[MAX_SOCKS], sock_direct[MAX_SOCKS];
    struct pollfd pfs[MAX_SOCKS];
    creds_t creds[MAX_SOCKS];
    uint64_t setup0 = mono_ns();
    for (int i = 0; i < nsock; i++) {
        sock_direct[i] = direct || i >= nallocs;
        fds[i] = udp_socket(NULL, sock_direct[i] ? peer : server);
        pfs[i] = (struct pollfd){fds[i], POLLIN, 0};
        if (!sock_direct[i]) {
            memset(&creds[i], 0, sizeof creds[i]);
            creds[i].user = user;
            creds[i].pass = pass;
            struct sockaddr_in relayed;
            if (turn_setup(fds[i], &creds[i], peer, &relayed) < 0) {
                printf("{\"mode\":\"relay\",\"error\":\"TURN setup failed on allocation %d\"}\n", i);
                return 1;
            }
        }
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
    }
    double setup_s = (mono_ns() - setup0) / 1e9;

    path_t paths[2];
    memset(paths, 0, sizeof paths);
    for (int k = 0; k < 2; k++) {
        paths[k].seen = calloc((size_t)(total / 8 + 1), 1);
        paths[k].hist = calloc(HIST_US + 1, sizeof(uint32_t));
        if (!paths[k].seen || !paths[k].hist) fail("out of memory");
    }
    static uint8_t obuf[MAX_SOCKS][BATCH][1408];
    static uint8_t ibuf[BATCH][MAX_PKT];
    static char cbuf[BATCH][128];
    struct mmsghdr om[BATCH], im[BATCH];
    struct iovec oiov[BATCH], iiov[BATCH];

    for (int i = 0; i < nsock; i++)
        for (int b = 0; b < BATCH; b++) {
            memset(obuf[i][b], 0, 4 + (size_t)size);
            if (!sock_direct[i]) { /* ChannelData header: channel number, length */
                put16(obuf[i][b], CHANNEL);
                put16(obuf[i][b] + 2, (uint16_t)size);
            }
        }

    uint64_t sent = 0, foreign = 0, send_errors = 0;
    uint64_t max_lag_ns = 0, skipped = 0;
    const uint64_t tick_ns = (uint64_t)(tick_us * 1000.0);
    /* A generator that was descheduled for long does not catch up with one big burst (that would
     * measure its own hiccup, not the server): at most 2 ms' worth is sent at once, the rest is
     * skipped and the offered rate reported is what was really sent. */
    uint64_t burst_max = (uint64_t)(rate * 0.002) + (uint64_t)nallocs;
    if (burst_max > (uint64_t)nallocs * BATCH) burst_max = (uint64_t)nallocs * BATCH;
    double cpu0 = proc_cpu_s(server_pid), self0 = self_cpu_s();
    const uint64_t t0 = mono_ns();
    const uint64_t stamp0 = real_ns();
    const uint64_t send_end = t0 + (uint64_t)(duration * 1e9);
    const uint64_t drain_ns = (uint64_t)drain_ms * 1000000ull;
    uint64_t last_send = t0, next_tick = t0, done_sending = 0;

    for (uint64_t pass = 0; pass < 2000000000ull; pass++) {
        uint64_t now = mono_ns();
        if (!done_sending && (now >= send_end || sent >= total)) done_sending = now;
        if (done_sending && ((paths[0].received >= sent && (!paired || paths[1].received >= sent)) ||
                             now >= done_sending + drain_ns))
            break;
        /* Send what is due: packet k goes to allocation k % nallocs (and its direct twin). */
        if (!done_sending && now >= next_tick) {
            uint64_t due = (uint64_t)((double)(now - t0) * rate / 1e9) + 1 - skipped;
            if (due > sent + burst_max) {
                uint64_t lag = (uint64_t)((double)(due - sent) / rate * 1e9);
                if (lag > max_lag_ns) max_lag_ns = lag;
                skipped += due - sent - burst_max;
                due = sent + burst_max;
            }
            if (due > total) due = total;
            uint64_t first = sent;
            uint64_t stamp = real_ns();
            for (int i = 0; i < nsock && first < due; i++) {
                int a = i % nallocs;
                size_t hdr = sock_direct[i] ? 0 : 4;
                int k = 0;
                for (uint64_t seq = first + (uint64_t)((a - (int)(first % (uint64_t)nallocs) + nallocs) % nallocs);
                     seq < due && k < BATCH; seq += (uint64_t)nallocs, k++) {
                    payload_hdr_t ph = {PAYLOAD_MAGIC, (uint32_t)a, seq, stamp};
                    memcpy(obuf[i][k] + hdr, &ph, sizeof ph);
                    oiov[k] = (struct iovec){obuf[i][k], hdr + (size_t)size};
                    memset(&om[k], 0, sizeof om[k]);
                    om[k].msg_hdr.msg_iov = &oiov[k];
                    om[k].msg_hdr.msg_iovlen = 1;
                }
                int done = 0;
                for (int tries = 0; tries < 8 && done < k; tries++) {
                    int r = sendmmsg(fds[i], om + done, (unsigned)(k - done), 0);
                    if (r <= 0) {
                        send_errors++;
                        break;
                    }
                    done += r;
                }
                /* Packets the kernel refused still count as sent (offered) and so as lost. */
            }
            if (due > sent) {
                sent = due;
                last_send = mono_ns();
            }
            next_tick = now + tick_ns;
        }
        /* Wait for answers until the next tick. */
        uint64_t wait_ns = !done_sending ? (next_tick > now ? next_tick - now : 0) : 2000000ull;
        struct timespec to = {(time_t)(wait_ns / 1000000000ull), (long)(wait_ns % 1000000000ull)};
        int pr = ppoll(pfs, (nfds_t)nsock, &to, NULL);
        if (pr <= 0) continue;
        for (int s = 0; s < nsock; s++) {
            if (!(pfs[s].revents & POLLIN)) continue;
            path_t *pt = &paths[s >= nallocs ? 1 : 0];
            for (int rounds = 0; rounds < 8; rounds++) {
                for (int i = 0; i < BATCH; i++) {
                    iiov[i] = (struct iovec){ibuf[i], MAX_PKT};
                    memset(&im[i], 0, sizeof im[i]);
                    im[i].msg_hdr.msg_iov = &iiov[i];
                    im[i].msg_hdr.msg_iovlen = 1;
                    im[i].msg_hdr.msg_control = cbuf[i];
                    im[i].msg_hdr.msg_controllen = sizeof cbuf[i];
                }
                int n = recvmmsg(fds[s], im, BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0) break;
                uint64_t fallback_rx = real_ns();
                for (int i = 0; i < n; i++) {
                    uint64_t rx = fallback_rx;
                    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&im[i].msg_hdr); cm;
                         cm = CMSG_NXTHDR(&im[i].msg_hdr, cm)) {
                        if (cm->cmsg_level != SOL_SOCKET) continue;
                        if (cm->cmsg_type == SO_TIMESTAMPNS) {
                            struct timespec ts;
                            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                            rx = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
                        } else if (cm->cmsg_type == SO_RXQ_OVFL) {
                            uint32_t d;
                            memcpy(&d, CMSG_DATA(cm), sizeof d);
                            if (d > pt->own_drops_max[s]) pt->own_drops_max[s] = d;
                        }
                    }
                    const uint8_t *p = ibuf[i];
                    size_t len = im[i].msg_len;
                    if (!sock_direct[s]) {
                        if (len < 4 || (p[0] & 0xC0) != 0x40) {
                            foreign++;
                            continue;
                        }
                        p += 4;
                        len -= 4;
                    }
                    payload_hdr_t ph;
                    if (len < sizeof ph) {
                        foreign++;
                        continue;
                    }
                    memcpy(&ph, p, sizeof ph);
                    if (ph.magic != PAYLOAD_MAGIC || ph.seq >= total) {
                        foreign++;
                        continue;
                    }
                    if (pt->seen[ph.seq / 8] & (1u << (ph.seq % 8))) {
                        pt->dup++;
                        continue;
                    }
                    pt->seen[ph.seq / 8] |= (uint8_t)(1u << (ph.seq % 8));
                    pt->received++;
                    if (rx >= ph.ts_ns) {
                        uint64_t us = (rx - ph.ts_ns) / 1000ull;
                        pt->hist[us > HIST_US ? HIST_US : us]++;
                        pt->rtt_n++;
                        if (us > SLOW_US && ph.index < MAX_SOCKS) {
                            double at = ph.ts_ns > stamp0 ? (double)(ph.ts_ns - stamp0) / 1e6 : 0.0;
                            if (pt->slow == 0 || at < pt->slow_first_ms) pt->slow_first_ms = at;
                            if (at > pt->slow_last_ms) pt->slow_last_ms = at;
                            pt->slow++;
                            pt->slow_by_alloc[ph.index]++;
                        }
                    }
                }
                if (n < BATCH) break;
            }
        }
    }
    uint64_t t_end = mono_ns();
    double cpu1 = proc_cpu_s(server_pid);
    double send_s = (last_send - t0) / 1e9;
    if (send_s <= 0) send_s = duration;
    uint64_t own_drops = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nsock; i++) own_drops += paths[k].own_drops_max[i];
    for (int i = 0; i < nsock; i++)
        if (!sock_direct[i]) turn_release(fds[i], &creds[i]);
    const path_t *m = &paths[0];
    printf("{\"mode\":\"%s\",\"allocs\":%d,\"size\":%d,\"target_rate\":%.1f,\"duration_s\":%.3f,"
           "\"setup_s\":%.3f,\"send_s\":%.3f,\"wall_s\":%.3f,\"sent\":%" PRIu64 ",\"received\":%" PRIu64
           ",\"lost\":%" PRIu64 ",\"loss\":%.6f,\"duplicates\":%" PRIu64 ",\"unexpected\":%" PRIu64
           ",\"send_errors\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"own_socket_drops\":%" PRIu64 ",\"max_lag_ms\":%.3f,"
           "\"offered_rate\":%.1f,\"rtt_samples\":%" PRIu64 ",\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
           "\"server_cpu_s\":%.3f,\"loadgen_cpu_s\":%.3f",
           direct ? "direct" : "relay", nallocs, size, rate, duration, setup_s, send_s, (t_end - t0) / 1e9, sent,
           m->received, sent - m->received, sent ? (double)(sent - m->received) / (double)sent : 0.0, m->dup,
           foreign, send_errors, skipped, own_drops, max_lag_ns / 1e6, sent / send_s, m->rtt_n,
           hist_pct(m->hist, m->rtt_n, 0.50), hist_pct(m->hist, m->rtt_n, 0.99),
           (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0, self_cpu_s() - self0);
    if (paired) {
        const path_t *d = &paths[1];
        printf(",\"direct_received\":%" PRIu64 ",\"direct_lost\":%" PRIu64 ",\"direct_rtt_samples\":%" PRIu64
               ",\"direct_rtt_p50_us\":%.1f,\"direct_rtt_p99_us\":%.1f",
               d->received, sent - d->received, d->rtt_n, hist_pct(d->hist, d->rtt_n, 0.50),
               hist_pct(d->hist, d->rtt_n, 0.99));
    }
    for (int k = 0; k < (paired ? 2 : 1); k++) {
        const path_t *p = &paths[k];
        printf(",\"%sslow_over_10ms\":%" PRIu64 ",\"%sslow_first_ms\":%.1f,\"%sslow_last_ms\":%.1f,\"%sslow_by_alloc\":[",
               k ? "direct_" : "", p->slow, k ? "direct_" : "", p->slow_first_ms, k ? "direct_" : "", p->slow_last_ms,
               k ? "direct_" : "");
        for (int a = 0; a < nallocs; a++) printf("%s%" PRIu64, a ? "," : "", p->slow_by_alloc[a]);
        printf("]");
    }
    printf("}\n");
    for (int k = 0; k < 2; k++) {
        free(paths[k].seen);
        free(paths[k].hist);
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen echo --bind IP:PORT [--duration S]\n"
            "       loadgen ping --server IP:PORT [--timeout S]\n"
            "       loadgen binding --server IP:PORT [--duration S] [--sockets K] [--window W] [--server-pid PID]\n"
            "       loadgen relay --server IP:PORT --peer IP:PORT [--user U] [--pass P] [--allocs N] [--rate R]\n"
            "                     [--size B] [--duration S] [--drain MS] [--tick-us US] [--server-pid PID]\n"
            "                     [--direct | --paired]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *mode = argv[1];
    const char *server = NULL, *peer = NULL, *bindaddr = NULL, *user = "bench", *pass = "bench";
    double duration = 2, timeout = 10, rate = 10000, tick_us = 250;
    int sockets = 8, window = 16, allocs = 8, size = 200, drain_ms = 500, server_pid = 0, direct = 0, paired = 0;
    static const struct option opts[] = {
        {"server", 1, 0, 's'},   {"peer", 1, 0, 'p'},    {"bind", 1, 0, 'b'},       {"user", 1, 0, 'u'},
        {"pass", 1, 0, 'P'},     {"duration", 1, 0, 'd'}, {"timeout", 1, 0, 't'},   {"rate", 1, 0, 'r'},
        {"sockets", 1, 0, 'k'},  {"window", 1, 0, 'w'},  {"allocs", 1, 0, 'n'},    {"size", 1, 0, 'z'},
        {"drain", 1, 0, 'D'},    {"server-pid", 1, 0, 'i'}, {"direct", 0, 0, 'x'}, {"tick-us", 1, 0, 'T'},
        {"paired", 0, 0, 'y'},
        {0, 0, 0, 0}};
    optind = 2;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's': server = optarg; break;
        case 'p': peer = optarg; break;
        case 'b': bindaddr = optarg; break;
        case 'u': user = optarg; break;
        case 'P': pass = optarg; break;
        case 'd': duration = atof(optarg); break;
        case 't': timeout = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'k': sockets = atoi(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 'n': allocs = atoi(optarg); break;
        case 'z': size = atoi(optarg); break;
        case 'D': drain_ms = atoi(optarg); break;
        case 'i': server_pid = atoi(optarg); break;
        case 'x': direct = 1; break;
        case 'y': paired = 1; break;
        case 'T': tick_us = atof(optarg); break;
        default: usage();
        }
    }
    if (duration <= 0 || duration > 86400) fail("--duration must be in (0, 86400]");
    if (tick_us < 10 || tick_us > 100000) fail("--tick-us must be 10..100000");
    if (drain_ms < 0 || drain_ms > 60000) fail("--drain must be 0..60000");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "echo")) {
        if (!bindaddr) usage();
        struct sockaddr_in b = parse_addr(bindaddr);
        return mode_echo(&b, duration);
    }
    if (!strcmp(mode, "direct") && !server) server = peer ? peer : "";
    if (!server) usage();
    struct sockaddr_in s = parse_addr(server);
    if (!strcmp(mode, "ping")) return mode_ping(&s, timeout);
    if (!strcmp(mode, "binding")) return mode_binding(&s, duration, sockets, window, server_pid);
    if (!strcmp(mode, "relay") || !strcmp(mode, "direct")) {
        if (!peer) usage();
        struct sockaddr_in p = parse_addr(peer);
        if (!strcmp(mode, "direct")) direct = 1;
        return mode_relay(&s, &p, user, pass, allocs, rate, size, duration, drain_ms, server_pid, direct, paired, tick_us);
    }
    usage();
    return 2;
}
