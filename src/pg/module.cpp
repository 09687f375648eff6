/*-------------------------------------------------------------------------
 *
 * module.cpp
 *		Entry point of ephemeral_crypt: _PG_init and the module magic.
 *
 * The library only makes sense in the postmaster, before any child exists:
 * that is where the instance key is born and the file-access layer is
 * installed, so every process inherits both by fork. Loaded any other way it
 * refuses with an explanation.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress) {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("ephemeral_crypt must be loaded via shared_preload_libraries"),
                        errhint("Add ephemeral_crypt to shared_preload_libraries in "
                                "postgresql.conf and restart the server.")));
    }
}
