/* RIOT, in trawl an allow-list an admin imports (business services whose
 * traffic is not noise), and the IPs analysts flag as interesting. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise/noise_internal.h"

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

int tr_noise_riot_import(tr_noise *n, const char *path, uint64_t *count, uint64_t *bad_line,
                         tr_error *err)
{
    *count = 0;
    *bad_line = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return tr_fail_errno(err, "cannot open %s", path);
    if (noise_exec(n, "BEGIN IMMEDIATE; DELETE FROM noise_riot;", err) != 0) {
        fclose(f);
        return -1;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "INSERT INTO noise_riot(cidr, name, category, trust_level,"
                           " description, reference, updated) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        noise_db_fail(n->db, err);
        goto fail;
    }
    char line[4096];
    uint64_t no = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *col[6] = {0};
        int nc = 0;
        for (char *p = l; p && nc < 6; nc++) {
            char *comma = nc < 5 ? strchr(p, ',') : NULL;
            if (comma)
                *comma = 0;
            col[nc] = trim(p);
            p = comma ? comma + 1 : NULL;
        }
        int fam, bits;
        uint8_t a[16];
        char canon[64];
        if (nc < 4 || noise_parse_cidr(col[0], &fam, a, &bits) != 0 || !*col[1] ||
            (strcmp(col[3], "1") != 0 && strcmp(col[3], "2") != 0)) {
            if (!*bad_line)
                *bad_line = no;
            continue;
        }
        inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, canon, sizeof canon);
        char *cidr = tr_xasprintf("%s/%d", canon, bits);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, cidr, -1, SQLITE_TRANSIENT);
        free(cidr);
        for (int k = 1; k < 6; k++)
            sqlite3_bind_text(st, k + 1, col[k] ? col[k] : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 7, tr_now_unix());
        if (sqlite3_step(st) != SQLITE_DONE) {
            noise_db_fail(n->db, err);
            goto fail;
        }
        (*count)++;
    }
    sqlite3_finalize(st);
    fclose(f);
    if (*count == 0) {
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
        return tr_fail(err, "%s: no CIDR,name,category,trust_level line; the list is unchanged",
                       path);
    }
    return noise_exec(n, "COMMIT", err);
fail:
    sqlite3_finalize(st);
    fclose(f);
    sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static bool in_net(int fam, const uint8_t *a, int nfam, const uint8_t *net, int bits)
{
    if (fam != nfam)
        return false;
    for (int b = 0; b < bits; b++)
        if (((a[b / 8] >> (7 - b % 8)) & 1) != ((net[b / 8] >> (7 - b % 8)) & 1))
            return false;
    return true;
}

int tr_noise_riot(tr_noise *n, const char *ip, json_t **out, tr_error *err)
{
    uint8_t a[16];
    int fam = strchr(ip, ':') ? 6 : 4;
    if (inet_pton(fam == 4 ? AF_INET : AF_INET6, ip, a) != 1)
        return tr_fail(err, "'%.60s' is not an IP address", ip);
    sqlite3_stmt *st = noise_stmt(n,
                                  "SELECT cidr, name, category, trust_level, description, reference,"
                                  " updated FROM noise_riot ORDER BY id",
                                  err);
    if (!st)
        return -1;
    int found = 0;
    /* The most specific network wins. */
    int best_bits = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int nfam, bits;
        uint8_t net[16];
        const char *cidr = (const char *)sqlite3_column_text(st, 0);
        if (noise_parse_cidr(cidr, &nfam, net, &bits) != 0 || bits <= best_bits ||
            !in_net(fam, a, nfam, net, bits))
            continue;
        if (found)
            json_decref(*out);
        best_bits = bits;
        found = 1;
        *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "cidr", cidr, "name",
                         sqlite3_column_text(st, 1), "category", sqlite3_column_text(st, 2),
                         "trust_level", sqlite3_column_text(st, 3), "description",
                         sqlite3_column_text(st, 4), "reference", sqlite3_column_text(st, 5),
                         "last_updated", noise_time_json(sqlite3_column_int64(st, 6) * 1000000));
    }
    noise_stmt_done(st);
    return found;
}

int tr_noise_interesting(tr_noise *n, const char *ip, const char *by, tr_error *err)
{
    uint8_t a[16];
    char canon[64];
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, ip, a) != 1 || !inet_ntop(fam, a, canon, sizeof canon))
        return tr_fail(err, "'%.60s' is not an IP address", ip);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "INSERT OR REPLACE INTO noise_interesting(ip, by, time) VALUES(?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, by ? by : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, tr_now_unix());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : noise_db_fail(n->db, err);
}
