// A scratch data directory for the engine's unit tests: base/pgsql_tmp,
// base/1, pg_wal, pg_replslot and pg_tblspc, with the engine started on it
// (a fresh instance key, every category enabled) so the layer's wrappers
// encrypt what the tests write through them. Files are read back with plain
// libc to see what is on disk.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/file_header.hpp"
#include "engine/startup.hpp"
#include "interpose/layer.hpp"
#include "interpose/wrappers.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt::testing {

class EngineTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ec-engine-XXXXXX";
        data_dir_ = mkdtemp(tmpl);
        for (const char* dir :
             {"base", "base/pgsql_tmp", "base/1", "pg_wal", "pg_replslot", "pg_tblspc"}) {
            mkdir(path(dir).c_str(), 0700);
        }
        start();
    }
    void TearDown() override {
        EXPECT_EQ(interpose::tracked_fd_count(), 0u) << "a test leaked tracked descriptors";
        const std::string cmd = "rm -rf '" + data_dir_ + "'";
        (void)std::system(cmd.c_str());
    }

    // A new instance on the same directory: a new key, as at a restart.
    // `cipher` is the cipher of spill files and temporary relations.
    void start(bool wal = true, FileCipher cipher = FileCipher::Aes256Xts) {
        engine::StartSettings settings;
        for (CategoryPolicy& policy : settings.policy) {
            policy.enabled = true;
        }
        settings.policy[category_index(Category::Wal)].enabled = wal;
        settings.policy[category_index(Category::Spill)].cipher = cipher;
        settings.policy[category_index(Category::TempRelation)].cipher = cipher;
        settings.data_dir = data_dir_;
        engine::start_instance(settings);
    }

    std::string path(const std::string& relative) const { return data_dir_ + "/" + relative; }
    std::string wal_dir() const { return path("pg_wal"); }

    static bool has_header(const std::string& file) {
        return slurp(file).compare(0, sizeof(kHeaderMagic),
                                   std::string(kHeaderMagic, sizeof(kHeaderMagic))) == 0;
    }

    // Writes `bytes` through the layer (encrypted when `file` is in a category).
    static void write_through_layer(const std::string& file, const std::string& bytes) {
        const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0) << file;
        ASSERT_EQ(ec_pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
        ASSERT_EQ(ec_close(fd), 0);
    }
    // Reads `len` bytes at 0 through the layer.
    static std::string read_through_layer(const std::string& file, std::size_t len) {
        std::string out(len, '\0');
        const int fd = ec_open(file.c_str(), O_RDONLY);
        if (fd < 0) {
            return "<cannot open>";
        }
        const ssize_t n = ec_pread(fd, out.data(), out.size(), 0);
        ec_close(fd);
        out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return out;
    }

    std::string data_dir_;
};

}  // namespace ephemeral_crypt::testing
