/* bench/sensor_load: a bounded connection load on a local `trawl sensor`.
 * Opens connections to 127.0.0.1:PORT (never any other address) with
 * non-blocking connects, at most CONCURRENCY at once, COUNT in all, at most
 * RATE new ones per second (0: as fast as they complete) and for at most
 * SECONDS. Each sends one HTTP request, reads the answer until the sensor
 * closes, and closes: one event per connection on the sensor's side.
 * Per connection the client makes: socket, connect, one epoll_ctl (the
 * descriptor waits edge-triggered for both "connected" and "readable"), send,
 * recv until the close, close with SO_LINGER 0 (an RST: the server's side
 * ends at once instead of lingering in FIN_WAIT/TIME_WAIT).
 *
 * usage: sensor_load PORT COUNT [CONCURRENCY [RATE [SECONDS]]]
 * prints: sent, completed, failed, seconds, completed/s (one line).
 *
 * usage: sensor_load serve PORT SECONDS
 * The fair peer for a rate on this machine: the least a server can do per
 * connection (accept, one recv, one send of a fixed answer, close; no
 * parsing, no event) on 127.0.0.1:PORT, for SECONDS or until SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define FD_MAX 65536
static unsigned char sent_on[FD_MAX];   /* the request went out on this descriptor */

static const char request[] = "GET /load HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sensor_load\r\n\r\n";

static int serve(long port, double limit)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ep = epoll_create1(0);
    if (ls < 0 || ep < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(ls, 4096) != 0) {
        perror("serve");
        return 1;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    fprintf(stderr, "serve listening\n");
    static const char answer[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    char buf[4096];
    double end = now() + limit;
    while (now() < end) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r > 0)
                send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "serve") == 0) {
        long port = strtol(argv[2], NULL, 10);
        double limit = strtod(argv[3], NULL);
        if (port < 1 || port > 65535 || limit <= 0 || limit > 3600) {
            fprintf(stderr, "sensor_load: bad arguments\n");
            return 2;
        }
        return serve(port, limit);
    }
    if (argc < 3) {
        fprintf(stderr, "usage: sensor_load PORT COUNT [CONCURRENCY [RATE [SECONDS]]]\n");
        return 2;
    }
    long port = strtol(argv[1], NULL, 10), count = strtol(argv[2], NULL, 10);
    long conc = argc > 3 ? strtol(argv[3], NULL, 10) : 256;
    double rate = argc > 4 ? strtod(argv[4], NULL) : 0;
    double limit = argc > 5 ? strtod(argv[5], NULL) : 60;
    if (port < 1 || port > 65535 || count < 1 || count > 10000000 || conc < 1 || conc > 20000 ||
        rate < 0 || limit <= 0 || limit > 600) {
        fprintf(stderr, "sensor_load: bad arguments\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);   /* 127.0.0.1 only */
    int ep = epoll_create1(0);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }
    long sent = 0, done = 0, failed = 0, open = 0;
    double t0 = now(), end = t0 + limit;
    char buf[4096];
    while ((sent < count || open > 0) && now() < end) {
        /* New connections up to the concurrency and the rate so far. */
        while (sent < count && open < conc && (rate <= 0 || sent < (now() - t0) * rate + 1)) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                failed++;
                sent++;
                break;
            }
            sent++;
            if (fd >= FD_MAX) {
                failed++;
                close(fd);
                continue;
            }
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
                failed++;
                close(fd);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET,
                                     .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            open++;
        }
        struct epoll_event evs[512];
        int n = epoll_wait(ep, evs, 512, 10);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            /* Edge-triggered: "connected" comes once (the request goes out
             * then; a failed connect fails the send), "readable" once per
             * arrival, and both may come in one event. */
            if ((evs[i].events & EPOLLOUT) && !(evs[i].events & (EPOLLIN | EPOLLRDHUP))) {
                /* Later "writable" edges (acknowledged data) send nothing more. */
                if (!sent_on[fd] && send(fd, request, sizeof request - 1, MSG_NOSIGNAL) < 0) {
                    failed++;
                    open--;
                    close(fd);
                    continue;
                }
                sent_on[fd] = 1;
                continue;
            }
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0)
                    continue;
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r == 0)
                    done++;
                else
                    failed++;
                open--;
                sent_on[fd] = 0;
                struct linger lg = {.l_onoff = 1, .l_linger = 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                close(fd);
                break;
            }
        }
    }
    double t = now() - t0;
    printf("sent %ld completed %ld failed %ld unfinished %ld seconds %.3f rate %.0f\n", sent, done,
           failed, open, t, done / t);
    return 0;
}
