/* sensor/listen: `trawl sensor`, the live low-interaction listener. One
 * epoll loop, non-blocking sockets, no thread per connection. Each protocol
 * is answered just enough for a scanner to show its hand; nothing a client
 * sends is executed or forwarded. One event per connection (when it closes,
 * goes idle, or has sent what its protocol needs) or per datagram. */
/* accept4, struct in6_pktinfo */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sensor/sensor.h"
#include "sensor/sensor_internal.h"
#include "sensor/upstream.h"

const char tr_sensor_default_tcp[] =
    "21,22,23,25,80,81,110,143,443,445,1433,1723,2222,2323,2375,3306,3389,5432,5555,5900,"
    "6379,7547,8000,8080,8081,8443,8888,9200,11211,27017";
const char tr_sensor_default_udp[] = "53,123,161,1900,5060";

enum { TAG_TCP_LISTEN, TAG_UDP, TAG_CONN, TAG_SIGNAL, TAG_PCAP };

typedef struct lsock {
    int tag;
    int fd;
    uint16_t port;
    int role;
    bool wildcard;        /* bound to 0.0.0.0 or ::: a connection's own address needs asking */
    struct sockaddr_storage self;   /* else the address every connection here has */
} lsock;

typedef struct conn {
    int tag;
    int fd;
    int role;
    tr_responder r;       /* what has been answered so far */
    tr_event e;           /* addresses and start time; payload comes at the end */
    uint8_t *buf;
    size_t len, cap;
    double last;
    struct conn *prev, *next;   /* least recently active first */
} conn;

#define CONN_SPARE_MAX 256   /* finished connections kept for reuse, with a first buffer */
#define CONN_BUF_FIRST 4096

typedef struct loop {
    const tr_sensor_opts *o;
    int ep;
    conn *head, *tail;
    conn *spare;                 /* reusable records (through next) */
    size_t nspare;
    size_t nconns, memory;
    FILE *out;
    bool out_failed;
    tr_buf pending;              /* event lines not yet written to out */
    tr_upstream *up;
    tr_sinkq *q;                 /* the sink's writer thread */
    uint64_t events;
    pcap_t *pc;                  /* --pcap: the live capture and its decoder */
    int dlt;
    tr_pcap_decoder *dec;
    tr_import_stats cap_stats;
    tr_error cap_err;
    int pcap_tag;
} loop;

int tr_sensor_parse_ports(const char *list, tr_sensor_port **out, size_t *n, tr_error *err)
{
    *out = NULL;
    *n = 0;
    const char *p = list;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 65535) {
            free(*out);
            *out = NULL;
            return tr_fail(err, "bad port in '%s' (want PORT[/ROLE],...)", list);
        }
        *out = tr_xrealloc(*out, (*n + 1) * sizeof **out);
        tr_sensor_port *sp = &(*out)[(*n)++];
        memset(sp, 0, sizeof *sp);
        sp->port = (uint16_t)v;
        p = end;
        if (*p == '/') {
            size_t rl = strcspn(p + 1, ",");
            if (rl == 0 || rl >= sizeof sp->role) {
                free(*out);
                *out = NULL;
                return tr_fail(err, "bad role in '%s'", list);
            }
            memcpy(sp->role, p + 1, rl);
            p += 1 + rl;
        }
        if (*p == ',')
            p++;
        else if (*p) {
            free(*out);
            *out = NULL;
            return tr_fail(err, "bad port list '%s'", list);
        }
    }
    return 0;
}

static int role_of(const tr_sensor_port *p)
{
    if (strcmp(p->role, "ssh") == 0)
        return ROLE_SSH;
    if (strcmp(p->role, "telnet") == 0)
        return ROLE_TELNET;
    if (strcmp(p->role, "redis") == 0)
        return ROLE_REDIS;
    if (p->role[0])
        return ROLE_AUTO;
    if (p->port == 22 || p->port == 2222)
        return ROLE_SSH;
    if (p->port == 23 || p->port == 2323)
        return ROLE_TELNET;
    if (p->port == 6379)
        return ROLE_REDIS;
    return ROLE_AUTO;
}

static double now_mono(void)
{
    return tr_monotonic();
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sockaddr_to(const struct sockaddr_storage *ss, int *family, uint8_t ip[16],
                        uint16_t *port)
{
    memset(ip, 0, 16);
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        /* An IPv4 client on a dual-stack socket is an IPv4 client. */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            *family = 4;
            memcpy(ip, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            *family = 6;
            memcpy(ip, s6->sin6_addr.s6_addr, 16);
        }
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        *family = 4;
        memcpy(ip, &s4->sin_addr, 4);
        *port = ntohs(s4->sin_port);
    }
}

/* ---- output ----------------------------------------------------------------- */

static void emit(loop *l, tr_event *e)
{
    tr_error err;
    if (l->out) {
        /* Gathered and written once per turn of the loop (flush_out), whole
         * lines only: a write(2) per connection capped the accept rate, and
         * a reader of the file never sees half a line. */
        tr_event_json_line(e, &l->pending);
        tr_buf_append(&l->pending, "\n", 1);
    }
    if (l->up) {
        json_t *j = tr_event_to_json(e);
        if (tr_upstream_add(l->up, j, &err) != 0)
            tr_log(TR_LOG_ERROR, "sensor: %s", err.msg);
        json_decref(j);
    }
    if (l->q)
        tr_sinkq_push(l->q, e);
    l->events++;
}

static void flush_out(loop *l)
{
    if (!l->pending.len)
        return;
    size_t w = fwrite(l->pending.data, 1, l->pending.len, l->out);
    bool ok = w == l->pending.len && fflush(l->out) == 0;
    l->pending.len = 0;
    if (!ok && !l->out_failed) {
        /* Said once; the upstream copy, if any, still goes out. */
        tr_log(TR_LOG_ERROR, "sensor: cannot write events to %s: %s", l->o->out_path,
               strerror(errno));
        l->out_failed = true;
    }
}

/* ---- answers -------------------------------------------------------------- */

static void say(conn *c, const void *p, size_t n)
{
    /* Best effort: a full socket buffer means the client is not reading. */
    if (send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
        tr_log(TR_LOG_DEBUG, "sensor: send: %s", strerror(errno));
}

/* ---- connections -------------------------------------------------------- */

static void conn_unlink(loop *l, conn *c)
{
    if (c->prev) c->prev->next = c->next; else l->head = c->next;
    if (c->next) c->next->prev = c->prev; else l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_append(loop *l, conn *c)
{
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail) l->tail->next = c; else l->head = c;
    l->tail = c;
}

static void conn_finish(loop *l, conn *c)
{
    conn_unlink(l, c);
    /* close() takes the descriptor out of the epoll set (it is never
     * duplicated): no EPOLL_CTL_DEL system call per connection. */
    close(c->fd);
    if (c->role == ROLE_TELNET) {
        tr_event_set_payload(&c->e, c->buf, c->len);
        tr_parse_telnet(&c->e, c->buf, c->len);
    } else {
        tr_sensor_parse(&c->e, c->buf, c->len);
        if (strcmp(c->e.proto, "raw") == 0 && c->role == ROLE_SSH)
            strcpy(c->e.proto, "ssh");
        else if (strcmp(c->e.proto, "raw") == 0 && c->role == ROLE_REDIS && c->len)
            tr_parse_redis(&c->e, c->buf, c->len);
    }
    emit(l, &c->e);
    tr_event_clear(&c->e);
    l->memory -= c->cap;
    l->nconns--;
    /* A record and its first buffer are kept for the next connection: no
     * malloc/free pair per connection at a high rate. */
    if (l->nspare < CONN_SPARE_MAX && c->cap == CONN_BUF_FIRST) {
        c->len = 0;
        c->next = l->spare;
        l->spare = c;
        l->nspare++;
        return;
    }
    free(c->buf);
    free(c);
}

static conn *conn_new(loop *l)
{
    conn *c = l->spare;
    if (!c)
        return tr_xcalloc(1, sizeof *c);
    l->spare = c->next;
    l->nspare--;
    uint8_t *buf = c->buf;
    memset(c, 0, offsetof(conn, e));   /* e is initialised by the caller */
    c->buf = buf;
    c->cap = CONN_BUF_FIRST;
    c->prev = c->next = NULL;
    return c;
}

static void on_accept(loop *l, lsock *ls)
{
    for (;;) {
        struct sockaddr_storage peer, self;
        socklen_t pl = sizeof peer, sl = sizeof self;
        int fd = accept4(ls->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                tr_log(TR_LOG_WARN, "sensor: accept on %u: %s", ls->port, strerror(errno));
            return;
        }
        conn *c = conn_new(l);
        if (c->cap) {
            if (l->memory + c->cap > l->o->max_memory) {
                /* The spare buffer counts again once it is in use. */
                free(c->buf);
                c->buf = NULL;
                c->cap = 0;
            } else {
                l->memory += c->cap;
            }
        }
        c->tag = TAG_CONN;
        c->fd = fd;
        c->role = ls->role;
        tr_event_init(&c->e);
        c->e.time_us = now_us();
        snprintf(c->e.sensor, sizeof c->e.sensor, "%s", l->o->name);
        strcpy(c->e.transport, "tcp");
        c->e.handshake = true;
        int fam;
        sockaddr_to(&peer, &c->e.family, c->e.src_ip, &c->e.src_port);
        if (!ls->wildcard)
            sockaddr_to(&ls->self, &fam, c->e.dst_ip, &c->e.dst_port);
        else if (getsockname(fd, (struct sockaddr *)&self, &sl) == 0)
            sockaddr_to(&self, &fam, c->e.dst_ip, &c->e.dst_port);
        else
            c->e.dst_port = ls->port;
        c->last = now_mono();
        l->nconns++;
        conn_append(l, c);
        if (l->nconns > l->o->max_conns) {
            /* Full: the newest is recorded and closed, the others keep going. */
            tr_log(TR_LOG_WARN, "sensor: %zu connections open, closing a new one", l->nconns - 1);
            conn_finish(l, c);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_finish(l, c);
            continue;
        }
        tr_buf hello = {0};
        tr_responder_init(&c->r, c->role, &hello);
        if (hello.len)
            say(c, hello.data, hello.len);
        tr_buf_free(&hello);
    }
}

static void on_readable(loop *l, conn *c)
{
    for (;;) {
        if (c->len == c->cap) {
            if (c->cap >= TR_EVENT_PAYLOAD_MAX) {
                conn_finish(l, c);   /* it has sent all we keep */
                return;
            }
            size_t grow = c->cap ? c->cap : CONN_BUF_FIRST;
            if (c->cap + grow > TR_EVENT_PAYLOAD_MAX)
                grow = TR_EVENT_PAYLOAD_MAX - c->cap;
            if (l->memory + grow > l->o->max_memory) {
                tr_log(TR_LOG_WARN, "sensor: buffer memory full; closing %u early", c->e.src_port);
                conn_finish(l, c);
                return;
            }
            c->buf = tr_xrealloc(c->buf, c->cap + grow);
            c->cap += grow;
            l->memory += grow;
        }
        size_t room = c->cap - c->len;
        ssize_t r = recv(c->fd, c->buf + c->len, room, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r <= 0) {
            conn_finish(l, c);
            return;
        }
        c->len += (size_t)r;
        /* A short read took all that was queued; anything later (or the
         * close) wakes the level-triggered loop again. Not asking once more
         * saves a recv that would only say EAGAIN. */
        if ((size_t)r < room)
            break;
    }
    c->last = now_mono();
    conn_unlink(l, c);
    conn_append(l, c);
    tr_buf reply = {0};
    int done = tr_responder_step(&c->r, c->buf, c->len, &reply);
    if (reply.len)
        say(c, reply.data, reply.len);
    tr_buf_free(&reply);
    if (done)
        conn_finish(l, c);
}

static void on_datagram(loop *l, lsock *ls)
{
    for (;;) {
        uint8_t buf[65536];
        struct sockaddr_storage peer;
        char cbuf[256];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
        struct msghdr mh = {.msg_name = &peer, .msg_namelen = sizeof peer, .msg_iov = &iov,
                            .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t r = recvmsg(ls->fd, &mh, MSG_DONTWAIT);
        if (r < 0)
            return;
        tr_event e;
        tr_event_init(&e);
        e.time_us = now_us();
        snprintf(e.sensor, sizeof e.sensor, "%s", l->o->name);
        strcpy(e.transport, "udp");
        e.handshake = true;
        sockaddr_to(&peer, &e.family, e.src_ip, &e.src_port);
        e.dst_port = ls->port;
        /* The address the datagram was sent to, even on a wildcard socket. */
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                memcpy(e.dst_ip, &pi.ipi_addr, 4);
            } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                if (IN6_IS_ADDR_V4MAPPED(&pi.ipi6_addr))
                    memcpy(e.dst_ip, pi.ipi6_addr.s6_addr + 12, 4);
                else
                    memcpy(e.dst_ip, pi.ipi6_addr.s6_addr, 16);
            }
        }
        tr_event_set_payload(&e, buf, (size_t)r);
        strcpy(e.proto, "raw");
        emit(l, &e);
        tr_event_clear(&e);
    }
}

static void sweep(loop *l)
{
    double t = now_mono();
    while (l->head && t - l->head->last >= l->o->idle_seconds)
        conn_finish(l, l->head);
}

/* ---- live capture --------------------------------------------------------- */

static int capture_sink(void *ctx, tr_event *e, tr_error *err)
{
    emit(ctx, e);
    return 0;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *b)
{
    loop *l = (loop *)user;
    tr_pcap_decoder_packet(l->dec, l->dlt, h, b, -1);
}

/* Packets the listeners cannot see: SYN probes, and whole sessions to ports
 * nobody listens on (the kernel answers those with RST, the capture still
 * shows the SYN). Sessions a listener records are left to it. */
static int capture_open(loop *l, const lsock *ls, size_t nl, tr_error *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    l->pc = pcap_create(l->o->pcap_iface, ebuf);
    if (!l->pc)
        return tr_fail(err, "--pcap %s: %s", l->o->pcap_iface, ebuf);
    pcap_set_snaplen(l->pc, 65535);
    pcap_set_immediate_mode(l->pc, 1);
    pcap_set_buffer_size(l->pc, 8 << 20);
    int r = pcap_activate(l->pc);
    struct bpf_program prog;
    if (r < 0 || pcap_compile(l->pc, &prog, "tcp or udp", 1, PCAP_NETMASK_UNKNOWN) != 0 ||
        pcap_setfilter(l->pc, &prog) != 0 || pcap_setnonblock(l->pc, 1, ebuf) != 0) {
        tr_fail(err, "--pcap %s: %s", l->o->pcap_iface, pcap_geterr(l->pc));
        pcap_close(l->pc);
        l->pc = NULL;
        return -1;
    }
    pcap_freecode(&prog);
    l->dlt = pcap_datalink(l->pc);
    l->dec = tr_pcap_decoder_new(l->o->name, capture_sink, l, &l->cap_stats, &l->cap_err);
    for (size_t i = 0; i < nl; i++)
        if (ls[i].fd > 0)
            tr_pcap_decoder_skip_port(l->dec, ls[i].tag == TAG_UDP ? 17 : 6, ls[i].port);
    l->pcap_tag = TAG_PCAP;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->pcap_tag};
    int fd = pcap_get_selectable_fd(l->pc);
    if (fd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        tr_fail(err, "--pcap %s: no pollable descriptor", l->o->pcap_iface);
        return -1;
    }
    return 0;
}

static void capture_close(loop *l)
{
    if (!l->pc)
        return;
    tr_pcap_decoder_free(l->dec);
    struct pcap_stat ps;
    if (pcap_stats(l->pc, &ps) == 0)
        tr_log(TR_LOG_INFO, "sensor: capture on %s: %u packets, %u dropped by the kernel",
               l->o->pcap_iface, ps.ps_recv, ps.ps_drop);
    pcap_close(l->pc);
    l->pc = NULL;
}

/* ---- setup ---------------------------------------------------------------- */

static int open_socket(const char *bind_addr, uint16_t port, int type, tr_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof *s6;
    } else {
        return tr_fail(err, "--bind %s is not an IP address", bind_addr);
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tr_fail_errno(err, "socket");
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (type == SOCK_DGRAM) {
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        if (ss.ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        tr_fail_errno(err, "cannot listen on %s %s:%u", type == SOCK_DGRAM ? "udp" : "tcp",
                      bind_addr, port);
        close(fd);
        return -1;
    }
    /* A burst of scanners must not overflow the accept queue: a dropped
     * handshake costs the client a retransmission and the sensor its rate. */
    if (type == SOCK_STREAM && listen(fd, SOMAXCONN > 4096 ? SOMAXCONN : 4096) != 0) {
        tr_fail_errno(err, "listen %u", port);
        close(fd);
        return -1;
    }
    return fd;
}

/* The sensor parses bytes anyone on the internet chose: once its ports and
 * capture are open it needs no privilege, so a parser bug must not be root's.
 * The user is looked up before anything is opened, so a wrong name opens nothing. */
typedef struct run_as {
    const char *name;
    uid_t uid;
    gid_t gid;
} run_as;

static int find_user(const char *user, run_as *who, tr_error *err)
{
    who->name = user;
    if (!user)
        return 0;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t bufsz = sz > 0 ? (size_t)sz : 16384;
    char *buf = tr_xmalloc(bufsz);
    struct passwd pw, *found = NULL;
    int r = getpwnam_r(user, &pw, buf, bufsz, &found);
    if (found) {
        who->uid = pw.pw_uid;
        who->gid = pw.pw_gid;
    }
    free(buf);
    if (r != 0)
        return tr_fail(err, "--user %s: %s", user, strerror(r));
    if (!found)
        return tr_fail(err, "--user %s: no such user", user);
    if (geteuid() != 0 && (getuid() != who->uid || geteuid() != who->uid))
        return tr_fail(err, "--user %s: the sensor must start as root to change user", user);
    return 0;
}

static int become_user(const run_as *who, tr_error *err)
{
    if (!who->name) {
        if (geteuid() == 0)
            tr_log(TR_LOG_WARN, "sensor: running as root; --user USER drops root once the "
                                "ports are open");
        return 0;
    }
    if (geteuid() == 0) {
        if (initgroups(who->name, who->gid) != 0 || setgid(who->gid) != 0 ||
            setuid(who->uid) != 0)
            return tr_fail_errno(err, "--user %s: cannot change to that user", who->name);
        if (who->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
            return tr_fail(err, "--user %s: root could be regained after the change", who->name);
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    tr_log(TR_LOG_INFO, "sensor: running as %s (uid %u, gid %u)", who->name,
           (unsigned)who->uid, (unsigned)who->gid);
    return 0;
}

int tr_sensor_run(const tr_sensor_opts *o, tr_error *err)
{
    loop l = {.o = o};
    run_as who = {0};
    if (find_user(o->user, &who, err) != 0)
        return -1;
    /* Thousands of connections need thousands of descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGPIPE);
    /* Blocked before the upstream thread starts, so it inherits the mask. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    l.ep = epoll_create1(EPOLL_CLOEXEC);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (l.ep < 0 || sfd < 0)
        return tr_fail_errno(err, "epoll/signalfd");
    lsock sigtag = {.tag = TAG_SIGNAL, .fd = sfd};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &sigtag};
    epoll_ctl(l.ep, EPOLL_CTL_ADD, sfd, &sev);

    size_t nl = o->ntcp + o->nudp, bound = 0;
    lsock *ls = tr_xcalloc(nl ? nl : 1, sizeof *ls);
    tr_buf names = {0};
    int rc = -1;
    for (size_t i = 0; i < nl; i++) {
        int udp = i >= o->ntcp;
        const tr_sensor_port *p = udp ? &o->udp[i - o->ntcp] : &o->tcp[i];
        tr_error e2;
        ls[i].fd = open_socket(o->bind, p->port, udp ? SOCK_DGRAM : SOCK_STREAM, &e2);
        if (ls[i].fd < 0) {
            tr_log(TR_LOG_WARN, "sensor: %s", e2.msg);
            continue;
        }
        ls[i].tag = udp ? TAG_UDP : TAG_TCP_LISTEN;
        ls[i].port = p->port;
        ls[i].role = udp ? ROLE_AUTO : role_of(p);
        /* A socket bound to one address gives every connection that address:
         * getsockname per connection only for the wildcard. */
        socklen_t sl = sizeof ls[i].self;
        ls[i].wildcard = true;
        if (getsockname(ls[i].fd, (struct sockaddr *)&ls[i].self, &sl) == 0) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ls[i].self;
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ls[i].self;
            ls[i].wildcard = ls[i].self.ss_family == AF_INET
                                 ? s4->sin_addr.s_addr == htonl(INADDR_ANY)
                                 : IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ls[i]};
        epoll_ctl(l.ep, EPOLL_CTL_ADD, ls[i].fd, &ev);
        tr_buf_printf(&names, " %s/%u", udp ? "udp" : "tcp", p->port);
        bound++;
    }
    if (o->pcap_iface && capture_open(&l, ls, nl, err) != 0)
        goto out;
    if (bound == 0 && !o->pcap_iface) {
        tr_fail(err, "no port could be opened (see the warnings above)");
        goto out;
    }
    if (become_user(&who, err) != 0)
        goto out;
    if (o->sink && o->sink_open && o->sink_open(o->sink_ctx, err) != 0)
        goto out;
    if (o->out_path) {
        l.out = strcmp(o->out_path, "-") == 0 ? stdout : fopen(o->out_path, "a");
        if (!l.out) {
            tr_fail_errno(err, "cannot open %s", o->out_path);
            goto out;
        }
        setvbuf(l.out, NULL, _IONBF, 0);   /* one write(2) per turn, of whole lines */
    }
    if (o->sink) {
        /* 2 x 16k events waiting at most (~40 MB): a burst is absorbed, a store
         * slower than the arrivals for longer slows the accepts down. */
        l.q = tr_sinkq_start(o->sink, o->sink_flush, o->sink_ctx, o->batch_seconds, 16384, err);
        if (!l.q)
            goto out;
    }
    if (o->upstream) {
        l.up = tr_upstream_start(o->upstream, o->key, o->spool_dir, err);
        if (!l.up)
            goto out;
        tr_log(TR_LOG_INFO,
               "sensor: events gather for %d s before each batch is spooled to %s; killing the "
               "sensor (SIGKILL) loses at most that batch",
               o->batch_seconds, o->spool_dir);
    }
    tr_log(TR_LOG_INFO, "sensor %s listening on %s:%s", o->name, o->bind, names.data);
    fprintf(stderr, "sensor listening\n");
    fflush(stderr);

    double last_batch = now_mono();
    bool running = true;
    while (running) {
        struct epoll_event evs[256];
        int n = epoll_wait(l.ep, evs, 256, 500);
        if (n < 0 && errno != EINTR) {
            tr_fail_errno(err, "epoll_wait");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            int tag = *(int *)evs[i].data.ptr;
            if (tag == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si)
                    if (si.ssi_signo != SIGPIPE)
                        running = false;
            } else if (tag == TAG_TCP_LISTEN) {
                on_accept(&l, evs[i].data.ptr);
            } else if (tag == TAG_PCAP) {
                pcap_dispatch(l.pc, 256, on_packet, (u_char *)&l);
            } else if (tag == TAG_UDP) {
                on_datagram(&l, evs[i].data.ptr);
            } else {
                /* A connection appears once per batch, so freeing it here
                 * leaves no later entry pointing at it. */
                on_readable(&l, evs[i].data.ptr);
            }
        }
        sweep(&l);
        if (l.out)
            flush_out(&l);
        if (l.dec)
            tr_pcap_decoder_tick(l.dec, now_us());
        if (now_mono() - last_batch >= o->batch_seconds) {
            tr_error e2;
            if (l.up && tr_upstream_flush(l.up, &e2) != 0)
                tr_log(TR_LOG_ERROR, "sensor: %s", e2.msg);
            last_batch = now_mono();
        }
    }
    /* Connections still open are recorded as they stand. */
    while (l.head)
        conn_finish(&l, l.head);
    capture_close(&l);
    if (l.out)
        flush_out(&l);
    tr_log(TR_LOG_INFO, "sensor: stopping after %llu events", (unsigned long long)l.events);
    rc = 0;
out:
    capture_close(&l);
    tr_sinkq_stop(l.q);
    if (l.up)
        tr_upstream_stop(l.up);
    if (l.out && l.out != stdout)
        fclose(l.out);
    for (size_t i = 0; i < nl; i++)
        if (ls[i].fd > 0)
            close(ls[i].fd);
    free(ls);
    tr_buf_free(&names);
    tr_buf_free(&l.pending);
    while (l.spare) {
        conn *c = l.spare;
        l.spare = c->next;
        free(c->buf);
        free(c);
    }
    close(sfd);
    close(l.ep);
    return rc;
}
