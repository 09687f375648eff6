// The open decision (see open_decision.hpp). An empty file's old cipher file
// described contents that are gone, so emptiness is judged first; a file
// with contents is judged by the cipher file this process has or by its header.
#include "interpose/open_decision.hpp"

namespace ephemeral_crypt::interpose {

OpenAction decide_open(const OpenFacts& facts) noexcept {
    if (facts.empty) {
        if (!facts.writable) {
            return OpenAction::Track;  // the writer that comes next writes the header
        }
        if (!facts.fault_injected) {
            return OpenAction::Encrypt;
        }
        return facts.degradation == Degradation::FailOpenAudit ? OpenAction::PlaintextAudit
                                                               : OpenAction::FailClosed;
    }
    if (facts.cipher_file_cached || facts.header_accepted) {
        return OpenAction::Track;
    }
    if (facts.locked_memory_exhausted) {
        return OpenAction::RefuseNoLockedMemory;
    }
    if (facts.header_status == HeaderStatus::NotOurs && facts.header_error == 0) {
        return OpenAction::PassThrough;
    }
    return OpenAction::RejectHeader;
}

}  // namespace ephemeral_crypt::interpose
