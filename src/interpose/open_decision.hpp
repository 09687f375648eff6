// What opening a file of an enabled category does, decided from facts alone:
// encrypt it, write it in plaintext under fail_open_audit, fail closed, serve
// it through its cipher file, leave it to libc, or reject its header. Pure and
// separate from the open wrapper (wrappers_open.cpp), which gathers the facts
// and carries the decision out, so every combination is unit-tested without
// a file, a key or a fault switch.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>

#include "core/file_header.hpp"
#include "core/policy.hpp"

namespace ephemeral_crypt::interpose {

enum class OpenAction : std::uint8_t {
    Encrypt,               // an empty file opened for writing: write a fresh encrypted header
    PlaintextAudit,        // the same under an injected fault with fail_open_audit: a header
                           // marking the file plaintext, counted and reported
    FailClosed,            // the same under an injected fault with fail_closed: EIO, nothing
                           // written, counted and reported
    Track,                 // serve it through its cipher file (cached, just read from its header,
                           // or none yet for an empty file opened read-only)
    PassThrough,           // no header of ours (plaintext that predates the layer): libc serves
                           // it as it is, it is never re-encrypted behind the server's back
    RejectHeader,          // a foreign, corrupt, unsupported or unreadable header: the open
                           // fails, counted and reported
    RefuseNoLockedMemory,  // an intact header, but no locked memory is left for the
                           // file's key and cipher state: the open fails (ENOMEM),
                           // counted and reported; never served from ordinary memory
};

struct OpenFacts {
    bool empty = false;           // no bytes: a new file, or one this open truncated
    bool writable = false;        // opened for writing
    bool fault_injected = false;  // the test-only fault of the file's category is on
    Degradation degradation = Degradation::FailClosed;  // the category's class
    bool cipher_file_cached = false;                    // this process already serves the file
    // For a non-empty file without a cached cipher file, what reading its header gave.
    bool header_accepted = false;  // a cipher file was built from it
    HeaderStatus header_status = HeaderStatus::NotOurs;
    int header_error = 0;  // errno of reading the header or building the cipher file
    bool locked_memory_exhausted = false;  // building the cipher file found no locked memory
};

OpenAction decide_open(const OpenFacts& facts) noexcept;

}  // namespace ephemeral_crypt::interpose
