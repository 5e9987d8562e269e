/*
 * wanem: the testnet's wan switch with delay, jitter and loss, for kernels built without
 * sch_netem. Runs inside mn-wan in place of the kernel bridge: it reads every frame that
 * enters one of its ports (the mn-wan ends of the hosts' veth links) through an AF_PACKET
 * socket, learns source MAC addresses, and sends the frame out of the destination port (or
 * every other port, for broadcast and unknown destinations) once the delay of both links has
 * passed. Each link direction adds DELAY ms plus normally distributed jitter (JITTER ms
 * standard deviation) and drops LOSS percent of the frames, as netem on both ends would.
 *
 *   wanem CONFIG
 *
 * CONFIG has one line per port: "IFNAME DELAY_MS JITTER_MS LOSS_PCT". SIGHUP re-reads it
 * (the set of ports must stay the same); SIGTERM and SIGINT stop it. Frames are queued at
 * most MAX_QUEUED at a time; past that they are dropped, as a full netem queue does.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64
#define MAX_MACS 256
#define MAX_QUEUED 20000
#define MAX_FRAME 65536
#define BURST 64

struct port {
    char name[IF_NAMESIZE];
    int ifindex;
    int fd;
    double delay_ms, jitter_ms, loss_pct;
};

struct frame {
    uint64_t due_ns;
    uint64_t seq;
    int out;
    size_t len;
    unsigned char data[];
};

static struct port ports[MAX_PORTS];
static int nports;
static struct { unsigned char mac[6]; int port; } macs[MAX_MACS];
static int nmacs;
static struct frame *heap[MAX_QUEUED];
static int nheap;
static uint64_t seq;
static volatile sig_atomic_t reload, stop;
static unsigned long long dropped_loss, dropped_full, send_errors;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double uniform(void) { return (random() + 1.0) / ((double)RAND_MAX + 2.0); }

static double normal(void) { return sqrt(-2.0 * log(uniform())) * cos(2.0 * M_PI * uniform()); }

/* The delay of one link direction in ns, or -1 when the frame is lost on it. */
static int64_t link_delay(const struct port *p) {
    if (p->loss_pct > 0 && uniform() * 100.0 < p->loss_pct) return -1;
    double ms = p->delay_ms + (p->jitter_ms > 0 ? p->jitter_ms * normal() : 0);
    if (ms < 0) ms = 0;
    return (int64_t)(ms * 1e6);
}

static int earlier(const struct frame *a, const struct frame *b) {
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(struct frame *f) {
    int i = nheap++;
    heap[i] = f;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!earlier(heap[i], heap[parent])) break;
        struct frame *t = heap[i]; heap[i] = heap[parent]; heap[parent] = t;
        i = parent;
    }
}

static struct frame *heap_pop(void) {
    struct frame *top = heap[0];
    heap[0] = heap[--nheap];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < nheap && earlier(heap[l], heap[m])) m = l;
        if (r < nheap && earlier(heap[r], heap[m])) m = r;
        if (m == i) break;
        struct frame *t = heap[i]; heap[i] = heap[m]; heap[m] = t;
        i = m;
    }
    return top;
}

static int lookup_mac(const unsigned char *mac) {
    for (int i = 0; i < nmacs; i++)
        if (memcmp(macs[i].mac, mac, 6) == 0) return macs[i].port;
    return -1;
}

static void learn_mac(const unsigned char *mac, int port) {
    if (mac[0] & 1) return;
    for (int i = 0; i < nmacs; i++)
        if (memcmp(macs[i].mac, mac, 6) == 0) { macs[i].port = port; return; }
    if (nmacs < MAX_MACS) { memcpy(macs[nmacs].mac, mac, 6); macs[nmacs].port = port; nmacs++; }
}

static int find_port(const char *name) {
    for (int i = 0; i < nports; i++)
        if (strcmp(ports[i].name, name) == 0) return i;
    return -1;
}

static int read_config(const char *path, int initial) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return -1; }
    char name[IF_NAMESIZE];
    double d, j, l;
    int n = 0;
    while (fscanf(f, "%15s %lf %lf %lf", name, &d, &j, &l) == 4) {
        int i = initial ? nports : find_port(name);
        if (initial) {
            if (nports == MAX_PORTS) { fprintf(stderr, "wanem: too many ports\n"); fclose(f); return -1; }
            snprintf(ports[i].name, sizeof ports[i].name, "%s", name);
            nports++;
        } else if (i < 0) {
            fprintf(stderr, "wanem: reload: unknown port %s ignored\n", name);
            continue;
        }
        ports[i].delay_ms = d;
        ports[i].jitter_ms = j;
        ports[i].loss_pct = l;
        n++;
    }
    fclose(f);
    return n;
}

static int open_port(struct port *p) {
    p->ifindex = (int)if_nametoindex(p->name);
    if (!p->ifindex) { fprintf(stderr, "wanem: no interface %s\n", p->name); return -1; }
    p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (p->fd < 0) { perror("socket"); return -1; }
    int one = 1;
    /* Frames this program sends out of the port must not come back as input. */
    if (setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) { perror("PACKET_IGNORE_OUTGOING"); return -1; }
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = p->ifindex };
    if (bind(p->fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); return -1; }
    struct packet_mreq mr = { .mr_ifindex = p->ifindex, .mr_type = PACKET_MR_PROMISC };
    setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
    return 0;
}

static void enqueue(int in, int out, const unsigned char *data, size_t len, uint64_t now) {
    int64_t up = link_delay(&ports[in]);
    int64_t down = up < 0 ? -1 : link_delay(&ports[out]);
    if (up < 0 || down < 0) { dropped_loss++; return; }
    if (nheap == MAX_QUEUED) { dropped_full++; return; }
    struct frame *f = malloc(sizeof *f + len);
    if (!f) { dropped_full++; return; }
    f->due_ns = now + (uint64_t)up + (uint64_t)down;
    f->seq = seq++;
    f->out = out;
    f->len = len;
    memcpy(f->data, data, len);
    heap_push(f);
}

static void on_signal(int sig) {
    if (sig == SIGHUP) reload = 1; else stop = 1;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: wanem CONFIG\n"); return 2; }
    if (read_config(argv[1], 1) < 1) { fprintf(stderr, "wanem: no ports in %s\n", argv[1]); return 2; }
    for (int i = 0; i < nports; i++)
        if (open_port(&ports[i]) < 0) return 1;
    srandom((unsigned)now_ns());
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static unsigned char buf[MAX_FRAME];
    struct pollfd pfd[MAX_PORTS];
    for (int i = 0; i < nports; i++) pfd[i] = (struct pollfd){ .fd = ports[i].fd, .events = POLLIN };
    fprintf(stderr, "wanem: switching %d ports\n", nports);

    while (!stop) {
        if (reload) { reload = 0; read_config(argv[1], 0); }
        int timeout = -1;
        if (nheap) {
            uint64_t now = now_ns();
            timeout = heap[0]->due_ns <= now ? 0 : (int)((heap[0]->due_ns - now + 999999) / 1000000);
        }
        int ready = poll(pfd, (nfds_t)nports, timeout);
        if (ready < 0 && errno != EINTR) { perror("poll"); return 1; }
        uint64_t now = now_ns();
        for (int i = 0; ready > 0 && i < nports; i++) {
            if (!(pfd[i].revents & POLLIN)) continue;
            for (int k = 0; k < BURST; k++) {
                ssize_t n = recv(ports[i].fd, buf, sizeof buf, 0);
                if (n < 0) break;
                if (n < 14) continue;
                learn_mac(buf + 6, i);
                int out = (buf[0] & 1) ? -1 : lookup_mac(buf);
                if (out == i) continue;
                if (out >= 0) {
                    enqueue(i, out, buf, (size_t)n, now);
                } else {
                    for (int j = 0; j < nports; j++)
                        if (j != i) enqueue(i, j, buf, (size_t)n, now);
                }
            }
        }
        now = now_ns();
        while (nheap && heap[0]->due_ns <= now) {
            struct frame *f = heap_pop();
            if (send(ports[f->out].fd, f->data, f->len, 0) < 0) send_errors++;
            free(f);
        }
    }
    fprintf(stderr, "wanem: stopped; lost %llu, queue full %llu, send errors %llu\n",
            dropped_loss, dropped_full, send_errors);
    return 0;
}
