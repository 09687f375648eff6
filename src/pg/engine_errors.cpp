/*-------------------------------------------------------------------------
 *
 * engine_errors.cpp
 *		How src/pg reports a failed engine call.
 *
 * The engine hands back {status, errno, message} (engine/engine_api.h).
 * When a system call failed, errno is restored from it so that ereport can
 * pick the SQLSTATE with errcode_for_file_access() and print the reason with
 * %m, exactly as PostgreSQL's own file errors do; otherwise the caller's
 * errcode applies. Only plain C data is alive here, so an ereport that does
 * not return unwinds nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include "pg/extension.hpp"

void ec_report_engine_error(int elevel, int code, const char* what, const ec_error* error,
                            const char* hint) {
    const char* separator = what != nullptr ? ": " : "";
    if (what == nullptr) {
        what = "";
    }
    if (error->saved_errno != 0) {
        errno = error->saved_errno;
        ereport(elevel, (errcode_for_file_access(),
                         errmsg("ephemeral_crypt: %s%s%s: %m", what, separator, error->message),
                         hint != nullptr ? errhint("%s", hint) : 0));
    } else {
        ereport(elevel,
                (errcode(code), errmsg("ephemeral_crypt: %s%s%s", what, separator, error->message),
                 hint != nullptr ? errhint("%s", hint) : 0));
    }
}
