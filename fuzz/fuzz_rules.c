/* libFuzzer target: rule text -> parse -> plan -> explain. Must never crash,
 * leak or hang; libyara is not called (it has known crashers). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    tr_ruleset *rs = NULL;
    tr_error err;
    if (tr_rules_parse_buffer("fuzz.yar", (const char *)data, size, &rs, &err) != 0)
        return 0;
    tr_plan *p = NULL;
    if (tr_plan_build(rs, &p, &err) == 0) {
        tr_buf b = {0};
        tr_plan_explain(p, &b);
        tr_buf_free(&b);
        json_decref((json_t *)tr_plan_explain_json(p));
        for (size_t i = 0; i < tr_plan_count(p); i++)
            (void)tr_query_match(tr_plan_query(p, i), data, size);
        tr_plan_free(p);
    }
    tr_ruleset_free(rs);
    return 0;
}
