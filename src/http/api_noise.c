/* /api/noise/...: sensors post event batches; analysts read IP records and
 * manage tags. */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "noise/noise.h"

#define EVENTS_PER_BATCH 10000

/* The contract with remote sensors: 200 {"accepted": N} only once the whole
 * batch is committed; any invalid event refuses the batch (4xx naming the
 * event and the property), so a 2xx is the sensor's licence to drop it. */
/* GET: stored events, newest first (?ip=, ?tag=, ?limit=). */
static enum MHD_Result list_events(http_request *r)
{
    const char *lim = http_query(r, "limit");
    char *end = NULL;
    long long limit = lim ? strtoll(lim, &end, 10) : 100;
    if (lim && (*end || limit < 1 || limit > 10000))
        return http_send_error(r, 400, "limit is 1 to 10000");
    tr_noise *nz = NULL;
    tr_error err;
    if (tr_noise_open(r->data_dir, &nz, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    json_t *evs = NULL;
    int rc = tr_noise_events(nz, http_query(r, "ip"), http_query(r, "tag"), limit, &evs, &err);
    tr_noise_close(nz);
    if (rc != 0)
        return http_send_error(r, strstr(err.msg, "not an IP address") ? 400 : 500, "%s", err.msg);
    return http_send_json(r, 200, json_pack("{s:o}", "events", evs));
}

enum MHD_Result api_noise_events(http_request *r)
{
    if (strcmp(r->method, "POST") != 0)
        return list_events(r);
    enum MHD_Result sent = MHD_NO;
    json_t *body = http_json_body(r, &sent);
    if (!body)
        return sent;
    json_t *arr = json_object_get(body, "events");
    if (!json_is_array(arr)) {
        json_decref(body);
        return http_send_error(r, 400, "expected {\"events\": [EVENT, ...]}");
    }
    size_t n = json_array_size(arr);
    if (n > EVENTS_PER_BATCH) {
        json_decref(body);
        return http_send_error(r, 413, "%zu events in one batch; at most %d", n,
                               EVENTS_PER_BATCH);
    }
    tr_event *evs = tr_xcalloc(n ? n : 1, sizeof *evs);
    tr_error err;
    size_t ok = 0;
    enum MHD_Result rc = MHD_NO;
    bool answered = false;
    for (; ok < n; ok++) {
        if (tr_event_from_json(json_array_get(arr, ok), &evs[ok], &err) != 0) {
            rc = http_send_error(r, 400, "events[%zu]: %s; nothing stored", ok, err.msg);
            answered = true;
            break;
        }
    }
    json_decref(body);
    if (!answered) {
        tr_noise *nz = NULL;
        tr_noise_stats st;
        if (tr_noise_open(r->data_dir, &nz, &err) != 0)
            rc = http_send_error(r, 503, "%s", err.msg);
        else if (tr_noise_ingest(nz, evs, n, &st, &err) != 0)
            rc = http_send_error(r, 500, "%s; nothing stored", err.msg);
        else
            rc = http_send_json(r, 200, json_pack("{s:I}", "accepted", (json_int_t)st.events));
        tr_noise_close(nz);
    }
    for (size_t i = 0; i < ok; i++)
        tr_event_clear(&evs[i]);
    free(evs);
    return rc;
}

enum MHD_Result api_noise_ip(http_request *r)
{
    tr_noise *nz = NULL;
    tr_error err;
    if (tr_noise_open(r->data_dir, &nz, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    json_t *rec = NULL;
    int found = tr_noise_ip(nz, r->rest, &rec, &err);
    tr_noise_close(nz);
    if (found < 0)
        return http_send_error(r, strstr(err.msg, "not an IP address") ? 400 : 500, "%s", err.msg);
    if (found == 0)
        return http_send_json(r, 404, json_pack("{s:s, s:b, s:s}", "ip", r->rest, "seen", 0,
                                                "error", "this address was never seen"));
    return http_send_json(r, 200, rec);
}

enum MHD_Result api_noise_tags(http_request *r)
{
    tr_noise *nz = NULL;
    tr_error err;
    if (tr_noise_open(r->data_dir, &nz, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    enum MHD_Result rc;
    if (strcmp(r->method, "DELETE") == 0) {
        int removed = tr_noise_tag_rm(nz, r->rest, &err);
        if (removed < 0)
            rc = http_send_error(r, 409, "%s", err.msg);
        else if (removed == 0)
            rc = http_send_error(r, 404, "no tag named '%s'", r->rest);
        else
            rc = http_send_json(r, 200, json_pack("{s:s}", "removed", r->rest));
    } else if (strcmp(r->method, "POST") == 0) {
        enum MHD_Result sent = MHD_NO;
        json_t *body = http_json_body(r, &sent);
        if (!body) {
            tr_noise_close(nz);
            return sent;
        }
        const char *text = json_string_value(json_object_get(body, "text"));
        const char *name = json_string_value(json_object_get(body, "name"));
        json_t *added = NULL;
        bool test = strcmp(r->rest, "test") == 0;
        json_int_t limit = json_integer_value(json_object_get(body, "limit"));
        if (!text)
            rc = http_send_error(r, 400, "expected {\"text\": \"YARA rules\", \"name\": \"label\"}");
        else if (test && (limit < 0 || limit > 1000000))
            rc = http_send_error(r, 400, "limit is 0 (10,000) to 1,000,000 events");
        else if (test && tr_noise_tag_test(nz, name ? name : "api", text,
                                           json_string_length(json_object_get(body, "text")),
                                           limit, &added, &err) != 0)
            rc = http_send_error(r, 400, "%s", err.msg);
        else if (test)
            rc = http_send_json(r, 200, added);
        else if (tr_noise_tag_add(nz, name ? name : "api", text,
                                  json_string_length(json_object_get(body, "text")), &added,
                                  &err) != 0)
            rc = http_send_error(r, 400, "%s", err.msg);
        else
            rc = http_send_json(r, 201, added);
        json_decref(body);
    } else {
        json_t *tags = NULL;
        if (tr_noise_tags(nz, &tags, &err) != 0)
            rc = http_send_error(r, 500, "%s", err.msg);
        else
            rc = http_send_json(r, 200, json_pack("{s:o}", "tags", tags));
    }
    tr_noise_close(nz);
    return rc;
}
