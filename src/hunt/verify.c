/* The verifier: libyara in a forked child, so that a rule which crashes
 * libyara 4.2.3 costs a failed hunt, not the calling process (a server, or
 * `trawl add` holding the store).
 *
 * Child -> parent protocol, one line per event on a pipe:
 *   M <task> <group> <json>     a rule matched
 *   E <task> <message>          a sample could not be scanned
 *   T <task>                    the task is finished
 *   X <message>                 the rules did not compile (libyara's words)
 *   D                           finished
 * A task's M and E lines and its T go out in one write, so the parent passes
 * on a task's events only when it has all of them: a stuck child can then be
 * replaced by one that scans only the unfinished tasks, and nothing is
 * reported twice. Progress counters and each thread's current task sit in a
 * shared mapping. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <yara.h>

#include "hunt/hunt_internal.h"

const char *const tr_hunt_externals[TR_HUNT_NEXTERNALS] = {"filename", "filepath", "extension",
                                                           "filetype", "owner"};

hv_shared *hv_shared_new(void)
{
    void *p = mmap(NULL, sizeof(hv_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        tr_die("cannot map shared memory for the verifier");
    memset(p, 0, sizeof(hv_shared));
    return p;
}

void hv_shared_free(hv_shared *sh)
{
    if (sh)
        munmap(sh, sizeof *sh);
}

void hv_task_free(hv_task *t)
{
    free(t->path);
    for (size_t i = 0; i < TR_HUNT_NEXTERNALS; i++)
        free(t->ext[i]);
}

/* ======================================================================
 * Child side. Runs after fork(): only this thread exists, so it must not
 * touch locks the parent's other threads might have held (the parent's
 * SQLite handles, its logging); it talks to the parent through the pipe
 * and the shared mapping only, and leaves with _exit.
 * ====================================================================== */

typedef struct child {
    const hv_run *run;
    const bool *finished;           /* tasks an earlier child finished, or NULL */
    int out;                        /* pipe write end */
    pthread_mutex_t out_lock;
    YR_RULES **rules;               /* one per group */
} child;

typedef struct worker {
    child *c;
    size_t slot;
    size_t task, group;
    const unsigned char *data;      /* the mapped sample, for context bytes */
    size_t len;
    tr_buf lines;                   /* the task's lines, sent when it is finished */
} worker;

static void child_write(child *c, const char *s, size_t n)
{
    pthread_mutex_lock(&c->out_lock);
    if (tr_write_all(c->out, s, n) != 0)
        _exit(4);                   /* the parent went away */
    pthread_mutex_unlock(&c->out_lock);
}

static void hex_into(json_t *o, const char *key, const unsigned char *p, size_t n)
{
    char *h = tr_xmalloc(2 * n + 1);
    tr_hex_encode(p, n, h);
    h[2 * n] = 0;
    json_object_set_new(o, key, json_string(h));
    free(h);
}

/* Enough of each match to see it in context, bounded so a rule matching a
 * million times does not flood the pipe. */
enum { MATCHES_PER_STRING = 8, MATCH_BYTES = 64, CONTEXT_BYTES = 16 };

static json_t *match_record(worker *w, YR_SCAN_CONTEXT *ctx, YR_RULE *rule)
{
    json_t *o = json_object();
    json_object_set_new(o, "rule", json_string(rule->identifier));
    json_object_set_new(o, "namespace", json_string(rule->ns->name));
    json_t *tags = json_array();
    const char *tag;
    yr_rule_tags_foreach(rule, tag) json_array_append_new(tags, json_string(tag));
    json_object_set_new(o, "tags", tags);
    json_t *meta = json_object();
    YR_META *m;
    yr_rule_metas_foreach(rule, m)
    {
        json_t *v;
        if (m->type == META_TYPE_INTEGER)
            v = json_integer(m->integer);
        else if (m->type == META_TYPE_BOOLEAN)
            v = json_boolean(m->integer);
        else
            v = json_string(m->string ? m->string : "");
        /* Repeated keys keep the first, as most readers of YARA meta do. */
        if (!json_object_get(meta, m->identifier))
            json_object_set_new(meta, m->identifier, v ? v : json_null());
        else
            json_decref(v);
    }
    json_object_set_new(o, "meta", meta);
    json_t *strings = json_array();
    YR_STRING *s;
    yr_rule_strings_foreach(rule, s)
    {
        size_t k = 0;
        /* libyara 4.2.3 packs match records at unaligned addresses in its
         * arena: copy each out instead of reading it in place (UBSan, and
         * strict-alignment CPUs). */
        YR_MATCH copy;
        const YR_MATCH *mt = &copy;
        for (const YR_MATCH *mp = ctx->matches[s->idx].head; mp; mp = copy.next) {
            memcpy(&copy, mp, sizeof copy);
            if (copy.is_private)
                continue;
            if (k++ >= MATCHES_PER_STRING)
                break;
            json_t *sm = json_object();
            json_object_set_new(sm, "id", json_string(s->identifier));
            int64_t off = mt->base + mt->offset;
            json_object_set_new(sm, "offset", json_integer(off));
            json_object_set_new(sm, "length", json_integer(mt->match_length));
            size_t dn = (size_t)mt->data_length < MATCH_BYTES ? (size_t)mt->data_length
                                                              : MATCH_BYTES;
            hex_into(sm, "data", mt->data, dn);
            if (w->data && off >= 0 && (size_t)off <= w->len) {
                size_t b = (size_t)off > CONTEXT_BYTES ? (size_t)off - CONTEXT_BYTES : 0;
                size_t end = (size_t)off + (size_t)mt->match_length;
                if (end > w->len)
                    end = w->len;
                size_t e = end + CONTEXT_BYTES < w->len ? end + CONTEXT_BYTES : w->len;
                hex_into(sm, "before", w->data + b, (size_t)off - b);
                hex_into(sm, "after", w->data + end, e - end);
            }
            json_array_append_new(strings, sm);
        }
    }
    json_object_set_new(o, "strings", strings);
    return o;
}

static int scan_callback(YR_SCAN_CONTEXT *ctx, int message, void *message_data, void *user)
{
    worker *w = user;
    if (atomic_load(&w->c->run->sh->cancel))
        return CALLBACK_ABORT;
    if (message != CALLBACK_MSG_RULE_MATCHING)
        return CALLBACK_CONTINUE;
    YR_RULE *rule = message_data;
    if (RULE_IS_PRIVATE(rule))
        return CALLBACK_CONTINUE;
    json_t *o = match_record(w, ctx, rule);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!js)
        _exit(5);
    tr_buf_printf(&w->lines, "M %zu %zu %s\n", w->task, w->group, js);
    free(js);
    return CALLBACK_CONTINUE;
}

static void child_error_line(worker *w, size_t task, const char *msg)
{
    size_t from = w->lines.len;
    tr_buf_printf(&w->lines, "E %zu %s\n", task, msg);
    for (char *p = w->lines.data + from + 2; p[1]; p++)
        if (*p == '\n')
            *p = ' ';
}

static const char *yara_error_name(int rc)
{
    switch (rc) {
    case ERROR_SCAN_TIMEOUT:
        return "libyara: scan timed out";
    case ERROR_INSUFFICIENT_MEMORY:
        return "libyara: out of memory";
    case ERROR_TOO_MANY_MATCHES:
        return "libyara: too many matches for a string";
    case ERROR_TOO_MANY_RE_FIBERS:
        return "libyara: regular expression too complex";
    default:
        return "libyara: scan failed";
    }
}

/* Like tr_map_open, but the pages are faulted in by one call: a full scan
 * maps tens of thousands of files, and a fault per 4 KiB page shows up
 * against `yara -r`. With a pre-check, its size and header checks run first
 * on a pread of the head: a file they rule out is never mapped. */
static int map_sample(const char *path, const hunt_prefilter *pf, tr_map *m, bool *ruled_out,
                      tr_error *err)
{
    m->data = NULL;
    m->len = 0;
    *ruled_out = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail_errno(err, "cannot open %s", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tr_fail(err, "%s: not a readable regular file", path);
    } else {
        if (pf) {
            unsigned char head[4096];
            size_t want = hunt_prefilter_head(pf);
            ssize_t got = want ? pread(fd, head, want < sizeof head ? want : sizeof head, 0) : 0;
            *ruled_out = !hunt_prefilter_may_match_head(pf, (uint64_t)st.st_size, head,
                                                        got > 0 ? (size_t)got : 0);
        }
        if (!*ruled_out && st.st_size > 0) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
            if (p == MAP_FAILED) {
                rc = tr_fail_errno(err, "cannot map %s", path);
            } else {
                m->data = p;
                m->len = (size_t)st.st_size;
            }
        }
    }
    close(fd);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    child *c = w->c;
    const hv_run *run = c->run;
    hv_shared *sh = run->sh;
    YR_SCANNER **sc = tr_xcalloc(run->ngroups, sizeof *sc);
    for (size_t g = 0; g < run->ngroups; g++) {
        if (yr_scanner_create(c->rules[g], &sc[g]) != ERROR_SUCCESS)
            _exit(6);
        yr_scanner_set_callback(sc[g], scan_callback, w);
        if (run->sample_timeout > 0)
            yr_scanner_set_timeout(sc[g], run->sample_timeout);
        /* Scanning from memory we own: libyara must not copy matched data
         * it does not need; the defaults are right. */
    }
    for (;;) {
        if (atomic_load(&sh->cancel))
            break;
        uint64_t t = atomic_fetch_add(&sh->next_task, 1);
        if (t >= run->ntasks)
            break;
        if (c->finished && c->finished[t])
            continue;
        atomic_store(&sh->current[w->slot], (int64_t)t + 1);
        const hv_task *task = &run->tasks[t];
        w->task = (size_t)t;
        tr_map m = {0};
        tr_error err;
        bool ruled_out = false;
        if (map_sample(task->path, run->prefilter, &m, &ruled_out, &err) != 0) {
            child_error_line(w, (size_t)t, err.msg);
        } else if (ruled_out) {
            atomic_fetch_add(&sh->ruled_out, 1);
        } else if (run->prefilter && !hunt_prefilter_may_match(run->prefilter, m.data, m.len)) {
            atomic_fetch_add(&sh->ruled_out, 1);
            tr_map_close(&m);
        } else {
            w->data = m.data;
            w->len = m.len;
            for (size_t g = 0; g < run->ngroups; g++) {
                w->group = g;
                for (size_t e = 0; e < TR_HUNT_NEXTERNALS; e++)
                    yr_scanner_define_string_variable(sc[g], tr_hunt_externals[e],
                                                      task->ext[e] ? task->ext[e] : "");
                int rc = yr_scanner_scan_mem(sc[g], m.data, m.len);
                if (rc != ERROR_SUCCESS && rc != ERROR_CALLBACK_ERROR &&
                    !atomic_load(&sh->cancel))
                    child_error_line(w, (size_t)t, yara_error_name(rc));
            }
            w->data = NULL;
            w->len = 0;
            tr_map_close(&m);
        }
        atomic_fetch_add(&sh->bytes, task->size);
        atomic_fetch_add(&sh->scanned, 1);
        tr_buf_printf(&w->lines, "T %zu\n", (size_t)t);
        child_write(c, w->lines.data, w->lines.len);
        w->lines.len = 0;
        atomic_store(&sh->current[w->slot], 0);
    }
    tr_buf_free(&w->lines);
    for (size_t g = 0; g < run->ngroups; g++)
        yr_scanner_destroy(sc[g]);
    free(sc);
    return NULL;
}

typedef struct compile_state {
    char msg[900];
    bool have;
} compile_state;

static void on_compile_error(int level, const char *file, int line, const YR_RULE *rule,
                             const char *msg, void *user)
{
    (void)rule;
    compile_state *st = user;
    if (level != YARA_ERROR_LEVEL_ERROR || st->have)
        return;
    st->have = true;
    snprintf(st->msg, sizeof st->msg, "%s(%d): %s", file ? file : "rules", line, msg);
}

static void child_compile_fail(child *c, const char *msg)
{
    char *line = tr_xasprintf("X %s\n", msg);
    for (char *p = line + 2; p[1]; p++)
        if (*p == '\n')
            *p = ' ';
    child_write(c, line, strlen(line));
    free(line);
    _exit(3);
}

static YR_RULES *child_compile(child *c, const hv_group *g)
{
    YR_RULES *rules = NULL;
    if (g->yarc && yr_rules_load(g->yarc, &rules) == ERROR_SUCCESS)
        return rules;
    YR_COMPILER *comp = NULL;
    if (yr_compiler_create(&comp) != ERROR_SUCCESS)
        child_compile_fail(c, "libyara: cannot create a compiler");
    compile_state st = {.have = false};
    yr_compiler_set_callback(comp, on_compile_error, &st);
    /* Rule text reaches the verifier with its includes already inlined by
     * trawl's parser (and only for a local user's files): libyara itself
     * never opens a file named in a rule. */
    yr_compiler_set_include_callback(comp, NULL, NULL, NULL);
    for (size_t e = 0; e < TR_HUNT_NEXTERNALS; e++)
        yr_compiler_define_string_variable(comp, tr_hunt_externals[e], "");
    for (size_t i = 0; i < g->nsrc; i++) {
        char *text = tr_xmalloc(g->src[i].len + 1);
        memcpy(text, g->src[i].text, g->src[i].len);
        text[g->src[i].len] = 0;
        /* One namespace for all sources, as the yara tool compiles several
         * rule files: a global rule of one file applies to every file. */
        int nerr = yr_compiler_add_string(comp, text, NULL);
        free(text);
        if (nerr > 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s: %s", g->src[i].name,
                     st.have ? st.msg : "libyara: compilation failed");
            child_compile_fail(c, msg);
        }
    }
    if (yr_compiler_get_rules(comp, &rules) != ERROR_SUCCESS)
        child_compile_fail(c, "libyara: cannot build the compiled rules");
    yr_compiler_destroy(comp);
    if (g->save_yarc) {
        char *tmp = tr_xasprintf("%s.tmp", g->save_yarc);
        if (yr_rules_save(rules, tmp) != ERROR_SUCCESS || rename(tmp, g->save_yarc) != 0) {
            unlink(tmp);
            free(tmp);
            child_compile_fail(c, "libyara: cannot save the compiled rules");
        }
        free(tmp);
    }
    return rules;
}

TR_NORETURN static void child_main(const hv_run *run, const bool *finished, int out)
{
    /* The parent's SIGINT handler cancels through the shared flag; a
     * terminal's SIGINT reaching this process group must not kill the child
     * before the parent has what was found. */
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    /* A crash in libyara must end this process, whatever handlers the parent
     * installed (a test harness's longjmp, a server's crash reporter). */
    static const int fatal[] = {SIGFPE, SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGTERM};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(7);
    /* Another hunt in the parent may fork later; our copy of its pipe must
     * not hold that hunt's pipe open, and vice versa: keep only our own. */
    if (out != 3) {
        if (dup2(out, 3) < 0)
            _exit(8);
        out = 3;
    }
    syscall(SYS_close_range, 4u, ~0u, 0u);

    child c = {.run = run, .finished = finished, .out = out};
    pthread_mutex_init(&c.out_lock, NULL);
    hv_shared *sh = run->sh;
    atomic_store(&sh->phase, 1);
    if (yr_initialize() != ERROR_SUCCESS)
        child_compile_fail(&c, "libyara: initialisation failed");
    c.rules = tr_xcalloc(run->ngroups ? run->ngroups : 1, sizeof *c.rules);
    for (size_t g = 0; g < run->ngroups; g++) {
        atomic_store(&sh->group, (int)g);
        c.rules[g] = child_compile(&c, &run->groups[g]);
    }
    atomic_store(&sh->phase, 2);
    size_t n = run->threads;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (size_t)cores : 1;
    }
    if (n > HV_MAX_THREADS)
        n = HV_MAX_THREADS;
    if (n > run->ntasks)
        n = run->ntasks ? run->ntasks : 1;
    worker *ws = tr_xcalloc(n, sizeof *ws);
    pthread_t *th = tr_xcalloc(n, sizeof *th);
    for (size_t i = 0; i < n; i++) {
        ws[i] = (worker){.c = &c, .slot = i};
        if (i > 0 && pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0)
            _exit(9);
    }
    worker_main(&ws[0]);
    for (size_t i = 1; i < n; i++)
        pthread_join(th[i], NULL);
    atomic_store(&sh->phase, 3);
    child_write(&c, "D\n", 2);
    /* No cleanup: the process ends here, and yr_finalize would only cost. */
    _exit(0);
}

/* ======================================================================
 * Parent side.
 * ====================================================================== */

/* What one child sent: a task's lines wait in pending until its T line. */
typedef struct reader {
    bool *finished;                 /* per task, across children */
    size_t nfinished;
    tr_buf pending;
    bool done;
    char compile_err[1024];
} reader;

/* One M or E line of a finished task to the caller. */
static void deliver(const hv_run *run, const hv_events *ev, char *line)
{
    char kind = line[0];
    char *end;
    unsigned long long task = strtoull(line + 2, &end, 10);
    if (task >= run->ntasks || *end != ' ')
        return;
    if (kind == 'E') {
        if (ev->on_scan_error)
            ev->on_scan_error(ev->arg, (size_t)task, end + 1);
        return;
    }
    unsigned long long group = strtoull(end + 1, &end, 10);
    if (*end != ' ' || group >= run->ngroups)
        return;
    if (ev->on_match)
        ev->on_match(ev->arg, (size_t)task, (size_t)group, end + 1);
}

static void dispatch(const hv_run *run, const hv_events *ev, reader *rd, char *line)
{
    char kind = line[0];
    if (kind == 'D') {
        rd->done = true;
    } else if (kind == 'X') {
        snprintf(rd->compile_err, sizeof rd->compile_err, "%s", line + 2);
    } else if (kind == 'M' || kind == 'E') {
        tr_buf_append(&rd->pending, line, strlen(line) + 1);   /* with its NUL */
    } else if (kind == 'T') {
        char *end;
        unsigned long long task = strtoull(line + 2, &end, 10);
        for (size_t at = 0; at < rd->pending.len;) {
            char *l = rd->pending.data + at;
            at += strlen(l) + 1;
            deliver(run, ev, l);
        }
        rd->pending.len = 0;
        if (task < run->ntasks && !*end && !rd->finished[task]) {
            rd->finished[task] = true;
            rd->nfinished++;
        }
    }
}

/* The child's CPU time in clock ticks (user + system), -1 if unknown. */
static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGFPE:
        return "SIGFPE";
    case SIGABRT:
        return "SIGABRT (an assertion)";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGKILL:
        return "SIGKILL";
    case SIGILL:
        return "SIGILL";
    default:
        return "a signal";
    }
}

/* One child, start to end. *stalled: it sent nothing and used no CPU for
 * stall_secs, and was killed. */
static int verify_child(const hv_run *run, const hv_events *ev, reader *rd, int stall_secs,
                        bool *stalled, tr_error *err)
{
    *stalled = false;
    int fds[2];
    if (pipe(fds) != 0)
        return tr_fail_errno(err, "cannot create the verifier pipe");
    fflush(NULL);
    if (run->fork_guard)
        run->fork_guard(run->fork_guard_arg, true);
    pid_t pid = fork();
    if (pid != 0 && run->fork_guard)
        run->fork_guard(run->fork_guard_arg, false);
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return tr_fail_errno(err, "cannot start the verifier process");
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(run, rd->nfinished ? rd->finished : NULL, fds[1]);
    }
    close(fds[1]);

    tr_buf in = {0};
    size_t start = 0;
    char chunk[65536];
    double cancelled_at = 0;
    bool killed = false;
    tr_stall_watch watch;
    tr_stall_watch_start(&watch, pid);
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, 200);
        if (ev->on_tick)
            ev->on_tick(ev->arg);
        /* A cancelled child stops after the sample each thread is on; one
         * sample can take up to the libyara timeout, and a child stuck for
         * any other reason would hold a server's shutdown for ever. Matches
         * already reported are kept either way. */
        if (!killed && atomic_load(&run->sh->cancel)) {
            double now = tr_monotonic();
            if (cancelled_at == 0) {
                cancelled_at = now;
            } else if (now - cancelled_at > HV_CANCEL_GRACE) {
                kill(pid, SIGKILL);
                killed = true;
            }
        }
        if (pr == 0 && !killed && !*stalled && tr_stall_watch_stuck(&watch, stall_secs)) {
            kill(pid, SIGKILL);
            *stalled = true;
        }
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        tr_stall_watch_output(&watch);
        tr_buf_append(&in, chunk, (size_t)r);
        for (;;) {
            char *nl = memchr(in.data + start, '\n', in.len - start);
            if (!nl)
                break;
            *nl = 0;
            dispatch(run, ev, rd, in.data + start);
            start = (size_t)(nl - in.data) + 1;
        }
        if (start > 0 && start == in.len) {
            in.len = 0;
            start = 0;
        } else if (start > (1u << 20)) {
            memmove(in.data, in.data + start, in.len - start);
            in.len -= start;
            start = 0;
        }
    }
    close(fds[0]);
    tr_buf_free(&in);
    /* A killed child's last task may have sent part of its lines. */
    rd->pending.len = 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (ev->on_tick)
        ev->on_tick(ev->arg);
    if (*stalled)
        return -1;
    if (rd->compile_err[0])
        return tr_fail(err, "%s", rd->compile_err);
    if ((rd->done && WIFEXITED(status) && WEXITSTATUS(status) == 0) || killed)
        return 0;
    /* The child died: say where. */
    char where[512] = "";
    int phase = atomic_load(&run->sh->phase);
    if (phase <= 1) {
        int g = atomic_load(&run->sh->group);
        const hv_group *grp = (g >= 0 && (size_t)g < run->ngroups) ? &run->groups[g] : NULL;
        snprintf(where, sizeof where, " while compiling %s",
                 grp && grp->nsrc ? grp->src[0].name : "the rules");
    } else {
        for (size_t i = 0; i < HV_MAX_THREADS; i++) {
            int64_t t = atomic_load(&run->sh->current[i]);
            if (t > 0 && (size_t)(t - 1) < run->ntasks) {
                const hv_task *task = &run->tasks[t - 1];
                const char *slash = strrchr(task->path, '/');
                snprintf(where, sizeof where, " while scanning sample %s (id %lld)",
                         slash ? slash + 1 : task->path, (long long)task->sample_id);
                break;
            }
        }
    }
    if (WIFSIGNALED(status))
        return tr_fail(err, "the libyara verifier was killed by %s%s; a rule in this set "
                            "crashes libyara 4.2.3",
                       signal_name(WTERMSIG(status)), where);
    return tr_fail(err, "the libyara verifier exited with status %d%s",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, where);
}

int hv_verify(const hv_run *run, const hv_events *ev, tr_error *err)
{
    reader rd = {.finished = tr_xcalloc(run->ntasks ? run->ntasks : 1, sizeof *rd.finished)};
    int stall_secs = run->stall_secs > 0 ? run->stall_secs : HV_STALL_SECS;
    int rc;
    for (int attempt = 0;; attempt++) {
        bool stalled;
        rc = verify_child(run, ev, &rd, stall_secs, &stalled, err);
        if (!stalled)
            break;
        if (attempt == HV_STALL_RETRIES) {
            rc = tr_fail(err, "the libyara verifier made no progress for %d s, %d times in a "
                              "row, and was killed",
                         stall_secs, attempt + 1);
            break;
        }
        tr_log(TR_LOG_WARN,
               "verifier: no progress for %d s (a stuck child): killed; a new one scans the "
               "%zu of %zu samples not finished",
               stall_secs, run->ntasks - rd.nfinished, run->ntasks);
        hv_shared *sh = run->sh;
        atomic_store(&sh->next_task, 0);
        atomic_store(&sh->phase, 0);
        for (size_t i = 0; i < HV_MAX_THREADS; i++)
            atomic_store(&sh->current[i], 0);
        uint64_t bytes = 0;
        for (size_t t = 0; t < run->ntasks; t++)
            if (rd.finished[t])
                bytes += run->tasks[t].size;
        atomic_store(&sh->scanned, rd.nfinished);
        atomic_store(&sh->bytes, bytes);
        atomic_fetch_add(&sh->restarts, 1);
        rd.done = false;
        if (ev->on_tick)
            ev->on_tick(ev->arg);
    }
    free(rd.finished);
    tr_buf_free(&rd.pending);
    return rc;
}
