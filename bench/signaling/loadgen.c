// The signaling bench's load client (bench/signaling/run starts several; issue 17): many
// WebSocket connections in one process on one epoll loop, light enough that the server, not
// the client, is what a run measures. Not part of the node; C so that it costs little CPU.
//
//   loadgen --host 127.0.0.1 --port P --source 127.0.1.2 --prefix b0x --mode node|echo --heartbeat S
//           [--peer-prefix c0x] [--seed TEXT]
//
// --peer-prefix: `chat` goes to the names of another loadgen (bench/cluster: at another member
// of a cluster, so that every message is routed between members). --seed: the Ed25519 key is
// derived from TEXT, so that a second loadgen can log in as the same names (a failover).
//
// Commands on stdin, one per line; each answers one JSON line on stdout:
//   open N          hold N connections (node: upgraded, challenged, logged in with Ed25519;
//                   echo: upgraded), at most 64 opening at once
//   touch A B       connections A..B-1 each send one message and wait for the answers (node: a
//                   chat to the next of them, acked by the node and by the recipient; echo: one
//                   frame echoed back)
//   chat RATE SECS  node: chat from even to odd slots at RATE/s for SECS (open loop: message k
//                   is due at k/RATE), at most 20/s per sender; the text is the send time
//                   (CLOCK_MONOTONIC ns), the recipient computes the delivery latency and acks;
//                   waits up to 5 s for stragglers; answers counts and latency histograms
//   quit
//
// Build: cc -O2 -o loadgen loadgen.c -lsodium
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, UPGRADING, CHALLENGED, LOGGING_IN, READY, DEAD };

struct conn {
    int fd;
    enum state state;
    char *in;           // received bytes not yet parsed
    size_t in_len, in_cap;
    char *out;          // bytes the socket did not take yet
    size_t out_len, out_cap;
    int index;
    int touched;        // touch: answers still awaited by this connection
};

static struct conn *conns;
static int nconns, capconns;
static int epfd;
static const char *host = "127.0.0.1", *source = NULL, *prefix = "b0x", *peer_prefix = NULL, *seed = NULL;
static int port = 0, echo_mode = 0;
static double heartbeat = 15;
static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static char pk64[64];
static int opening, open_failed;
static char last_error[200];
// chat step
static char step_tag[16] = "s0";
static long sent, delivered, acked, errors, stale;
static uint64_t first_send, last_delivery;
// Latency histograms: 10 µs buckets up to 200 ms, then 1 ms buckets up to 60 s.
#define FINE 20000
#define BUCKETS (FINE + 60000)
static long delivery_hist[BUCKETS + 1], ack_hist[BUCKETS + 1];
static long touch_pending;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void note_error(const char *what) {
    errors++;
    snprintf(last_error, sizeof last_error, "%s", what);
}

static void record(long *hist, uint64_t ns) {
    uint64_t bucket = ns < FINE * 10000ull ? ns / 10000 : FINE + (ns - FINE * 10000ull) / 1000000;
    hist[bucket < BUCKETS ? bucket : BUCKETS]++;
}

static void kill_conn(struct conn *c) {
    if (c->state == DEAD) return;
    if (c->state != READY) { open_failed++; opening--; }
    c->state = DEAD;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in); free(c->out);
    c->in = c->out = NULL;
    c->in_len = c->in_cap = c->out_len = c->out_cap = 0;
}

static void flush_out(struct conn *c) {
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            kill_conn(c);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - n);
        c->out_len -= n;
    }
    struct epoll_event ev = { .events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.u32 = c->index };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void put(struct conn *c, const void *bytes, size_t len) {
    if (c->state == DEAD) return;
    if (c->out_len == 0) {
        ssize_t n = send(c->fd, bytes, len, MSG_NOSIGNAL);
        if (n == (ssize_t)len) return;
        if (n < 0 && errno != EAGAIN) { kill_conn(c); return; }
        if (n < 0) n = 0;
        bytes = (const char *)bytes + n;
        len -= n;
    }
    if (c->out_len + len > c->out_cap) {
        c->out_cap = (c->out_len + len) * 2;
        c->out = realloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, bytes, len);
    c->out_len += len;
    flush_out(c);
}

// A masked text frame (RFC 6455 §5.3: every client frame is masked; a zero key is a valid key
// and leaves the payload as it is, which keeps the client cheap).
static void send_text(struct conn *c, const char *text, size_t len) {
    unsigned char frame[16 + 1024];
    size_t h = 0;
    frame[h++] = 0x81;
    if (len < 126) frame[h++] = 0x80 | len;
    else { frame[h++] = 0x80 | 126; frame[h++] = len >> 8; frame[h++] = len & 0xff; }
    memset(frame + h, 0, 4);
    h += 4;
    if (len > sizeof frame - h) { note_error("frame too long"); return; }
    memcpy(frame + h, text, len);
    put(c, frame, h + len);
}

// The value of `"key":"` in a JSON text (the node's messages have no spaces), copied to out.
static int field(const char *json, size_t len, const char *key, char *out, size_t cap) {
    char pattern[32];
    int plen = snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = memmem(json, len, pattern, plen);
    if (!p) return 0;
    p += plen;
    const char *end = memchr(p, '"', json + len - p);
    if (!end || (size_t)(end - p) >= cap) return 0;
    memcpy(out, p, end - p);
    out[end - p] = 0;
    return 1;
}

static void login(struct conn *c, const char *json, size_t len) {
    char nonce[128], name[64], node[80], message[400], sig64[128], frame[700];
    unsigned char sig[crypto_sign_BYTES];
    if (!field(json, len, "nonce", nonce, sizeof nonce)) { note_error("challenge without nonce"); kill_conn(c); return; }
    // The nonce is base64 and the JSON encoder escapes '/' as "\/".
    char *w = nonce;
    for (char *r = nonce; *r; r++) if (!(r[0] == '\\' && r[1] == '/')) *w++ = *r;
    *w = 0;
    snprintf(name, sizeof name, "%s%d", prefix, c->index);
    snprintf(node, sizeof node, "%s:%d", host, port);
    int mlen = snprintf(message, sizeof message, "meshnode.v1 login\n%s\n%s\n%s", nonce, name, node);
    crypto_sign_detached(sig, NULL, (unsigned char *)message, mlen, sk);
    sodium_bin2base64(sig64, sizeof sig64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    int flen = snprintf(frame, sizeof frame,
                        "{\"type\":\"login\",\"id\":\"l\",\"from\":\"\",\"to\":\"@node\",\"body\":{\"name\":\"%s\",\"key\":\"%s\",\"node\":\"%s\",\"sig\":\"%s\"}}",
                        name, pk64, node, sig64);
    send_text(c, frame, flen);
    c->state = LOGGING_IN;
}

static void ready(struct conn *c) {
    c->state = READY;
    opening--;
}

static void on_message(struct conn *c, const char *json, size_t len) {
    char type[24];
    if (echo_mode) {
        if (c->touched) { c->touched = 0; touch_pending--; }
        return;
    }
    if (!field(json, len, "type", type, sizeof type)) return;
    if (c->state == CHALLENGED || c->state == UPGRADING) {
        if (!strcmp(type, "challenge")) login(c, json, len);
        return;
    }
    if (c->state == LOGGING_IN) {
        if (!strcmp(type, "welcome")) ready(c);
        else if (!strcmp(type, "error")) {
            char reason[160] = "";
            field(json, len, "reason", reason, sizeof reason);
            note_error(reason);
            kill_conn(c);
        }
        return;
    }
    if (!strcmp(type, "chat")) {
        uint64_t now = now_ns();
        char id[64], from[64], text[32], ack[300];
        if (!field(json, len, "id", id, sizeof id) || !field(json, len, "from", from, sizeof from)) return;
        if (field(json, len, "text", text, sizeof text)) {
            if (!strncmp(id, step_tag, strlen(step_tag)) && id[strlen(step_tag)] == '-') {
                delivered++;
                last_delivery = now;
                record(delivery_hist, now - strtoull(text, NULL, 10));
            } else if (id[0] == 't') {
                if (c->touched) { c->touched--; touch_pending--; }
            } else {
                stale++;
            }
        }
        int n = snprintf(ack, sizeof ack, "{\"type\":\"ack\",\"id\":\"a%s\",\"from\":\"\",\"to\":\"@node\",\"body\":{\"of\":\"%s\",\"sender\":\"%s\"}}",
                         id, id, from);
        send_text(c, ack, n);
    } else if (!strcmp(type, "ack")) {
        char of[64];
        if (!field(json, len, "of", of, sizeof of)) return;
        if (!strncmp(of, step_tag, strlen(step_tag)) && of[strlen(step_tag)] == '-') {
            acked++;
            // The id carries the send time after the second '-'.
            const char *t = strchr(of + strlen(step_tag) + 1, '-');
            if (t) record(ack_hist, now_ns() - strtoull(t + 1, NULL, 10));
        } else if (of[0] == 't' && c->touched) {
            c->touched--;
            touch_pending--;
        }
    } else if (!strcmp(type, "error")) {
        char reason[160] = "";
        field(json, len, "reason", reason, sizeof reason);
        note_error(reason);
    }
}

static void on_readable(struct conn *c) {
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 8192;
            c->in = realloc(c->in, c->in_cap);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) { kill_conn(c); return; }
        if (n < 0) break;
        c->in_len += n;
    }
    size_t at = 0;
    if (c->state == UPGRADING) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) return;
        if (c->in_len < 12 || memcmp(c->in + 9, "101", 3)) {
            snprintf(last_error, sizeof last_error, "upgrade: %.40s", c->in);
            errors++;
            kill_conn(c);
            return;
        }
        at = end + 4 - c->in;
        if (echo_mode) ready(c); else c->state = CHALLENGED;
    }
    while (c->state != DEAD && c->in_len - at >= 2) {
        unsigned char *f = (unsigned char *)c->in + at;
        size_t avail = c->in_len - at, h = 2;
        uint64_t len = f[1] & 0x7f;
        if (len == 126) { if (avail < 4) break; len = (f[2] << 8) | f[3]; h = 4; }
        else if (len == 127) { if (avail < 10) break; len = 0; for (int i = 0; i < 8; i++) len = len << 8 | f[2 + i]; h = 10; }
        if (avail < h + len) break;
        int opcode = f[0] & 0x0f;
        if (opcode == 1) on_message(c, (char *)f + h, len);
        else if (opcode == 8) {
            snprintf(last_error, sizeof last_error, "closed by the server: %d %.*s", len >= 2 ? (f[h] << 8 | f[h + 1]) : 0,
                     (int)(len > 2 ? len - 2 : 0), (char *)f + h + 2);
            errors++;
            kill_conn(c);
            return;
        }
        at += h + len;
    }
    if (c->state == DEAD) return;
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    // An idle connection keeps no buffer.
    if (c->in_len == 0) { free(c->in); c->in = NULL; c->in_cap = 0; }
}

static void on_connected(struct conn *c) {
    int error = 0;
    socklen_t l = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &l);
    if (error) { snprintf(last_error, sizeof last_error, "connect: %s", strerror(error)); errors++; kill_conn(c); return; }
    char request[400];
    int n = snprintf(request, sizeof request,
                     "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: meshnode.v1\r\n\r\n", host, port);
    c->state = UPGRADING;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = c->index };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    put(c, request, n);
}

static int next_port;

static void start_conn(void) {
    if (nconns == capconns) {
        capconns = capconns ? capconns * 2 : 1024;
        conns = realloc(conns, capconns * sizeof *conns);
    }
    struct conn *c = &conns[nconns];
    memset(c, 0, sizeof *c);
    c->index = nconns++;
    opening++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in local = { .sin_family = AF_INET };
    int one = 1;
    if (source) {
        // A port of our own choosing on our own source address: a bind to port 0 searched the
        // bind table of every socket on the address, and opening 18,000 connections spent most
        // of the client's time in the kernel's inet_csk_get_port. (IP_BIND_ADDRESS_NO_PORT ran
        // out of ports at about 7,800 per address.) SO_REUSEADDR takes ports a previous run
        // left in TIME_WAIT.
        setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        inet_pton(AF_INET, source, &local.sin_addr);
        for (int tries = 0; tries < 1000; tries++) {
            next_port = next_port < 10000 || next_port >= 65000 ? 10000 : next_port + 1;
            local.sin_port = htons(next_port);
            if (bind(c->fd, (struct sockaddr *)&local, sizeof local) == 0 || errno != EADDRINUSE) break;
        }
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in remote = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, host, &remote.sin_addr);
    c->state = CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = c->index };
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&remote, sizeof remote) < 0 && errno != EINPROGRESS) {
        snprintf(last_error, sizeof last_error, "connect: %s", strerror(errno));
        errors++;
        kill_conn(c);
    }
}

static int live(void) {
    int n = 0;
    for (int i = 0; i < nconns; i++) n += conns[i].state == READY;
    return n;
}

// Protocol pings (docs/protocol.md "Liveness"): every connection every half heartbeat,
// spread evenly; `cursor` walks the connections.
static double ping_due;
static int ping_cursor;
static long ping_count;
static void pings(void) {
    if (echo_mode || nconns == 0) return;
    double now = now_ns() / 1e9, period = heartbeat / 2 / nconns;
    if (ping_due == 0) ping_due = now;
    int budget = 1000;
    while (ping_due <= now && budget-- > 0) {
        struct conn *c = &conns[ping_cursor];
        ping_cursor = (ping_cursor + 1) % nconns;
        ping_due += period;
        if (c->state != READY) continue;
        char ping[100];
        int n = snprintf(ping, sizeof ping, "{\"type\":\"ping\",\"id\":\"p%ld\",\"from\":\"\",\"to\":\"@node\",\"body\":{}}", ++ping_count);
        send_text(c, ping, n);
    }
    if (ping_due < now - 1) ping_due = now;
}

static void poll_once(int timeout_ms) {
    struct epoll_event events[256];
    int n = epoll_wait(epfd, events, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct conn *c = &conns[events[i].data.u32];
        if (c->state == DEAD) continue;
        if (c->state == CONNECTING) { on_connected(c); continue; }
        if (events[i].events & EPOLLOUT) flush_out(c);
        if (c->state != DEAD && events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
    pings();
}

static void cmd_open(int target) {
    uint64_t started = now_ns();
    open_failed = 0;
    while (live() < target && now_ns() - started < 120000000000ull) {
        int want = target - live() - opening;
        for (int k = 0; k < want && opening < 64; k++) start_conn();
        poll_once(5);
        if (open_failed > 200) break;
    }
    printf("{\"open\":%d,\"failed\":%d,\"seconds\":%.2f,\"error\":\"%s\"}\n", live(), open_failed, (now_ns() - started) / 1e9, last_error);
    fflush(stdout);
}

static void cmd_touch(int from, int to) {
    uint64_t started = now_ns();
    touch_pending = 0;
    int ready_list = 0;
    if (to > nconns) to = nconns;
    if (from < 0) from = 0;
    for (int i = from; i < to; i++) {
        struct conn *c = &conns[i];
        if (c->state != READY) continue;
        ready_list++;
        char frame[300];
        int n;
        if (echo_mode) {
            n = snprintf(frame, sizeof frame, "{\"type\":\"chat\",\"id\":\"t%d\",\"body\":{\"text\":\"%lu\"}}", i, (unsigned long)now_ns());
            c->touched = 1;
            touch_pending++;
        } else {
            // To the next ready connection in the range: each sends one and receives one.
            int j = i + 1 < to ? i + 1 : from;
            while (conns[j].state != READY && j != i) j = j + 1 < to ? j + 1 : from;
            n = snprintf(frame, sizeof frame, "{\"type\":\"chat\",\"id\":\"t%d\",\"from\":\"\",\"to\":\"%s%d\",\"body\":{\"text\":\"%lu\"}}",
                         i, prefix, j, (unsigned long)now_ns());
            // Its node ack, and the chat it receives.
            c->touched += 1;
            conns[j].touched += 1;
            touch_pending += 2;
        }
        send_text(c, frame, n);
        if (ready_list % 64 == 0) poll_once(0);
    }
    while (touch_pending > 0 && now_ns() - started < 60000000000ull) poll_once(10);
    printf("{\"touched\":%d,\"missing\":%ld,\"seconds\":%.2f,\"error\":\"%s\"}\n", ready_list, touch_pending, (now_ns() - started) / 1e9, last_error);
    fflush(stdout);
}

static void print_hist(const char *name, long *hist) {
    printf("\"%s\":{", name);
    int first = 1;
    for (int i = 0; i <= BUCKETS; i++) {
        if (!hist[i]) continue;
        printf("%s\"%d\":%ld", first ? "" : ",", i, hist[i]);
        first = 0;
    }
    printf("}");
}

static void cmd_chat(double rate, double seconds, int step) {
    snprintf(step_tag, sizeof step_tag, "s%d", step);
    sent = delivered = acked = errors = stale = 0;
    first_send = last_delivery = 0;
    memset(delivery_hist, 0, sizeof delivery_hist);
    memset(ack_hist, 0, sizeof ack_hist);
    int senders[nconns / 2 + 1], nsenders = 0;
    for (int i = 0; i + 1 < nconns; i += 2)
        if (conns[i].state == READY && conns[i + 1].state == READY) senders[nsenders++] = i;
    // At most 20 chats/s per sender, so that the node's rate limit (50/s) never decides.
    int use = (int)(rate / 20 + 1);
    if (use > nsenders) use = nsenders;
    if (use == 0) { printf("{\"error\":\"no pairs\"}\n"); fflush(stdout); return; }
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    long total = (long)(rate * seconds);
    for (long k = 0; k < total;) {
        uint64_t due = start + (uint64_t)(k / rate * 1e9), now = now_ns();
        // Sleep at least a millisecond when ahead (rounded up), then send what fell due: at
        // 10,000/s the gap is 100 µs, and rounding down spun the client on epoll_wait(0),
        // taking a whole core from the node it measures.
        if (due > now) { poll_once((int)((due - now + 999999) / 1000000)); continue; }
        int s = senders[k % use];
        char frame[300];
        int n = snprintf(frame, sizeof frame, "{\"type\":\"chat\",\"id\":\"%s-%ld-%lu\",\"from\":\"\",\"to\":\"%s%d\",\"body\":{\"text\":\"%lu\"}}",
                         step_tag, k, (unsigned long)now, peer_prefix ? peer_prefix : prefix, s + 1, (unsigned long)now);
        if (!first_send) first_send = now;
        send_text(&conns[s], frame, n);
        sent++;
        k++;
        if (k % 32 == 0) poll_once(0);
    }
    uint64_t sent_end = now_ns();
    while ((delivered < sent || acked < sent) && now_ns() < end + 5000000000ull) poll_once(10);
    printf("{\"sent\":%ld,\"delivered\":%ld,\"acked\":%ld,\"stale\":%ld,\"errors\":%ld,\"error\":\"%s\",\"first_send\":%lu,\"sent_end\":%lu,\"last_delivery\":%lu,",
           sent, delivered, acked, stale, errors, last_error, (unsigned long)first_send, (unsigned long)sent_end, (unsigned long)last_delivery);
    print_hist("delivery", delivery_hist);
    printf(",");
    print_hist("ack", ack_hist);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--source")) source = argv[i + 1];
        else if (!strcmp(argv[i], "--prefix")) prefix = argv[i + 1];
        else if (!strcmp(argv[i], "--mode")) echo_mode = !strcmp(argv[i + 1], "echo");
        else if (!strcmp(argv[i], "--heartbeat")) heartbeat = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--peer-prefix")) peer_prefix = argv[i + 1];
        else if (!strcmp(argv[i], "--seed")) seed = argv[i + 1];
    }
    if (sodium_init() < 0) return 1;
    // Every connection is a file: take the whole hard limit (setrlimit, not a system change).
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (seed) {
        unsigned char derived[crypto_sign_SEEDBYTES];
        crypto_generichash(derived, sizeof derived, (const unsigned char *)seed, strlen(seed), NULL, 0);
        crypto_sign_seed_keypair(pk, sk, derived);
    } else {
        crypto_sign_keypair(pk, sk);
    }
    sodium_bin2base64(pk64, sizeof pk64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    epfd = epoll_create1(0);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    char line[200];
    size_t have = 0;
    int step = 0;
    for (;;) {
        ssize_t n = read(0, line + have, sizeof line - 1 - have);
        if (n == 0) break;
        if (n > 0) have += n;
        line[have] = 0;
        char *nl = strchr(line, '\n');
        if (!nl) { poll_once(20); continue; }
        *nl = 0;
        double a = 0, b = 0;
        if (sscanf(line, "open %lf", &a) == 1) cmd_open((int)a);
        else if (sscanf(line, "touch %lf %lf", &a, &b) == 2) cmd_touch((int)a, (int)b);
        else if (sscanf(line, "chat %lf %lf", &a, &b) == 2) cmd_chat(a, b, ++step);
        else if (!strcmp(line, "quit")) break;
        else { printf("{\"error\":\"unknown command\"}\n"); fflush(stdout); }
        size_t used = nl + 1 - line;
        memmove(line, nl + 1, have - used);
        have -= used;
    }
    return 0;
}
