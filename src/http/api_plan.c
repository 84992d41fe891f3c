/* POST /api/plan {"rule": TEXT}: how each rule would be searched, with
 * estimated candidate counts, or where the text is wrong. */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "hunt/hunt.h"
#include "index/index.h"
#include "rules/rules.h"

/* "name:LINE:COL: message" (trawl) or "name(LINE): message" (libyara). */
static void error_position(const char *msg, int *line, int *col)
{
    *line = *col = 0;
    const char *p = strstr(msg, ":");
    while (p) {
        int l = 0, c = 0;
        if (sscanf(p, ":%d:%d:", &l, &c) == 2) {
            *line = l;
            *col = c;
            return;
        }
        p = strstr(p + 1, ":");
    }
    p = strchr(msg, '(');
    if (p)
        sscanf(p, "(%d)", line);
}

static enum MHD_Result rule_error(http_request *r, const char *msg)
{
    int line, col;
    error_position(msg, &line, &col);
    return http_send_json(r, 400, json_pack("{s:s, s:s, s:i, s:i}", "query_status", "error", "error",
                                            msg, "line", line, "column", col));
}

enum MHD_Result api_plan(http_request *r)
{
    enum MHD_Result sent = MHD_NO;
    json_t *body = http_json_body(r, &sent);
    if (!body)
        return sent;
    const char *text = json_string_value(json_object_get(body, "rule"));
    if (!text || !*text) {
        json_decref(body);
        return http_send_error(r, 400, "expected {\"rule\": \"rule text\"}");
    }
    tr_ruleset *rs = NULL;
    tr_plan *plan = NULL;
    tr_error err;
    enum MHD_Result rc;
    /* Text from the network: no includes (the parser refuses them). */
    tr_rules_options opts = {.externals = tr_hunt_externals, .nexternals = TR_HUNT_NEXTERNALS};
    if (tr_rules_parse_opts("rule", text, strlen(text), &opts, &rs, &err) != 0) {
        rc = rule_error(r, err.msg);
    } else if (tr_plan_build(rs, &plan, &err) != 0) {
        rc = rule_error(r, err.msg);
    } else {
        json_t *rules = tr_plan_explain_json(plan);
        char *dir = tr_xasprintf("%s/index", r->data_dir);
        tr_index *ix = NULL;
        tr_index_status st = {0};
        tr_error ierr;
        if (tr_index_open(dir, &ix, &ierr) != 0 || tr_index_get_status(ix, &st, &ierr) != 0) {
            tr_index_close(ix);
            ix = NULL;
        }
        free(dir);
        uint64_t live = st.docs - st.tombstones;
        size_t i;
        json_t *o;
        json_array_foreach(rules, i, o) {
            uint64_t est = 0;
            if (ix && tr_index_estimate(ix, tr_plan_query(plan, i), &est, &ierr) == 0) {
                char buf[64];
                snprintf(buf, sizeof buf, "~%llu of %llu samples",
                         (unsigned long long)(est < live ? est : live), (unsigned long long)live);
                json_object_set_new(o, "estimate", json_string(buf));
                json_object_set_new(o, "estimated_candidates", json_integer((json_int_t)(est < live ? est : live)));
            } else {
                json_object_set_new(o, "estimate", json_string("n/a (no index)"));
            }
        }
        tr_index_close(ix);
        rc = http_send_json(r, 200, json_pack("{s:s, s:I, s:o}", "query_status", "ok", "samples",
                                              (json_int_t)live, "rules", rules));
    }
    tr_plan_free(plan);
    tr_ruleset_free(rs);
    json_decref(body);
    return rc;
}
