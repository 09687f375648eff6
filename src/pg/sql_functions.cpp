/*-------------------------------------------------------------------------
 *
 * sql_functions.cpp
 *		SQL-callable functions that report the instance's encryption state.
 *
 * They read the settings inherited from the postmaster, the policy in force
 * and the counters in shared memory, and file headers; they never see key bytes (the engine's
 * interface offers none) and never decrypt data for the caller. On a server
 * that did not preload the library each one raises an ERROR that says how to.
 *
 * The library serves every version of the extension's SQL a database may
 * still have (1.0 or 1.1 until ALTER EXTENSION ... UPDATE): the columns a
 * version added come last, and each row is formed for the columns the
 * calling version declares.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include "pg/extension.hpp"

// PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info record, not the
// function, so each is declared exported here as well.
#define EC_SQL_FUNCTION(name)                 \
    extern "C" {                              \
    PG_FUNCTION_INFO_V1(name);                \
    PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
    }

EC_SQL_FUNCTION(ephemeral_crypt_status)
EC_SQL_FUNCTION(ephemeral_crypt_policy_version)
EC_SQL_FUNCTION(ephemeral_crypt_key_age)
EC_SQL_FUNCTION(ephemeral_crypt_encryption_status)
EC_SQL_FUNCTION(ephemeral_crypt_file_status)
EC_SQL_FUNCTION(ephemeral_crypt_scan)
EC_SQL_FUNCTION(ephemeral_crypt_events)
EC_SQL_FUNCTION(ephemeral_crypt_attestation)

namespace {

/*---- Function declarations ----*/

void require_preloaded();
ec_policy_state policy_in_force();
TimestampTz timestamptz_from_unix_ms(int64 unix_ms);
Datum interval_ms_datum(int64 ms);
TimestampTz key_created_at();
Datum key_age_datum();
TupleDesc record_result_descriptor(FunctionCallInfo fcinfo);
void file_report_datums(const ec_file_report& report, Datum* datums, bool* nulls);

/*---- Helpers ----*/

void require_preloaded() {
    if (!ec_state.ready) {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("ephemeral_crypt is not active on this server"),
                        errdetail("The library was not loaded through shared_preload_libraries, "
                                  "so no instance key exists and nothing is encrypted."),
                        errhint("Add ephemeral_crypt to shared_preload_libraries in "
                                "postgresql.conf and restart the server.")));
    }
}

// The policy in force (a reload may have replaced the start-up one), with
// its freshness now.
ec_policy_state policy_in_force() {
    ec_policy_state state;
    if (!ec_engine_read_policy_state(ec_unix_ms_now(), &state)) {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("ephemeral_crypt: the policy in force is not in shared memory")));
    }
    return state;
}

TimestampTz timestamptz_from_unix_ms(int64 unix_ms) {
    // Unix milliseconds to PostgreSQL's microseconds since 2000-01-01.
    return unix_ms * 1000 -
           static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

// An interval of days and time (no months), negative when `ms` is.
Datum interval_ms_datum(int64 ms) {
    Interval* interval = static_cast<Interval*>(palloc0(sizeof(Interval)));
    const int64 usecs = ms * 1000;
    interval->day = static_cast<int32>(usecs / USECS_PER_DAY);
    interval->time = usecs % USECS_PER_DAY;
    return IntervalPGetDatum(interval);
}

TimestampTz key_created_at() {
    return timestamptz_from_unix_ms(ec_engine_key_created_at_unix_ms());
}

Datum key_age_datum() {
    return DirectFunctionCall2(timestamptz_age, TimestampTzGetDatum(GetCurrentTimestamp()),
                               TimestampTzGetDatum(key_created_at()));
}

TupleDesc record_result_descriptor(FunctionCallInfo fcinfo) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE) {
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("function returning record called in context that cannot accept "
                               "type record")));
    }
    return BlessTupleDesc(tupdesc);
}

// The columns of ephemeral_crypt_encryption_status() per SQL version: the
// category, whether it is encrypted and its degradation, then the counters
// in the order of EC_COUNTER_VALUES, then (1.1 on) the cipher. 1.0 knew the
// first six counters; 1.1 added integrity_failures and cipher; 1.2 kept 1.1's.
#define EC_ENCRYPTION_STATUS_COLS_V1_0 9
#define EC_ENCRYPTION_STATUS_COLS_V1_1 11
#define EC_ENCRYPTION_STATUS_COLS 11 /* the most of any version */
static_assert(EC_ENCRYPTION_STATUS_COLS == 3 + EC_COUNTER_COUNT + 1,
              "every counter of EC_COUNTER_VALUES has a column");

// The start of every set-returning function here: refused unless preloaded,
// then the whole result in one tuplestore (InitMaterializedSRF), into which
// the caller puts its rows.
ReturnSetInfo* begin_result_set(FunctionCallInfo fcinfo) {
    require_preloaded();
    InitMaterializedSRF(fcinfo, 0);
    return reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
}

// One row of a set-returning function's result: its values, none NULL
// until set so, put into the result's tuplestore.
template <int Columns>
struct ResultRow {
    Datum datums[Columns];
    bool nulls[Columns] = {false};

    void put(ReturnSetInfo* rsinfo) {
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, datums, nulls);
    }
};

constexpr int kFileReportColumns = 10;

// Column `column` as text, or NULL where the value is absent: a null pointer
// or the empty string the engine's fixed buffers hold for "none".
void text_or_null(Datum* datums, bool* nulls, int column, const char* text) {
    if (text != nullptr && text[0] != '\0') {
        datums[column] = CStringGetTextDatum(text);
    } else {
        nulls[column] = true;
    }
}

// A category's name, or null for "no category" (-1).
const char* category_name_or_null(int category) {
    return category >= 0 ? ec_engine_category_name(category) : nullptr;
}

void file_report_datums(const ec_file_report& report, Datum* datums, bool* nulls) {
    datums[0] = CStringGetTextDatum(report.path);
    text_or_null(datums, nulls, 1, category_name_or_null(report.category));
    datums[2] = BoolGetDatum(report.encrypted);
    datums[3] = CStringGetTextDatum(report.header_status);
    text_or_null(datums, nulls, 4, report.key_id);
    datums[5] = BoolGetDatum(report.current_instance);
    datums[6] = BoolGetDatum(report.plaintext_audit);
    datums[7] = Int64GetDatum(report.logical_size);
    datums[8] = Int64GetDatum(report.physical_size);
    datums[9] = BoolGetDatum(report.has_header);
}

}  // namespace

/*---- SQL-callable functions ----*/

Datum ephemeral_crypt_status(PG_FUNCTION_ARGS) {
    require_preloaded();
    TupleDesc tupdesc = record_result_descriptor(fcinfo);
    const ec_policy_state state = policy_in_force();
    // 1.0's twelve columns, then 1.2's lifecycle columns.
    constexpr int kColumns = 22;
    Datum datums[kColumns];
    bool nulls[kColumns] = {false};
    // Not ready while the policy is stale or an attestation check fails;
    // the reason names the first.
    char attestation_reason[EC_ATTESTATION_DETAIL_BUFFER + 64];
    const bool attestation_failing =
        ec_attestation_failing(attestation_reason, sizeof(attestation_reason));
    datums[0] = BoolGetDatum(ec_state.ready && !state.stale && !attestation_failing);
    datums[1] = CStringGetTextDatum(ec_engine_key_id());
    datums[2] = TimestampTzGetDatum(key_created_at());
    datums[3] = key_age_datum();
    datums[4] = CStringGetTextDatum(state.policy.version);
    datums[5] = CStringGetTextDatum(state.digest);
    datums[6] = BoolGetDatum(state.signed_ok);
    datums[7] = CStringGetTextDatum(state.cipher_summary);
    datums[8] = CStringGetTextDatum(ec_state.ready ? "installed" : "not installed");
    datums[9] = Int32GetDatum(ec_state.objects_patched);
    datums[10] = Int32GetDatum(ec_state.slots_patched);
    datums[11] = Int32GetDatum(ec_state.wal_segments_converted);
    if (state.stale) {
        datums[12] = CStringGetTextDatum(state.stale_reason);
    } else if (attestation_failing) {
        datums[12] = CStringGetTextDatum(attestation_reason);
    } else {
        nulls[12] = true;
    }
    datums[13] = Int64GetDatum(state.serial);
    if (state.has_not_after) {
        datums[14] = TimestampTzGetDatum(timestamptz_from_unix_ms(state.not_after_unix_ms));
    } else {
        nulls[14] = true;
    }
    if (state.has_deadline) {
        datums[15] = interval_ms_datum(state.time_left_ms);
    } else {
        nulls[15] = true;
    }
    if (state.has_max_key_age) {
        datums[16] = interval_ms_datum(state.max_key_age_seconds * 1000);
    } else {
        nulls[16] = true;
    }
    datums[17] = TimestampTzGetDatum(timestamptz_from_unix_ms(state.loaded_at_unix_ms));
    datums[18] = BoolGetDatum(state.pending_restart);
    datums[19] = Int64GetDatum(static_cast<int64>(state.reloads_rejected));
    uint64_t recorded = 0;
    uint64_t dropped = 0;
    ec_engine_event_counts(&recorded, &dropped);
    datums[20] = Int64GetDatum(static_cast<int64>(recorded));
    datums[21] = Int64GetDatum(static_cast<int64>(dropped));
    Assert(tupdesc->natts == 12 || tupdesc->natts == kColumns);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, datums, nulls)));
}

Datum ephemeral_crypt_policy_version(PG_FUNCTION_ARGS) {
    require_preloaded();
    PG_RETURN_TEXT_P(cstring_to_text(policy_in_force().policy.version));
}

Datum ephemeral_crypt_key_age(PG_FUNCTION_ARGS) {
    require_preloaded();
    PG_RETURN_DATUM(key_age_datum());
}

Datum ephemeral_crypt_encryption_status(PG_FUNCTION_ARGS) {
    ReturnSetInfo* rsinfo = begin_result_set(fcinfo);
    // The calling SQL version's columns, checked as pg_stat_statements checks
    // its own: a definition of any other shape is not one the library serves.
    switch (rsinfo->setDesc->natts) {
        case EC_ENCRYPTION_STATUS_COLS_V1_0:
        case EC_ENCRYPTION_STATUS_COLS_V1_1:
            break;
        default:
            elog(ERROR, "incorrect number of output arguments");
    }
    // Degradations and ciphers as rolled out; whether a category is
    // encrypted changes only with a restart.
    const ec_policy_state state = policy_in_force();
    for (int category = 0; category < EC_CATEGORY_COUNT; ++category) {
        ec_counter_values values;
        if (!ec_engine_read_counters(category, &values)) {
            continue;
        }
        ResultRow<EC_ENCRYPTION_STATUS_COLS> row;
        int column = 0;
        row.datums[column++] = CStringGetTextDatum(ec_engine_category_name(category));
        row.datums[column++] = BoolGetDatum(ec_state.settings.encrypt[category]);
        row.datums[column++] =
            CStringGetTextDatum(ec_engine_degradation_name(state.policy.degradation[category]));
#define EC_COUNTER_DATUM(type, name) \
    row.datums[column++] = Int64GetDatum(static_cast<int64>(values.name));
        EC_COUNTER_VALUES(EC_COUNTER_DATUM)
#undef EC_COUNTER_DATUM
        row.datums[column++] =
            CStringGetTextDatum(ec_engine_cipher_name(state.policy.cipher[category]));
        Assert(column == EC_ENCRYPTION_STATUS_COLS);
        row.put(rsinfo);
    }
    return static_cast<Datum>(0);
}

Datum ephemeral_crypt_file_status(PG_FUNCTION_ARGS) {
    require_preloaded();
    if (PG_ARGISNULL(0)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("ephemeral_crypt_file_status: path must not be NULL")));
    }
    char* path = text_to_cstring(PG_GETARG_TEXT_PP(0));
    TupleDesc tupdesc = record_result_descriptor(fcinfo);
    ec_file_report report;
    int problem = EC_PATH_OK;
    ec_error error;
    if (ec_engine_inspect_file(path, &report, &problem, &error) != EC_OK) {
        const char* const hint =
            "Give a path relative to the data directory, or an absolute path inside it or one of "
            "its tablespaces, without \"..\".";
        if (error.saved_errno != 0) {
            errno = error.saved_errno;
            ereport(ERROR,
                    (errcode_for_file_access(),
                     errmsg("ephemeral_crypt_file_status: \"%s\": %s: %m", path, error.message),
                     errhint("%s", hint)));
        }
        const int code = problem == EC_PATH_MISSING       ? ERRCODE_UNDEFINED_FILE
                         : problem == EC_PATH_EMPTY       ? ERRCODE_INVALID_PARAMETER_VALUE
                         : problem == EC_PATH_NOT_REGULAR ? ERRCODE_WRONG_OBJECT_TYPE
                         : problem == EC_PATH_UNREADABLE  ? ERRCODE_IO_ERROR
                                                          : ERRCODE_INSUFFICIENT_PRIVILEGE;
        ereport(ERROR, (errcode(code),
                        errmsg("ephemeral_crypt_file_status: \"%s\": %s", path, error.message),
                        errhint("%s", hint)));
    }
    Datum datums[kFileReportColumns];
    bool nulls[kFileReportColumns] = {false};
    file_report_datums(report, datums, nulls);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, datums, nulls)));
}

Datum ephemeral_crypt_scan(PG_FUNCTION_ARGS) {
    ReturnSetInfo* rsinfo = begin_result_set(fcinfo);
    int found = 0;
    ec_error error;
    if (ec_engine_scan(&found, &error) != EC_OK) {
        ereport(ERROR, (errcode(ERRCODE_IO_ERROR),
                        errmsg("ephemeral_crypt_scan: could not walk the data directory: %s",
                               error.message)));
    }
    for (int i = 0; i < found; ++i) {
        ec_file_report report;
        if (!ec_engine_scan_result(i, &report)) {
            break;
        }
        ResultRow<kFileReportColumns> row;
        file_report_datums(report, row.datums, row.nulls);
        row.put(rsinfo);
    }
    return static_cast<Datum>(0);
}

Datum ephemeral_crypt_events(PG_FUNCTION_ARGS) {
    ReturnSetInfo* rsinfo = begin_result_set(fcinfo);
    int count = 0;
    uint64_t dropped = 0;
    ec_error error;
    if (ec_engine_snapshot_events(&count, &dropped, &error) != EC_OK) {
        ec_report_engine_error(ERROR, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, nullptr, &error,
                               nullptr);
    }
    constexpr int kColumns = 12;
    for (int i = 0; i < count; ++i) {
        ec_event_record event;
        if (!ec_engine_event_at(i, &event)) {
            break;
        }
        ResultRow<kColumns> row;
        row.datums[0] = Int64GetDatum(static_cast<int64>(event.id));
        row.datums[1] = TimestampTzGetDatum(timestamptz_from_unix_ms(event.time_unix_ms));
        row.datums[2] = Int32GetDatum(event.pid);
        row.datums[3] = CStringGetTextDatum(event.backend_type);
        text_or_null(row.datums, row.nulls, 4, category_name_or_null(event.category));
        text_or_null(row.datums, row.nulls, 5, event.file);
        row.datums[6] = CStringGetTextDatum(event.action);
        row.datums[7] = Int32GetDatum(event.error_number);
        row.datums[8] = CStringGetTextDatum(event.policy_version);
        row.datums[9] = CStringGetTextDatum(event.policy_digest);
        row.datums[10] = CStringGetTextDatum(event.key_id);
        row.datums[11] = CStringGetTextDatum(event.detail);
        row.put(rsinfo);
    }
    return static_cast<Datum>(0);
}

Datum ephemeral_crypt_attestation(PG_FUNCTION_ARGS) {
    ReturnSetInfo* rsinfo = begin_result_set(fcinfo);
    ec_attestation_snapshot snapshot;
    if (!ec_attestation_read(&snapshot)) {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("ephemeral_crypt: the attestation's results could not be read")));
    }
    // One row per check of the last run, each with the run's figures; one
    // row with a null check when attestation is off or has not run yet.
    constexpr int kColumns = 10;
    const int rows = snapshot.has_run ? snapshot.report.check_count : 0;
    for (int i = 0; i < (rows > 0 ? rows : 1); ++i) {
        ResultRow<kColumns> row;
        row.datums[0] = BoolGetDatum(snapshot.enabled);
        if (snapshot.has_run) {
            row.datums[1] =
                TimestampTzGetDatum(timestamptz_from_unix_ms(snapshot.last_run_unix_ms));
            row.datums[5] = Float8GetDatum(static_cast<double>(snapshot.duration_us) / 1000.0);
            row.datums[6] = Float8GetDatum(static_cast<double>(snapshot.cpu_us) / 1000.0);
            row.datums[8] = Int32GetDatum(snapshot.report.files_scanned);
            row.datums[9] = BoolGetDatum(snapshot.report.scan_cut_short);
        } else {
            row.nulls[1] = row.nulls[5] = row.nulls[6] = row.nulls[8] = row.nulls[9] = true;
        }
        if (rows > 0) {
            const ec_attestation_check& check = snapshot.report.checks[i];
            row.datums[2] = CStringGetTextDatum(check.name);
            row.datums[3] = BoolGetDatum(check.passed);
            row.datums[4] = CStringGetTextDatum(check.detail);
        } else {
            row.nulls[2] = row.nulls[3] = row.nulls[4] = true;
        }
        if (snapshot.enabled && snapshot.next_run_unix_ms != 0) {
            row.datums[7] =
                TimestampTzGetDatum(timestamptz_from_unix_ms(snapshot.next_run_unix_ms));
        } else {
            row.nulls[7] = true;
        }
        row.put(rsinfo);
    }
    return static_cast<Datum>(0);
}
