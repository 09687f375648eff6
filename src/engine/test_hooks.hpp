// The test-only switches the TAP tests drive: a category whose file
// creations fail (to exercise the degradation classes), and, in test builds
// alone, handing the instance key to a test that proves it leaks nowhere.
// src/pg honours them only with EPHEMERAL_CRYPT_TEST_FAULTS=1 in the
// server's environment.
#pragma once

#include "core/no_postgres.hpp"

#include "core/category.hpp"

namespace ephemeral_crypt::engine {

// Makes creating encrypted files of `category` fail from now on.
void inject_category_fault(Category category) noexcept;

// Writes the instance key, as 64 hex digits and a newline, to `path`. False
// on failure and always in builds without EPHEMERAL_CRYPT_TEST_HOOKS.
bool expose_key_for_testing(const char* path) noexcept;

}  // namespace ephemeral_crypt::engine
