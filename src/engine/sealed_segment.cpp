// Writing and reading the sealed segment (see sealed_segment.hpp). The
// checkpoint's plaintext is read through the layer, which decrypts it, and
// written with libc under a name outside the WAL category, then renamed
// over the encrypted segment, so it lands in plaintext.
#include "engine/sealed_segment.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/file_header.hpp"
#include "core/file_io.hpp"
#include "engine/errors.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

namespace ip = ephemeral_crypt::interpose;

namespace {

// The plaintext of the segment from its start to the end of the checkpoint
// record, whose total length sits in the record's first four bytes.
std::vector<std::uint8_t> checkpoint_prefix(const std::string& segment_path,
                                            std::uint64_t checkpoint_offset) {
    const FileCalls layer = ip::encrypting_file_calls();
    const int fd = layer.open(segment_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw_system_error("could not open", segment_path);
    }
    std::uint32_t record_length = 0;
    std::vector<std::uint8_t> prefix;
    bool ok = layer.pread(fd, &record_length, sizeof(record_length),
                          static_cast<off_t>(checkpoint_offset)) ==
              static_cast<ssize_t>(sizeof(record_length));
    const std::uint64_t end = checkpoint_offset + record_length;
    ok = ok && record_length > 0 && end <= kSealedPrefixMax;
    if (ok) {
        prefix.resize(end);
        ok =
            layer.pread(fd, prefix.data(), prefix.size(), 0) == static_cast<ssize_t>(prefix.size());
    }
    layer.close(fd);
    if (!ok) {
        throw EngineError("could not read the checkpoint record of \"" + segment_path + "\"");
    }
    return prefix;
}

// Writes all of `data` to `fd`; false with errno on failure.
bool write_all(const FileCalls& calls, int fd, const std::uint8_t* data, std::size_t len) noexcept {
    while (len > 0) {
        const ssize_t n = calls.write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        data += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

void leave_checkpoint_readable(const std::string& segment_path, std::uint64_t checkpoint_offset,
                               std::uint64_t segment_bytes) {
    const std::vector<std::uint8_t> prefix = checkpoint_prefix(segment_path, checkpoint_offset);
    // Outside the WAL category (not xlogtemp.*), so nothing encrypts it.
    const std::string temp = segment_path + ".ephemeral_crypt." + std::to_string(getpid());
    const FileCalls libc = ip::plaintext_file_calls();
    if (replace_file_durably(libc, AT_FDCWD, temp.c_str(), segment_path.c_str(), 0600, [&](int fd) {
            return write_all(libc, fd, prefix.data(), prefix.size()) &&
                   libc.ftruncate(fd, static_cast<off_t>(segment_bytes)) == 0;
        }) != 0) {
        throw_system_error("could not write", segment_path);
    }
}

std::size_t read_plaintext_start(const std::string& segment_path, std::uint8_t* buf,
                                 std::size_t len) noexcept {
    const FileCalls libc = ip::plaintext_file_calls();
    const int fd = libc.open(segment_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    const ssize_t n = libc.pread(fd, buf, len, 0);
    libc.close(fd);
    if (n <= 0) {
        return 0;
    }
    const auto got = static_cast<std::size_t>(n);
    if (got >= sizeof(kHeaderMagic) && std::memcmp(buf, kHeaderMagic, sizeof(kHeaderMagic)) == 0) {
        return 0;  // encrypted: a previous instance's, or this one's
    }
    return got;
}

}  // namespace ephemeral_crypt::engine
