/*-------------------------------------------------------------------------
 *
 * sql_functions.cpp
 *		SQL-callable functions that report the instance's encryption state.
 *
 * They read the settings inherited from the postmaster and the counters in
 * shared memory; they never see key bytes (the bridge offers none). If the
 * library was not preloaded, loading it for the call runs _PG_init outside
 * shared_preload_libraries, which raises an ERROR with a hint instead.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include "pg/state.hpp"

// PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info record, not the
// function, so each is declared exported here as well.
extern "C" {
PG_FUNCTION_INFO_V1(ephemeral_crypt_encryption_status);
PGDLLEXPORT Datum ephemeral_crypt_encryption_status(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(ephemeral_crypt_status);
PGDLLEXPORT Datum ephemeral_crypt_status(PG_FUNCTION_ARGS);
}

Datum ephemeral_crypt_encryption_status(PG_FUNCTION_ARGS) {
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    for (int category = 0; category < EC_CATEGORY_COUNT; ++category) {
        ec_counter_values values;
        ec_bridge_read_counters(category, &values);
        Datum datums[9];
        bool nulls[9] = {false};
        datums[0] = CStringGetTextDatum(ec_bridge_category_name(category));
        datums[1] = BoolGetDatum(ec_state.settings.encrypt[category]);
        datums[2] =
            CStringGetTextDatum(ec_degradation_name(ec_state.settings.degradation[category]));
        datums[3] = Int64GetDatum(static_cast<int64>(values.files_encrypted));
        datums[4] = Int64GetDatum(static_cast<int64>(values.files_open));
        datums[5] = Int64GetDatum(static_cast<int64>(values.bytes_encrypted));
        datums[6] = Int64GetDatum(static_cast<int64>(values.bytes_decrypted));
        datums[7] = Int64GetDatum(static_cast<int64>(values.failures));
        datums[8] = Int64GetDatum(static_cast<int64>(values.plaintext_fallbacks));
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, datums, nulls);
    }
    return static_cast<Datum>(0);
}

Datum ephemeral_crypt_status(PG_FUNCTION_ARGS) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE) {
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("function returning record called in context that cannot accept "
                               "type record")));
    }
    tupdesc = BlessTupleDesc(tupdesc);
    const int64 created_ms = ec_bridge_key_created_at_unix_ms();
    // Unix milliseconds to PostgreSQL's microseconds since 2000-01-01.
    const TimestampTz created =
        created_ms * 1000 -
        static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
    Datum datums[8];
    bool nulls[8] = {false};
    datums[0] = BoolGetDatum(ec_state.ready);
    datums[1] = CStringGetTextDatum(ec_bridge_key_id());
    datums[2] = TimestampTzGetDatum(created);
    datums[3] = DirectFunctionCall2(timestamp_age, TimestampTzGetDatum(GetCurrentTimestamp()),
                                    TimestampTzGetDatum(created));
    datums[4] = CStringGetTextDatum(ec_policy_version ? ec_policy_version : "");
    datums[5] = CStringGetTextDatum(ec_bridge_cipher_name());
    datums[6] = Int32GetDatum(ec_state.objects_patched);
    datums[7] = Int32GetDatum(ec_state.slots_patched);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, datums, nulls)));
}
