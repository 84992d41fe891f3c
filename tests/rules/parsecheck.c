/* Developer tool: parse each file with trawl, print OK or the error. */
#include <stdio.h>
#include "rules/rules.h"
int main(int argc, char **argv)
{
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        tr_ruleset *rs; tr_error e;
        if (tr_rules_parse_file(argv[i], NULL, &rs, &e) == 0) { printf("ACC %s\n", argv[i]); tr_ruleset_free(rs); }
        else { printf("REJ %s :: %s\n", argv[i], e.msg); bad++; }
    }
    return 0;
}
