/* Process-wide SQLite settings, made once before any database is opened. */
#include <sqlite3.h>

#include "core/core.h"

void tr_sqlite_process_setup(void)
{
    /* A statement that fires triggers (the noise tables' change logs, the
     * knowledge base's) keeps a statement journal; past 64 KiB, SQLite's
     * default, it goes to a file in /var/tmp for the rest of the
     * transaction, and every later statement of a batch wrote its pages
     * there with a system call each: 60 writes per noise event stored.
     * Journals of one statement stay far below this bound; a statement that
     * touches more spills as before. */
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 16 << 20);
}
