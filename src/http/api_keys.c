/* /api/keys: API key management for admins. */
#include <string.h>

#include "http/http_internal.h"

enum MHD_Result api_keys(http_request *r)
{
    tr_auth *a = NULL;
    tr_error err;
    if (tr_auth_open(r->data_dir, &a, &err) != 0)
        return http_send_error(r, 503, "%s", err.msg);
    enum MHD_Result rc;
    if (strcmp(r->method, "DELETE") == 0) {
        int removed = tr_auth_remove_key(a, r->rest, &err);
        if (removed < 0)
            rc = http_send_error(r, 500, "%s", err.msg);
        else if (removed == 0)
            rc = http_send_error(r, 404, "no key named '%s'", r->rest);
        else
            rc = http_send_json(r, 200, json_pack("{s:s}", "query_status", "deleted"));
    } else if (strcmp(r->method, "POST") == 0) {
        enum MHD_Result sent = MHD_NO;
        json_t *body = http_json_body(r, &sent);
        if (!body) {
            tr_auth_close(a);
            return sent;
        }
        const char *name = json_string_value(json_object_get(body, "name"));
        tr_role role = tr_role_parse(json_string_value(json_object_get(body, "role")));
        char key[TR_KEY_LEN];
        if (!name || role == TR_ROLE_NONE)
            rc = http_send_error(r, 400, "expected {\"name\": ..., \"role\": \"reader|analyst|admin\"}");
        else if (tr_auth_add_key(a, name, role, key, &err) != 0)
            rc = http_send_error(r, strstr(err.msg, "exists already") ? 409 : 400, "%s", err.msg);
        else
            rc = http_send_json(r, 201, json_pack("{s:s, s:s, s:s, s:s}", "query_status", "ok",
                                                  "name", name, "role", tr_role_name(role), "key",
                                                  key));
        json_decref(body);
    } else {
        tr_key_info *keys = NULL;
        size_t n = 0;
        if (tr_auth_list_keys(a, &keys, &n, &err) != 0) {
            rc = http_send_error(r, 500, "%s", err.msg);
        } else {
            json_t *data = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:I}", "name", keys[i].name,
                                                      "role", tr_role_name(keys[i].role), "created",
                                                      (json_int_t)keys[i].created, "last_used",
                                                      (json_int_t)keys[i].last_used));
            free(keys);
            rc = http_send_json(r, 200, json_pack("{s:s, s:o}", "query_status", "ok", "data", data));
        }
    }
    tr_auth_close(a);
    return rc;
}
