// The only way src/pg's C++ files reach PostgreSQL's headers: wrapped in
// extern "C". Files that include this must not include the C++ headers of
// src/core, src/interpose or src/engine, which refuse to share a translation
// unit with postgres.h; they talk to the engine through its C interface,
// engine/engine_api.h. Differences between PostgreSQL versions belong in
// src/pg, behind PG_VERSION_NUM.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_control.h"
#include "commands/extension.h"
#include "common/controldata_utils.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#if PG_VERSION_NUM >= 180000
#include "storage/aio.h"
#endif
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

// How the server prints an LSN, so that messages match pg_controldata and the
// server's own: PostgreSQL 19 pads the low half to eight hex digits.
#if PG_VERSION_NUM >= 190000
#define EC_LSN_FORMAT "%X/%08X"
#else
#define EC_LSN_FORMAT "%X/%X"
#endif

// PostgreSQL 15 leaves PGDLLEXPORT empty on ELF platforms; the library is
// built with -fvisibility=hidden, so the symbols the server looks up (module
// magic, _PG_init, SQL-callable functions) must be exported explicitly.
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
