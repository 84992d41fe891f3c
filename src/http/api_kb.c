/* /api/kb/...: trawl's data linked into the knowledge base.
 *   POST sync [{"full": true}]       one sync (kblink.h), or a full pass; its counts
 *   GET  match?pattern=P             samples and noise addresses a STIX pattern matches
 *   POST match {"pattern": P} | {"indicator": ID}
 *                                    the same; a YARA indicator is queued as a hunt */
#include <string.h>

#include "http/http_internal.h"
#include "hunt/hunt.h"
#include "kblink/kblink.h"
#include "stix/stix.h"

/* {"full": true} in the body (or ?full=1) asks for a full pass, as
 * `trawl kb sync --full` does; no body is an ordinary sync. */
static enum MHD_Result kb_sync(http_request *r)
{
    bool full = false;
    const char *q = http_query(r, "full");
    if (q && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0))
        full = true;
    else if (q && strcmp(q, "0") != 0 && strcmp(q, "false") != 0)
        return http_send_error(r, 400, "full is 1, true, 0 or false");
    if (r->body.len) {
        enum MHD_Result sent = MHD_NO;
        json_t *body = http_json_body(r, &sent);
        if (!body)
            return sent;
        json_t *f = json_object_get(body, "full");
        bool bad = f && !json_is_boolean(f);
        full = full || json_is_true(f);
        json_decref(body);
        if (bad)
            return http_send_error(r, 400, "\"full\" must be true or false");
    }
    tr_kblink_stats st;
    tr_error err;
    int rc = tr_kblink_sync_mode(r->data_dir, full ? TR_KBLINK_FULL : TR_KBLINK_AUTO, &st, &err);
    if (rc != 0)
        return http_send_error(r, 500, "%s", err.msg);
    return http_send_json(r, 200, json_pack("{ss sI sI sI sI sI sb}", "query_status", "ok",
                                            "objects", (json_int_t)st.objects, "unchanged",
                                            (json_int_t)st.unchanged, "added", (json_int_t)st.added,
                                            "updated", (json_int_t)st.updated, "retired",
                                            (json_int_t)st.retired, "full", st.full));
}

static enum MHD_Result match_pattern(http_request *r, const char *pattern)
{
    json_t *res = NULL;
    tr_error err;
    if (tr_kblink_match_pattern(r->data_dir, pattern, &res, &err) != 0)
        return http_send_error(r, strncmp(err.msg, "pattern", 7) == 0 ||
                                          strstr(err.msg, "names no file") ? 400 : 500,
                               "%s", err.msg);
    json_object_set_new(res, "query_status", json_string("ok"));
    return http_send_json(r, 200, res);
}

static int get_row(void *arg, const tr_stix_row *row)
{
    json_t **o = arg;
    *o = json_loadb(row->json, row->json_len, 0, NULL);
    return 0;
}

static enum MHD_Result match_indicator(http_request *r, const char *id)
{
    tr_stix_db *kb;
    tr_error err;
    if (tr_stix_open(r->data_dir, &kb, &err) != 0)
        return http_send_error(r, 500, "%s", err.msg);
    json_t *ind = NULL;
    int got = tr_stix_get(kb, id, get_row, &ind, &err);
    tr_stix_close(kb);
    if (got < 0)
        return http_send_error(r, 500, "%s", err.msg);
    const char *type = json_string_value(json_object_get(ind, "type"));
    if (!got || !ind || !type || strcmp(type, "indicator") != 0) {
        json_decref(ind);
        return http_send_error(r, 404, "no indicator %s in the knowledge base", id);
    }
    const char *pattern = json_string_value(json_object_get(ind, "pattern"));
    const char *ptype = json_string_value(json_object_get(ind, "pattern_type"));
    enum MHD_Result sent;
    if (pattern && ptype && strcmp(ptype, "yara") == 0) {
        /* Rule text from the knowledge base is text from the network: no
         * includes. A hunt queued here is any other hunt: the queue's
         * bound, the server's time limit and the submitter's turn. */
        tr_hunt_source src = {id, pattern, strlen(pattern)};
        tr_hunt_params p = {.sources = &src, .nsources = 1,
                            .time_limit = http_hunt_time_limit(r->srv),
                            .owner = r->key_name[0] ? r->key_name : NULL};
        int64_t job = 0;
        if (!http_hunt_queue_full(r, &sent)) {
            if (tr_hunt_submit(r->data_dir, &p, &job, &err) != 0) {
                sent = http_send_error(r, 422, "%s", err.msg);
            } else {
                http_hunts_kick(r->srv);
                sent = http_send_json(r, 202, json_pack("{ss sI}", "query_status", "queued",
                                                        "hunt", (json_int_t)job));
            }
        }
    } else if (pattern && ptype && strcmp(ptype, "stix") == 0) {
        sent = match_pattern(r, pattern);
    } else {
        sent = http_send_error(r, 422, "indicator %s has pattern_type %s: only stix and yara are"
                                       " looked up", id, ptype ? ptype : "(none)");
    }
    json_decref(ind);
    return sent;
}

enum MHD_Result api_kb(http_request *r)
{
    bool post = strcmp(r->method, "POST") == 0;
    if (strcmp(r->rest, "sync") == 0)
        return kb_sync(r);
    if (strcmp(r->rest, "match") != 0)
        return http_send_error(r, 404, "no endpoint %s", r->path);
    if (!post) {
        const char *p = http_query(r, "pattern");
        if (!p || !*p)
            return http_send_error(r, 400, "give pattern=[file:hashes.'SHA-256' = '...']");
        return match_pattern(r, p);
    }
    enum MHD_Result sent = MHD_NO;
    json_t *body = http_json_body(r, &sent);
    if (!body)
        return sent;
    const char *p = json_string_value(json_object_get(body, "pattern"));
    const char *id = json_string_value(json_object_get(body, "indicator"));
    if (p && *p)
        sent = match_pattern(r, p);
    else if (id && *id)
        sent = match_indicator(r, id);
    else
        sent = http_send_error(r, 400, "expected {\"pattern\": P} or {\"indicator\": ID}");
    json_decref(body);
    return sent;
}
