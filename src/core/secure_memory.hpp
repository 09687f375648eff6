// Memory for key material that no core dump, swap file or stray copy may
// hold: the one place where the process keeps secrets derived from the
// instance key (each file's key while its cipher is set up, and every cipher
// handle's state, key schedules included).
//
// SecureArena hands out blocks from a virtual reservation that is excluded
// from core dumps (MADV_DONTDUMP) as a whole, committed in chunks that are
// locked (mlock) before the first block in them is handed out. A block is
// wiped when it is released, and every chunk is wiped at exit. When the
// kernel refuses to lock another chunk (RLIMIT_MEMLOCK), the allocation is
// refused: nothing ever falls back to ordinary memory.
//
// Memory locks are not inherited through fork, while the flag that keeps a
// mapping out of core dumps is. So the chunks in use, and the regions given
// to keep_locked() (the instance key's guarded block), are locked again in
// every child as fork returns there. A child that cannot lock them refuses
// every later allocation, so it opens no new encrypted file.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace ephemeral_crypt {

struct SecureArenaUsage {
    std::size_t blocks_in_use = 0;
    std::size_t bytes_in_use = 0;  // the blocks' sizes, rounded up to their slots
    std::size_t bytes_locked = 0;  // committed chunks, every one of them locked
    std::size_t chunks = 0;
    std::size_t refusals = 0;  // allocations refused because locked memory ran out
};

class SecureArena {
  public:
    // The largest block: a cipher handle of libgcrypt is about 3 KiB.
    static constexpr std::size_t kMaxBlockBytes = 16 * 1024;
    // Blocks are rounded up to, and aligned on, this.
    static constexpr std::size_t kGranule = 16;

    // The process's arena, reserved on first use and never destroyed (it is
    // wiped at exit by wipe_all(), called from the engine's exit sequence).
    static SecureArena& process() noexcept;

    // An arena over a reservation of `reserve_bytes` (rounded up to pages);
    // the process's own reserves 256 MiB of address space, which costs no
    // memory until chunks are committed. Unusable if the reservation fails.
    explicit SecureArena(std::size_t reserve_bytes) noexcept;
    ~SecureArena();
    SecureArena(const SecureArena&) = delete;
    SecureArena& operator=(const SecureArena&) = delete;

    // A zero-filled block of `bytes` (1..kMaxBlockBytes), aligned on
    // kGranule, in locked memory excluded from core dumps. Null, with errno
    // ENOMEM, when no more memory can be locked (or the reservation is full,
    // or the arena is unusable); EINVAL for a size out of range.
    void* allocate(std::size_t bytes) noexcept;
    // Wipes the block and gives it back; a chunk left empty is unlocked and
    // decommitted (one empty chunk per size is kept for the next block).
    // Null, and pointers this arena never handed out, are ignored.
    void release(void* block) noexcept;
    // Whether `p` points into this arena's reservation. Lock-free.
    bool contains(const void* p) const noexcept;
    // The usable size of the block at `block`, or 0 if it is not one.
    std::size_t block_size(const void* block) const noexcept;
    SecureArenaUsage usage() const noexcept;
    bool usable() const noexcept;
    // The reservation's bounds (null and 0 when unusable) and, appended to
    // `out` as address and length pairs, the chunks committed now (for the
    // attestation, which checks them against /proc/self/smaps).
    void reservation(const void** base, std::size_t* bytes) const noexcept;
    void committed_ranges(std::vector<std::pair<std::uintptr_t, std::size_t>>& out) const;

    // At exit: wipes every committed chunk, blocks still in use included,
    // unlocks and decommits it, and refuses every later allocation.
    void wipe_all() noexcept;

  private:
    friend struct ForkHandlers;  // secure_memory.cpp: the pthread_atfork handlers

    struct Chunk {
        std::size_t first_page = 0;
        std::size_t pages = 0;
        std::size_t slot_bytes = 0;
        std::size_t capacity = 0;
        std::size_t used = 0;
        std::vector<std::uint64_t> used_slots;  // one bit per slot
    };

    std::uint8_t* page_address(std::size_t page) const noexcept {
        return base_ + page * page_bytes_;
    }
    Chunk* chunk_of(const void* p) const noexcept;
    Chunk* commit_chunk(std::size_t slot_bytes) noexcept;
    void decommit_chunk(Chunk* chunk) noexcept;
    bool find_free_pages(std::size_t pages, std::size_t* first) const noexcept;
    // In a child just forked, with mutex_ held: locks the chunks in use
    // again and drops the empty ones.
    void relock_after_fork() noexcept;

    mutable std::mutex mutex_;
    std::uint8_t* base_ = nullptr;
    std::size_t page_bytes_ = 0;
    std::size_t pages_ = 0;
    // Per page of the reservation: the index + 1 of the chunk that owns it,
    // or 0. Its own anonymous mapping, so untouched pages cost nothing.
    std::uint32_t* page_owner_ = nullptr;
    std::vector<Chunk*> chunks_;  // by index; null where a chunk was decommitted
    std::size_t refusals_ = 0;
    bool usable_ = false;
    bool wiped_ = false;
};

// Locks the pages under [address, address + length) and excludes them from
// core dumps, now and, until forget_locked(address), in every child forked
// afterwards. Returns 0, or the errno of the failed mlock or madvise (the
// region is then not registered).
int keep_locked(const void* address, std::size_t length) noexcept;
void forget_locked(const void* address) noexcept;
// The page-aligned ranges registered by keep_locked(), appended to `out`;
// and whether this process, a child, failed to lock them again after fork.
void kept_locked_ranges(std::vector<std::pair<std::uintptr_t, std::size_t>>& out);
bool locks_lost_after_fork() noexcept;

// Overwrites the stack the caller's callees used: libraries wipe the buffers
// they declare, but not what their compression functions and frames leave
// below the caller (SHA-256's message schedule holds the key it hashed on
// CPUs without SHA extensions). Called after every derivation and MAC.
void burn_stack() noexcept;

// A block of the process's arena for the life of a scope: where a file's key
// is derived and read by the cipher set-up, then wiped.
class SecureBytes {
  public:
    explicit SecureBytes(std::size_t bytes) noexcept
        : data_(static_cast<std::uint8_t*>(SecureArena::process().allocate(bytes))),
          size_(data_ != nullptr ? bytes : 0) {}
    ~SecureBytes() { SecureArena::process().release(data_); }
    SecureBytes(const SecureBytes&) = delete;
    SecureBytes& operator=(const SecureBytes&) = delete;

    explicit operator bool() const noexcept { return data_ != nullptr; }
    std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }

  private:
    std::uint8_t* data_;
    std::size_t size_;
};

}  // namespace ephemeral_crypt
