/* libyara's own verdict on rule text, with its first error message verbatim. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <yara.h>

#include "rules/rules.h"

/* yr_initialize/yr_finalize keep a plain counter: serialise them. */
static pthread_mutex_t yara_init_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    char msg[900];
    bool have;
} check_state;

static void on_error(int level, const char *file, int line, const YR_RULE *rule, const char *msg,
                     void *user)
{
    (void)rule;
    check_state *st = user;
    if (level != YARA_ERROR_LEVEL_ERROR || st->have)
        return;
    st->have = true;
    snprintf(st->msg, sizeof st->msg, "%s(%d): %s", file ? file : "rules", line, msg);
}

int tr_rules_yara_check(const char *path_or_name, const char *text, const tr_rules_options *o,
                        tr_error *err)
{
    pthread_mutex_lock(&yara_init_lock);
    int irc = yr_initialize();
    pthread_mutex_unlock(&yara_init_lock);
    if (irc != ERROR_SUCCESS)
        return tr_fail(err, "libyara: initialisation failed (%d)", irc);
    YR_COMPILER *c = NULL;
    int rc = -1;
    if (yr_compiler_create(&c) != ERROR_SUCCESS) {
        tr_fail(err, "libyara: cannot create a compiler");
        goto done;
    }
    check_state st = {.have = false};
    yr_compiler_set_callback(c, on_error, &st);
    if (!o || !o->allow_includes)
        yr_compiler_set_include_callback(c, NULL, NULL, NULL);
    for (size_t i = 0; o && i < o->nexternals; i++)
        yr_compiler_define_string_variable(c, o->externals[i], "");
    int nerr;
    if (text) {
        nerr = yr_compiler_add_string(c, text, NULL);
    } else {
        FILE *f = fopen(path_or_name, "r");
        if (!f) {
            tr_fail_errno(err, "cannot open %s", path_or_name);
            goto done;
        }
        nerr = yr_compiler_add_file(c, f, NULL, path_or_name);
        fclose(f);
    }
    if (nerr > 0) {
        tr_fail(err, "%s", st.have ? st.msg : "libyara: compilation failed");
        goto done;
    }
    YR_RULES *rules = NULL;
    if (yr_compiler_get_rules(c, &rules) != ERROR_SUCCESS) {
        tr_fail(err, "libyara: cannot build the compiled rules");
        goto done;
    }
    yr_rules_destroy(rules);
    rc = 0;
done:
    if (c)
        yr_compiler_destroy(c);
    pthread_mutex_lock(&yara_init_lock);
    yr_finalize();
    pthread_mutex_unlock(&yara_init_lock);
    return rc;
}
