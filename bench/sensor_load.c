/* bench/sensor_load: a bounded connection load on a local `trawl sensor`.
 * Opens connections to 127.0.0.1:PORT (never any other address) with
 * non-blocking connects, at most CONCURRENCY at once, COUNT in all, at most
 * RATE new ones per second (0: as fast as they complete) and for at most
 * SECONDS. Each sends one HTTP request, reads the answer until the sensor
 * closes, and closes: one event per connection on the sensor's side.
 *
 * usage: sensor_load PORT COUNT [CONCURRENCY [RATE [SECONDS]]]
 * prints: sent, completed, failed, seconds, completed/s (one line). */
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

static const char request[] = "GET /load HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sensor_load\r\n\r\n";

int main(int argc, char **argv)
{
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
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
                failed++;
                close(fd);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            open++;
        }
        struct epoll_event evs[512];
        int n = epoll_wait(ep, evs, 512, 10);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (evs[i].events & EPOLLOUT) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
                if (e != 0 || send(fd, request, sizeof request - 1, MSG_NOSIGNAL) < 0) {
                    failed++;
                    open--;
                    close(fd);
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
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
