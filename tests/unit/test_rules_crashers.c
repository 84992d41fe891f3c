/* A search for libyara 4.2.3 crash shapes: random conditions built from
 * integer division and modulo with non-constant operands. Every condition
 * trawl's parser accepts is compiled and scanned by libyara in a forked child
 * over inputs chosen to make the operands extreme (empty, 0xff bytes so that
 * int8() is -1, many matches); a child killed by a signal is a crasher the
 * parser let through, and fails the test. The parser may refuse more than
 * libyara crashes on; it must never refuse less. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <yara.h>

#include "fixture.h"
#include "rules/rules.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static unsigned rnd(unsigned n)
{
    return n ? fixture_rnd(&rng) % n : 0;
}

/* Operands that reach the edges: INT64_MIN as a constant or derived from
 * filesize, -1 from a 0xff byte or from filesize arithmetic. */
static const char *const atoms[] = {
    "filesize", "#a", "@a[1]", "!a[1]", "uint8(0)", "int8(0)", "int16(0)", "int32(0)",
    "uint32(0)", "int32be(0)", "(1 << 63)", "(-9223372036854775807 - 1)", "(filesize - filesize - 1)",
    "(filesize - 9223372036854775807 - 1)", "(0 - filesize)", "(#a - 1)", "-1", "1", "2", "0x7f",
    "9223372036854775807", "(filesize - filesize)",
};
static const char *const ops[] = {"\\", "%", "+", "-", "*", "&", "|", "^", ">>", "<<"};

static void gen(tr_buf *b, int depth, bool force_div)
{
    if (depth <= 0 || (!force_div && rnd(3) == 0)) {
        tr_buf_printf(b, "%s", atoms[rnd(sizeof atoms / sizeof *atoms)]);
        return;
    }
    unsigned u = rnd(10);
    if (u == 0) {
        tr_buf_printf(b, "-(");
        gen(b, depth - 1, false);
        tr_buf_printf(b, ")");
        return;
    }
    if (u == 1) {
        tr_buf_printf(b, "~(");
        gen(b, depth - 1, false);
        tr_buf_printf(b, ")");
        return;
    }
    const char *op = force_div || rnd(2) ? (rnd(2) ? "\\" : "%") : ops[rnd(sizeof ops / sizeof *ops)];
    tr_buf_printf(b, "(");
    gen(b, depth - 1, false);
    tr_buf_printf(b, " %s ", op);
    gen(b, depth - 1, false);
    tr_buf_printf(b, ")");
}

static int on_scan(YR_SCAN_CONTEXT *ctx, int message, void *data, void *user)
{
    (void)ctx;
    (void)message;
    (void)data;
    (void)user;
    return CALLBACK_CONTINUE;
}

/* 0: scanned all inputs, 1: libyara refused to compile, 2: died (a signal,
 * or any other exit). */
static int run_in_child(const char *rule)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The sanitizers catch SIGFPE and SIGSEGV and exit: let the child die
         * of the signal, as libyara would kill a real verifier. */
        signal(SIGFPE, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        alarm(20);
        if (yr_initialize() != ERROR_SUCCESS)
            _exit(3);
        YR_COMPILER *c = NULL;
        YR_RULES *rules = NULL;
        if (yr_compiler_create(&c) != ERROR_SUCCESS)
            _exit(3);
        if (yr_compiler_add_string(c, rule, NULL) != 0 || yr_compiler_get_rules(c, &rules) != 0)
            _exit(41);
        static unsigned char buf[4096];
        const struct {
            size_t len;
            int fill;
        } inputs[] = {{0, 0}, {2, 'a'}, {8, 0xff}, {64, 0x80}, {sizeof buf, 'a'}};
        for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
            memset(buf, inputs[i].fill, inputs[i].len);
            yr_rules_scan_mem(rules, buf, inputs[i].len, SCAN_FLAGS_NO_TRYCATCH, on_scan, NULL, 5);
        }
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (WIFSIGNALED(st))
        return 2;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 41)
        return 1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
}

static void test_no_accepted_condition_crashes_libyara(void **state)
{
    (void)state;
    const int N = 1500;
    int accepted = 0, refused = 0, crashed = 0, yara_refused = 0;
    for (int i = 0; i < N; i++) {
        tr_buf cond = {0};
        gen(&cond, 1 + (int)rnd(3), true);
        tr_buf_append(&cond, "", 1);
        char *rule = tr_xasprintf("rule r { strings: $a = \"a\" condition: (%s) == 7 or $a }",
                                  cond.data);
        tr_ruleset *rs = NULL;
        tr_error err;
        if (tr_rules_parse_string("gen.yar", rule, &rs, &err) != 0) {
            refused++;
        } else {
            tr_ruleset_free(rs);
            accepted++;
            int rc = run_in_child(rule);
            if (rc == 2) {
                crashed++;
                printf("libyara crashed on an accepted condition: %s\n", cond.data);
            } else if (rc == 1) {
                yara_refused++;
            }
        }
        free(rule);
        tr_buf_free(&cond);
    }
    printf("conditions: %d generated, %d accepted (libyara scanned them), %d refused by trawl, "
           "%d refused by libyara only, %d crashed\n",
           N, accepted, refused, yara_refused, crashed);
    assert_int_equal(crashed, 0);
    /* The search must exercise both sides, or it proves nothing. */
    assert_true(accepted > N / 10);
    assert_true(refused > N / 20);
}

/* The shapes found so far, each refused with the reason. */
static void test_known_crashers_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "(1 << 63) \\ (filesize - filesize - 1)",
        "(1 << 63) % (filesize - filesize - 1)",
        "(filesize - 9223372036854775807 - 1) \\ int8(0)",
        "(-9223372036854775807 - 1) \\ (0 - filesize)",
        "~9223372036854775807 \\ -1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *rule = tr_xasprintf("rule r { condition: (%s) == 1 }", bad[i]);
        tr_ruleset *rs = NULL;
        tr_error err;
        int rc = tr_rules_parse_string("k.yar", rule, &rs, &err);
        if (rc == 0)
            printf("accepted: %s\n", bad[i]);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err.msg, "crashes libyara"));
        free(rule);
    }
    /* bounded operands stay accepted */
    static const char *const good[] = {
        "filesize \\ (filesize - filesize - 1)",
        "(1 << 63) \\ (filesize + 1)",
        "uint32(0) % int8(0)",
        "(int32(0) - 1) \\ int8(0)",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char *rule = tr_xasprintf("rule r { condition: (%s) == 1 }", good[i]);
        tr_ruleset *rs = NULL;
        tr_error err;
        if (tr_rules_parse_string("k.yar", rule, &rs, &err) != 0)
            printf("refused: %s: %s\n", good[i], err.msg);
        assert_non_null(rs);
        tr_ruleset_free(rs);
        free(rule);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_crashers_refused),
        cmocka_unit_test(test_no_accepted_condition_crashes_libyara),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
