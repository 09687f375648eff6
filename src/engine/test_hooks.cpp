// The test-only switches (see test_hooks.hpp). The key is copied out of its
// guarded memory only in a test build, and the copies are wiped at once.
#include "engine/test_hooks.hpp"

#include <fcntl.h>
#include <sodium.h>

#include "core/file_io.hpp"
#include "core/hex.hpp"
#include "core/instance_key.hpp"
#include "engine/startup.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

void inject_category_fault(Category category) noexcept {
    interpose::set_fault(category, true);
}

bool expose_key_for_testing(const char* path) noexcept {
#ifdef EPHEMERAL_CRYPT_TEST_HOOKS
    const InstanceKey* key = instance_key();
    if (key == nullptr || path == nullptr) {
        return false;
    }
    std::uint8_t bytes[kInstanceKeyBytes];
    char hex[2 * kInstanceKeyBytes + 1];
    key->copy_key_bytes_for_testing(bytes);
    bool ok = to_hex(bytes, sizeof(bytes), hex, sizeof(hex));
    hex[2 * kInstanceKeyBytes] = '\n';  // replaces the NUL: the file holds digits and a newline
    const FileCalls libc = interpose::plaintext_file_calls();
    const int fd = libc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ok = ok && fd >= 0 && libc.write(fd, hex, sizeof(hex)) == static_cast<ssize_t>(sizeof(hex));
    if (fd >= 0) {
        libc.close(fd);
    }
    sodium_memzero(bytes, sizeof(bytes));
    sodium_memzero(hex, sizeof(hex));
    return ok;
#else
    (void)path;
    return false;
#endif
}

}  // namespace ephemeral_crypt::engine
