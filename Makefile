# PGXS build of the ephemeral_crypt extension. The sources are found by
# directory, the same way CMakeLists.txt finds them, so no file is listed twice.
#
#   make && make install          build and install the extension
#   make installcheck             pg_regress (temporary instance) and TAP tests
#   make pg-suite-parity          PostgreSQL's own suites with and without the extension

EXTENSION = ephemeral_crypt
MODULE_big = ephemeral_crypt
DATA = $(wildcard sql/ephemeral_crypt--*.sql)
PGFILEDESC = "ephemeral_crypt - instance-bound encryption of temp files, spill files and WAL"

SOURCES = $(wildcard src/core/*.cpp src/interpose/*.cpp src/pg/*.cpp)
OBJS = $(SOURCES:.cpp=.o)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -fvisibility=hidden -Wno-missing-field-initializers -Wno-register -MMD -MP
SHLIB_LINK = -lcrypto -lsodium -lstdc++ -ldl

REGRESS = $(patsubst sql/%.sql,%,$(filter-out sql/ephemeral_crypt--%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-instance=$(or $(EC_REGRESS_TMP),./tmp_regress) \
	--temp-config=$(srcdir)/test/regress.conf
ifneq ($(wildcard test/t/*.pl),)
TAP_TESTS = 1
PROVE_TESTS = $(wildcard test/t/*.pl)
endif
PROVE_FLAGS = -I$(srcdir)/test/perl

EXTRA_CLEAN = $(OBJS:.o=.d) tmp_regress results regression.diffs regression.out

# Bitcode for JIT inlining is of no use for this extension and would need a
# clang matching the server's build.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS assigns PROVE_FLAGS itself after this file's settings are read.
override PROVE_FLAGS += -I$(srcdir)/test/perl

# PostgreSQL's own regression, test_decoding and its isolation suites, run
# with and without the extension; passes when both runs pass and fail the
# same tests.
.PHONY: pg-suite-parity
pg-suite-parity:
	bash $(srcdir)/test/pg_suites.sh

# Header dependencies recorded by -MMD, so editing a header rebuilds its users.
-include $(OBJS:.o=.d)
