/* index: crash safety. Leftovers of a crashed writer are swept at open; a
 * child process writing, deleting and compacting is SIGKILLed at random
 * instants and every acknowledged operation must survive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "index/index.h"

static char *make_dir(void) { return fixture_index_dir("ixc"); }

static void remove_dir(char *ixdir) { fixture_remove_index_dir(ixdir); }

/* The name of a segment file in dir (the tests leave one), or NULL. */
static char *last_segment(const char *dir)
{
    char **names = NULL;
    size_t n = 0;
    char *seg = NULL;
    assert_int_equal(tr_list_dir(dir, &names, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (!seg && strncmp(names[i], "seg-", 4) == 0)
            seg = tr_xstrdup(names[i]);
        free(names[i]);
    }
    free(names);
    return seg;
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0, sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = tr_xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(tr_write_all(fd, p, n), 0);
    close(fd);
    free(path);
}

/* Each doc has a unique 16-byte marker plus filler shared with its neighbours. */
static size_t doc_bytes(uint32_t id, unsigned char *buf)
{
    size_t n = (size_t)sprintf((char *)buf, "~%08x-marker~", id);
    uint32_t x = id * 2654435761u;
    size_t len = 200 + id % 300;
    for (; n < len; n++) {
        x = x * 1103515245u + 12345u;
        buf[n] = (unsigned char)(x >> 24);
    }
    return n;
}

static bool query_has(tr_index *ix, uint32_t id, size_t *count)
{
    unsigned char buf[600];
    doc_bytes(id, buf);
    tr_query *q = tr_query_literal(buf, 16);
    uint32_t *ids;
    size_t n;
    tr_error err;
    if (tr_index_query(ix, q, &ids, &n, NULL, &err) < 0)
        fail_msg("query: %s", err.msg);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= ids[i] == id;
    if (count)
        *count = n;
    free(ids);
    tr_query_free(q);
    return found;
}

static int fetch(void *arg, uint32_t id, tr_map *out, tr_error *err)
{
    (void)arg;
    (void)err;
    unsigned char buf[600];
    size_t n = doc_bytes(id, buf);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memcpy(p, buf, n);
    out->data = p;
    out->len = n;
    return 0;
}

static void test_crash_leftovers(void **state)
{
    (void)state;
    char *dir = make_dir();
    tr_index *ix;
    tr_error err;
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    tr_index_writer *w;
    unsigned char buf[600];
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    for (uint32_t id = 1; id <= 20; id++)
        assert_int_equal(tr_index_writer_add(w, id, buf, doc_bytes(id, buf), &err), 0);
    assert_int_equal(tr_index_writer_commit(w, &err), 0);
    tr_index_close(ix);

    /* What a crash can leave: a half-written segment, a complete segment
     * renamed but never published (a copy of a real one, so that picking it
     * up would duplicate docs), a half-written manifest. */
    char *published = last_segment(dir);
    assert_non_null(published);
    char *src = tr_xasprintf("%s/%s", dir, published);
    tr_map m;
    assert_int_equal(tr_map_open(&m, src, &err), 0);
    write_file(dir, "seg-0000000000000001-1-1.tsg", m.data, m.len);
    write_file(dir, "seg-0000000000000002-1-2.tsg.tmp", m.data, m.len / 2);
    tr_map_close(&m);
    write_file(dir, "MANIFEST.tmp", "trawl-index 1\nseg seg-0000000000000001-1-1.tsg\n", 47);

    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    assert_int_equal(count_files(dir, ".tmp"), 0);
    assert_int_equal(count_files(dir, ".tsg"), 1);
    tr_index_status st;
    assert_int_equal(tr_index_get_status(ix, &st, &err), 0);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.docs, 20);
    for (uint32_t id = 1; id <= 20; id++) {
        size_t n;
        assert_true(query_has(ix, id, &n));
        assert_int_equal(n, 1);
        assert_int_equal(tr_index_verify_doc(ix, id, fetch, NULL, &err), 0);
    }
    /* An open writer blocks the sweep: its temp files must survive another open. */
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    write_file(dir, "seg-0000000000000003-1-3.tsg.tmp", "x", 1);
    tr_index *ix2;
    assert_int_equal(tr_index_open(dir, &ix2, &err), 0);
    assert_int_equal(count_files(dir, ".tmp"), 1);
    tr_index_close(ix2);
    tr_index_writer_abort(w);

    /* A damaged manifest is an error, not an empty index. */
    tr_index_close(ix);
    char *mp = tr_xasprintf("%s/MANIFEST", dir);
    write_file(dir, "MANIFEST", "trawl-index 1\nseg ", 18);
    assert_int_equal(tr_index_open(dir, &ix, &err), -1);
    assert_non_null(strstr(err.msg, "malformed"));
    free(mp);
    free(src);
    free(published);
    remove_dir(dir);
}

/* Damaged segment bytes (past the checksummed header) must give errors or
 * wrong-but-bounded answers, never a crash or an out-of-bounds read. */
static void test_corrupt_segment(void **state)
{
    (void)state;
    char *dir = make_dir();
    tr_index *ix;
    tr_error err;
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    tr_index_writer *w;
    unsigned char buf[600];
    assert_int_equal(tr_index_writer_begin(ix, &w, &err), 0);
    for (uint32_t id = 1; id <= 300; id++)
        assert_int_equal(tr_index_writer_add(w, id, buf, doc_bytes(id % 7, buf), &err), 0);
    assert_int_equal(tr_index_writer_commit(w, &err), 0);
    tr_index_close(ix);
    char *seg = last_segment(dir);
    char *path = tr_xasprintf("%s/%s", dir, seg);
    char *orig;
    size_t len;
    assert_int_equal(tr_read_file(path, &orig, &len, &err), 0);
    unsigned char *copy = tr_xmalloc(len);
    srand(7);
    for (int t = 0; t < 150; t++) {
        memcpy(copy, orig, len);
        for (int f = 0; f < 1 + t % 8; f++)
            copy[192 + (size_t)rand() % (len - 192)] ^= (unsigned char)(1 + rand() % 255);
        write_file(dir, seg, copy, len);
        assert_int_equal(tr_index_open(dir, &ix, &err), 0);
        for (uint32_t id = 0; id < 7; id++) {
            doc_bytes(id, buf);
            tr_query *q = tr_query_literal(buf + (id * 13) % 100, 3 + id);
            uint32_t *ids;
            size_t n;
            uint64_t est;
            if (tr_index_query(ix, q, &ids, &n, NULL, &err) == 0)
                free(ids);
            (void)tr_index_estimate(ix, q, &est, &err);
            tr_query_free(q);
        }
        tr_index_codec_report r;
        (void)tr_index_codec_compare(ix, &r, &err);
        (void)tr_index_verify_doc(ix, 1 + (uint32_t)t % 300, fetch, NULL, &err);
        tr_index_close(ix);
    }
    write_file(dir, seg, orig, len);
    free(copy);
    free(orig);
    free(path);
    free(seg);
    remove_dir(dir);
}

/* Child: endless batches of adds, some deletes, a compaction now and then;
 * reports each acknowledged operation on the pipe ('a' id / 'd' id). */
static void child_work(const char *dir, int fd, uint32_t first, unsigned seed)
{
    tr_index *ix;
    tr_error err;
    tr_index_opts o = {.chunk_pairs = 4000};   /* several segments per batch */
    if (tr_index_open_opts(dir, &o, &ix, &err) < 0)
        _exit(3);
    uint32_t id = first;
    unsigned char buf[600];
    for (unsigned round = 0;; round++) {
        tr_index_writer *w;
        if (tr_index_writer_begin(ix, &w, &err) < 0)
            _exit(4);
        uint32_t start = id;
        for (int i = 0; i < 25; i++, id++)
            if (tr_index_writer_add(w, id, buf, doc_bytes(id, buf), &err) < 0)
                _exit(5);
        if (tr_index_writer_commit(w, &err) < 0)
            _exit(6);
        for (uint32_t i = start; i < id; i++) {
            char msg[16];
            int l = snprintf(msg, sizeof msg, "a%u\n", i);
            if (write(fd, msg, (size_t)l) != l)
                _exit(7);
        }
        uint32_t victim = start + (round * 7 + seed) % 25;
        /* Announce first: a delete killed before its ack may or may not have landed. */
        char msg[16];
        int l = snprintf(msg, sizeof msg, "p%u\n", victim);
        if (write(fd, msg, (size_t)l) != l)
            _exit(9);
        if (tr_index_delete(ix, victim, &err) < 0)
            _exit(8);
        l = snprintf(msg, sizeof msg, "d%u\n", victim);
        if (write(fd, msg, (size_t)l) != l)
            _exit(9);
        if (round % 3 == 2 && tr_index_compact(ix, &err) < 0)
            _exit(10);
    }
}

static void test_crash_sigkill(void **state)
{
    (void)state;
    char *dir = make_dir();
    tr_error err;
    tr_index *ix;
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    tr_index_close(ix);
    uint8_t *acked = tr_xcalloc(1 << 20, 1);   /* 1 added, 2 deleted, 3 delete in flight */
    uint32_t next = 1;
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    int rounds = 12, checked = 0;
    for (int r = 0; r < rounds; r++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            child_work(dir, pfd[1], next, (unsigned)r);
        }
        close(pfd[1]);
        /* Kill at a random instant: early (first commit), mid-batch, mid-merge. */
        usleep((useconds_t)(rand() % 400000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        FILE *f = fdopen(pfd[0], "r");
        char line[32];
        uint32_t maxid = next;
        while (fgets(line, sizeof line, f)) {
            if (!strchr(line, '\n'))
                break;   /* a torn report is not an acknowledgement */
            uint32_t id = (uint32_t)strtoul(line + 1, NULL, 10);
            assert_true(id < (1u << 20));
            acked[id] = line[0] == 'a' ? 1 : line[0] == 'd' ? 2 : 3;
            if (id >= maxid)
                maxid = id + 1;
        }
        fclose(f);
        /* The child may have indexed ids it never acknowledged: skip past them. */
        next = maxid + 25;
        tr_index_opts o = {.chunk_pairs = 4000};
        if (tr_index_open_opts(dir, &o, &ix, &err) < 0)
            fail_msg("reopen after kill: %s", err.msg);
        assert_int_equal(count_files(dir, ".tmp"), 0);
        for (uint32_t id = 1; id < next; id++) {
            if (acked[id] == 1) {
                if (!query_has(ix, id, NULL))
                    fail_msg("round %d (seed %u): acknowledged doc %u lost", r, seed, id);
                if (id % 5 == 0)
                    assert_int_equal(tr_index_verify_doc(ix, id, fetch, NULL, &err), 0);
                checked++;
            } else if (acked[id] == 2) {
                if (query_has(ix, id, NULL))
                    fail_msg("round %d (seed %u): deleted doc %u is back", r, seed, id);
            }
        }
        tr_index_close(ix);
    }
    assert_true(checked > 0);
    /* Finally the index still merges and answers. */
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    assert_int_equal(tr_index_compact(ix, &err), 0);
    for (uint32_t id = 1; id < next; id++)
        if (acked[id] == 1 || acked[id] == 2)
            assert_int_equal(query_has(ix, id, NULL), acked[id] == 1);
    tr_index_close(ix);
    free(acked);
    remove_dir(dir);
}

/* Two writer processes and a compacting process publish concurrently; every
 * add acknowledged by either must be in the final index exactly once. */
static void test_multiprocess_writers(void **state)
{
    (void)state;
    char *dir = make_dir();
    tr_error err;
    tr_index *ix;
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    tr_index_close(ix);
    pid_t pid[3];
    for (int p = 0; p < 3; p++) {
        pid[p] = fork();
        assert_true(pid[p] >= 0);
        if (pid[p] != 0)
            continue;
        tr_index *cx;
        tr_index_opts o = {.chunk_pairs = 3000};
        if (tr_index_open_opts(dir, &o, &cx, &err) < 0)
            _exit(3);
        unsigned char buf[600];
        for (int round = 0; round < 8; round++) {
            if (p == 2) {
                /* Another compaction may hold the lock: that is a clean refusal. */
                if (tr_index_compact(cx, &err) < 0 && !strstr(err.msg, "another compaction"))
                    _exit(4);
                usleep(20000);
                continue;
            }
            tr_index_writer *w;
            if (tr_index_writer_begin(cx, &w, &err) < 0)
                _exit(5);
            for (uint32_t i = 0; i < 20; i++) {
                uint32_t id = 1 + (uint32_t)p * 100000 + (uint32_t)round * 20 + i;
                if (tr_index_writer_add(w, id, buf, doc_bytes(id, buf), &err) < 0)
                    _exit(6);
            }
            if (tr_index_writer_commit(w, &err) < 0)
                _exit(7);
            if (tr_index_delete(cx, 1 + (uint32_t)p * 100000 + (uint32_t)round * 20, &err) < 0)
                _exit(8);
        }
        tr_index_close(cx);
        _exit(0);
    }
    /* Meanwhile this process keeps querying a handle it opened before. */
    assert_int_equal(tr_index_open(dir, &ix, &err), 0);
    int done = 0;
    while (done < 3) {
        uint32_t *ids;
        size_t n;
        tr_query *all = tr_query_all();
        assert_int_equal(tr_index_query(ix, all, &ids, &n, NULL, &err), 0);
        for (size_t i = 1; i < n; i++)
            assert_true(ids[i - 1] < ids[i]);
        free(ids);
        tr_query_free(all);
        done = 0;
        for (int p = 0; p < 3; p++) {
            int status;
            if (pid[p] == 0) {
                done++;
            } else if (waitpid(pid[p], &status, WNOHANG) == pid[p]) {
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
                pid[p] = 0;
                done++;
            }
        }
    }
    assert_int_equal(tr_index_compact(ix, &err), 0);
    uint32_t *ids;
    size_t n;
    assert_int_equal(tr_index_doc_ids(ix, &ids, &n, &err), 0);
    assert_int_equal(n, 2 * 8 * 19);
    for (int p = 0; p < 2; p++)
        for (uint32_t r = 0; r < 8; r++)
            for (uint32_t i = 1; i < 20; i++) {
                uint32_t id = 1 + (uint32_t)p * 100000 + r * 20 + i;
                size_t cnt;
                assert_true(query_has(ix, id, &cnt));
            }
    free(ids);
    tr_index_status st;
    assert_int_equal(tr_index_get_status(ix, &st, &err), 0);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.tombstones, 0);
    tr_index_close(ix);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_leftovers),
        cmocka_unit_test(test_corrupt_segment),
        cmocka_unit_test(test_multiprocess_writers),
        cmocka_unit_test(test_crash_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
