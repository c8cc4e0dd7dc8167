#ifndef TUND_CSQLITE_H
#define TUND_CSQLITE_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast macro Swift does not import: bound text is copied by SQLite.
static inline sqlite3_destructor_type tund_sqlite_transient(void) { return SQLITE_TRANSIENT; }

#endif
