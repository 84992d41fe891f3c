#include <zip.h>

#include "core/core.h"

int tr_zip_write_aes(const char *zip_path, const tr_zip_entry *entries, size_t n,
                     const char *password, tr_error *err)
{
    int zerr = 0;
    zip_t *za = zip_open(zip_path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        tr_fail(err, "cannot create %s: %s", zip_path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        /* The file is read when the archive is closed, not now. */
        zip_source_t *src = zip_source_file(za, entries[i].path, 0, -1);
        if (!src) {
            tr_fail(err, "cannot read %s: %s", entries[i].path, zip_strerror(za));
            zip_discard(za);
            return -1;
        }
        zip_int64_t idx = zip_file_add(za, entries[i].name, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
        if (idx < 0) {
            zip_source_free(src);
            tr_fail(err, "cannot add %s to the archive: %s", entries[i].name, zip_strerror(za));
            zip_discard(za);
            return -1;
        }
        if (zip_file_set_encryption(za, (zip_uint64_t)idx, ZIP_EM_AES_256, password) != 0) {
            tr_fail(err, "cannot encrypt %s: %s", entries[i].name, zip_strerror(za));
            zip_discard(za);
            return -1;
        }
    }
    if (zip_close(za) != 0) {
        tr_fail(err, "cannot write %s: %s", zip_path, zip_strerror(za));
        zip_discard(za);
        return -1;
    }
    return 0;
}
