// Included first by every src/core and src/interpose header: those rooms are
// PostgreSQL-free, and a translation unit that mixes them with postgres.h
// (whose macros redefine things like `printf`, `gettext` and `Assert`, and
// whose ereport longjmps across C++ destructors) is refused at compile time.
#pragma once

#if defined(POSTGRES_H) || defined(PG_VERSION_NUM)
#error \
    "src/core and src/interpose headers must not be included after postgres.h; go through a C-ABI bridge in src/pg"
#endif
