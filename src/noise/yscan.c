/* libyara for tag rules, in a forked child.
 *
 * Why not the hunt module's verifier (hunt/verify.c): its tasks are sample
 * files scanned by path with the five hunt externals, behind hunt's private
 * header. Tag rules scan events held in memory, with some forty externals
 * set per event, and the answer is needed inside the ingest transaction.
 * The same isolation is kept with a smaller child: the parent never calls
 * libyara; a child compiles (and saves the rules) or loads them and scans a
 * batch, and writes one line per match to a pipe. A rule that kills libyara
 * kills the child, and the parent says which event it was judging. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yara.h>

#include "noise/noise_internal.h"

const char *const tr_noise_int_externals[] = {
    "src_port", "dst_port",   "ip_id",      "ttl",        "tcp_window", "tcp_flags", "tcp_seq",
    "src_ip_int", "dst_ip_int", "handshake", "packets",  "payload_len", "family"};
const size_t tr_noise_int_nexternals =
    sizeof tr_noise_int_externals / sizeof tr_noise_int_externals[0];

/* The first six are the event's own; the rest are tr_event fields. */
#define OWN_STR 6
const char *const tr_noise_str_externals[] = {
    "sensor", "src_ip", "dst_ip", "transport", "proto", "tcp_options",
    "http_method", "http_path", "http_query", "http_version", "http_user_agent", "http_host",
    "http_content_type", "ssh_client", "hassh", "ja3", "ja3_hash", "ja4", "tls_sni",
    "smb_dialects", "smb_compression", "rdp_cookie", "redis_command", "username", "password",
    "command", "download_url", "scanner"};
const size_t tr_noise_str_nexternals =
    sizeof tr_noise_str_externals / sizeof tr_noise_str_externals[0];

static int64_t ip_int(const tr_event *e, const uint8_t *a)
{
    if (e->family != 4)
        return -1;
    return ((int64_t)a[0] << 24) | ((int64_t)a[1] << 16) | ((int64_t)a[2] << 8) | a[3];
}

static int64_t int_external(const tr_event *e, size_t i)
{
    switch (i) {
    case 0: return e->src_port;
    case 1: return e->dst_port;
    case 2: return e->ip_id;
    case 3: return e->ttl;
    case 4: return e->tcp_window;
    case 5: return e->tcp_flags;
    case 6: return e->tcp_seq;
    case 7: return ip_int(e, e->src_ip);
    case 8: return ip_int(e, e->dst_ip);
    case 9: return e->handshake ? 1 : 0;
    case 10: return e->packets;
    case 11: return (int64_t)e->payload_len;
    default: return e->family;
    }
}

/* ---- the child ------------------------------------------------------------ */

typedef struct child_out {
    int fd;
    char first_error[512];
} child_out;

static void child_write(int fd, const char *s)
{
    if (tr_write_all(fd, s, strlen(s)) != 0)
        _exit(4);
}

static void on_compile_error(int level, const char *file, int line, const YR_RULE *rule,
                             const char *msg, void *arg)
{
    child_out *o = arg;
    if (level == YARA_ERROR_LEVEL_ERROR && !o->first_error[0])
        snprintf(o->first_error, sizeof o->first_error, "%s(%d): %s", file ? file : "tag", line,
                 msg);
}

static int define_all(YR_COMPILER *c)
{
    for (size_t i = 0; i < tr_noise_int_nexternals; i++)
        if (yr_compiler_define_integer_variable(c, tr_noise_int_externals[i], -1) != ERROR_SUCCESS)
            return -1;
    for (size_t i = 0; i < tr_noise_str_nexternals; i++)
        if (yr_compiler_define_string_variable(c, tr_noise_str_externals[i], "") != ERROR_SUCCESS)
            return -1;
    return 0;
}

static void child_compile(const noise_src *src, size_t n, const char *yarc_path, int fd)
{
    child_out o = {.fd = fd};
    YR_COMPILER *c = NULL;
    if (yr_initialize() != ERROR_SUCCESS || yr_compiler_create(&c) != ERROR_SUCCESS) {
        child_write(fd, "X cannot start libyara\n");
        _exit(1);
    }
    yr_compiler_set_callback(c, on_compile_error, &o);
    /* Tag rules come from the network too: libyara never opens a file. */
    yr_compiler_set_include_callback(c, NULL, NULL, NULL);
    if (define_all(c) != 0) {
        child_write(fd, "X cannot declare the external variables\n");
        _exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        char ns[32];
        snprintf(ns, sizeof ns, "t%zu", i);
        yr_compiler_set_callback(c, on_compile_error, &o);
        if (yr_compiler_add_string(c, src[i].text, ns) != 0) {
            char line[700];
            snprintf(line, sizeof line, "X %s: %s\n", src[i].name, o.first_error);
            for (char *p = line + 2; *p && p[1]; p++)
                if (*p == '\n')
                    *p = ' ';
            child_write(fd, line);
            _exit(1);
        }
    }
    YR_RULES *rules = NULL;
    if (yr_compiler_get_rules(c, &rules) != ERROR_SUCCESS) {
        child_write(fd, "X libyara could not build the rules\n");
        _exit(1);
    }
    char *tmp = tr_xasprintf("%s.tmp%ld", yarc_path, (long)getpid());
    if (yr_rules_save(rules, tmp) != ERROR_SUCCESS || rename(tmp, yarc_path) != 0) {
        unlink(tmp);
        child_write(fd, "X cannot save the compiled tag rules\n");
        _exit(1);
    }
    child_write(fd, "D\n");
    _exit(0);
}

typedef struct scan_ctx {
    int fd;
    size_t ev;
} scan_ctx;

static int scan_callback(YR_SCAN_CONTEXT *ctx, int message, void *message_data, void *user)
{
    (void)ctx;
    if (message != CALLBACK_MSG_RULE_MATCHING)
        return CALLBACK_CONTINUE;
    scan_ctx *s = user;
    YR_RULE *rule = message_data;
    const char *name = rule->identifier;
    char num[32];
    YR_META *m;
    /* The tag's name as trawl's parser reads the meta (tags.c). */
    yr_rule_metas_foreach(rule, m)
    {
        if (strcmp(m->identifier, "name") != 0)
            continue;
        if (m->type == META_TYPE_STRING && m->string)
            name = m->string;
        else if (m->type == META_TYPE_BOOLEAN)
            name = m->integer ? "true" : "false";
        else if (m->type == META_TYPE_INTEGER) {
            snprintf(num, sizeof num, "%lld", (long long)m->integer);
            name = num;
        }
        break;
    }
    char line[400];
    snprintf(line, sizeof line, "M %zu %s\n", s->ev, name);
    for (char *p = line + 2; *p && p[1]; p++)
        if (*p == '\n')
            *p = ' ';
    child_write(s->fd, line);
    return CALLBACK_CONTINUE;
}

static void child_scan(const char *yarc_path, const tr_event *evs, size_t n, int fd,
                       _Atomic size_t *current)
{
    YR_RULES *rules = NULL;
    if (yr_initialize() != ERROR_SUCCESS || yr_rules_load(yarc_path, &rules) != ERROR_SUCCESS) {
        child_write(fd, "X cannot load the compiled tag rules\n");
        _exit(1);
    }
    static const uint8_t empty[1];
    for (size_t i = 0; i < n; i++) {
        const tr_event *e = &evs[i];
        atomic_store(current, i + 1);
        for (size_t k = 0; k < tr_noise_int_nexternals; k++)
            yr_rules_define_integer_variable(rules, tr_noise_int_externals[k], int_external(e, k));
        char src[46], dst[46];
        tr_event_src_text(e, src);
        tr_event_dst_text(e, dst);
        const char *own[OWN_STR] = {e->sensor, src, dst, e->transport, e->proto, e->tcp_options};
        for (size_t k = 0; k < tr_noise_str_nexternals; k++) {
            const char *v = k < OWN_STR ? own[k] : tr_event_get(e, tr_noise_str_externals[k]);
            yr_rules_define_string_variable(rules, tr_noise_str_externals[k], v ? v : "");
        }
        scan_ctx s = {fd, i};
        int rc = yr_rules_scan_mem(rules, e->payload ? e->payload : empty, e->payload_len,
                                   SCAN_FLAGS_REPORT_RULES_MATCHING, scan_callback, &s, 5);
        if (rc != ERROR_SUCCESS) {
            char line[100];
            snprintf(line, sizeof line, "E %zu libyara error %d\n", i, rc);
            child_write(fd, line);
        }
    }
    child_write(fd, "D\n");
    _exit(0);
}

/* ---- the parent ----------------------------------------------------------- */

typedef void (*line_fn)(void *arg, char *line);

/* Held by an index build (gnql_index.c) and taken around fork: a build
 * allocates without pause for seconds, and a child forked while another
 * thread holds an allocator lock that has no fork handler (the sanitizers'
 * allocator in the test builds) waits for it for ever. Other threads'
 * allocations can still meet a fork: the stall check below replaces such a
 * child. */
static pthread_mutex_t fork_quiet = PTHREAD_MUTEX_INITIALIZER;

void noise_fork_quiet_begin(void)
{
    pthread_mutex_lock(&fork_quiet);
}

void noise_fork_quiet_end(void)
{
    pthread_mutex_unlock(&fork_quiet);
}

/* A child that used no CPU and sent nothing for this long is stuck, not
 * slow: libyara's own timeout is 5 s an event, and compiling works the CPU. */
#define YSCAN_STALL_RETRIES 2
static _Atomic int stall_secs = 10;

void noise_yara_set_stall_secs(int secs)
{
    atomic_store(&stall_secs, secs > 0 ? secs : 10);
}

/* One child, start to end. Its lines are kept in *lines ("D" and "X" lines
 * included) and handed on only once it has ended well, so that a child
 * killed as stuck can be replaced by one that starts over. */
static int child_once(int mode, const noise_src *src, size_t nsrc, const char *yarc,
                      const tr_event *evs, size_t nev, tr_buf *lines, bool *stalled,
                      tr_error *err)
{
    *stalled = false;
    int p[2];
    if (pipe(p) != 0)
        return tr_fail_errno(err, "cannot create a pipe for libyara");
    _Atomic size_t *current = mmap(NULL, sizeof *current, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (current == MAP_FAILED) {
        close(p[0]);
        close(p[1]);
        return tr_fail_errno(err, "cannot map memory for libyara");
    }
    atomic_store(current, 0);
    fflush(NULL);
    noise_fork_quiet_begin();
    pid_t pid = fork();
    if (pid != 0)
        noise_fork_quiet_end();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        munmap((void *)current, sizeof *current);
        return tr_fail_errno(err, "cannot fork libyara's process");
    }
    if (pid == 0) {
        close(p[0]);
        /* The caller's handlers (a test harness's, a server's) must not
         * catch a crash of libyara here and carry on in the caller's code. */
        int sigs[] = {SIGPIPE, SIGFPE, SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGALRM, SIGTERM, SIGINT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        /* A runaway child ends; libyara's own timeout is per event. */
        alarm(60 + (unsigned)(nev / 20));
        if (mode == 0)
            child_compile(src, nsrc, yarc, p[1]);
        else
            child_scan(yarc, evs, nev, p[1], current);
        _exit(3);
    }
    close(p[1]);
    tr_stall_watch watch;
    tr_stall_watch_start(&watch, pid);
    char chunk[16384];
    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int pr = poll(&pfd, 1, 1000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            if (tr_stall_watch_stuck(&watch, atomic_load(&stall_secs))) {
                kill(pid, SIGKILL);
                *stalled = true;
                break;
            }
            continue;
        }
        ssize_t got = read(p[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        tr_stall_watch_output(&watch);
        tr_buf_append(lines, chunk, (size_t)got);
    }
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    size_t cur = atomic_load(current);
    munmap((void *)current, sizeof *current);
    if (*stalled)
        return -1;
    bool done = false;
    for (size_t at = 0; at < lines->len;) {
        char *nl = memchr(lines->data + at, '\n', lines->len - at);
        size_t end = nl ? (size_t)(nl - lines->data) : lines->len;
        const char *line = lines->data + at;
        if (end - at == 1 && line[0] == 'D')
            done = true;
        else if (end - at >= 2 && line[0] == 'X')
            return tr_fail(err, "%.*s", (int)(end - at - 2), line + 2);
        at = end + 1;
    }
    if (done && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* Died: a signal, or (under the sanitizers) an exit after their report. */
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
    if (mode == 1 && cur)
        return tr_fail(err, "libyara died (%s) judging event %zu of the batch with the tag rules",
                       how, cur - 1);
    return tr_fail(err, "libyara died (%s) %s the tag rules", how,
                   mode == 0 ? "compiling" : "loading");
}

/* Forks a child that runs the compile (mode 0) or the scan (mode 1) and
 * writes lines; on success hands each line but "D" to on_line. A stuck
 * child is replaced, at most YSCAN_STALL_RETRIES times. */
static int run_child(int mode, const noise_src *src, size_t nsrc, const char *yarc,
                     const tr_event *evs, size_t nev, line_fn on_line, void *arg, tr_error *err)
{
    for (int attempt = 0;; attempt++) {
        tr_buf lines = {0};
        bool stalled;
        int rc = child_once(mode, src, nsrc, yarc, evs, nev, &lines, &stalled, err);
        if (rc == 0) {
            for (size_t at = 0; at < lines.len;) {
                char *nl = memchr(lines.data + at, '\n', lines.len - at);
                size_t end = nl ? (size_t)(nl - lines.data) : lines.len;
                lines.data[end < lines.len ? end : lines.len] = 0;
                if (strcmp(lines.data + at, "D") != 0)
                    on_line(arg, lines.data + at);
                at = end + 1;
            }
        }
        tr_buf_free(&lines);
        if (!stalled)
            return rc;
        if (attempt == YSCAN_STALL_RETRIES)
            return tr_fail(err, "libyara's process made no progress for %d s, %d times in a "
                                "row, and was killed (%s the tag rules)",
                           atomic_load(&stall_secs), attempt + 1,
                           mode == 0 ? "compiling" : "scanning with");
        tr_log(TR_LOG_WARN, "noise: libyara's process made no progress for %d s (a stuck "
                            "child): killed; a new one %s",
               atomic_load(&stall_secs),
               mode == 0 ? "compiles the tag rules" : "scans the batch again");
    }
}

static void ignore_line(void *arg, char *line)
{
    (void)arg;
    (void)line;
}

int noise_yara_compile(const noise_src *src, size_t n, const char *yarc_path, tr_error *err)
{
    return run_child(0, src, n, yarc_path, NULL, 0, ignore_line, NULL, err);
}

typedef struct scan_arg {
    noise_hit_fn hit;
    void *arg;
    size_t nev;
} scan_arg;

static void scan_line(void *arg, char *line)
{
    scan_arg *a = arg;
    if (line[0] != 'M' || line[1] != ' ')
        return;
    char *end;
    size_t ev = strtoul(line + 2, &end, 10);
    if (*end != ' ' || ev >= a->nev)
        return;
    a->hit(a->arg, ev, end + 1);
}

int noise_yara_scan(const char *yarc_path, const tr_event *evs, size_t n, noise_hit_fn hit,
                    void *arg, tr_error *err)
{
    if (n == 0)
        return 0;
    scan_arg a = {hit, arg, n};
    return run_child(1, NULL, 0, yarc_path, evs, n, scan_line, &a, err);
}
