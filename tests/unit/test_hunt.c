/* hunt: verifier crash isolation, retrohunt jobs (results, externals, cancel,
 * limit, interrupted jobs), livehunt through the ingest hook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "core/core.h"
#include "hunt/hunt.h"
#include "hunt/hunt_internal.h"
#include "ingest/ingest.h"
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    char data[96];
    char in[96];
} fixture;

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = tr_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
    free(path);
}

static void ingest(fixture *f)
{
    tr_ingest_config cfg = {.data_dir = f->data, .jobs = 2};
    char *paths[1] = {f->in};
    tr_ingest_progress p;
    tr_error err;
    if (tr_ingest_paths(&cfg, paths, 1, &p, &err) != 0)
        fail_msg("%s", err.msg);
}

static int setup(void **state)
{
    fixture *f = tr_xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/trawl-test-hunt-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->in, sizeof f->in, "%s/in", f->dir);
    mkdir(f->in, 0755);
    static const char evil[] = "header EVILSTRING trailer";
    static const char wide[] = "x\0y\0W\0i\0d\0e\0M\0a\0r\0k\0z";
    write_file(f->in, "evil.exe", evil, sizeof evil - 1);
    write_file(f->in, "wide.bin", wide, sizeof wide - 1);
    write_file(f->in, "digits.txt", "1234567890", 10);
    write_file(f->in, "plain.txt", "nothing to see here", 19);
    ingest(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char *cmd = tr_xasprintf("rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

typedef struct collected {
    char lines[32][160];
    size_t n;
} collected;

static void collect(void *arg, const tr_hunt_match *m)
{
    collected *c = arg;
    if (c->n < 32)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s %s", m->rule, m->sha256);
}

/* Runs a hunt over the fixture; returns the job id. */
static int64_t hunt(fixture *f, const char *rules, int64_t limit, bool cancel_first,
                    collected *c, int expect_rc)
{
    tr_hunt_source src = {"rules.yar", rules, strlen(rules)};
    tr_hunt_params p = {.sources = &src, .nsources = 1, .limit = limit, .threads = 2};
    int64_t id;
    tr_error err;
    if (tr_hunt_submit(f->data, &p, &id, &err) != 0)
        fail_msg("%s", err.msg);
    tr_hunt *h;
    assert_int_equal(tr_hunt_open(f->data, id, &h, &err), 0);
    tr_hunt_callbacks cb = {.arg = c, .on_match = collect};
    tr_hunt_set_callbacks(h, &cb);
    if (cancel_first)
        tr_hunt_cancel(h);
    int rc = tr_hunt_run(h, &err);
    if (rc != expect_rc)
        fail_msg("tr_hunt_run returned %d: %s", rc, err.msg);
    tr_hunt_free(h);
    return id;
}

static void test_retrohunt_results_are_persisted(void **state)
{
    fixture *f = *state;
    collected c = {0};
    int64_t id = hunt(f,
                      "rule evil : bad { meta: author = \"ana\" strings: $a = \"EVILSTRING\" "
                      "condition: $a }\n"
                      "rule widemark { strings: $w = \"WideMark\" wide condition: $w }\n"
                      "rule nothing { strings: $n = \"NOT-THERE-AT-ALL\" condition: $n }\n",
                      0, false, &c, 0);
    assert_int_equal(c.n, 2);
    tr_hunt_job job;
    tr_error err;
    assert_int_equal(tr_hunt_get(f->data, id, &job, &err), 1);
    assert_int_equal(job.status, TR_HUNT_DONE);
    assert_int_equal(job.matches, 2);
    assert_int_equal(job.samples, 4);
    assert_true(job.candidates <= 2);   /* the index narrowed it */
    assert_int_equal(job.full_scan_rules, 0);
    tr_hunt_job_clear(&job);
    json_t *res;
    assert_int_equal(tr_hunt_results(f->data, id, &res, &err), 0);
    assert_int_equal(json_array_size(res), 2);
    bool seen_evil = false;
    size_t i;
    json_t *m;
    json_array_foreach(res, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "rule")), "evil") != 0)
            continue;
        seen_evil = true;
        assert_string_equal(json_string_value(json_object_get(json_object_get(m, "meta"), "author")),
                            "ana");
        json_t *s0 = json_array_get(json_object_get(m, "strings"), 0);
        assert_int_equal(json_integer_value(json_object_get(s0, "offset")), 7);
        assert_string_equal(json_string_value(json_object_get(s0, "id")), "$a");
        json_t *names = json_object_get(json_object_get(m, "sample"), "file_names");
        assert_string_equal(json_string_value(json_array_get(names, 0)), "evil.exe");
    }
    assert_true(seen_evil);
    json_decref(res);
    tr_hunt_job *jobs;
    size_t n;
    assert_int_equal(tr_hunt_list(f->data, &jobs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, id);
    tr_hunt_list_free(jobs, n);
}

static void test_externals_are_filled_per_sample(void **state)
{
    fixture *f = *state;
    collected c = {0};
    hunt(f,
         "rule by_name { condition: filename == \"evil.exe\" and extension == \"exe\" "
         "and filepath == \"evil.exe\" and owner == \"\" }\n"
         "rule by_type { condition: filetype == \"txt\" and filename contains \"digits\" }\n",
         0, false, &c, 0);
    assert_int_equal(c.n, 2);
    bool a = false, b = false;
    for (size_t i = 0; i < c.n; i++) {
        a |= strncmp(c.lines[i], "by_name ", 8) == 0;
        b |= strncmp(c.lines[i], "by_type ", 8) == 0;
    }
    assert_true(a && b);
}

static void test_limit_and_cancel(void **state)
{
    fixture *f = *state;
    collected c = {0};
    int64_t id = hunt(f, "rule any_file { condition: filesize > 0 }", 1, false, &c, 0);
    assert_int_equal(c.n, 1);
    tr_hunt_job job;
    tr_error err;
    assert_int_equal(tr_hunt_get(f->data, id, &job, &err), 1);
    assert_int_equal(job.status, TR_HUNT_CANCELLED);
    assert_int_equal(job.matches, 1);
    assert_int_equal(job.full_scan_rules, 1);
    tr_hunt_job_clear(&job);

    collected c2 = {0};
    id = hunt(f, "rule any_file { condition: filesize > 0 }", 0, true, &c2, 0);
    assert_int_equal(c2.n, 0);
    assert_int_equal(tr_hunt_get(f->data, id, &job, &err), 1);
    assert_int_equal(job.status, TR_HUNT_CANCELLED);
    tr_hunt_job_clear(&job);
}

static void test_parse_errors_never_reach_libyara(void **state)
{
    fixture *f = *state;
    tr_hunt_source src = {"bad.yar", "rule x { condition: ~9223372036854775807 \\ -1 }", 47};
    tr_hunt_params p = {.sources = &src, .nsources = 1};
    int64_t id;
    tr_error err;
    assert_int_equal(tr_hunt_submit(f->data, &p, &id, &err), -1);
    assert_non_null(strstr(err.msg, "bad.yar:1:"));
}

static void test_interrupted_job_is_marked_failed(void **state)
{
    fixture *f = *state;
    tr_hunt_source src = {"r.yar", "rule a { condition: true }", 26};
    tr_hunt_params p = {.sources = &src, .nsources = 1};
    int64_t id;
    tr_error err;
    assert_int_equal(tr_hunt_submit(f->data, &p, &id, &err), 0);
    /* What a process killed mid-hunt leaves: "running", nobody holding the lock. */
    char *db = tr_xasprintf("%s/trawl.db", f->data);
    sqlite3 *s;
    assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
    char *sql = tr_xasprintf("UPDATE hunts SET status='running' WHERE id=%lld", (long long)id);
    assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(s);
    free(sql);
    free(db);
    tr_hunt_job job;
    assert_int_equal(tr_hunt_get(f->data, id, &job, &err), 1);
    assert_int_equal(job.status, TR_HUNT_FAILED);
    assert_non_null(job.error);
    assert_non_null(strstr(job.error, "interrupted"));
    tr_hunt_job_clear(&job);
    /* A failed job cannot be run again. */
    tr_hunt *h;
    assert_int_equal(tr_hunt_open(f->data, id, &h, &err), -1);
}

static void test_livehunt_hook_and_hits(void **state)
{
    fixture *f = *state;
    tr_error err;
    const char *rules = "rule digits { meta: author = \"ana\" description = \"ten digits\" "
                        "reference = \"https://example.org\" strings: $d = \"1234567890\" "
                        "condition: $d }";
    assert_int_equal(tr_live_add(f->data, "L1", "l1.yar", rules, strlen(rules), false, false, &err), 0);
    assert_int_equal(tr_live_add(f->data, "L1", "l1.yar", rules, strlen(rules), false, false, &err), -1);
    assert_int_equal(tr_live_add(f->data, "../x", "l1.yar", rules, strlen(rules), false, true, &err), -1);
    char *yarc = tr_xasprintf("%s/rules/L1.yarc", f->data);
    assert_int_equal(access(yarc, R_OK), 0);
    free(yarc);
    /* New samples: the ingest hook scans them. */
    write_file(f->in, "new-digits.bin", "abc 1234567890 def", 18);
    write_file(f->in, "new-other.bin", "abc 123456789 def", 17);
    ingest(f);
    tr_store *s;
    assert_int_equal(tr_store_open(f->data, TR_STORE_READONLY, &s, &err), 0);
    tr_sample *hit = NULL, *miss = NULL;
    tr_digests d;
    tr_digest_buffer("abc 1234567890 def", 18, &d);
    assert_int_equal(tr_store_get(s, d.sha256, &hit, &err), 1);
    tr_digest_buffer("abc 123456789 def", 17, &d);
    assert_int_equal(tr_store_get(s, d.sha256, &miss, &err), 1);
    json_t *j = tr_hunt_live_hits_json(f->data, hit->id, &err);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 1);
    json_t *o = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(o, "rule_name")), "digits");
    assert_string_equal(json_string_value(json_object_get(o, "author")), "ana");
    assert_string_equal(json_string_value(json_object_get(o, "description")), "ten digits");
    assert_string_equal(json_string_value(json_object_get(o, "reference")), "https://example.org");
    json_decref(j);
    j = tr_hunt_live_hits_json(f->data, miss->id, &err);
    assert_true(json_is_null(j));
    json_decref(j);
    /* The old sample with digits was there before the rule set: not a live hit. */
    tr_live_hit *hits;
    size_t n;
    assert_int_equal(tr_live_hits_for_ruleset(f->data, "L1", 0, &hits, &n, &err), 0);
    assert_int_equal(n, 1);
    tr_live_hits_free(hits, n);
    /* Disabled: the next new sample is not scanned. */
    assert_int_equal(tr_live_enable(f->data, "L1", false, &err), 1);
    write_file(f->in, "new-digits2.bin", "zz 1234567890 zz", 16);
    ingest(f);
    assert_int_equal(tr_live_hits_for_ruleset(f->data, "L1", 0, &hits, &n, &err), 0);
    assert_int_equal(n, 1);
    tr_live_hits_free(hits, n);
    tr_live_ruleset *l;
    assert_int_equal(tr_live_list(f->data, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_false(l[0].enabled);
    assert_int_equal(l[0].rules, 1);
    tr_live_list_free(l, n);
    assert_int_equal(tr_live_remove(f->data, "L1", &err), 1);
    assert_int_equal(tr_live_remove(f->data, "L1", &err), 0);
    j = tr_hunt_live_hits_json(f->data, hit->id, &err);
    assert_true(json_is_null(j));
    json_decref(j);
    tr_sample_free(hit);
    tr_sample_free(miss);
    tr_store_close(s);
}

/* The shapes DESIGN.md names as killing libyara 4.2.3. trawl's parser rejects
 * them; here they go straight to the verifier, which must contain the crash. */
static void verify_crasher(fixture *f, const char *rule, const char *want)
{
    hv_source src = {"crasher.yar", rule, strlen(rule)};
    hv_group g = {.src = &src, .nsrc = 1};
    hv_task t = {.sample_id = 1, .size = 10};
    t.path = tr_xasprintf("%s/digits.txt", f->in);
    hv_shared *sh = hv_shared_new();
    hv_run run = {.groups = &g, .ngroups = 1, .tasks = &t, .ntasks = 1, .threads = 1, .sh = sh};
    hv_events ev = {0};
    tr_error err;
    assert_int_equal(hv_verify(&run, &ev, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("'%s' not in: %s", want, err.msg);
    hv_shared_free(sh);
    free(t.path);
}

static void test_verifier_contains_libyara_crashes(void **state)
{
    fixture *f = *state;
    /* SIGFPE while compiling. */
    verify_crasher(f, "rule a { condition: ~9223372036854775807 \\ -1 }", "while compiling");
    /* SIGFPE while scanning (derived from filesize). */
    verify_crasher(f,
                   "rule b { condition: (filesize - filesize - 9223372036854775807 - 1) \\ -1 "
                   "== 1 }",
                   "while scanning sample digits.txt");
    /* An assert while scanning 1234567890. */
    verify_crasher(f, "rule c { strings: $h = { 31[-][8-][-]30 } condition: $h }",
                   "while scanning sample digits.txt");
    /* A plain compile error is libyara's message, verbatim. */
    verify_crasher(f, "rule d { condition: nosuch }", "undefined identifier \"nosuch\"");
}

/* A child that sends nothing and uses no CPU is replaced; the new one scans
 * only what the first did not finish, so nothing is reported twice. Task 1
 * is a FIFO: opening it blocks for ever, as a child forked while another
 * thread held a lock blocks (ASan's allocator, in the server). */
typedef struct stall_state {
    hv_shared *sh;
    const char *fifo, *good;
    int matches[2];
    int replaced;
} stall_state;

static void stall_on_match(void *arg, size_t task, size_t group, const char *json)
{
    (void)group;
    stall_state *st = arg;
    assert_true(task < 2);
    assert_non_null(strstr(json, "\"rule\":\"marker\""));
    st->matches[task]++;
}

static void stall_on_tick(void *arg)
{
    stall_state *st = arg;
    /* After the first child was killed, the FIFO becomes a plain file. */
    if (st->good && atomic_load(&st->sh->restarts) >= 1 && !st->replaced) {
        assert_int_equal(rename(st->good, st->fifo), 0);
        st->replaced = 1;
    }
}

static void run_stall(fixture *f, bool replace, int want_rc, int want_restarts)
{
    static const char rule[] = "rule marker { strings: $a = \"STALLMARK\" condition: $a }";
    write_file(f->in, "first.bin", "xx STALLMARK xx", 15);
    write_file(f->in, "second.tmp", "yy STALLMARK yy", 15);
    char *fifo = tr_xasprintf("%s/second.bin", f->in);
    char *good = tr_xasprintf("%s/second.tmp", f->in);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    hv_source src = {"stall.yar", rule, strlen(rule)};
    hv_group g = {.src = &src, .nsrc = 1};
    hv_task t[2] = {{.sample_id = 1, .size = 15}, {.sample_id = 2, .size = 15}};
    t[0].path = tr_xasprintf("%s/first.bin", f->in);
    t[1].path = fifo;
    hv_shared *sh = hv_shared_new();
    stall_state st = {.sh = sh, .fifo = fifo, .good = replace ? good : NULL};
    hv_run run = {.groups = &g, .ngroups = 1, .tasks = t, .ntasks = 2, .threads = 1, .sh = sh,
                  .stall_secs = 1};
    hv_events ev = {.arg = &st, .on_match = stall_on_match, .on_tick = stall_on_tick};
    tr_error err;
    int rc = hv_verify(&run, &ev, &err);
    if (rc != want_rc)
        fail_msg("hv_verify gave %d: %s", rc, rc ? err.msg : "");
    assert_int_equal(atomic_load(&sh->restarts), want_restarts);
    assert_int_equal(st.matches[0], 1);
    if (replace) {
        assert_int_equal(st.matches[1], 1);
        assert_int_equal(atomic_load(&sh->scanned), 2);
    } else {
        assert_int_equal(st.matches[1], 0);
        assert_non_null(strstr(err.msg, "made no progress"));
    }
    hv_shared_free(sh);
    unlink(fifo);
    unlink(good);
    free(t[0].path);
    free(fifo);
    free(good);
}

static void test_stuck_verifier_is_replaced(void **state)
{
    run_stall(*state, true, 0, 1);
}

static void test_verifier_stuck_every_time_fails(void **state)
{
    run_stall(*state, false, -1, HV_STALL_RETRIES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retrohunt_results_are_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_externals_are_filled_per_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_never_reach_libyara, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_job_is_marked_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_livehunt_hook_and_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verifier_contains_libyara_crashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_verifier_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verifier_stuck_every_time_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
