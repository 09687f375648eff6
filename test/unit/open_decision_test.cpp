// The open decision on its own: every combination of the facts the open
// wrapper gathers, and the action each must lead to.
#include <gtest/gtest.h>

#include <cerrno>

#include "interpose/open_decision.hpp"

namespace ephemeral_crypt::interpose {
namespace {

OpenFacts empty_file(bool writable) {
    OpenFacts facts;
    facts.empty = true;
    facts.writable = writable;
    return facts;
}

OpenFacts existing_file(HeaderStatus status, bool accepted, int error = 0) {
    OpenFacts facts;
    facts.writable = true;
    facts.header_status = status;
    facts.header_accepted = accepted;
    facts.header_error = error;
    return facts;
}

TEST(OpenDecision, AnEmptyFileOpenedForWritingIsEncrypted) {
    EXPECT_EQ(decide_open(empty_file(true)), OpenAction::Encrypt);
    OpenFacts audit_class = empty_file(true);
    audit_class.degradation = Degradation::FailOpenAudit;  // the class alone changes nothing
    EXPECT_EQ(decide_open(audit_class), OpenAction::Encrypt);
}

TEST(OpenDecision, AnEmptyFileOpenedReadOnlyWaitsForItsWriter) {
    EXPECT_EQ(decide_open(empty_file(false)), OpenAction::Track);
    OpenFacts faulty = empty_file(false);
    faulty.fault_injected = true;
    EXPECT_EQ(decide_open(faulty), OpenAction::Track);  // nothing is created, nothing fails
}

TEST(OpenDecision, AFailureToEncryptFollowsTheDegradationClass) {
    OpenFacts closed = empty_file(true);
    closed.fault_injected = true;
    closed.degradation = Degradation::FailClosed;
    EXPECT_EQ(decide_open(closed), OpenAction::FailClosed);
    OpenFacts audit = closed;
    audit.degradation = Degradation::FailOpenAudit;
    EXPECT_EQ(decide_open(audit), OpenAction::PlaintextAudit);
}

TEST(OpenDecision, AnEmptiedFileIsJudgedAsNewWhateverEngineWasCached) {
    OpenFacts truncated = empty_file(true);
    truncated.cipher_file_cached = true;
    EXPECT_EQ(decide_open(truncated), OpenAction::Encrypt);
}

TEST(OpenDecision, AFileThisProcessServesIsTrackedWithoutItsHeader) {
    OpenFacts cached = existing_file(HeaderStatus::NotOurs, false);
    cached.cipher_file_cached = true;
    cached.fault_injected = true;  // faults apply to creation only
    EXPECT_EQ(decide_open(cached), OpenAction::Track);
}

TEST(OpenDecision, AnAcceptedHeaderIsTracked) {
    EXPECT_EQ(decide_open(existing_file(HeaderStatus::Ok, true)), OpenAction::Track);
    OpenFacts read_only = existing_file(HeaderStatus::Ok, true);
    read_only.writable = false;
    EXPECT_EQ(decide_open(read_only), OpenAction::Track);
}

TEST(OpenDecision, PlaintextWithoutOurHeaderPassesThrough) {
    EXPECT_EQ(decide_open(existing_file(HeaderStatus::NotOurs, false)), OpenAction::PassThrough);
}

TEST(OpenDecision, AHeaderThatCannotBeReadIsRejectedNotPassedThrough) {
    EXPECT_EQ(decide_open(existing_file(HeaderStatus::NotOurs, false, EIO)),
              OpenAction::RejectHeader);
}

TEST(OpenDecision, EveryOtherHeaderIsRejected) {
    for (const HeaderStatus status : {HeaderStatus::ForeignInstance, HeaderStatus::Corrupt,
                                      HeaderStatus::Truncated, HeaderStatus::UnsupportedVersion}) {
        EXPECT_EQ(decide_open(existing_file(status, false)), OpenAction::RejectHeader)
            << header_status_name(status);
    }
    // An intact header whose engine could not be built (out of memory).
    EXPECT_EQ(decide_open(existing_file(HeaderStatus::Ok, false, ENOMEM)),
              OpenAction::RejectHeader);
}

TEST(OpenDecision, AnIntactHeaderWithoutLockedMemoryForItsKeyIsRefused) {
    OpenFacts no_locked_memory = existing_file(HeaderStatus::Ok, false, ENOMEM);
    no_locked_memory.locked_memory_exhausted = true;
    EXPECT_EQ(decide_open(no_locked_memory), OpenAction::RefuseNoLockedMemory);
    no_locked_memory.degradation = Degradation::FailOpenAudit;  // never a plaintext fallback
    EXPECT_EQ(decide_open(no_locked_memory), OpenAction::RefuseNoLockedMemory);
    no_locked_memory.cipher_file_cached = true;  // a file already served needs no new key
    EXPECT_EQ(decide_open(no_locked_memory), OpenAction::Track);
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
