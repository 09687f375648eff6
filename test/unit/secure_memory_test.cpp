// The locked, non-dumpable arena: blocks are zeroed, aligned and inside it,
// in mappings the kernel marks locked (lo) and excluded from core dumps (dd);
// a released block is wiped; when locked memory runs out (RLIMIT_MEMLOCK, or
// the reservation) an allocation is refused cleanly and nothing is handed
// out from ordinary memory; the process's arena is locked again in a forked
// child; wipe_all() leaves nothing; and libgcrypt's cipher handles land in it.
#include <gtest/gtest.h>
#include <gcrypt.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/crypto_error.hpp"
#include "core/encrypted_file.hpp"
#include "core/gcm_cipher.hpp"
#include "core/gcrypt_secure.hpp"
#include "core/secure_memory.hpp"
#include "core/xts_cipher.hpp"
#include "locked_memory_support.hpp"
#include "memory_io.hpp"

namespace ephemeral_crypt {
namespace {

using testing::in_child;
using testing::limit_locked_memory;
using testing::mapping_of;

constexpr std::size_t kHandleBytes = 3104;  // about one libgcrypt XTS handle

bool all_zero(const void* p, std::size_t len) {
    const auto* bytes = static_cast<const std::uint8_t*>(p);
    for (std::size_t i = 0; i < len; ++i) {
        if (bytes[i] != 0) {
            return false;
        }
    }
    return true;
}

TEST(SecureArena, BlocksAreZeroedAlignedAndInside) {
    SecureArena arena(1 << 20);
    ASSERT_TRUE(arena.usable());
    for (std::size_t bytes : {1u, 15u, 16u, 64u, 1000u, 3038u, 16384u}) {
        void* block = arena.allocate(bytes);
        ASSERT_NE(block, nullptr) << bytes;
        EXPECT_TRUE(arena.contains(block));
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % SecureArena::kGranule, 0u);
        EXPECT_GE(arena.block_size(block), bytes);
        EXPECT_TRUE(all_zero(block, bytes));
        std::memset(block, 0x5a, bytes);
        arena.release(block);
    }
    int local = 0;
    EXPECT_FALSE(arena.contains(&local));
    EXPECT_EQ(arena.block_size(&local), 0u);
    arena.release(&local);  // not its own: ignored
}

TEST(SecureArena, RejectsSizesOutOfRange) {
    SecureArena arena(1 << 20);
    errno = 0;
    EXPECT_EQ(arena.allocate(0), nullptr);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(arena.allocate(SecureArena::kMaxBlockBytes + 1), nullptr);
    EXPECT_EQ(errno, EINVAL);
}

TEST(SecureArena, BlocksLieInLockedNonDumpableMappings) {
    SecureArena arena(1 << 20);
    void* block = arena.allocate(kHandleBytes);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(testing::locked_and_non_dumpable(block, "a block"), "");
    arena.release(block);
}

TEST(SecureArena, ReleasedBlocksAreWiped) {
    SecureArena arena(1 << 20);
    // A neighbour keeps the chunk in use, so the released slot stays mapped
    // and can be read back.
    void* neighbour = arena.allocate(kHandleBytes);
    void* block = arena.allocate(kHandleBytes);
    ASSERT_NE(neighbour, nullptr);
    ASSERT_NE(block, nullptr);
    const std::size_t size = arena.block_size(block);
    std::memset(block, 0xa5, size);
    arena.release(block);
    EXPECT_EQ(arena.block_size(block), 0u) << "still counted as in use";
    EXPECT_TRUE(all_zero(block, size)) << "a released block keeps its contents";
    void* again = arena.allocate(kHandleBytes);
    EXPECT_EQ(again, block) << "the free slot is reused";
    EXPECT_TRUE(all_zero(again, size));
    arena.release(again);
    arena.release(neighbour);
}

TEST(SecureArena, EmptyChunksAreGivenBackButOne) {
    SecureArena arena(4 << 20);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) {
        blocks.push_back(arena.allocate(kHandleBytes));
        ASSERT_NE(blocks.back(), nullptr);
    }
    const SecureArenaUsage full = arena.usage();
    EXPECT_EQ(full.blocks_in_use, 100u);
    EXPECT_GE(full.chunks, 5u);
    EXPECT_GE(full.bytes_locked, full.bytes_in_use);
    for (void* block : blocks) {
        arena.release(block);
    }
    const SecureArenaUsage empty = arena.usage();
    EXPECT_EQ(empty.blocks_in_use, 0u);
    EXPECT_EQ(empty.chunks, 1u) << "one empty chunk is kept for the next file";
    EXPECT_LT(empty.bytes_locked, full.bytes_locked);
}

TEST(SecureArena, RefusesCleanlyWhenTheReservationIsFull) {
    SecureArena arena(256 * 1024);
    std::vector<void*> blocks;
    void* block = nullptr;
    errno = 0;
    while ((block = arena.allocate(kHandleBytes)) != nullptr) {
        EXPECT_TRUE(arena.contains(block));
        blocks.push_back(block);
        ASSERT_LT(blocks.size(), 1000u);
    }
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_GT(blocks.size(), 10u);
    EXPECT_EQ(arena.usage().refusals, 1u);
    arena.release(blocks.back());
    blocks.pop_back();
    block = arena.allocate(kHandleBytes);
    EXPECT_NE(block, nullptr) << "a released slot serves the next request";
    arena.release(block);
    for (void* b : blocks) {
        arena.release(b);
    }
}

TEST(SecureArena, RefusesCleanlyWhenLockedMemoryRunsOut) {
    const std::string verdict = in_child([]() -> std::string {
        constexpr std::size_t kLimit = 512 * 1024;
        if (!limit_locked_memory(kLimit)) {
            return "could not drop CAP_IPC_LOCK and set RLIMIT_MEMLOCK";
        }
        SecureArena arena(16 << 20);
        std::vector<void*> blocks;
        void* block = nullptr;
        errno = 0;
        while ((block = arena.allocate(kHandleBytes)) != nullptr) {
            blocks.push_back(block);
            const std::string unsafe =
                testing::locked_and_non_dumpable(block, "a block handed out");
            if (!unsafe.empty()) {
                return unsafe;
            }
            if (blocks.size() > 1000) {
                return "RLIMIT_MEMLOCK did not bind";
            }
        }
        if (errno != ENOMEM) {
            return "the refusal's errno is " + std::to_string(errno) + ", not ENOMEM";
        }
        const SecureArenaUsage usage = arena.usage();
        if (usage.refusals != 1 || usage.bytes_locked > kLimit) {
            return "usage after the refusal: refusals " + std::to_string(usage.refusals) +
                   ", bytes locked " + std::to_string(usage.bytes_locked);
        }
        if (blocks.size() < 100) {
            return "only " + std::to_string(blocks.size()) + " blocks fit under 512 KiB";
        }
        if (arena.allocate(kHandleBytes) != nullptr) {
            return "a second attempt succeeded without any release";
        }
        arena.release(blocks.back());
        blocks.pop_back();
        if (arena.allocate(kHandleBytes) == nullptr) {
            return "the slot released did not serve the next request";
        }
        return "";
    });
    EXPECT_EQ(verdict, "");
}

TEST(SecureArena, WipeAllLeavesNothingAndRefusesAfterwards) {
    SecureArena arena(1 << 20);
    auto* block = static_cast<std::uint8_t*>(arena.allocate(kHandleBytes));
    ASSERT_NE(block, nullptr);
    std::memset(block, 0xa5, kHandleBytes);
    arena.wipe_all();
    EXPECT_EQ(arena.usage().chunks, 0u);
    EXPECT_EQ(arena.usage().bytes_locked, 0u);
    const testing::Mapping mapping = mapping_of(block);
    EXPECT_EQ(mapping.permissions.substr(0, 3), "---") << "the chunk is still accessible";
    EXPECT_FALSE(mapping.has("lo"));
    errno = 0;
    EXPECT_EQ(arena.allocate(16), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    arena.release(block);  // after the wipe: ignored
}

TEST(SecureArena, TheProcessArenaIsLockedAgainInAForkedChild) {
    void* block = SecureArena::process().allocate(kHandleBytes);
    ASSERT_NE(block, nullptr);
    ASSERT_TRUE(mapping_of(block).has("lo"));
    EXPECT_EQ(in_child([block] {
                  return testing::locked_and_non_dumpable(block, "the child's copy of the block");
              }),
              "");
    SecureArena::process().release(block);
}

TEST(SecureArena, KeepLockedRegionsAreLockedAgainInAForkedChild) {
    const long page = sysconf(_SC_PAGESIZE);
    void* region = mmap(nullptr, static_cast<std::size_t>(page), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(region, MAP_FAILED);
    ASSERT_EQ(keep_locked(region, 100), 0);
    EXPECT_EQ(testing::locked_and_non_dumpable(region, "the region"), "");
    EXPECT_EQ(in_child([region] {
                  return testing::locked_and_non_dumpable(region, "the child's copy of the region");
              }),
              "");
    forget_locked(region);
    munmap(region, static_cast<std::size_t>(page));
}

TEST(SecureCipher, HandlesLiveInTheArenaAndAreWipedOnClose) {
    const SecureArenaUsage before = SecureArena::process().usage();
    {
        std::uint8_t key[kFileKeyBytes];
        for (std::size_t i = 0; i < sizeof(key); ++i) {
            key[i] = static_cast<std::uint8_t>(i);
        }
        XtsCipher cipher(key);
        const SecureArenaUsage during = SecureArena::process().usage();
        EXPECT_EQ(during.blocks_in_use, before.blocks_in_use + 1);
        EXPECT_GE(during.bytes_in_use - before.bytes_in_use, 3000u) << "the handle's whole state";
    }
    EXPECT_EQ(SecureArena::process().usage().blocks_in_use, before.blocks_in_use);
    gcry_cipher_hd_t handle = open_secure_cipher(GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM);
    EXPECT_TRUE(SecureArena::process().contains(handle)) << "any mode's handle is covered";
    gcry_cipher_close(handle);
}

// Opens files of `cipher` under a small RLIMIT_MEMLOCK until the arena
// refuses; "" when the refusal is clean and closing a file lets one in.
std::string refusal_verdict(FileCipher cipher) {
    auto key = InstanceKey::generate();
    return in_child([&key, cipher]() -> std::string {
        if (!limit_locked_memory(256 * 1024)) {
            return "could not drop CAP_IPC_LOCK and set RLIMIT_MEMLOCK";
        }
        std::vector<std::unique_ptr<EncryptedFile>> files;
        std::vector<std::unique_ptr<testing::MemoryIo>> ios;
        for (int i = 0; i < 1000; ++i) {
            ios.push_back(std::make_unique<testing::MemoryIo>());
            auto outcome = EncryptedFile::create(*ios.back(), *key, Category::Spill, cipher, false);
            if (outcome.file) {
                files.push_back(std::move(outcome.file));
                continue;
            }
            if (!outcome.locked_memory_exhausted || outcome.error != ENOMEM) {
                return "a failure other than locked memory: errno " + std::to_string(outcome.error);
            }
            if (!ios.back()->bytes.empty()) {
                return "the refused file was written to";
            }
            if (files.size() < 20) {
                return "only " + std::to_string(files.size()) + " files before the refusal";
            }
            bool threw = false;
            try {
                std::uint8_t file_key[kFileKeyBytes] = {1};
                if (cipher == FileCipher::Aes256Gcm) {
                    GcmCipher gcm(file_key);
                } else {
                    XtsCipher xts(file_key);
                }
            } catch (const LockedMemoryExhausted&) {
                threw = true;
            }
            if (!threw) {
                return "a cipher was set up without locked memory";
            }
            files.pop_back();  // closing a file lets the next one in
            testing::MemoryIo io;
            return EncryptedFile::create(io, *key, Category::Spill, cipher, false).file
                       ? ""
                       : "no file could be created after one was closed";
        }
        return "RLIMIT_MEMLOCK did not bind";
    });
}

TEST(SecureCipher, XtsFilesAreRefusedWhenLockedMemoryRunsOut) {
    EXPECT_EQ(refusal_verdict(FileCipher::Aes256Xts), "");
}

TEST(SecureCipher, GcmFilesAreRefusedWhenLockedMemoryRunsOut) {
    EXPECT_EQ(refusal_verdict(FileCipher::Aes256Gcm), "");
}

}  // namespace
}  // namespace ephemeral_crypt
