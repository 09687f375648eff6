// A fixture for tests that need real files: a fresh directory under /tmp for
// each test, removed with everything in it afterwards.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ephemeral_crypt::testing {

class TempDirTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/ec_test_XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override {
        if (!dir_.empty()) {
            (void)std::system(("rm -rf '" + dir_ + "'").c_str());
        }
    }

    // `name` inside the test's directory.
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    std::string dir_;
};

}  // namespace ephemeral_crypt::testing
