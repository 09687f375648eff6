// One source, built into several shared libraries that differ only in how
// they bind getuid (lazy PLT, BIND_NOW with full RELRO, -fno-plt GOT calls),
// so the GOT patcher's tests exercise each relocation and page-protection
// layout a real process contains. getuid is a plain libc import that no
// sanitizer intercepts and no compiler folds, so a changed result can only come
// from a changed slot.
#include <sys/types.h>
#include <unistd.h>

#if !defined(FIXTURE_CALL) || !defined(FIXTURE_CALL_VIA_POINTER) || !defined(FIXTURE_POINTER)
#error "FIXTURE_CALL, FIXTURE_CALL_VIA_POINTER and FIXTURE_POINTER must be defined"
#endif

// A function pointer in data is an R_X86_64_64 relocation against getuid.
// Being const (and not volatile, which would move it to .data) it lands in
// .data.rel.ro, read-only once RELRO is applied; the volatile read below keeps
// the compiler from calling getuid directly instead of loading the pointer.
static uid_t (*const FIXTURE_POINTER)(void) = getuid;

__attribute__((visibility("default"), noinline)) int FIXTURE_CALL(void) {
    return (int)getuid();
}

__attribute__((visibility("default"), noinline)) int FIXTURE_CALL_VIA_POINTER(void) {
    uid_t (*const volatile* pointer)(void) = &FIXTURE_POINTER;
    return (int)(*pointer)();
}
