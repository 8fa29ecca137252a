// SQLite (Debian's libsqlite3) for wyrcan-serve's state store. SQLITE_TRANSIENT is a cast macro
// Swift cannot import: these bind a copy of the value.
#ifndef WYRCAN_CSQLITE_SHIM_H
#define WYRCAN_CSQLITE_SHIM_H
#include <sqlite3.h>

static inline int wyr_sqlite_bind_text(sqlite3_stmt *statement, int index, const char *text, int length) {
    return sqlite3_bind_text(statement, index, text, length, SQLITE_TRANSIENT);
}
static inline int wyr_sqlite_bind_blob(sqlite3_stmt *statement, int index, const void *bytes, int length) {
    return sqlite3_bind_blob(statement, index, bytes, length, SQLITE_TRANSIENT);
}
#endif
