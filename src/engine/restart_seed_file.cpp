// Reading and writing the restart seed (see restart_seed_file.hpp). The seed
// itself is plaintext (a page header and the checkpoint record, facts
// pg_control keeps in the clear) and is written with libc; the rebuilt
// segment is written through the layer, under a temporary xlogtemp name in
// the WAL category, so it lands encrypted.
#include "engine/restart_seed_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/file_io.hpp"
#include "core/restart_seed.hpp"
#include "engine/errors.hpp"
#include "interpose/layer.hpp"
#include "interpose/real_libc.hpp"
#include "interpose/wrappers.hpp"

namespace ephemeral_crypt::engine {

namespace ip = ephemeral_crypt::interpose;

namespace {

// The plaintext of the segment from its start to the end of the checkpoint
// record, whose total length sits in the record's first four bytes.
std::vector<std::uint8_t> checkpoint_prefix(const std::string& segment_path,
                                            std::uint64_t checkpoint_offset) {
    const int fd = ec_open(segment_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw_system_error("could not open", segment_path);
    }
    std::uint32_t record_length = 0;
    std::vector<std::uint8_t> prefix;
    bool ok = ec_pread(fd, &record_length, sizeof(record_length),
                       static_cast<off_t>(checkpoint_offset)) ==
              static_cast<ssize_t>(sizeof(record_length));
    const std::uint64_t end = checkpoint_offset + record_length;
    ok = ok && record_length > 0 && end <= kRestartSeedMaxPrefix;
    if (ok) {
        prefix.resize(end);
        ok = ec_pread(fd, prefix.data(), prefix.size(), 0) == static_cast<ssize_t>(prefix.size());
    }
    ec_close(fd);
    if (!ok) {
        throw EngineError("could not read the checkpoint record of \"" + segment_path + "\"");
    }
    return prefix;
}

// Writes all of `data` to `fd`; false with errno on failure.
bool write_all(int fd, const std::uint8_t* data, std::size_t len) noexcept {
    while (len > 0) {
        const ssize_t n = ip::real().write(fd, data, len);
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

std::string temporary_name(const std::string& path, const char* stem) {
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    return dir + stem + std::to_string(getpid());
}

}  // namespace

void save_restart_seed(const std::string& seed_path, const std::string& segment_path,
                       std::uint64_t checkpoint_offset, std::uint32_t timeline,
                       std::uint64_t checkpoint_lsn) {
    RestartSeed seed;
    seed.timeline = timeline;
    seed.checkpoint_lsn = checkpoint_lsn;
    seed.prefix = checkpoint_prefix(segment_path, checkpoint_offset);
    const std::vector<std::uint8_t> bytes = encode_restart_seed(seed);
    if (bytes.empty()) {
        throw EngineError("could not encode the restart seed");
    }
    const std::string temp = seed_path + ".tmp";
    if (replace_file_durably(
            ip::plaintext_file_calls(), AT_FDCWD, temp.c_str(), seed_path.c_str(), 0600,
            [&](int fd) { return write_all(fd, bytes.data(), bytes.size()); }) != 0) {
        throw_system_error("could not write", seed_path);
    }
}

void discard_restart_seed(const std::string& seed_path) noexcept {
    unlink(seed_path.c_str());
}

bool rebuild_from_seed(const std::string& seed_path, const std::string& segment_path,
                       std::uint32_t timeline, std::uint64_t checkpoint_lsn,
                       std::uint64_t segment_bytes) {
    std::string bytes;
    const std::size_t largest =
        kRestartSeedHeaderBytes + kRestartSeedMaxPrefix + kRestartSeedDigestBytes;
    if (!read_small_file(seed_path, largest, true, &bytes).ok()) {
        return false;  // no seed, or not one this version writes
    }
    const auto seed =
        decode_restart_seed(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    if (!seed || seed->timeline != timeline || seed->checkpoint_lsn != checkpoint_lsn) {
        return false;  // a seed of another checkpoint, or damaged: not this restart's
    }
    const std::string temp = temporary_name(segment_path, "xlogtemp.ephemeral_crypt.");
    const int rc =
        replace_file_durably(ip::encrypting_file_calls(), AT_FDCWD, temp.c_str(),
                             segment_path.c_str(), 0600, [&](int fd) {
                                 // The rest of the segment reads as zeros, as a freshly initialised
                                 // one does.
                                 return ec_pwrite(fd, seed->prefix.data(), seed->prefix.size(),
                                                  0) == static_cast<ssize_t>(seed->prefix.size()) &&
                                        ec_ftruncate(fd, static_cast<off_t>(segment_bytes)) == 0;
                             });
    if (rc != 0) {
        throw_system_error("could not rebuild", segment_path);
    }
    return true;
}

}  // namespace ephemeral_crypt::engine
