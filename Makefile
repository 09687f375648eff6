# PGXS build of the ephemeral_crypt extension. The sources are found by
# directory, the same way CMakeLists.txt finds them, so no file is listed twice.
#
#   make && make install          build and install the extension
#   make installcheck             pg_regress (temporary instance) and TAP tests
#   make pg-suite-parity          PostgreSQL's own suites with and without the extension
#
# Builds in another directory work too, as pg_buildext does them for the
# Debian packages (make -C build-17 -f ../Makefile VPATH=..).
#
# The version is set in one place, default_version in ephemeral_crypt.control
# (committed, as in every PGXS extension); debian/changelog's top entry must
# say the same upstream version, which "make check-version" checks.

# The source directory: "." in the tree, $(VPATH) in a build directory.
ec_srcdir := $(if $(VPATH),$(patsubst %/,%,$(VPATH)),.)
# Files matching the patterns below the source directory, relative to it.
ec_files = $(patsubst $(ec_srcdir)/%,%,$(wildcard $(addprefix $(ec_srcdir)/,$(1))))
EC_VERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(ec_srcdir)/ephemeral_crypt.control)

EXTENSION = ephemeral_crypt
MODULE_big = ephemeral_crypt
DATA = $(call ec_files,sql/ephemeral_crypt--*.sql)
PGFILEDESC = "ephemeral_crypt - instance-bound encryption of temp files, spill files and WAL"

SOURCES = $(call ec_files,src/core/*.cpp src/interpose/*.cpp src/engine/*.cpp src/pg/*.cpp)
OBJS = $(SOURCES:.cpp=.o)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -fvisibility=hidden -Wno-missing-field-initializers -Wno-register -MMD -MP
SHLIB_LINK = -lgcrypt -lcrypto -lsodium -lstdc++ -ldl

# EC_TEST_HOOKS=1 builds the test-only hook that can hand the instance key to
# a test (and only when EPHEMERAL_CRYPT_TEST_FAULTS=1 and
# EPHEMERAL_CRYPT_TEST_KEY_FILE are in the server's environment). The test
# suite installs this build; production packages must not.
ifeq ($(EC_TEST_HOOKS),1)
PG_CPPFLAGS += -DEPHEMERAL_CRYPT_TEST_HOOKS
endif

# EC_BENCH_TIMING=1 builds the benchmark-only account of the time spent
# inside the cipher calls (src/core/cipher_timing.hpp): each process writes
# its totals to the server log as it exits, and bench/run.sh reads them.
# Never the default, and never for packages: it adds a clock read around
# every data unit.
ifeq ($(EC_BENCH_TIMING),1)
PG_CPPFLAGS += -DEPHEMERAL_CRYPT_BENCH_TIMING
endif

REGRESS = $(patsubst sql/%.sql,%,$(filter-out sql/ephemeral_crypt--%,$(call ec_files,sql/*.sql)))
REGRESS_OPTS = --temp-instance=$(or $(EC_REGRESS_TMP),./tmp_regress) \
	--temp-config=$(srcdir)/test/regress.conf
ifneq ($(call ec_files,test/t/*.pl),)
TAP_TESTS = 1
PROVE_TESTS = $(addprefix $(ec_srcdir)/,$(call ec_files,test/t/*.pl))
endif
PROVE_FLAGS = -I$(srcdir)/test/perl

EXTRA_CLEAN = src/pg/test_hooks.stamp $(OBJS:.o=.d) tmp_regress results regression.diffs regression.out

# Bitcode for JIT inlining is of no use for this extension and would need a
# clang matching the server's build.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The policy signing tool, built from the same core sources and installed
# next to the server's binaries.
POLICY_TOOL = ephemeral_crypt_policy
# The instance key's test hooks stay out of the tool even in a test build.
CORE_OBJS = $(filter-out src/core/instance_key_test_hooks.o,$(patsubst %.cpp,%.o,$(call ec_files,src/core/*.cpp)))
all: $(POLICY_TOOL)
$(POLICY_TOOL): tools/ephemeral_crypt_policy.o $(CORE_OBJS)
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDFLAGS) -lgcrypt -lcrypto -lsodium
install: install-policy-tool
.PHONY: install-policy-tool
install-policy-tool: $(POLICY_TOOL)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(POLICY_TOOL) '$(DESTDIR)$(bindir)/$(POLICY_TOOL)'
EXTRA_CLEAN += $(POLICY_TOOL) tools/ephemeral_crypt_policy.o tools/ephemeral_crypt_policy.d

# PostgreSQL's headers have no extern "C" of their own: one included
# outside such a block leaves a C++-mangled reference that the linker accepts
# (a shared library may leave symbols to the server) and dlopen refuses at
# start. So every C++ symbol the library leaves undefined must come from
# libstdc++.
all: check-linkage
.PHONY: check-linkage
check-linkage: $(shlib)
	@nm -D --defined-only "$$($(CXX) -print-file-name=libstdc++.so)" | \
		awk '{ sub(/@.*/, "", $$3); print $$3 }' > $(shlib).libstdcxx; \
	unresolved=$$(nm -D --undefined-only $(shlib) | \
		awk '$$2 ~ /^_Z/ { sub(/@.*/, "", $$2); print $$2 }' | grep -vxF -f $(shlib).libstdcxx); \
	rm -f $(shlib).libstdcxx; \
	if [ -n "$$unresolved" ]; then \
		echo "$(shlib) refers to C++ symbols no library defines (a PostgreSQL header included outside extern \"C\"?):"; \
		echo "$$unresolved" | c++filt; exit 1; fi

# PGXS assigns PROVE_FLAGS itself after this file's settings are read.
override PROVE_FLAGS += -I$(srcdir)/test/perl

# PostgreSQL's own regression, test_decoding and its isolation suites, run
# with and without the extension; passes when both runs pass and fail the
# same tests.
.PHONY: pg-suite-parity
pg-suite-parity:
	bash $(srcdir)/test/pg_suites.sh

# debian/changelog's top entry (its upstream version, before any Debian
# revision) must be the control file's default_version, and a script must
# install or update to that version. As in pg_stat_statements, there is one
# install script (1.0); CREATE EXTENSION at a later default runs the update
# scripts from it in turn, so the last of them is the one named here.
.PHONY: check-version
check-version:
	@changelog=$$(sed -n '1s/^[^(]*(\([^)-]*\).*/\1/p' $(ec_srcdir)/debian/changelog); \
	if [ "$$changelog" != "$(EC_VERSION)" ]; then \
		echo "debian/changelog says $$changelog, ephemeral_crypt.control says $(EC_VERSION)"; exit 1; fi; \
	ls $(ec_srcdir)/sql/$(EXTENSION)--*$(EC_VERSION).sql >/dev/null 2>&1 || \
		{ echo "no sql/$(EXTENSION)--...$(EC_VERSION).sql for default_version $(EC_VERSION)"; exit 1; }; \
	echo "version $(EC_VERSION): ephemeral_crypt.control and debian/changelog agree"

# A build directory needs the source tree's subdirectories for its objects.
ifneq ($(ec_srcdir),.)
$(shell mkdir -p $(sort $(dir $(OBJS) tools/x)))
endif

# Everything is rebuilt whenever EC_TEST_HOOKS, EC_BENCH_TIMING or the
# server's major changes, so a test or timing build is never installed by a
# later plain `make install` (or the reverse), and no object compiled against
# one major's headers is linked for another.
src/pg/test_hooks.stamp: FORCE
	@echo "$(EC_TEST_HOOKS) $(EC_BENCH_TIMING) $(MAJORVERSION)" | cmp -s - $@ || \
		echo "$(EC_TEST_HOOKS) $(EC_BENCH_TIMING) $(MAJORVERSION)" > $@
$(OBJS) $(CORE_OBJS): src/pg/test_hooks.stamp
.PHONY: FORCE
FORCE:

# Header dependencies recorded by -MMD, so editing a header rebuilds its users.
-include $(OBJS:.o=.d)
