/* libFuzzer target: the GNQL parser and its SQL compiler. Must never crash
 * or leak; a query it accepts must print to a canonical text that parses
 * back to the same tree, and must compile to SQL. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise/gnql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GNQL_MAX_LEN + 16)
        return 0;
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = 0;
    tr_gnql *g = NULL;
    tr_error err;
    if (tr_gnql_parse(q, 1800000000, &g, &err) == 0) {
        char *s1 = tr_gnql_format(g);
        tr_gnql *g2 = NULL;
        /* The canonical text quotes every value and spells out every AND:
         * it may outgrow the length limit the original query kept to. */
        if (strlen(s1) > GNQL_MAX_LEN) {
            free(s1);
            tr_gnql_free(g);
            free(q);
            return 0;
        }
        if (tr_gnql_parse(s1, 1800000000, &g2, &err) != 0) {
            fprintf(stderr, "canonical '%s' does not parse: %s\n", s1, err.msg);
            abort();
        }
        char *s2 = tr_gnql_format(g2);
        if (strcmp(s1, s2) != 0) {
            fprintf(stderr, "'%s' reads back as '%s'\n", s1, s2);
            abort();
        }
        char *sql = NULL;
        json_t *params = NULL;
        if (tr_gnql_sql(g, 1800000000, &sql, &params, &err) != 0)
            abort();
        free(sql);
        json_decref(params);
        free(s1);
        free(s2);
        tr_gnql_free(g2);
        tr_gnql_free(g);
    } else if (!strstr(err.msg, "position") && !strstr(err.msg, "longer than")) {
        abort();     /* every parse error names where */
    }
    free(q);
    return 0;
}
