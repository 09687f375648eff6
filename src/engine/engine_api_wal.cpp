// The WAL entry points of the C interface (engine_api.h): at start-up,
// encrypting the segments a previous run left in plaintext and finding or
// removing another instance's; at shutdown, leaving the checkpoint's segment
// readable in plaintext; and reading a sealed segment's start. The server's
// working directory is the data directory, so pg_wal is a relative path.
#include "engine/engine_api.h"

#include <cstdint>

#include "engine/engine_api_internal.hpp"
#include "engine/sealed_segment.hpp"
#include "engine/startup.hpp"
#include "engine/wal_segments.hpp"

using namespace engine::api;

namespace {

// Where the server keeps what start-up reads and writes: its working
// directory is the data directory.
constexpr char kWalDir[] = "pg_wal";

}  // namespace

extern "C" {

ec_status ec_engine_encrypt_plaintext_wal(int* converted, ec_error* error) {
    *converted = 0;
    return fenced(error, [&] {
        *converted = engine::encrypt_plaintext_segments(kWalDir, engine::instance_key());
        return EC_OK;
    });
}

ec_status ec_engine_find_foreign_wal(int* segments, char key_id[EC_KEY_ID_BUFFER],
                                     ec_error* error) {
    *segments = 0;
    key_id[0] = '\0';
    return fenced(error, [&] {
        const engine::ForeignWal found =
            engine::find_foreign_segments(kWalDir, engine::instance_key());
        *segments = found.segments;
        copy_text(key_id, EC_KEY_ID_BUFFER, found.first_key_id);
        return EC_OK;
    });
}

ec_status ec_engine_remove_foreign_wal(int* removed, ec_error* error) {
    *removed = 0;
    return fenced(error, [&] {
        *removed = engine::remove_foreign_segments(kWalDir, engine::instance_key());
        return EC_OK;
    });
}

ec_status ec_engine_leave_checkpoint_readable(const char* segment_path, uint64_t checkpoint_offset,
                                              uint64_t segment_bytes, ec_error* error) {
    return fenced(error, [&] {
        engine::leave_checkpoint_readable(segment_path, checkpoint_offset, segment_bytes);
        engine::remove_encrypted_segments(kWalDir, engine::instance_key());
        return EC_OK;
    });
}

size_t ec_engine_read_plaintext_segment_start(const char* segment_path, uint8_t* buf, size_t len) {
    return engine::read_plaintext_start(segment_path, buf, len);
}

}  // extern "C"
