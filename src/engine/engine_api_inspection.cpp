// The inspection entry points of the C interface (engine_api.h): one file's
// report, and the scan of the data directory, whose results this process
// keeps between ec_engine_scan() and the ec_engine_scan_result() calls that
// read them one by one.
#include "engine/engine_api.h"

#include <cstring>
#include <vector>

#include "engine/engine_api_internal.hpp"
#include "engine/inspection.hpp"
#include "engine/startup.hpp"
#include "interpose/layer.hpp"

using namespace engine::api;

namespace {

std::vector<engine::FileReport> g_scan_results;

void to_c_report(const engine::FileReport& report, ec_file_report* out) noexcept {
    std::memset(out, 0, sizeof(*out));
    copy_text(out->path, sizeof(out->path), report.path);
    out->category = report.category ? static_cast<int>(ec::category_index(*report.category)) : -1;
    out->has_header = report.has_header;
    copy_text(out->header_status, sizeof(out->header_status), report.header_status);
    out->encrypted = report.encrypted;
    out->plaintext_audit = report.plaintext_audit;
    copy_text(out->key_id, sizeof(out->key_id), report.key_id);
    out->current_instance = report.current_instance;
    out->physical_size = report.physical_size;
    out->logical_size = report.logical_size;
}

}  // namespace

extern "C" {

ec_status ec_engine_inspect_file(const char* path, ec_file_report* out, int* problem,
                                 ec_error* error) {
    *problem = EC_PATH_UNREADABLE;
    return fenced(error, [&] {
        const engine::Inspection inspection = engine::inspect_file(
            path != nullptr ? path : "", ip::config().roots, engine::instance_key());
        *problem = static_cast<int>(inspection.problem);
        if (inspection.problem != engine::PathProblem::None) {
            fill_error(error, inspection.error_number, inspection.message.c_str());
            return EC_FAILED;
        }
        to_c_report(inspection.report, out);
        return EC_OK;
    });
}

ec_status ec_engine_scan(int* found, ec_error* error) {
    *found = 0;
    g_scan_results.clear();
    return fenced(error, [&] {
        g_scan_results = engine::scan_data_directory(ip::config().roots, engine::instance_key());
        *found = static_cast<int>(g_scan_results.size());
        return EC_OK;
    });
}

bool ec_engine_scan_result(int index, ec_file_report* out) {
    if (index < 0 || static_cast<std::size_t>(index) >= g_scan_results.size()) {
        return false;
    }
    to_c_report(g_scan_results[static_cast<std::size_t>(index)], out);
    return true;
}

}  // extern "C"
