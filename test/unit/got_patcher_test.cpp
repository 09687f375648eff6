// Tests for the GOT patcher against shared libraries built to bind getuid in
// each way a real process does (lazy PLT, BIND_NOW with full RELRO, -fno-plt
// GOT calls, a function pointer in RELRO data), against this PIE test
// executable's own call sites, and against a library dlopened after a first
// patch. getuid is redirected to a function returning a sentinel, then back to
// libc's. Every test restores the real getuid, because the slots are process
// state that outlives the test.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string>
#include <vector>

#include "interpose/got_patcher.hpp"

extern "C" {
int fixture_lazy_getuid(void);
int fixture_lazy_getuid_via_pointer(void);
int fixture_now_getuid(void);
int fixture_now_getuid_via_pointer(void);
int fixture_noplt_getuid(void);
int fixture_noplt_getuid_via_pointer(void);
}

namespace ephemeral_crypt::interpose {
namespace {

constexpr int kSentinel = 4242;

uid_t sentinel_getuid() {
    return kSentinel;
}

// The executable's own PLT call site; noinline so the call stays in this
// function's body, where the patch must reach it.
__attribute__((noinline)) int executable_getuid() {
    return static_cast<int>(getuid());
}

// The kernel's answer, reached without any GOT.
int true_uid() {
    return static_cast<int>(syscall(SYS_getuid));
}

void* real_getuid() {
    // Not &getuid: in a PIE that address is loaded from this executable's own
    // GOT, which is exactly what the tests overwrite.
    void* real = dlsym(RTLD_NEXT, "getuid");
    return real != nullptr ? real : dlsym(RTLD_DEFAULT, "getuid");
}

bool path_contains(const char* path, const char* part) {
    return path != nullptr && std::strstr(path, part) != nullptr;
}

// What the extension will skip as well: libc and the loader, which define
// getuid rather than import it, and sanitizer runtimes, which must keep their
// own view of the process.
bool skip_runtime(const char* path, void*) {
    return path_contains(path, "/libc.so") || path_contains(path, "/ld-linux") ||
           path_contains(path, "libasan") || path_contains(path, "libubsan");
}

void* skipped_base = nullptr;
bool skip_runtime_and_one(const char* path, void* base) {
    return base == skipped_base || skip_runtime(path, base);
}

PatchReport patch_getuid(void* replacement, SkipObject skip = skip_runtime) {
    SymbolReplacement table[] = {{"getuid", replacement}};
    return patch_loaded_objects(table, 1, skip);
}

void* object_base_of(const void* address) {
    Dl_info info{};
    if (dladdr(address, &info) == 0) {
        return nullptr;
    }
    return info.dli_fbase;
}

using FixtureCall = int (*)();

struct NamedCall {
    const char* name;
    FixtureCall call;
};

const std::vector<NamedCall>& startup_calls() {
    static const std::vector<NamedCall> calls = {
        {"lazy", fixture_lazy_getuid},
        {"lazy data pointer", fixture_lazy_getuid_via_pointer},
        {"bind-now", fixture_now_getuid},
        {"bind-now data pointer", fixture_now_getuid_via_pointer},
        {"no-plt", fixture_noplt_getuid},
        {"no-plt data pointer", fixture_noplt_getuid_via_pointer},
        {"executable", executable_getuid},
    };
    return calls;
}

// The permissions column of /proc/self/maps for the mapping holding `address`.
std::string permissions_at(const void* address) {
    auto target = reinterpret_cast<std::uintptr_t>(address);
    FILE* maps = std::fopen("/proc/self/maps", "r");
    if (maps == nullptr) {
        return "";
    }
    char line[512];
    std::string found;
    while (std::fgets(line, sizeof line, maps) != nullptr) {
        unsigned long start = 0, end = 0;
        char perms[5] = {};
        if (std::sscanf(line, "%lx-%lx %4s", &start, &end, perms) == 3 && target >= start &&
            target < end) {
            found = perms;
            break;
        }
    }
    std::fclose(maps);
    return found;
}

// The first page of the PT_GNU_RELRO segment of the object containing
// `address`, where the BIND_NOW GOT lives.
const void* relro_page_of(const void* address) {
    struct Search {
        std::uintptr_t address;
        const void* page;
    } search{reinterpret_cast<std::uintptr_t>(address), nullptr};
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
            auto& s = *static_cast<Search*>(data);
            bool mine = false;
            const ElfW(Phdr)* relro = nullptr;
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const auto& ph = info->dlpi_phdr[i];
                std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
                if (ph.p_type == PT_LOAD && s.address >= start && s.address < start + ph.p_memsz) {
                    mine = true;
                }
                if (ph.p_type == PT_GNU_RELRO) {
                    relro = &ph;
                }
            }
            if (!mine || relro == nullptr) {
                return 0;
            }
            auto page_mask = ~(static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE)) - 1);
            s.page = reinterpret_cast<const void*>((info->dlpi_addr + relro->p_vaddr) & page_mask);
            return 1;
        },
        &search);
    return search.page;
}

class GotPatcherTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_NE(real_getuid(), nullptr);
        ASSERT_NE(true_uid(), kSentinel) << "the tests cannot tell the sentinel from the real uid";
    }
    void TearDown() override {
        PatchReport restored = patch_getuid(real_getuid());
        EXPECT_EQ(restored.failures, 0) << restored.first_failure;
        if (late_ != nullptr) {
            dlclose(late_);
        }
    }

    void* late_ = nullptr;
};

TEST_F(GotPatcherTest, EveryBindingFlavourIsRedirected) {
    for (const auto& c : startup_calls()) {
        EXPECT_EQ(c.call(), true_uid()) << c.name << " before patching";
    }
    PatchReport report = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(report.failures, 0) << report.first_failure;
    // Three fixtures with a call slot and a data slot each, plus the
    // executable's PLT slot.
    EXPECT_GE(report.slots_patched, 7);
    EXPECT_GE(report.objects_patched, 4);
    EXPECT_GT(report.objects_scanned, report.objects_patched);
    for (const auto& c : startup_calls()) {
        EXPECT_EQ(c.call(), kSentinel) << c.name << " after patching";
    }
}

TEST_F(GotPatcherTest, TestExecutableIsPieAndItsOwnSlotIsPatched) {
    // The main program is the first object dl_iterate_phdr reports; a PIE is
    // loaded at a nonzero bias.
    std::uintptr_t main_bias = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
            *static_cast<std::uintptr_t*>(data) = info->dlpi_addr;
            return 1;
        },
        &main_bias);
    EXPECT_NE(main_bias, 0u) << "unit_tests is not a PIE; the PIE case is not covered";

    patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(current_slot_value(nullptr, "getuid"), reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(executable_getuid), "getuid"),
              reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(executable_getuid(), kSentinel);
}

TEST_F(GotPatcherTest, CurrentSlotValueFollowsThePatch) {
    const FixtureCall objects[] = {fixture_lazy_getuid, fixture_now_getuid, fixture_noplt_getuid};
    for (FixtureCall object : objects) {
        void* before = current_slot_value(reinterpret_cast<void*>(object), "getuid");
        EXPECT_NE(before, nullptr);
        EXPECT_NE(before, reinterpret_cast<void*>(sentinel_getuid));
    }
    // BIND_NOW resolved the slot at load time, so it already holds libc's getuid.
    EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(fixture_now_getuid), "getuid"),
              real_getuid());

    patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    for (FixtureCall object : objects) {
        EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(object), "getuid"),
                  reinterpret_cast<void*>(sentinel_getuid));
    }
}

TEST_F(GotPatcherTest, CurrentSlotValueIsNullWithoutASlot) {
    EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(fixture_lazy_getuid), "no_such_symbol"),
              nullptr);
    EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(fixture_lazy_getuid), nullptr), nullptr);
    int on_the_stack = 0;
    EXPECT_EQ(current_slot_value(&on_the_stack, "getuid"), nullptr);
}

TEST_F(GotPatcherTest, PatchingBackRestoresRealBehaviour) {
    patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    PatchReport restored = patch_getuid(real_getuid());
    EXPECT_EQ(restored.failures, 0) << restored.first_failure;
    EXPECT_GE(restored.slots_patched, 7);
    for (const auto& c : startup_calls()) {
        EXPECT_EQ(c.call(), true_uid()) << c.name << " after restoring";
    }
    EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(fixture_lazy_getuid), "getuid"),
              real_getuid());
}

// Documented behaviour: a slot already holding its replacement is not written
// and is counted in slots_already_patched, not slots_patched.
TEST_F(GotPatcherTest, SecondPatchIsIdempotent) {
    PatchReport first = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    ASSERT_EQ(first.failures, 0) << first.first_failure;
    PatchReport second = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(second.failures, 0) << second.first_failure;
    EXPECT_EQ(second.slots_patched, 0);
    EXPECT_EQ(second.objects_patched, 0);
    EXPECT_EQ(second.slots_already_patched, first.slots_patched + first.slots_already_patched);
    EXPECT_EQ(second.objects_scanned, first.objects_scanned);
    for (const auto& c : startup_calls()) {
        EXPECT_EQ(c.call(), kSentinel) << c.name;
    }
}

// The attestation's audit reads the slots and writes none: after a patch it
// finds every slot in place; once one object's slots are written over it
// counts them and names the first, and the slots keep what they hold.
TEST_F(GotPatcherTest, AuditFindsSlotsWrittenOverAndWritesNothing) {
    PatchReport patched = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    ASSERT_EQ(patched.failures, 0) << patched.first_failure;
    SymbolReplacement table[] = {{"getuid", reinterpret_cast<void*>(sentinel_getuid)}};
    PatchReport clean = audit_loaded_objects(table, 1, skip_runtime);
    EXPECT_EQ(clean.failures, 0) << clean.first_failure;
    EXPECT_EQ(clean.slots_not_patched, 0) << clean.first_not_patched;
    EXPECT_EQ(clean.slots_already_patched, patched.slots_patched + patched.slots_already_patched);
    EXPECT_EQ(clean.slots_patched, 0);

    // Another library writes the real getuid back into one object's slots.
    skipped_base = object_base_of(reinterpret_cast<void*>(fixture_lazy_getuid));
    ASSERT_NE(skipped_base, nullptr);
    const SkipObject all_but_lazy = [](const char* path, void* base) {
        return base != skipped_base || skip_runtime(path, base);
    };
    SymbolReplacement back[] = {{"getuid", real_getuid()}};
    PatchReport diverted = patch_loaded_objects(back, 1, all_but_lazy);
    skipped_base = nullptr;
    ASSERT_EQ(diverted.failures, 0) << diverted.first_failure;
    ASSERT_GE(diverted.slots_patched, 1);

    PatchReport audit = audit_loaded_objects(table, 1, skip_runtime);
    EXPECT_EQ(audit.slots_not_patched, diverted.slots_patched);
    EXPECT_NE(std::string(audit.first_not_patched).find(": getuid"), std::string::npos)
        << audit.first_not_patched;
    EXPECT_EQ(audit.slots_patched, 0);
    EXPECT_EQ(fixture_lazy_getuid(), true_uid()) << "the audit wrote a slot";
    EXPECT_EQ(fixture_now_getuid(), kSentinel);
}

TEST_F(GotPatcherTest, SkipPredicateLeavesObjectUnpatched) {
    skipped_base = object_base_of(reinterpret_cast<void*>(fixture_lazy_getuid));
    ASSERT_NE(skipped_base, nullptr);
    PatchReport report =
        patch_getuid(reinterpret_cast<void*>(sentinel_getuid), skip_runtime_and_one);
    skipped_base = nullptr;
    EXPECT_EQ(report.failures, 0) << report.first_failure;
    EXPECT_GE(report.objects_skipped, 1);
    EXPECT_EQ(fixture_lazy_getuid(), true_uid());
    EXPECT_EQ(fixture_lazy_getuid_via_pointer(), true_uid());
    EXPECT_NE(current_slot_value(reinterpret_cast<void*>(fixture_lazy_getuid), "getuid"),
              reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(fixture_now_getuid(), kSentinel);
    EXPECT_EQ(fixture_noplt_getuid(), kSentinel);
}

TEST_F(GotPatcherTest, LibraryDlopenedLaterIsPatchedByTheNextCall) {
    PatchReport first = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    ASSERT_EQ(first.failures, 0) << first.first_failure;

    late_ = dlopen(GOT_FIXTURE_LATE_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(late_, nullptr) << dlerror();
    auto late_call = reinterpret_cast<FixtureCall>(dlsym(late_, "fixture_late_getuid"));
    auto late_pointer_call =
        reinterpret_cast<FixtureCall>(dlsym(late_, "fixture_late_getuid_via_pointer"));
    ASSERT_NE(late_call, nullptr);
    ASSERT_NE(late_pointer_call, nullptr);
    // The loader bound the new library to libc's getuid, not to our patch.
    EXPECT_EQ(late_call(), true_uid());
    EXPECT_EQ(late_pointer_call(), true_uid());

    PatchReport second = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(second.failures, 0) << second.first_failure;
    EXPECT_EQ(second.objects_patched, 1);
    EXPECT_EQ(second.slots_patched, 2);  // its JUMP_SLOT and its data pointer
    EXPECT_EQ(late_call(), kSentinel);
    EXPECT_EQ(late_pointer_call(), kSentinel);
    EXPECT_EQ(current_slot_value(reinterpret_cast<void*>(late_call), "getuid"),
              reinterpret_cast<void*>(sentinel_getuid));
}

TEST_F(GotPatcherTest, ReadOnlyGotKeepsItsProtection) {
    const void* page = relro_page_of(reinterpret_cast<void*>(fixture_now_getuid));
    ASSERT_NE(page, nullptr);
    std::string before = permissions_at(page);
    ASSERT_EQ(before, "r--p") << "BIND_NOW fixture's RELRO page is not read-only";
    PatchReport report = patch_getuid(reinterpret_cast<void*>(sentinel_getuid));
    EXPECT_EQ(report.failures, 0) << report.first_failure;
    EXPECT_EQ(fixture_now_getuid(), kSentinel);
    EXPECT_EQ(permissions_at(page), before);
}

// Parses every loaded object, including libc, ld.so and any sanitizer
// runtime, without writing anything: no object imports this symbol.
TEST_F(GotPatcherTest, WalkingEveryObjectWithoutSkipIsHarmless) {
    int objects = 0;
    dl_iterate_phdr(
        [](dl_phdr_info*, std::size_t, void* data) {
            ++*static_cast<int*>(data);
            return 0;
        },
        &objects);
    int unrelated = 0;
    SymbolReplacement table[] = {{"ec_symbol_nobody_imports", &unrelated}};
    PatchReport report = patch_loaded_objects(table, 1, nullptr);
    EXPECT_EQ(report.failures, 0) << report.first_failure;
    EXPECT_EQ(report.slots_patched + report.slots_already_patched, 0);
    EXPECT_EQ(report.objects_skipped, 0);
    // Everything but the vDSO.
    EXPECT_GE(report.objects_scanned, objects - 1);
    EXPECT_LE(report.objects_scanned, objects);
}

TEST_F(GotPatcherTest, EmptyOrInvalidTablesPatchNothing) {
    PatchReport empty = patch_loaded_objects(nullptr, 0, skip_runtime);
    EXPECT_EQ(empty.objects_scanned, 0);
    EXPECT_EQ(empty.failures, 0);

    SymbolReplacement invalid[] = {{"getuid", nullptr}, {nullptr, reinterpret_cast<void*>(1)}};
    PatchReport report = patch_loaded_objects(invalid, 2, skip_runtime);
    EXPECT_EQ(report.slots_patched, 0);
    EXPECT_EQ(report.failures, 2);
    EXPECT_NE(std::strstr(report.first_failure, "getuid"), nullptr) << report.first_failure;
    EXPECT_EQ(fixture_now_getuid(), true_uid());
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
