// The fd table's storage: one slot per possible descriptor, sized from the
// hard RLIMIT_NOFILE and mapped anonymously so untouched pages cost nothing.
#include "interpose/fd_table.hpp"

#include <sys/mman.h>
#include <sys/resource.h>

#include <new>

namespace ephemeral_crypt::interpose {

namespace {
constexpr std::size_t kMaxTrackedFds = std::size_t{1} << 20;
}

FdTable& FdTable::instance() noexcept {
    static FdTable* table = new (std::nothrow) FdTable();  // never destroyed: used until exit
    return *table;
}

FdTable::FdTable() noexcept {
    struct rlimit limit {};
    std::size_t wanted = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY) {
        wanted = static_cast<std::size_t>(limit.rlim_max);
    }
    if (wanted > kMaxTrackedFds) {
        wanted = kMaxTrackedFds;
    }
    void* memory = mmap(nullptr, wanted * sizeof(Entry), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory != MAP_FAILED) {
        // Zero pages are valid Entry objects: null state, zero mode.
        entries_ = static_cast<Entry*>(memory);
        capacity_ = wanted;
    }
}

FileState* FdTable::find_or_create(dev_t device, ino_t inode, Category category, const char* path) {
    const InodeKey key{device, inode};
    auto it = by_inode_.find(key);
    if (it != by_inode_.end()) {
        return it->second;
    }
    auto state = std::make_unique<FileState>();
    state->device = device;
    state->inode = inode;
    state->category = category;
    state->path = path;
    FileState* raw = state.release();
    by_inode_.emplace(key, raw);
    return raw;
}

bool FdTable::attach(int fd, FileState* state, std::uint32_t mode) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= capacity_) {
        return false;
    }
    Entry& entry = entries_[fd];
    FileState* previous = entry.state.load(std::memory_order_relaxed);
    if (previous != nullptr) {
        // A close we never saw (the kernel reused the number): drop the stale entry.
        if (--previous->references == 0) {
            by_inode_.erase(InodeKey{previous->device, previous->inode});
            delete previous;
        }
        tracked_.fetch_sub(1, std::memory_order_relaxed);
    }
    ++state->references;
    entry.mode.store(mode, std::memory_order_relaxed);
    entry.state.store(state, std::memory_order_release);
    tracked_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

std::unique_ptr<FileState> FdTable::detach(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= capacity_) {
        return nullptr;
    }
    Entry& entry = entries_[fd];
    FileState* state = entry.state.exchange(nullptr, std::memory_order_acq_rel);
    entry.mode.store(0, std::memory_order_relaxed);
    if (state == nullptr) {
        return nullptr;
    }
    tracked_.fetch_sub(1, std::memory_order_relaxed);
    if (--state->references == 0) {
        by_inode_.erase(InodeKey{state->device, state->inode});
        return std::unique_ptr<FileState>(state);
    }
    return nullptr;
}

void FdTable::forget_if_unused(FileState* state) noexcept {
    if (state != nullptr && state->references == 0) {
        by_inode_.erase(InodeKey{state->device, state->inode});
        delete state;
    }
}

void FdTable::set_mode(int fd, std::uint32_t mode) noexcept {
    if (fd >= 0 && static_cast<std::size_t>(fd) < capacity_) {
        entries_[fd].mode.store(mode, std::memory_order_relaxed);
    }
}

}  // namespace ephemeral_crypt::interpose
