// The fixture of the libc layer's tests (layer_test.cpp,
// layer_format_test.cpp): a scratch data directory with every category's
// directories, the layer configured on it with a fresh key, spill files and
// temporary relations in the test's cipher (WAL always XTS), and the last
// operator event the layer reported.
#pragma once

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/data_layout.hpp"
#include "core/file_cipher.hpp"
#include "interpose/layer.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt::interpose {
namespace {

// The last operator event the layer handed to its callback.
struct SeenEvent {
    int count = 0;
    LayerEvent event = LayerEvent::IoFailure;
    Category category = Category::Wal;
    std::string path;
    std::int64_t unit = -1;
    std::string detail;
};
SeenEvent g_seen;

void remember_event(LayerEvent event, Category category, const char* path, std::int64_t unit,
                    const char* detail) {
    ++g_seen.count;
    g_seen.event = event;
    g_seen.category = category;
    g_seen.path = path;
    g_seen.unit = unit;
    g_seen.detail = detail;
}

class LayerTest : public ::testing::TestWithParam<FileCipher> {
  protected:
    static void SetUpTestSuite() {
        key_ = InstanceKey::generate().release();
        char tmpl[] = "/tmp/ec-layer-XXXXXX";
        data_dir_ = mkdtemp(tmpl);
        mkdir((data_dir_ + "/base").c_str(), 0700);
        mkdir((data_dir_ + "/base/pgsql_tmp").c_str(), 0700);
        mkdir((data_dir_ + "/base/5").c_str(), 0700);
        mkdir((data_dir_ + "/pg_wal").c_str(), 0700);
        mkdir((data_dir_ + "/pg_replslot").c_str(), 0700);
        mkdir((data_dir_ + "/pg_replslot/s").c_str(), 0700);
    }
    static void TearDownTestSuite() {
        std::string cmd = "rm -rf '" + data_dir_ + "'";
        (void)std::system(cmd.c_str());
    }

    void SetUp() override { configure_with(true, true, true); }
    void TearDown() override {
        set_fault(Category::Spill, false);
        EXPECT_EQ(tracked_fd_count(), 0u) << "a test leaked tracked descriptors";
    }

    void configure_with(bool temp, bool spill, bool wal,
                        Degradation spill_class = Degradation::FailClosed) {
        LayerConfig config;
        config.key = key_;
        config.roots.data_dir = data_dir_;
        config.policy[category_index(Category::TempRelation)] = {temp, Degradation::FailClosed,
                                                                 GetParam()};
        config.policy[category_index(Category::Spill)] = {spill, spill_class, GetParam()};
        config.policy[category_index(Category::Wal)].enabled = wal;
        config.on_event = remember_event;
        configure(config);
    }

    std::string path(const std::string& relative) { return data_dir_ + "/" + relative; }
    bool authenticated() const { return GetParam() == FileCipher::Aes256Gcm; }
    // Where a spill or temporary relation file's logical bytes lie on disk.
    DataLayout layout() const {
        return authenticated() ? DataLayout::grouped() : DataLayout::linear();
    }
    std::size_t physical_size(std::size_t logical) const {
        return static_cast<std::size_t>(layout().physical_size(static_cast<std::int64_t>(logical)));
    }

    inline static InstanceKey* key_ = nullptr;
    inline static std::string data_dir_;
    int serial_ = 0;
    std::string fresh(const char* dir = "base/pgsql_tmp", const char* prefix = "pgsql_tmp") {
        // A parameterised test's name is "Name/Param".
        std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::replace(name.begin(), name.end(), '/', '_');
        return path(std::string(dir) + "/" + prefix + std::to_string(getpid()) + "." +
                    std::to_string(++serial_) + "_" + name);
    }
};

const std::string kCanary = "CANARY-layer-4c1d-plaintext-must-not-reach-disk";

std::string canary_text(std::size_t at_least) {
    std::string text;
    while (text.size() < at_least) {
        text += kCanary + std::to_string(text.size());
    }
    return text;
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
