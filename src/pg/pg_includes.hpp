// The only way src/pg's C++ files reach PostgreSQL's headers: wrapped in
// extern "C" and with the C++-hostile macros PostgreSQL defines undone.
// Files that include this must not include src/core or src/interpose
// headers, which refuse to share a translation unit with postgres.h.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
}

// PostgreSQL 15 leaves PGDLLEXPORT empty on ELF platforms; the library is
// built with -fvisibility=hidden, so the symbols the server looks up (module
// magic, _PG_init, SQL-callable functions) must be exported explicitly.
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
