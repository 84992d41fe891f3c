/* Actors (admin-managed CIDR and reverse-DNS lists), the Tor exit list, and
 * offline enrichment: country from libgeoip's Debian database, ASN,
 * organisation and city from an MMDB file the admin configures, reverse DNS
 * only when switched on. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <GeoIP.h>
#include <maxminddb.h>

#include "noise/noise_internal.h"

int noise_parse_cidr(const char *s, int *family, uint8_t addr[16], int *bits)
{
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    int b = -1;
    if (slash) {
        *slash = 0;
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || v < 0 || v > 128)
            return -1;
        b = (int)v;
    }
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = 4;
        if (b > 32)
            return -1;
        *bits = b < 0 ? 32 : b;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = 6;
        *bits = b < 0 ? 128 : b;
        return 0;
    }
    return -1;
}

static bool in_cidr(int fam, const uint8_t *a, int cfam, const uint8_t *c, int bits)
{
    if (fam != cfam)
        return false;
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, c, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (c[full] & mask);
}

void noise_actors_free(tr_noise *n)
{
    for (size_t i = 0; i < n->nactors; i++) {
        free(n->actors[i].name);
        free(n->actors[i].cidr);
        for (size_t j = 0; j < n->actors[i].nrdns; j++)
            free(n->actors[i].rdns[j]);
        free(n->actors[i].rdns);
    }
    free(n->actors);
    n->actors = NULL;
    n->nactors = 0;
}

int noise_actors_load(tr_noise *n, tr_error *err)
{
    noise_actors_free(n);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT name, benign, cidrs, rdns FROM noise_actors ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    while (sqlite3_step(st) == SQLITE_ROW) {
        n->actors = tr_xrealloc(n->actors, (n->nactors + 1) * sizeof *n->actors);
        noise_actor *a = &n->actors[n->nactors++];
        memset(a, 0, sizeof *a);
        a->name = tr_xstrdup((const char *)sqlite3_column_text(st, 0));
        a->benign = sqlite3_column_int(st, 1) != 0;
        json_t *c = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        json_t *r = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
        size_t i;
        json_t *v;
        a->cidr = tr_xcalloc(json_array_size(c) + 1, sizeof *a->cidr);
        json_array_foreach(c, i, v) {
            if (noise_parse_cidr(json_string_value(v), &a->cidr[a->ncidr].family,
                                 a->cidr[a->ncidr].addr, &a->cidr[a->ncidr].bits) == 0)
                a->ncidr++;
        }
        a->rdns = tr_xcalloc(json_array_size(r) + 1, sizeof *a->rdns);
        json_array_foreach(r, i, v) a->rdns[a->nrdns++] = tr_xstrdup(json_string_value(v));
        json_decref(c);
        json_decref(r);
    }
    sqlite3_finalize(st);
    return 0;
}

static bool suffix_match(const char *host, const char *suffix)
{
    size_t h = strlen(host), s = strlen(suffix);
    while (h && host[h - 1] == '.')
        h--;
    if (s == 0 || s > h || strncasecmp(host + h - s, suffix, s) != 0)
        return false;
    return s == h || suffix[0] == '.' || host[h - s - 1] == '.';
}

const noise_actor *noise_actor_for(const tr_noise *n, int family, const uint8_t *addr,
                                   const char *rdns)
{
    for (size_t i = 0; i < n->nactors; i++)
        for (size_t j = 0; j < n->actors[i].ncidr; j++)
            if (in_cidr(family, addr, n->actors[i].cidr[j].family, n->actors[i].cidr[j].addr,
                        n->actors[i].cidr[j].bits))
                return &n->actors[i];
    if (rdns && *rdns)
        for (size_t i = 0; i < n->nactors; i++)
            for (size_t j = 0; j < n->actors[i].nrdns; j++)
                if (suffix_match(rdns, n->actors[i].rdns[j]))
                    return &n->actors[i];
    return NULL;
}

static int set_actor(tr_noise *n, const char *ip, const noise_actor *a, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "UPDATE noise_ips SET actor=?, actor_benign=? WHERE ip=?", -1,
                           &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    if (a) {
        sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, a->benign);
    }
    sqlite3_bind_text(st, 3, ip, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : noise_db_fail(n->db, err);
}

int noise_actors_apply(tr_noise *n, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT ip, family, rdns, actor FROM noise_ips", -1, &st,
                           NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    /* Collected first: updating rows while stepping over them is undefined. */
    size_t k = 0, cap = 0;
    struct chg {
        char *ip;
        const noise_actor *a;
    } *c = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *ip = (const char *)sqlite3_column_text(st, 0);
        uint8_t addr[16] = {0};
        int fam = sqlite3_column_int(st, 1);
        inet_pton(fam == 6 ? AF_INET6 : AF_INET, ip, addr);
        const noise_actor *a =
            noise_actor_for(n, fam, addr, (const char *)sqlite3_column_text(st, 2));
        const char *old = (const char *)sqlite3_column_text(st, 3);
        if ((a == NULL) == (old == NULL) && (!a || strcmp(a->name, old) == 0))
            continue;
        if (k == cap) {
            cap = cap ? 2 * cap : 64;
            c = tr_xrealloc(c, cap * sizeof *c);
        }
        c[k].ip = tr_xstrdup(ip);
        c[k++].a = a;
    }
    sqlite3_finalize(st);
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        if (rc == 0)
            rc = set_actor(n, c[i].ip, c[i].a, err);
        free(c[i].ip);
    }
    free(c);
    return rc == 0 ? noise_reclassify(n, NULL, err) : -1;
}

int tr_noise_actor_add(tr_noise *n, const char *name, const char *const *cidrs, size_t ncidrs,
                       const char *const *rdns_suffixes, size_t nrdns, bool benign,
                       tr_error *err)
{
    if (!*name || strlen(name) > 200)
        return tr_fail(err, "an actor's name is 1 to 200 characters");
    if (ncidrs == 0 && nrdns == 0)
        return tr_fail(err, "actor '%s' needs at least one --cidr or --rdns-suffix", name);
    json_t *c = json_array(), *r = json_array();
    for (size_t i = 0; i < ncidrs; i++) {
        int fam, bits;
        uint8_t a[16];
        if (noise_parse_cidr(cidrs[i], &fam, a, &bits) != 0) {
            json_decref(c);
            json_decref(r);
            return tr_fail(err, "'%s' is not an address or CIDR range", cidrs[i]);
        }
        json_array_append_new(c, json_string(cidrs[i]));
    }
    for (size_t i = 0; i < nrdns; i++)
        json_array_append_new(r, json_string(rdns_suffixes[i]));
    char *cs = json_dumps(c, JSON_COMPACT), *rs = json_dumps(r, JSON_COMPACT);
    json_decref(c);
    json_decref(r);
    int rc = noise_exec(n, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(n->db,
                                      "INSERT OR REPLACE INTO noise_actors(name, benign, cidrs, "
                                      "rdns, created) VALUES(?,?,?,?,?)",
                                      -1, &st, NULL) != SQLITE_OK)
        rc = noise_db_fail(n->db, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, benign);
        sqlite3_bind_text(st, 3, cs, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rs, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, tr_now_unix());
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = noise_db_fail(n->db, err);
    }
    sqlite3_finalize(st);
    free(cs);
    free(rs);
    if (rc == 0)
        rc = noise_actors_load(n, err);
    if (rc == 0)
        rc = noise_actors_apply(n, err);
    if (rc == 0)
        rc = noise_exec(n, "COMMIT", err);
    if (rc != 0) {
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
        tr_error e2;
        noise_actors_load(n, &e2);
    }
    return rc;
}

int tr_noise_actor_rm(tr_noise *n, const char *name, tr_error *err)
{
    int rc = noise_exec(n, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (rc == 0 &&
        sqlite3_prepare_v2(n->db, "DELETE FROM noise_actors WHERE name=?", -1, &st, NULL) !=
            SQLITE_OK)
        rc = noise_db_fail(n->db, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = noise_db_fail(n->db, err);
        found = sqlite3_changes(n->db) > 0;
    }
    sqlite3_finalize(st);
    if (rc == 0 && found) {
        rc = noise_actors_load(n, err);
        if (rc == 0)
            rc = noise_actors_apply(n, err);
    }
    if (rc == 0)
        rc = noise_exec(n, "COMMIT", err);
    if (rc != 0) {
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return found;
}

int tr_noise_actors(tr_noise *n, json_t **out, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT a.name, a.benign, a.cidrs, a.rdns,"
                           " (SELECT count(*) FROM noise_ips i WHERE i.actor=a.name)"
                           " FROM noise_actors a ORDER BY a.name",
                           -1, &st, NULL) != SQLITE_OK)
        return noise_db_fail(n->db, err);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *c = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        json_t *r = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:b, s:o, s:o, s:I}", "name",
                                             (const char *)sqlite3_column_text(st, 0), "benign",
                                             sqlite3_column_int(st, 1), "cidrs",
                                             c ? c : json_array(), "rdns_suffixes",
                                             r ? r : json_array(), "ips",
                                             (json_int_t)sqlite3_column_int64(st, 4)));
    }
    sqlite3_finalize(st);
    *out = arr;
    return 0;
}

/* ---- Tor ------------------------------------------------------------------ */

int noise_tor_line(char *line, char canon[46])
{
    char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    char *end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        *--end = 0;
    if (!*p || *p == '#')
        return 0;
    /* Tor's exit lists: "ExitNode", "Published", "LastStatus" lines around
     * each "ExitAddress IP DATE TIME". */
    if (strncmp(p, "ExitNode ", 9) == 0 || strncmp(p, "Published ", 10) == 0 ||
        strncmp(p, "LastStatus ", 11) == 0)
        return 0;
    if (strncmp(p, "ExitAddress ", 12) == 0) {
        p += 12;
        char *sp = strchr(p, ' ');
        if (sp)
            *sp = 0;
    }
    uint8_t a[16];
    int fam = strchr(p, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, p, a) != 1 || !inet_ntop(fam, a, canon, 46))
        return -1;
    return 1;
}

int tr_noise_tor_import(tr_noise *n, const char *path, uint64_t *count, uint64_t *bad_line,
                        tr_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tr_fail_errno(err, "cannot open %s", path);
    *count = 0;
    *bad_line = 0;
    int rc = noise_exec(n, "BEGIN IMMEDIATE; DELETE FROM noise_tor;", err);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(n->db, "INSERT OR IGNORE INTO noise_tor(ip) VALUES(?)", -1,
                                      &st, NULL) != SQLITE_OK)
        rc = noise_db_fail(n->db, err);
    char *line = NULL;
    size_t cap = 0;
    uint64_t lineno = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        lineno++;
        char canon[46];
        int kind = noise_tor_line(line, canon);
        if (kind == 0)
            continue;
        if (kind < 0) {
            if (!*bad_line)
                *bad_line = lineno;
            continue;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = noise_db_fail(n->db, err);
        else
            *count += (uint64_t)sqlite3_changes(n->db);
    }
    free(line);
    fclose(f);
    sqlite3_finalize(st);
    /* A wrong file must not wipe the list it would replace. */
    if (rc == 0 && *count == 0 && *bad_line)
        rc = tr_fail(err, "%s has no address (line %llu is not one); the Tor list is unchanged",
                     path, (unsigned long long)*bad_line);
    if (rc == 0)
        rc = noise_exec(n, "COMMIT", err);
    if (rc != 0)
        sqlite3_exec(n->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- enrichment ----------------------------------------------------------- */

void noise_geo_open(tr_noise *n)
{
    char *dir = noise_setting_get(n, "geoip");
    const char *d = dir && *dir ? dir : "/usr/share/GeoIP";
    char *p4 = tr_xasprintf("%s/GeoIP.dat", d), *p6 = tr_xasprintf("%s/GeoIPv6.dat", d);
    /* Mapped, not read: GEOIP_STANDARD makes a pread per tree level of
     * every lookup, and a CLI process opens the files for one address. */
    if (access(p4, R_OK) == 0)
        n->geo4 = GeoIP_open(p4, GEOIP_MMAP_CACHE | GEOIP_SILENCE);
    if (access(p6, R_OK) == 0)
        n->geo6 = GeoIP_open(p6, GEOIP_MMAP_CACHE | GEOIP_SILENCE);
    free(p4);
    free(p6);
    free(dir);
    char *mm = noise_setting_get(n, "mmdb");
    if (mm && *mm) {
        MMDB_s *m = tr_xcalloc(1, sizeof *m);
        if (MMDB_open(mm, MMDB_MODE_MMAP, m) == MMDB_SUCCESS) {
            n->mmdb = m;
        } else {
            tr_log(TR_LOG_WARN, "noise: cannot open the MMDB file %s", mm);
            free(m);
        }
    }
    free(mm);
    char *rd = noise_setting_get(n, "rdns");
    n->rdns = rd && strcmp(rd, "on") == 0;
    free(rd);
}

void noise_geo_close(tr_noise *n)
{
    if (n->geo4)
        GeoIP_delete(n->geo4);
    if (n->geo6)
        GeoIP_delete(n->geo6);
    if (n->mmdb) {
        MMDB_close(n->mmdb);
        free(n->mmdb);
    }
    n->geo4 = n->geo6 = n->mmdb = NULL;
}

static char *mmdb_text(MMDB_entry_s *e, const char *const *path)
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data)
        return NULL;
    if (d.type == MMDB_DATA_TYPE_UTF8_STRING)
        return tr_xasprintf("%.*s", (int)d.data_size, d.utf8_string);
    if (d.type == MMDB_DATA_TYPE_UINT32)
        return tr_xasprintf("%u", d.uint32);
    if (d.type == MMDB_DATA_TYPE_UINT16)
        return tr_xasprintf("%u", d.uint16);
    if (d.type == MMDB_DATA_TYPE_UINT64)
        return tr_xasprintf("%llu", (unsigned long long)d.uint64);
    return NULL;
}

void noise_country(tr_noise *n, int family, const uint8_t *addr, char **cc, char **name)
{
    const char *c = NULL, *nm = NULL;
    /* One walk of the database for both the code and the name. */
    GeoIP *gi = NULL;
    int id = 0;
    if (family == 4 && n->geo4) {
        unsigned long num = ((unsigned long)addr[0] << 24) | ((unsigned long)addr[1] << 16) |
                            ((unsigned long)addr[2] << 8) | addr[3];
        gi = n->geo4;
        id = GeoIP_id_by_ipnum(gi, num);
    } else if (family == 6 && n->geo6) {
        geoipv6_t a6;
        memcpy(&a6, addr, 16);
        gi = n->geo6;
        id = GeoIP_id_by_ipnum_v6(gi, a6);
    }
    if (gi && id > 0) {                    /* 0: not in the database */
        c = GeoIP_code_by_id(id);
        nm = GeoIP_country_name_by_id(gi, id);
    }
    *cc = c ? tr_xstrdup(c) : NULL;
    *name = nm ? tr_xstrdup(nm) : NULL;
}

void noise_lookup(tr_noise *n, int family, const uint8_t *addr, noise_geo *g)
{
    char *cc = NULL, *country = NULL, *city = NULL, *region = NULL, *asn = NULL, *org = NULL,
         *rdns = NULL;
    noise_country(n, family, addr, &cc, &country);
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, addr, 4);
        sl = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, addr, 16);
        sl = sizeof *s6;
    }
    if (n->mmdb) {
        int mmerr = 0;
        MMDB_lookup_result_s r = MMDB_lookup_sockaddr(n->mmdb, (struct sockaddr *)&ss, &mmerr);
        if (mmerr == MMDB_SUCCESS && r.found_entry) {
            static const char *const p_asn[] = {"autonomous_system_number", NULL};
            static const char *const p_org[] = {"autonomous_system_organization", NULL};
            static const char *const p_city[] = {"city", "names", "en", NULL};
            static const char *const p_region[] = {"subdivisions", "0", "names", "en", NULL};
            static const char *const p_cc[] = {"country", "iso_code", NULL};
            static const char *const p_country[] = {"country", "names", "en", NULL};
            asn = mmdb_text(&r.entry, p_asn);
            org = mmdb_text(&r.entry, p_org);
            city = mmdb_text(&r.entry, p_city);
            region = mmdb_text(&r.entry, p_region);
            char *c2 = mmdb_text(&r.entry, p_cc), *n2 = mmdb_text(&r.entry, p_country);
            if (c2) {
                free(cc);
                cc = c2;
            }
            if (n2) {
                free(country);
                country = n2;
            }
        }
    }
    if (n->rdns) {
        char host[NI_MAXHOST];
        if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, NULL, 0, NI_NAMEREQD) == 0)
            rdns = tr_xstrdup(host);
    }
    *g = (noise_geo){cc, country, city, region, asn, org, rdns};
}

void noise_geo_clear(noise_geo *g)
{
    free(g->cc);
    free(g->country);
    free(g->city);
    free(g->region);
    free(g->asn);
    free(g->org);
    free(g->rdns);
    memset(g, 0, sizeof *g);
}

int noise_enrich(tr_noise *n, sqlite3_stmt **stmt, const char *ip, int family,
                 const uint8_t *addr, const noise_geo *g, tr_error *err)
{
    const noise_actor *a = noise_actor_for(n, family, addr, g->rdns);
    if (*stmt) {
        sqlite3_reset(*stmt);
        sqlite3_clear_bindings(*stmt);
    } else if (sqlite3_prepare_v2(n->db,
                                  "UPDATE noise_ips SET country=?, country_code=?, city=?,"
                                  " region=?, asn=?, organization=?, rdns=?, actor=?,"
                                  " actor_benign=? WHERE ip=?",
                                  -1, stmt, NULL) != SQLITE_OK) {
        return noise_db_fail(n->db, err);
    }
    sqlite3_stmt *st = *stmt;
    const char *v[] = {g->country, g->cc, g->city, g->region, g->asn, g->org, g->rdns,
                       a ? a->name : NULL};
    for (int i = 0; i < 8; i++)
        if (v[i])
            sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    if (a)
        sqlite3_bind_int(st, 9, a->benign);
    sqlite3_bind_text(st, 10, ip, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : noise_db_fail(n->db, err);
    sqlite3_reset(st);
    return rc;
}
