/* Text extraction in a process of its own. A report comes from the web and
 * is attacker-authored; poppler, GMime and libxml2 are large parsers. Run in
 * the server, a crash in one of them ends the server, and a memory bug in
 * one runs with the server's keys and data. So the document goes to a fresh
 * process: trawl's own binary, exec'd (no lock or thread of the caller is
 * inherited, unlike a bare fork of a threaded server), with no descriptor
 * but its socket and standard error (poppler's and GLib's warnings go to the
 * server's log), limits on CPU time, memory and core files, and a deadline.
 * It answers with the extracted document in the frames below. */
/* posix_spawn_file_actions_addclosefrom_np */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/report_internal.h"

extern char **environ;

/* Frames: "TRDOC1", then (tag, u32 little-endian length, bytes)... ending
 * with ('Z', 0). 'E' carries an extraction error instead of a document. */
static const char MAGIC[6] = {'T', 'R', 'D', 'O', 'C', '1'};
enum {
    F_FORMAT = 'F', F_CHARSET = 'C', F_TEXT = 'T', F_TITLE = 'I', F_PUBLISHED = 'P',
    F_LINK = 'L', F_ERROR = 'E', F_END = 'Z',
};
#define MAX_LINKS 1000000u

static void put_frame(tr_buf *b, char tag, const void *p, size_t n)
{
    unsigned char h[5] = {(unsigned char)tag, (unsigned char)n, (unsigned char)(n >> 8),
                          (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    tr_buf_append(b, h, sizeof h);
    if (n)
        tr_buf_append(b, p, n);
}

void tr_doc_encode(const tr_doc *d, const char *error, tr_buf *out)
{
    tr_buf_append(out, MAGIC, sizeof MAGIC);
    if (error) {
        put_frame(out, F_ERROR, error, strlen(error));
    } else {
        unsigned char f = (unsigned char)d->format;
        put_frame(out, F_FORMAT, &f, 1);
        put_frame(out, F_CHARSET, d->charset, strlen(d->charset));
        put_frame(out, F_TEXT, d->text, d->len);
        if (d->title)
            put_frame(out, F_TITLE, d->title, strlen(d->title));
        if (d->published)
            put_frame(out, F_PUBLISHED, d->published, strlen(d->published));
        for (size_t i = 0; i < d->nlinks; i++)
            put_frame(out, F_LINK, d->links[i], strlen(d->links[i]));
    }
    put_frame(out, F_END, NULL, 0);
}

static char *dup_text(const unsigned char *p, size_t n)
{
    char *s = tr_xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* The child is not trusted either: every length is checked, every string
 * must be free of NULs, as tr_doc_extract promises its callers. */
int tr_doc_decode(const unsigned char *p, size_t n, tr_doc *out, tr_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < sizeof MAGIC || memcmp(p, MAGIC, sizeof MAGIC) != 0)
        return tr_fail(err, "the text extractor answered something else than a document");
    size_t at = sizeof MAGIC;
    bool have_format = false, have_text = false, ended = false;
    char error[sizeof err->msg] = "";
    while (!ended) {
        if (n - at < 5) {
            tr_doc_free(out);
            return tr_fail(err, "the text extractor's answer is cut short");
        }
        char tag = (char)p[at];
        size_t len = (size_t)p[at + 1] | (size_t)p[at + 2] << 8 | (size_t)p[at + 3] << 16 |
                     (size_t)p[at + 4] << 24;
        at += 5;
        if (len > n - at) {
            tr_doc_free(out);
            return tr_fail(err, "the text extractor's answer is cut short");
        }
        const unsigned char *v = p + at;
        at += len;
        bool dup = false, bad = memchr(v, 0, len) != NULL;
        switch (tag) {
        case F_END:
            ended = true;
            bad = len != 0 || at != n;
            break;
        case F_FORMAT:
            dup = have_format;
            have_format = true;
            bad = len != 1 || v[0] > TR_DOC_EML;
            if (!bad)
                out->format = (tr_doc_format)v[0];
            break;
        case F_CHARSET:
            bad = bad || len >= sizeof out->charset;
            if (!bad) {
                memcpy(out->charset, v, len);
                out->charset[len] = 0;
            }
            break;
        case F_TEXT:
            dup = have_text;
            have_text = true;
            if (!bad && !dup) {
                out->text = dup_text(v, len);
                out->len = len;
            }
            break;
        case F_TITLE:
            dup = out->title != NULL;
            if (!bad && !dup)
                out->title = dup_text(v, len);
            break;
        case F_PUBLISHED:
            dup = out->published != NULL;
            if (!bad && !dup)
                out->published = dup_text(v, len);
            break;
        case F_LINK:
            bad = bad || out->nlinks >= MAX_LINKS;
            if (!bad)
                report_doc_add_link(out, dup_text(v, len));
            break;
        case F_ERROR:
            dup = error[0] != 0;
            if (!bad && !dup)
                snprintf(error, sizeof error, "%.*s", (int)(len < sizeof error ? len : sizeof error - 1),
                         (const char *)v);
            break;
        default:
            bad = true;
        }
        if (bad || dup) {
            tr_doc_free(out);
            return tr_fail(err, "the text extractor's answer is malformed (frame '%c')",
                           tag >= ' ' && tag < 0x7f ? tag : '?');
        }
    }
    if (error[0]) {
        tr_doc_free(out);
        return tr_fail(err, "%s", error);
    }
    if (!have_format || !have_text) {
        tr_doc_free(out);
        return tr_fail(err, "the text extractor's answer has no %s", have_text ? "format" : "text");
    }
    return 0;
}

/* ---- the child ------------------------------------------------------------- */

bool tr_doc_helper_requested(int argc, char **argv)
{
    return argc >= 2 && strcmp(argv[1], TR_DOC_HELPER_ARG) == 0;
}

static void limit(int resource, rlim_t value)
{
    struct rlimit r = {value, value};
    struct rlimit cur;
    if (getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY && cur.rlim_max < value)
        r.rlim_cur = r.rlim_max = cur.rlim_max;
    (void)setrlimit(resource, &r);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TR_UNDER_ASAN 1
#endif

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int tr_doc_helper_main(int argc, char **argv)
{
    const char *name = argc >= 3 ? argv[2] : "";
    limit(RLIMIT_CPU, TR_DOC_EXTRACT_SECONDS);
    limit(RLIMIT_CORE, 0);
#ifndef TR_UNDER_ASAN
    /* The sanitizers reserve terabytes of address space up front. */
    limit(RLIMIT_AS, (rlim_t)TR_DOC_EXTRACT_MEMORY);
#endif
    tr_buf in = {0};
    char chunk[65536];
    for (;;) {
        ssize_t r = read(0, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return 2;
        if (r == 0)
            break;
        if (in.len + (size_t)r > TR_REPORT_MAX_INPUT + 1)
            return 2;
        tr_buf_append(&in, chunk, (size_t)r);
    }
    tr_doc d;
    tr_error err;
    tr_buf out = {0};
    if (tr_doc_extract((const unsigned char *)(in.data ? in.data : ""), in.len, name, &d, &err) == 0) {
        tr_doc_encode(&d, NULL, &out);
        tr_doc_free(&d);
    } else {
        tr_doc_encode(NULL, err.msg, &out);
    }
    tr_buf_free(&in);
    int rc = write_all(1, out.data, out.len) == 0 ? 0 : 2;
    tr_buf_free(&out);
    return rc;
}

/* ---- the parent ------------------------------------------------------------ */

static int spawn_helper(const char *name, int sock, pid_t *pid, tr_error *err)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return tr_fail(err, "out of memory");
    int rc = posix_spawn_file_actions_adddup2(&fa, sock, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, sock, 1);
    /* The server's listening socket, database and key files stay behind. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* A server thread's blocked or ignored signals would carry over exec. */
    posix_spawnattr_t at;
    bool have_at = rc == 0 && posix_spawnattr_init(&at) == 0;
    if (rc == 0 && !have_at)
        rc = ENOMEM;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGXCPU);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &dfl);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"trawl", TR_DOC_HELPER_ARG, (char *)(name ? name : ""), NULL};
    if (rc == 0)
        rc = posix_spawn(pid, "/proc/self/exe", &fa, &at, argv, environ);
    if (have_at)
        posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return tr_fail_errno(err, "cannot start the text extractor");
    }
    return 0;
}

static int deadline_ms(double deadline)
{
    double left = deadline - tr_monotonic();
    return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

int tr_doc_extract_isolated(const unsigned char *data, size_t len, const char *name, tr_doc *out,
                            tr_error *err)
{
    memset(out, 0, sizeof *out);
    /* What the parent refuses itself costs no process. */
    if (report_doc_size_check(len, err) != 0)
        return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return tr_fail_errno(err, "cannot create a socket for the text extractor");
    pid_t pid;
    /* The child's end loses O_CLOEXEC only in the child, through dup2. */
    if (spawn_helper(name, sv[1], &pid, err) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    int fd = sv[0];
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    double deadline = tr_monotonic() + TR_DOC_EXTRACT_SECONDS + 5;
    size_t sent = 0;
    bool timed_out = false, cut = false;
    tr_buf ans = {0};
    bool write_open = true;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (write_open ? POLLOUT : 0)};
        int pr = poll(&pfd, 1, deadline_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        if (write_open && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == len) {
                shutdown(fd, SHUT_WR);
                write_open = false;
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            char chunk[65536];
            ssize_t r = recv(fd, chunk, sizeof chunk, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                break;
            /* Text of a 32 MiB document: UTF-16 grows by half, plus links. */
            if (ans.len + (size_t)r > (size_t)4 * TR_REPORT_MAX_INPUT) {
                cut = true;
                break;
            }
            tr_buf_append(&ans, chunk, (size_t)r);
        }
    }
    close(fd);
    if (timed_out || cut)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int rc;
    if (timed_out) {
        rc = tr_fail(err, "text extraction took longer than %d s and was stopped: nothing imported",
                     TR_DOC_EXTRACT_SECONDS);
    } else if (cut) {
        rc = tr_fail(err, "the text extractor's answer is too large: nothing imported");
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGXCPU)
            rc = tr_fail(err, "the document used up the text extractor's %d s of CPU time: "
                              "nothing imported", TR_DOC_EXTRACT_SECONDS);
        else if (sig == SIGKILL)
            rc = tr_fail(err, "the text extractor was killed (signal 9; out of memory?): "
                              "nothing imported");
        else
            rc = tr_fail(err, "the document crashed the text extractor (signal %d): nothing "
                              "imported", sig);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = tr_fail(err, "the text extractor failed (exit status %d): nothing imported",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        rc = tr_doc_decode((const unsigned char *)ans.data, ans.len, out, err);
    }
    tr_buf_free(&ans);
    return rc;
}
