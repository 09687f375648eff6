// The arena of locked, non-dumpable memory and the regions kept locked across
// fork (see secure_memory.hpp).
//
// Layout. The reservation is one PROT_NONE anonymous mapping marked
// MADV_DONTDUMP before anything is committed in it, so no page of it is ever
// dumpable, whatever happens later. A chunk is a run of pages serving blocks
// of one slot size (the request rounded up to 16 bytes); it is sized for 16
// slots, so a cipher handle of about 3 KiB takes a chunk of 13 pages holding
// 17 of them. Committing a chunk makes its pages read-write and locks them;
// the first block handed out from it is already resident and locked. The
// bookkeeping (who owns which page, which slots are used) lives outside the
// chunks, in ordinary memory: it holds no secret, and a released slot is
// left all zeros.
#include "core/secure_memory.hpp"

#include <pthread.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

namespace ephemeral_crypt {

namespace {

constexpr std::size_t kProcessReserveBytes = std::size_t{256} << 20;
constexpr std::size_t kSlotsPerChunk = 16;
// OpenSSL's HKDF and HMAC reach about 2 KiB below their caller; four times
// that is overwritten after each of them.
constexpr std::size_t kBurnBytes = 8 * 1024;

// Regions registered by keep_locked(); few (the instance key's block), so a
// small fixed table, which the fork handler can walk without allocating.
struct LockedRegion {
    const void* address;
    std::uintptr_t first;  // page-aligned bounds
    std::size_t length;
};
constexpr std::size_t kMaxLockedRegions = 16;
LockedRegion g_regions[kMaxLockedRegions];
std::size_t g_region_count = 0;
std::mutex g_regions_mutex;
// Set in a child whose fork handler could not lock everything again.
std::atomic<bool> g_locks_lost{false};

// mlock and munlock through the system calls themselves: the sanitizer
// runtimes replace the libc functions with ones that lock nothing and
// report success, and the sanitized unit tests must see real locks.
int lock_pages(void* address, std::size_t bytes) noexcept {
    return static_cast<int>(syscall(SYS_mlock, address, bytes));
}

int unlock_pages(void* address, std::size_t bytes) noexcept {
    return static_cast<int>(syscall(SYS_munlock, address, bytes));
}

std::size_t page_size() noexcept {
    static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

std::size_t round_up(std::size_t value, std::size_t unit) noexcept {
    return (value + unit - 1) / unit * unit;
}

// The page-aligned range covering [address, address + length).
void page_range(const void* address, std::size_t length, std::uintptr_t* first,
                std::size_t* bytes) noexcept {
    const std::size_t page = page_size();
    const auto start = reinterpret_cast<std::uintptr_t>(address);
    *first = start / page * page;
    *bytes = round_up(start + length, page) - *first;
}

SecureArena* g_process_arena = nullptr;

}  // namespace

// The pthread_atfork handlers: the locks are held across fork so that the
// child finds the bookkeeping consistent, and the child locks again what
// holds secrets, since the kernel gives a child no memory locks.
struct ForkHandlers {
    static void before() noexcept {
        g_regions_mutex.lock();
        if (g_process_arena != nullptr) {
            g_process_arena->mutex_.lock();
        }
    }
    static void in_parent() noexcept {
        if (g_process_arena != nullptr) {
            g_process_arena->mutex_.unlock();
        }
        g_regions_mutex.unlock();
    }
    static void in_child() noexcept {
        for (std::size_t i = 0; i < g_region_count; ++i) {
            if (lock_pages(reinterpret_cast<void*>(g_regions[i].first), g_regions[i].length) != 0) {
                g_locks_lost.store(true);
            }
        }
        if (g_process_arena != nullptr) {
            g_process_arena->relock_after_fork();
            g_process_arena->mutex_.unlock();
        }
        g_regions_mutex.unlock();
    }
};

namespace {

void register_fork_handlers() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        pthread_atfork(ForkHandlers::before, ForkHandlers::in_parent, ForkHandlers::in_child);
    });
}

}  // namespace

// ---- The arena ----

SecureArena& SecureArena::process() noexcept {
    static SecureArena* arena = [] {
        auto* created = new (std::nothrow) SecureArena(kProcessReserveBytes);
        g_process_arena = created;
        register_fork_handlers();
        return created;
    }();
    return *arena;
}

SecureArena::SecureArena(std::size_t reserve_bytes) noexcept {
    page_bytes_ = page_size();
    pages_ = round_up(reserve_bytes, page_bytes_) / page_bytes_;
    void* base = mmap(nullptr, pages_ * page_bytes_, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        return;
    }
    // Excluded from core dumps before any page is committed: no chunk is
    // ever dumpable, not even between its commit and its first use.
    if (madvise(base, pages_ * page_bytes_, MADV_DONTDUMP) != 0) {
        munmap(base, pages_ * page_bytes_);
        return;
    }
    void* owners = mmap(nullptr, pages_ * sizeof(std::uint32_t), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (owners == MAP_FAILED) {
        munmap(base, pages_ * page_bytes_);
        return;
    }
    base_ = static_cast<std::uint8_t*>(base);
    page_owner_ = static_cast<std::uint32_t*>(owners);
    usable_ = true;
}

SecureArena::~SecureArena() {
    wipe_all();
    if (base_ != nullptr) {
        munmap(base_, pages_ * page_bytes_);
        munmap(page_owner_, pages_ * sizeof(std::uint32_t));
    }
}

bool SecureArena::contains(const void* p) const noexcept {
    const auto* byte = static_cast<const std::uint8_t*>(p);
    return base_ != nullptr && byte >= base_ && byte < base_ + pages_ * page_bytes_;
}

bool SecureArena::usable() const noexcept {
    std::lock_guard<std::mutex> guard(mutex_);
    return usable_ && !wiped_ && !(this == g_process_arena && g_locks_lost.load());
}

SecureArena::Chunk* SecureArena::chunk_of(const void* p) const noexcept {
    if (!contains(p)) {
        return nullptr;
    }
    const std::size_t page =
        static_cast<std::size_t>(static_cast<const std::uint8_t*>(p) - base_) / page_bytes_;
    const std::uint32_t owner = page_owner_[page];
    return owner == 0 ? nullptr : chunks_[owner - 1];
}

bool SecureArena::find_free_pages(std::size_t pages, std::size_t* first) const noexcept {
    std::size_t page = 0;
    while (page + pages <= pages_) {
        std::size_t run = 0;
        while (run < pages && page_owner_[page + run] == 0) {
            ++run;
        }
        if (run == pages) {
            *first = page;
            return true;
        }
        // Skip the chunk that interrupted the run.
        const Chunk* owner = chunks_[page_owner_[page + run] - 1];
        page = owner->first_page + owner->pages;
    }
    return false;
}

SecureArena::Chunk* SecureArena::commit_chunk(std::size_t slot_bytes) noexcept {
    const std::size_t pages = round_up(slot_bytes * kSlotsPerChunk, page_bytes_) / page_bytes_;
    std::size_t first = 0;
    if (!find_free_pages(pages, &first)) {
        return nullptr;  // the reservation is full
    }
    std::uint8_t* address = page_address(first);
    const std::size_t bytes = pages * page_bytes_;
    if (mprotect(address, bytes, PROT_READ | PROT_WRITE) != 0) {
        return nullptr;
    }
    // mlock faults every page in and locks it; it fails with ENOMEM or
    // EAGAIN beyond RLIMIT_MEMLOCK (EPERM when that is 0). The chunk is then
    // given up: nothing is handed out from memory that is not locked.
    if (madvise(address, bytes, MADV_DONTDUMP) != 0 || lock_pages(address, bytes) != 0) {
        mprotect(address, bytes, PROT_NONE);
        return nullptr;
    }
    Chunk* chunk = nullptr;
    try {
        chunk = new Chunk;
        chunk->used_slots.assign((bytes / slot_bytes + 63) / 64, 0);
        std::size_t index = 0;
        while (index < chunks_.size() && chunks_[index] != nullptr) {
            ++index;
        }
        if (index == chunks_.size()) {
            chunks_.push_back(nullptr);
        }
        chunks_[index] = chunk;
        for (std::size_t page = first; page < first + pages; ++page) {
            page_owner_[page] = static_cast<std::uint32_t>(index + 1);
        }
    } catch (...) {
        delete chunk;
        unlock_pages(address, bytes);
        mprotect(address, bytes, PROT_NONE);
        return nullptr;
    }
    chunk->first_page = first;
    chunk->pages = pages;
    chunk->slot_bytes = slot_bytes;
    chunk->capacity = bytes / slot_bytes;
    return chunk;
}

void SecureArena::decommit_chunk(Chunk* chunk) noexcept {
    std::uint8_t* address = page_address(chunk->first_page);
    const std::size_t bytes = chunk->pages * page_bytes_;
    // An empty chunk is all zeros already (released slots are wiped), and
    // writing it in a child would only copy the parent's pages.
    if (chunk->used > 0) {
        sodium_memzero(address, bytes);
    }
    unlock_pages(address, bytes);
    madvise(address, bytes, MADV_DONTNEED);  // the pages go back; a later commit reads zeros
    mprotect(address, bytes, PROT_NONE);
    const std::uint32_t index = page_owner_[chunk->first_page];
    for (std::size_t page = chunk->first_page; page < chunk->first_page + chunk->pages; ++page) {
        page_owner_[page] = 0;
    }
    chunks_[index - 1] = nullptr;
    delete chunk;
}

void* SecureArena::allocate(std::size_t bytes) noexcept {
    if (bytes == 0 || bytes > kMaxBlockBytes) {
        errno = EINVAL;
        return nullptr;
    }
    const std::size_t slot_bytes = round_up(bytes, kGranule);
    std::lock_guard<std::mutex> guard(mutex_);
    if (!usable_ || wiped_ || (this == g_process_arena && g_locks_lost.load())) {
        ++refusals_;
        errno = ENOMEM;
        return nullptr;
    }
    Chunk* chunk = nullptr;
    for (Chunk* candidate : chunks_) {
        if (candidate != nullptr && candidate->slot_bytes == slot_bytes &&
            candidate->used < candidate->capacity) {
            chunk = candidate;
            break;
        }
    }
    if (chunk == nullptr && (chunk = commit_chunk(slot_bytes)) == nullptr) {
        ++refusals_;
        errno = ENOMEM;
        return nullptr;
    }
    for (std::size_t word = 0; word < chunk->used_slots.size(); ++word) {
        const std::uint64_t free_bits = ~chunk->used_slots[word];
        if (free_bits == 0) {
            continue;
        }
        const std::size_t slot = word * 64 + static_cast<std::size_t>(__builtin_ctzll(free_bits));
        if (slot >= chunk->capacity) {
            break;
        }
        chunk->used_slots[word] |= std::uint64_t{1} << (slot % 64);
        ++chunk->used;
        // Zero already: fresh pages are, and release() leaves slots so.
        return page_address(chunk->first_page) + slot * slot_bytes;
    }
    errno = ENOMEM;  // unreachable: used < capacity means a free bit exists
    return nullptr;
}

void SecureArena::release(void* block) noexcept {
    if (block == nullptr) {
        return;
    }
    std::lock_guard<std::mutex> guard(mutex_);
    Chunk* chunk = wiped_ ? nullptr : chunk_of(block);
    if (chunk == nullptr) {
        return;
    }
    auto* start = page_address(chunk->first_page);
    const auto offset = static_cast<std::size_t>(static_cast<std::uint8_t*>(block) - start);
    const std::size_t slot = offset / chunk->slot_bytes;
    const std::uint64_t bit = std::uint64_t{1} << (slot % 64);
    if (offset % chunk->slot_bytes != 0 || (chunk->used_slots[slot / 64] & bit) == 0) {
        return;  // not the start of a block in use
    }
    sodium_memzero(block, chunk->slot_bytes);
    chunk->used_slots[slot / 64] &= ~bit;
    if (--chunk->used > 0) {
        return;
    }
    // Keep one empty chunk of this size, so that opening and closing one
    // file after another does not lock and unlock memory each time.
    for (Chunk* other : chunks_) {
        if (other != nullptr && other != chunk && other->slot_bytes == chunk->slot_bytes &&
            other->used == 0) {
            decommit_chunk(chunk);
            return;
        }
    }
}

std::size_t SecureArena::block_size(const void* block) const noexcept {
    std::lock_guard<std::mutex> guard(mutex_);
    const Chunk* chunk = wiped_ ? nullptr : chunk_of(block);
    if (chunk == nullptr) {
        return 0;
    }
    const auto offset = static_cast<std::size_t>(static_cast<const std::uint8_t*>(block) -
                                                 page_address(chunk->first_page));
    const std::size_t slot = offset / chunk->slot_bytes;
    const bool in_use = (chunk->used_slots[slot / 64] >> (slot % 64)) & 1;
    return offset % chunk->slot_bytes == 0 && in_use ? chunk->slot_bytes : 0;
}

SecureArenaUsage SecureArena::usage() const noexcept {
    std::lock_guard<std::mutex> guard(mutex_);
    SecureArenaUsage usage;
    for (const Chunk* chunk : chunks_) {
        if (chunk == nullptr) {
            continue;
        }
        ++usage.chunks;
        usage.blocks_in_use += chunk->used;
        usage.bytes_in_use += chunk->used * chunk->slot_bytes;
        usage.bytes_locked += chunk->pages * page_bytes_;
    }
    usage.refusals = refusals_;
    return usage;
}

void SecureArena::wipe_all() noexcept {
    std::lock_guard<std::mutex> guard(mutex_);
    for (Chunk* chunk : chunks_) {
        if (chunk != nullptr) {
            decommit_chunk(chunk);
        }
    }
    wiped_ = true;
}

void SecureArena::relock_after_fork() noexcept {
    // Runs in the child with mutex_ held by the fork handler.
    for (Chunk* chunk : chunks_) {
        if (chunk == nullptr) {
            continue;
        }
        if (chunk->used == 0) {
            decommit_chunk(chunk);  // the child has no use for the parent's spare
            continue;
        }
        if (lock_pages(page_address(chunk->first_page), chunk->pages * page_bytes_) != 0) {
            g_locks_lost.store(true);
        }
    }
}

// ---- Regions kept locked across fork ----

int keep_locked(const void* address, std::size_t length) noexcept {
    std::uintptr_t first = 0;
    std::size_t bytes = 0;
    page_range(address, length, &first, &bytes);
    auto* pages = reinterpret_cast<void*>(first);
    if (madvise(pages, bytes, MADV_DONTDUMP) != 0 || lock_pages(pages, bytes) != 0) {
        return errno;
    }
    register_fork_handlers();
    std::lock_guard<std::mutex> guard(g_regions_mutex);
    if (g_region_count == kMaxLockedRegions) {
        unlock_pages(pages, bytes);
        return ENOMEM;
    }
    g_regions[g_region_count++] = LockedRegion{address, first, bytes};
    return 0;
}

void kept_locked_ranges(std::vector<std::pair<std::uintptr_t, std::size_t>>& out) {
    std::lock_guard<std::mutex> guard(g_regions_mutex);
    for (std::size_t i = 0; i < g_region_count; ++i) {
        out.emplace_back(g_regions[i].first, g_regions[i].length);
    }
}

bool locks_lost_after_fork() noexcept {
    return g_locks_lost.load(std::memory_order_acquire);
}

void SecureArena::reservation(const void** base, std::size_t* bytes) const noexcept {
    *base = usable_ ? base_ : nullptr;
    *bytes = usable_ ? pages_ * page_bytes_ : 0;
}

void SecureArena::committed_ranges(std::vector<std::pair<std::uintptr_t, std::size_t>>& out) const {
    std::lock_guard<std::mutex> guard(mutex_);
    for (const Chunk* chunk : chunks_) {
        if (chunk != nullptr) {
            out.emplace_back(reinterpret_cast<std::uintptr_t>(page_address(chunk->first_page)),
                             chunk->pages * page_bytes_);
        }
    }
}

void forget_locked(const void* address) noexcept {
    std::lock_guard<std::mutex> guard(g_regions_mutex);
    for (std::size_t i = 0; i < g_region_count; ++i) {
        if (g_regions[i].address == address) {
            g_regions[i] = g_regions[--g_region_count];
            return;
        }
    }
}

// ---- The stack ----

__attribute__((noinline)) void burn_stack() noexcept {
    std::uint8_t area[kBurnBytes];
    sodium_memzero(area, sizeof(area));
    __asm__ __volatile__("" : : "r"(area) : "memory");
}

}  // namespace ephemeral_crypt
