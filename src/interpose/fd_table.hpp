// Per-process bookkeeping of the descriptors the layer encrypts. Each fd maps
// to its access mode and to one FileState per file (device, inode), shared by
// every descriptor this process has on that file, so dup'ed and reopened
// descriptors (fd.c's VFD cache closes and reopens constantly) see one
// coherent logical size. Lookups are lock-free; changes take a mutex. The
// table is plain process memory, so a fork gives the child a correct copy.
#pragma once

#include "core/no_postgres.hpp"

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/category.hpp"
#include "core/encrypted_file.hpp"

namespace ephemeral_crypt::interpose {

struct FileState {
    dev_t device = 0;
    ino_t inode = 0;
    Category category = Category::Spill;
    std::string path;  // as first opened, for messages
    int references = 0;

    // The file's cipher file (its EncryptedFile), null while the file is
    // empty and has no header. Read lock-free on every call (acquire); set and reset only under the
    // table's mutex, which publishes the pointer with release, so a reader
    // sees either null or a fully built cipher file. One is replaced only
    // when the file is truncated to nothing by an open, or destroyed when
    // the process retires: PostgreSQL's processes do neither while another
    // of their threads uses the file.
    EncryptedFile* cipher_file() const noexcept {
        return published_.load(std::memory_order_acquire);
    }
    void set_cipher_file(std::unique_ptr<EncryptedFile> file) noexcept {
        owned_ = std::move(file);
        published_.store(owned_.get(), std::memory_order_release);
    }

  private:
    std::unique_ptr<EncryptedFile> owned_;
    std::atomic<EncryptedFile*> published_{nullptr};
};

enum FdMode : std::uint32_t {
    kFdReadable = 1u << 0,
    kFdWritable = 1u << 1,
    kFdAppend = 1u << 2,
};

class FdTable {
  public:
    static FdTable& instance() noexcept;

    // Lock-free: the state tracked for `fd`, or null.
    FileState* lookup(int fd, std::uint32_t* mode = nullptr) const noexcept {
        if (fd < 0 || static_cast<std::size_t>(fd) >= capacity_ || entries_ == nullptr) {
            return nullptr;
        }
        if (mode != nullptr) {
            *mode = entries_[fd].mode.load(std::memory_order_relaxed);
        }
        return entries_[fd].state.load(std::memory_order_acquire);
    }

    std::mutex& mutex() noexcept { return mutex_; }

    // The following require mutex() to be held.
    FileState* find_or_create(dev_t device, ino_t inode, Category category, const char* path);
    bool attach(int fd, FileState* state, std::uint32_t mode) noexcept;  // false: fd too large
    // Drops `fd`'s entry; returns the state if this was its last reference
    // (the caller deletes it after releasing the lock), else null.
    std::unique_ptr<FileState> detach(int fd) noexcept;
    void forget_if_unused(FileState* state) noexcept;
    void set_mode(int fd, std::uint32_t mode) noexcept;

    std::size_t tracked() const noexcept { return tracked_.load(std::memory_order_relaxed); }
    std::size_t capacity() const noexcept { return capacity_; }

  private:
    FdTable() noexcept;

    struct Entry {
        std::atomic<FileState*> state{nullptr};
        std::atomic<std::uint32_t> mode{0};
    };
    struct InodeKey {
        dev_t device;
        ino_t inode;
        bool operator==(const InodeKey& other) const noexcept {
            return device == other.device && inode == other.inode;
        }
    };
    struct InodeHash {
        std::size_t operator()(const InodeKey& key) const noexcept {
            return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(key.inode) * 31 +
                                              static_cast<std::uint64_t>(key.device));
        }
    };

    Entry* entries_ = nullptr;  // anonymous mapping, committed lazily by the kernel
    std::size_t capacity_ = 0;
    std::atomic<std::size_t> tracked_{0};
    std::mutex mutex_;
    std::unordered_map<InodeKey, FileState*, InodeHash> by_inode_;
};

}  // namespace ephemeral_crypt::interpose
