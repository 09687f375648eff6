// GOT patching over dl_iterate_phdr: each loaded object's dynamic section is
// read for its symbol and relocation tables, and the slots whose relocations
// name a symbol of interest are rewritten. It runs inside the callback, under
// the loader's lock, possibly from a library constructor and possibly after
// open/read/close have themselves been redirected, so it allocates nothing and
// reads /proc/self/maps through raw system calls rather than through any GOT.
#include "interpose/got_patcher.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#if !defined(__x86_64__) || !defined(__linux__)
#error "got_patcher supports x86_64 Linux only"
#endif

namespace ephemeral_crypt::interpose {

namespace {

using Address = std::uintptr_t;

// What the dynamic section tells us about one object, with every table pointer
// already turned into an absolute address.
struct DynamicTables {
    const Elf64_Sym* symtab = nullptr;
    const char* strtab = nullptr;
    std::size_t strsz = 0;
    const Elf64_Rela* jmprel = nullptr;
    std::size_t jmprel_count = 0;
    const Elf64_Rela* rela = nullptr;
    std::size_t rela_count = 0;
};

struct ObjectView {
    const char* name;
    Address bias;  // dlpi_addr: added to every p_vaddr and d_ptr
    const Elf64_Phdr* phdr;
    Elf64_Half phnum;
};

bool contains_loaded(const ObjectView& object, Address address, std::size_t size) noexcept {
    for (Elf64_Half i = 0; i < object.phnum; ++i) {
        const Elf64_Phdr& ph = object.phdr[i];
        if (ph.p_type != PT_LOAD) {
            continue;
        }
        Address start = object.bias + ph.p_vaddr;
        if (address >= start && address + size <= start + ph.p_memsz) {
            return true;
        }
    }
    return false;
}

Address page_size() noexcept {
    static const Address size = static_cast<Address>(sysconf(_SC_PAGESIZE));
    return size;
}

Address mapped_start(const ObjectView& object) noexcept {
    Address lowest = ~Address{0};
    for (Elf64_Half i = 0; i < object.phnum; ++i) {
        if (object.phdr[i].p_type == PT_LOAD && object.phdr[i].p_vaddr < lowest) {
            lowest = object.phdr[i].p_vaddr;
        }
    }
    if (lowest == ~Address{0}) {
        return object.bias;
    }
    return object.bias + (lowest & ~(page_size() - 1));
}

// glibc rewrites the DT_* pointers of most objects to absolute addresses when
// it loads them, but not where the dynamic section is read-only (the vDSO,
// some linkers' output), so accept whichever form lands inside the object.
const void* resolve_pointer(const ObjectView& object, Elf64_Addr value, std::size_t size) noexcept {
    if (contains_loaded(object, value, size)) {
        return reinterpret_cast<const void*>(value);
    }
    if (contains_loaded(object, object.bias + value, size)) {
        return reinterpret_cast<const void*>(object.bias + value);
    }
    return nullptr;
}

bool read_dynamic(const ObjectView& object, DynamicTables& out) noexcept {
    const Elf64_Dyn* dynamic = nullptr;
    for (Elf64_Half i = 0; i < object.phnum; ++i) {
        if (object.phdr[i].p_type == PT_DYNAMIC) {
            dynamic = reinterpret_cast<const Elf64_Dyn*>(object.bias + object.phdr[i].p_vaddr);
        }
    }
    if (dynamic == nullptr) {
        return false;
    }
    Elf64_Addr symtab = 0, strtab = 0, jmprel = 0, rela = 0;
    std::size_t pltrelsz = 0, relasz = 0, relaent = sizeof(Elf64_Rela);
    Elf64_Sxword pltrel = DT_RELA;
    for (const Elf64_Dyn* d = dynamic; d->d_tag != DT_NULL; ++d) {
        switch (d->d_tag) {
            case DT_SYMTAB:
                symtab = d->d_un.d_ptr;
                break;
            case DT_STRTAB:
                strtab = d->d_un.d_ptr;
                break;
            case DT_STRSZ:
                out.strsz = d->d_un.d_val;
                break;
            case DT_JMPREL:
                jmprel = d->d_un.d_ptr;
                break;
            case DT_PLTRELSZ:
                pltrelsz = d->d_un.d_val;
                break;
            case DT_PLTREL:
                pltrel = static_cast<Elf64_Sxword>(d->d_un.d_val);
                break;
            case DT_RELA:
                rela = d->d_un.d_ptr;
                break;
            case DT_RELASZ:
                relasz = d->d_un.d_val;
                break;
            case DT_RELAENT:
                relaent = d->d_un.d_val;
                break;
            default:
                break;
        }
    }
    // x86_64 objects only ever carry RELA; anything else is not a layout we
    // understand, and guessing would mean writing to the wrong addresses.
    if (symtab == 0 || strtab == 0 || out.strsz == 0 || relaent != sizeof(Elf64_Rela) ||
        pltrel != DT_RELA) {
        return false;
    }
    out.symtab = static_cast<const Elf64_Sym*>(resolve_pointer(object, symtab, sizeof(Elf64_Sym)));
    out.strtab = static_cast<const char*>(resolve_pointer(object, strtab, out.strsz));
    if (out.symtab == nullptr || out.strtab == nullptr) {
        return false;
    }
    if (jmprel != 0 && pltrelsz >= sizeof(Elf64_Rela)) {
        out.jmprel = static_cast<const Elf64_Rela*>(resolve_pointer(object, jmprel, pltrelsz));
        out.jmprel_count = out.jmprel != nullptr ? pltrelsz / sizeof(Elf64_Rela) : 0;
    }
    if (rela != 0 && relasz >= sizeof(Elf64_Rela)) {
        out.rela = static_cast<const Elf64_Rela*>(resolve_pointer(object, rela, relasz));
        out.rela_count = out.rela != nullptr ? relasz / sizeof(Elf64_Rela) : 0;
    }
    return true;
}

bool is_vdso(const ObjectView& object) noexcept {
    Address vdso = static_cast<Address>(getauxval(AT_SYSINFO_EHDR));
    return vdso != 0 && contains_loaded(object, vdso, 1);
}

// Which relocations denote a slot holding a symbol's address, and the symbol
// name they refer to; null for all others.
const char* slot_symbol(const DynamicTables& tables, const Elf64_Rela& r) noexcept {
    Elf64_Xword type = ELF64_R_TYPE(r.r_info);
    Elf64_Xword index = ELF64_R_SYM(r.r_info);
    if (index == 0) {
        return nullptr;
    }
    // JUMP_SLOT and GLOB_DAT ignore the addend by definition; a nonzero addend
    // on R_X86_64_64 points into the middle of the symbol, which a replacement
    // function has no equivalent for.
    if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT &&
        !(type == R_X86_64_64 && r.r_addend == 0)) {
        return nullptr;
    }
    Elf64_Word name = tables.symtab[index].st_name;
    if (name == 0 || name >= tables.strsz) {
        return nullptr;
    }
    return tables.strtab + name;
}

// The process's mappings, from /proc/self/maps, so that a page is given back
// exactly the protection it had rather than what the program headers say it
// should have (a half-relocated object in another thread's dlopen, or pages
// someone else has re-protected, would otherwise be left wrong). Read once per
// pass: generating the file costs the kernel a walk of every mapping, and one
// read per object was a large part of the extension's start-up. The snapshot
// stays true for the pass because the pass runs under the loader's lock and
// gives every page it touches back its original protection.
struct MappingCache {
    struct Range {
        Address start;
        Address end;
        int prot;
    };
    static constexpr int kCapacity = 4096;
    Range ranges[kCapacity];
    int count = 0;
    bool loaded = false;
    bool readable = false;
    bool truncated = false;  // more mappings than kCapacity: look the rest up in the headers
};

// Used only inside dl_iterate_phdr callbacks, which the loader's lock
// serializes; static because it is too large for a library's stack frame.
MappingCache g_mappings;

Address parse_hex(const char*& p, const char* end) noexcept {
    Address value = 0;
    for (; p < end; ++p) {
        char c = *p;
        int digit;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else {
            break;
        }
        value = (value << 4) | static_cast<Address>(digit);
    }
    return value;
}

void add_mapping(MappingCache& cache, const char* line, std::size_t length) noexcept {
    const char* p = line;
    const char* end = line + length;
    Address start = parse_hex(p, end);
    if (p >= end || *p != '-') {
        return;
    }
    ++p;
    Address stop = parse_hex(p, end);
    if (end - p < 4 || *p != ' ') {
        return;
    }
    ++p;
    if (cache.count == MappingCache::kCapacity) {
        cache.truncated = true;
        return;
    }
    int prot = PROT_NONE;
    prot |= p[0] == 'r' ? PROT_READ : 0;
    prot |= p[1] == 'w' ? PROT_WRITE : 0;
    prot |= p[2] == 'x' ? PROT_EXEC : 0;
    cache.ranges[cache.count++] = {start, stop, prot};
}

void load_mappings(MappingCache& cache) noexcept {
    cache.loaded = true;
    cache.count = 0;
    cache.readable = false;
    cache.truncated = false;
    int fd =
        static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC));
    if (fd < 0) {
        return;
    }
    char buffer[4096];
    // Only the address range and permissions at the start of each line are
    // needed; paths can be long, so the rest of a line is dropped unread.
    char line[96];
    std::size_t line_length = 0;
    for (;;) {
        long got = syscall(SYS_read, fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            cache.readable = got == 0;
            break;
        }
        for (long i = 0; i < got; ++i) {
            if (buffer[i] == '\n') {
                add_mapping(cache, line, line_length);
                line_length = 0;
            } else if (line_length < sizeof line) {
                line[line_length++] = buffer[i];
            }
        }
    }
    syscall(SYS_close, fd);
}

int prot_from_flags(Elf64_Word flags) noexcept {
    return ((flags & PF_R) ? PROT_READ : 0) | ((flags & PF_W) ? PROT_WRITE : 0) |
           ((flags & PF_X) ? PROT_EXEC : 0);
}

// Without /proc: glibc maps each PT_LOAD with its own flags and then makes
// the whole pages inside PT_GNU_RELRO read-only once relocation is done.
int prot_from_headers(const ObjectView& object, Address page) noexcept {
    for (Elf64_Half i = 0; i < object.phnum; ++i) {
        const Elf64_Phdr& ph = object.phdr[i];
        if (ph.p_type != PT_GNU_RELRO) {
            continue;
        }
        Address start = (object.bias + ph.p_vaddr) & ~(page_size() - 1);
        Address end = (object.bias + ph.p_vaddr + ph.p_memsz) & ~(page_size() - 1);
        if (page >= start && page < end) {
            return PROT_READ;
        }
    }
    for (Elf64_Half i = 0; i < object.phnum; ++i) {
        const Elf64_Phdr& ph = object.phdr[i];
        if (ph.p_type != PT_LOAD) {
            continue;
        }
        Address start = (object.bias + ph.p_vaddr) & ~(page_size() - 1);
        Address end = object.bias + ph.p_vaddr + ph.p_memsz;
        if (page >= start && page < end) {
            return prot_from_flags(ph.p_flags);
        }
    }
    return -1;
}

int current_prot(const ObjectView& object, MappingCache& cache, Address page) noexcept {
    if (!cache.loaded) {
        load_mappings(cache);
    }
    if (cache.readable) {
        // /proc/self/maps lists mappings in address order.
        const MappingCache::Range* begin = cache.ranges;
        const MappingCache::Range* end = begin + cache.count;
        const MappingCache::Range* range = std::partition_point(
            begin, end, [page](const MappingCache::Range& r) { return r.end <= page; });
        if (range != end && page >= range->start) {
            return range->prot;
        }
        if (!cache.truncated) {
            return -1;
        }
    }
    return prot_from_headers(object, page);
}

struct PatchContext {
    const SymbolReplacement* table;
    std::size_t count;
    SkipObject skip;
    PatchReport* report;
    bool first_object = true;
    bool audit_only = false;  // count the slots that differ; write nothing
};

void record_failure(PatchReport& report, const ObjectView& object, const char* symbol,
                    const char* what, int error) noexcept {
    ++report.failures;
    if (report.failures > 1) {
        return;
    }
    const char* name =
        object.name != nullptr && object.name[0] != '\0' ? object.name : "(main program)";
    if (error != 0) {
        char text[128];
        // GNU strerror_r: returns a pointer that may or may not be `text`.
        const char* reason = strerror_r(error, text, sizeof text);
        std::snprintf(report.first_failure, sizeof report.first_failure, "%s: %s: %s: %s", name,
                      symbol, what, reason);
    } else {
        std::snprintf(report.first_failure, sizeof report.first_failure, "%s: %s: %s", name, symbol,
                      what);
    }
}

const SymbolReplacement* find_replacement(const PatchContext& context, const char* name) noexcept {
    for (std::size_t i = 0; i < context.count; ++i) {
        const SymbolReplacement& entry = context.table[i];
        if (entry.symbol != nullptr && entry.replacement != nullptr &&
            std::strcmp(entry.symbol, name) == 0) {
            return &entry;
        }
    }
    return nullptr;
}

// Returns true if the slot now holds the replacement and was written by us.
bool patch_slot(PatchContext& context, const ObjectView& object, MappingCache& cache,
                const Elf64_Rela& r, const SymbolReplacement& entry) noexcept {
    PatchReport& report = *context.report;
    Address address = object.bias + r.r_offset;
    if (address % alignof(void*) != 0 || !contains_loaded(object, address, sizeof(void*))) {
        record_failure(report, object, entry.symbol, "relocation outside the object", 0);
        return false;
    }
    void** slot = reinterpret_cast<void**>(address);
    if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) == entry.replacement) {
        ++report.slots_already_patched;
        return false;
    }
    if (context.audit_only) {
        if (report.slots_not_patched++ == 0) {
            const char* name =
                object.name != nullptr && object.name[0] != '\0' ? object.name : "(main program)";
            std::snprintf(report.first_not_patched, sizeof report.first_not_patched, "%s: %s", name,
                          entry.symbol);
        }
        return false;
    }
    Address page = address & ~(page_size() - 1);
    int prot = current_prot(object, cache, page);
    if (prot < 0) {
        record_failure(report, object, entry.symbol, "page protection unknown", 0);
        return false;
    }
    if ((prot & PROT_WRITE) != 0) {
        __atomic_store_n(slot, entry.replacement, __ATOMIC_RELEASE);
        ++report.slots_patched;
        return true;
    }
    void* page_pointer = reinterpret_cast<void*>(page);
    if (mprotect(page_pointer, page_size(), prot | PROT_READ | PROT_WRITE) != 0) {
        record_failure(report, object, entry.symbol, "mprotect to writable", errno);
        return false;
    }
    __atomic_store_n(slot, entry.replacement, __ATOMIC_RELEASE);
    ++report.slots_patched;
    if (mprotect(page_pointer, page_size(), prot) != 0) {
        // The slot is patched, but a GOT left writable is a hardening loss the
        // caller must hear about.
        record_failure(report, object, entry.symbol, "mprotect back to original", errno);
    }
    return true;
}

int patch_object(dl_phdr_info* info, std::size_t, void* data) noexcept {
    PatchContext& context = *static_cast<PatchContext*>(data);
    bool first = context.first_object;
    context.first_object = false;
    if (first) {
        g_mappings.loaded = false;  // a new pass: the last pass's snapshot is stale
    }
    ObjectView object{info->dlpi_name, info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum};
    // Only the main program has no name; a nameless later entry is the vDSO
    // (whose tables glibc leaves unrelocated) or something equally foreign.
    bool nameless = object.name == nullptr || object.name[0] == '\0';
    if ((nameless && !first) || is_vdso(object)) {
        return 0;
    }
    PatchReport& report = *context.report;
    if (context.skip != nullptr &&
        context.skip(nameless ? "" : object.name, reinterpret_cast<void*>(mapped_start(object)))) {
        ++report.objects_skipped;
        return 0;
    }
    ++report.objects_scanned;
    DynamicTables tables;
    if (!read_dynamic(object, tables)) {
        return 0;
    }
    MappingCache& cache = g_mappings;
    bool wrote = false;
    for (std::size_t i = 0; i < tables.jmprel_count; ++i) {
        const char* name = slot_symbol(tables, tables.jmprel[i]);
        const SymbolReplacement* entry =
            name != nullptr ? find_replacement(context, name) : nullptr;
        if (entry != nullptr) {
            wrote |= patch_slot(context, object, cache, tables.jmprel[i], *entry);
        }
    }
    // Some linkers let DT_RELA's range include the PLT relocations; those were
    // handled above and must not be counted twice.
    const Elf64_Rela* plt_begin = tables.jmprel;
    const Elf64_Rela* plt_end = tables.jmprel + tables.jmprel_count;
    for (std::size_t i = 0; i < tables.rela_count; ++i) {
        const Elf64_Rela* r = tables.rela + i;
        if (r >= plt_begin && r < plt_end) {
            continue;
        }
        const char* name = slot_symbol(tables, *r);
        const SymbolReplacement* entry =
            name != nullptr ? find_replacement(context, name) : nullptr;
        if (entry != nullptr) {
            wrote |= patch_slot(context, object, cache, *r, *entry);
        }
    }
    if (wrote) {
        ++report.objects_patched;
    }
    return 0;
}

struct LookupContext {
    Address address;  // 0: the main program
    const char* symbol;
    void* value = nullptr;
    bool first_object = true;
};

bool find_slot(const ObjectView& object, const DynamicTables& tables, const Elf64_Rela* relas,
               std::size_t count, const char* symbol, void*& value) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        const char* name = slot_symbol(tables, relas[i]);
        if (name == nullptr || std::strcmp(name, symbol) != 0) {
            continue;
        }
        Address address = object.bias + relas[i].r_offset;
        if (!contains_loaded(object, address, sizeof(void*))) {
            continue;
        }
        value = __atomic_load_n(reinterpret_cast<void**>(address), __ATOMIC_ACQUIRE);
        return true;
    }
    return false;
}

int lookup_object(dl_phdr_info* info, std::size_t, void* data) noexcept {
    LookupContext& context = *static_cast<LookupContext*>(data);
    bool first = context.first_object;
    context.first_object = false;
    ObjectView object{info->dlpi_name, info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum};
    bool wanted = context.address == 0 ? first : contains_loaded(object, context.address, 1);
    if (!wanted) {
        return 0;
    }
    DynamicTables tables;
    if (is_vdso(object) || !read_dynamic(object, tables)) {
        return 1;
    }
    if (!find_slot(object, tables, tables.jmprel, tables.jmprel_count, context.symbol,
                   context.value)) {
        find_slot(object, tables, tables.rela, tables.rela_count, context.symbol, context.value);
    }
    return 1;  // found the object: stop iterating
}

}  // namespace

PatchReport patch_loaded_objects(const SymbolReplacement* table, std::size_t count,
                                 SkipObject skip) noexcept {
    PatchReport report;
    if (table == nullptr || count == 0) {
        return report;
    }
    for (std::size_t i = 0; i < count; ++i) {
        if (table[i].symbol == nullptr || table[i].replacement == nullptr) {
            ObjectView none{"(table)", 0, nullptr, 0};
            record_failure(report, none,
                           table[i].symbol != nullptr ? table[i].symbol : "(null symbol)",
                           "invalid table entry, ignored", 0);
        }
    }
    PatchContext context{table, count, skip, &report};
    dl_iterate_phdr(patch_object, &context);
    return report;
}

PatchReport audit_loaded_objects(const SymbolReplacement* table, std::size_t count,
                                 SkipObject skip) noexcept {
    PatchReport report;
    if (table == nullptr || count == 0) {
        return report;
    }
    PatchContext context{table, count, skip, &report};
    context.audit_only = true;
    dl_iterate_phdr(patch_object, &context);
    return report;
}

void* current_slot_value(const void* address_in_object, const char* symbol) noexcept {
    if (symbol == nullptr) {
        return nullptr;
    }
    LookupContext context{reinterpret_cast<Address>(address_in_object), symbol};
    dl_iterate_phdr(lookup_object, &context);
    return context.value;
}

}  // namespace ephemeral_crypt::interpose
