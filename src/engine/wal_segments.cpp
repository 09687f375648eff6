// Listing, encrypting and removing WAL segments (see wal_segments.hpp).
// Headers are read with libc itself; conversion writes through the layer's
// wrappers, which encrypt because the temporary file's name (xlogtemp.*) is
// in the WAL category.
#include "engine/wal_segments.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/file_header.hpp"
#include "core/file_io.hpp"
#include "core/path_classifier.hpp"
#include "engine/errors.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

namespace ip = ephemeral_crypt::interpose;

namespace {

// Reads the segment's first bytes into `segment`; false if it cannot be
// opened (it is then left out, as if it had vanished).
bool classify_segment(WalSegment& segment, const InstanceKey* key) {
    const FileCalls libc = ip::plaintext_file_calls();
    const int fd = libc.open(segment.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    std::uint8_t header[kHeaderBytes];
    const ssize_t n = libc.pread(fd, header, sizeof(header), 0);
    libc.close(fd);
    segment.kind = SegmentKind::Plaintext;
    if (n < static_cast<ssize_t>(sizeof(kHeaderMagic)) ||
        std::memcmp(header, kHeaderMagic, sizeof(kHeaderMagic)) != 0) {
        return true;
    }
    const DecodedHeader decoded = decode_header(header, static_cast<std::size_t>(n), key);
    segment.kind = decoded.status == HeaderStatus::Ok ? SegmentKind::Current : SegmentKind::Foreign;
    if (decoded.status == HeaderStatus::ForeignInstance) {
        segment.key_id = key_id_to_hex(decoded.header.key_id);
    }
    return true;
}

// Rewrites one plaintext segment through the layer into a temporary file
// renamed over the original.
void encrypt_segment(const std::string& wal_dir, const std::string& path) {
    const FileCalls libc = ip::plaintext_file_calls();
    const FileCalls layer = ip::encrypting_file_calls();
    const int in = libc.open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        throw_system_error("could not open", path);
    }
    const std::string temp = wal_dir + "/xlogtemp.ephemeral_crypt." + std::to_string(getpid());
    std::vector<char> buffer(1 << 20);
    const int rc =
        replace_file_durably(layer, AT_FDCWD, temp.c_str(), path.c_str(), 0600, [&](int out) {
            for (off_t offset = 0;;) {
                const ssize_t n = libc.pread(in, buffer.data(), buffer.size(), offset);
                if (n <= 0) {
                    return n == 0;
                }
                if (layer.pwrite(out, buffer.data(), static_cast<size_t>(n), offset) != n) {
                    return false;
                }
                offset += n;
            }
        });
    const int error = errno;
    std::memset(buffer.data(), 0, buffer.size());
    libc.close(in);
    if (rc != 0) {
        errno = error;
        throw_system_error("could not encrypt WAL segment", path);
    }
}

}  // namespace

std::vector<WalSegment> list_wal_segments(const std::string& wal_dir, const InstanceKey* key) {
    DIR* dir = opendir(wal_dir.c_str());
    if (dir == nullptr) {
        throw_system_error("could not open directory", wal_dir);
    }
    std::vector<WalSegment> segments;
    try {
        while (const struct dirent* entry = readdir(dir)) {
            if (!is_wal_segment_name(entry->d_name)) {
                continue;
            }
            WalSegment segment;
            segment.path = wal_dir + "/" + entry->d_name;
            if (classify_segment(segment, key)) {
                segments.push_back(std::move(segment));
            }
        }
    } catch (...) {
        closedir(dir);
        throw;
    }
    closedir(dir);
    return segments;
}

int encrypt_plaintext_segments(const std::string& wal_dir, const InstanceKey* key) {
    int converted = 0;
    for (const WalSegment& segment : list_wal_segments(wal_dir, key)) {
        if (segment.kind == SegmentKind::Plaintext) {
            encrypt_segment(wal_dir, segment.path);
            ++converted;
        }
    }
    return converted;
}

namespace {

// Removes the segments of `wal_dir` that `doomed` picks, durably.
template <class Doomed>
int remove_segments(const std::string& wal_dir, const InstanceKey* key, Doomed doomed) {
    int removed = 0;
    for (const WalSegment& segment : list_wal_segments(wal_dir, key)) {
        if (!doomed(segment.kind)) {
            continue;
        }
        if (unlink(segment.path.c_str()) != 0) {
            throw_system_error("could not remove", segment.path);
        }
        ++removed;
    }
    if (sync_directory(ip::plaintext_file_calls(), AT_FDCWD, wal_dir.c_str()) != 0) {
        throw_system_error("could not fsync directory", wal_dir);
    }
    return removed;
}

}  // namespace

int remove_foreign_segments(const std::string& wal_dir, const InstanceKey* key) {
    return remove_segments(wal_dir, key,
                           [](SegmentKind kind) { return kind == SegmentKind::Foreign; });
}

int remove_encrypted_segments(const std::string& wal_dir, const InstanceKey* key) {
    return remove_segments(wal_dir, key,
                           [](SegmentKind kind) { return kind != SegmentKind::Plaintext; });
}

ForeignWal find_foreign_segments(const std::string& wal_dir, const InstanceKey* key) {
    ForeignWal found;
    std::vector<WalSegment> segments;
    try {
        segments = list_wal_segments(wal_dir, key);
    } catch (const EngineError&) {
        return found;
    }
    for (const WalSegment& segment : segments) {
        if (segment.kind != SegmentKind::Foreign) {
            continue;
        }
        if (found.segments++ == 0) {
            found.first_key_id = segment.key_id;
        }
    }
    return found;
}

}  // namespace ephemeral_crypt::engine
