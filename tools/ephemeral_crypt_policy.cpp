// ephemeral_crypt_policy: the control plane's side of the signed policy file.
// It creates the Ed25519 key pair, signs a policy file after checking that it
// parses, verifies one the way the server will, and prints the digest that
// the server reports, so an operator can match a running instance to a file.
// It shows the lifecycle keys (serial, not_after, max_key_age) as the server
// reads them.
// All policy logic lives in core/policy; this file only handles arguments,
// files and exit codes (0 success, 1 failure, 2 bad usage).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_io.hpp"
#include "core/policy.hpp"
#include "core/policy_lifecycle.hpp"

namespace {

using namespace ephemeral_crypt;

constexpr char kProgram[] = "ephemeral_crypt_policy";

constexpr char kUsage[] =
    "usage: ephemeral_crypt_policy <command> [options]\n"
    "\n"
    "commands:\n"
    "  keygen --public PUBFILE --secret SECFILE\n"
    "      create an Ed25519 key pair (hex); SECFILE is written with mode 0600;\n"
    "      neither file may exist yet\n"
    "  sign --secret SECFILE POLICYFILE [-o OUT]\n"
    "      check that POLICYFILE parses, sign its policy and write it with a final\n"
    "      'signature = ...' line (replacing any old one); in place unless -o is\n"
    "      given ('-o -' writes to standard output)\n"
    "  verify --public PUBFILE POLICYFILE\n"
    "      print the status, version, serial, not_after, max_key_age and digest;\n"
    "      exit 0 only if the file is well-formed and signed by PUBFILE's key\n"
    "  show POLICYFILE\n"
    "      print what the file declares (version, categories, serial, not_after,\n"
    "      max_key_age, digest) without checking the signature\n"
    "  digest POLICYFILE\n"
    "      print the SHA-256 of the canonical rendering of the file's policy\n"
    "      (the digest the server reports; comments and the signature do not count)\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 bad arguments\n";

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int usage_error(const std::string& message) {
    std::fprintf(stderr, "%s: %s\n\n%s", kProgram, message.c_str(), kUsage);
    return kExitUsage;
}

int failure(const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
    return kExitFailure;
}

// Options that take a value, per command; everything else not starting with
// '-' is positional.
struct Arguments {
    std::map<std::string, std::string> options;
    std::vector<std::string> positional;
};

bool parse_arguments(int argc, char** argv, const std::vector<std::string>& allowed, Arguments& out,
                     std::string& error) {
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.size() > 1 && arg[0] == '-') {
            bool known = false;
            for (const std::string& name : allowed) {
                known = known || name == arg;
            }
            if (!known) {
                error = "unknown option '" + arg + "' for " + argv[1];
                return false;
            }
            if (i + 1 >= argc) {
                error = "option " + arg + " needs a value";
                return false;
            }
            if (out.options.count(arg) != 0) {
                error = "option " + arg + " given twice";
                return false;
            }
            out.options[arg] = argv[++i];
        } else {
            out.positional.push_back(arg);
        }
    }
    return true;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
    const ReadOutcome read = read_small_file(path, kPolicyFileMaxBytes, false, &out);
    if (read.failed_at == ReadStep::TooLarge) {
        error = path + ": larger than " + std::to_string(kPolicyFileMaxBytes) + " bytes";
    } else if (!read.ok()) {
        error = path + ": " + errno_text(read.error);
    }
    return read.ok();
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// O_EXCL, so an existing key is never overwritten, even by a race.
bool create_exclusive(const std::string& path, std::string_view content, mode_t mode,
                      std::string& error) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        error = path + ": " + errno_text(errno);
        return false;
    }
    // The umask can only narrow the mode; fchmod makes 0600 exact for the
    // secret even under an unusual umask such as 0.
    const bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, content) && ::fsync(fd) == 0;
    const int saved = errno;
    if (::close(fd) != 0 || !ok) {
        error = path + ": " + errno_text(ok ? errno : saved);
        ::unlink(path.c_str());
        return false;
    }
    return true;
}

// Temp file in the target's directory, then rename: a reader (or the server
// at start) sees the old file or the new one, never a torn one.
bool replace_file(const std::string& path, std::string_view content, std::string& error) {
    mode_t mode;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        mode = st.st_mode & 07777;
    } else {
        const mode_t mask = ::umask(0);
        ::umask(mask);
        mode = 0666 & ~mask;
    }
    const std::string temp = path + ".tmp." + std::to_string(::getpid());
    // The umask can only narrow the mode given to open; fchmod makes it exact.
    const int rc = replace_file_durably(
        libc_file_calls(), AT_FDCWD, temp.c_str(), path.c_str(), mode,
        [&](int fd) { return ::fchmod(fd, mode) == 0 && write_all(fd, content); });
    if (rc != 0) {
        error = path + ": " + errno_text(errno);
        return false;
    }
    return true;
}

bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

int command_keygen(int argc, char** argv) {
    Arguments args;
    std::string error;
    if (!parse_arguments(argc, argv, {"--public", "--secret"}, args, error)) {
        return usage_error(error);
    }
    if (!args.positional.empty()) {
        return usage_error("keygen takes no positional arguments");
    }
    if (args.options.count("--public") == 0 || args.options.count("--secret") == 0) {
        return usage_error("keygen needs --public PUBFILE and --secret SECFILE");
    }
    const std::string& public_path = args.options["--public"];
    const std::string& secret_path = args.options["--secret"];
    if (public_path == secret_path) {
        return usage_error("--public and --secret must be different files");
    }
    // Checked up front so a refusal leaves nothing behind.
    for (const std::string* path : {&public_path, &secret_path}) {
        if (exists(*path)) {
            return failure(*path + ": already exists; refusing to overwrite a key");
        }
    }
    std::string public_key;
    std::string secret_key;
    generate_keypair(&public_key, &secret_key);
    if (public_key.empty() || secret_key.empty()) {
        return failure("could not generate a key pair (libsodium)");
    }
    secret_key.push_back('\n');
    public_key.push_back('\n');
    const bool secret_ok = create_exclusive(secret_path, secret_key, 0600, error);
    sodium_memzero(secret_key.data(), secret_key.size());
    if (!secret_ok) {
        return failure(error);
    }
    if (!create_exclusive(public_path, public_key, 0644, error)) {
        ::unlink(secret_path.c_str());
        return failure(error);
    }
    std::printf("public key: %s", public_key.c_str());
    return kExitOk;
}

// The arguments of a command that takes exactly one POLICYFILE (sign,
// verify, show, digest): the options `allowed`, of which `required`, unless
// empty, must be given (`required_value` names its value in the usage
// error). Returns kExitOk (0), or the usage error's exit code, the error
// printed.
int parse_policy_file_arguments(int argc, char** argv, const std::string& command,
                                const std::vector<std::string>& allowed,
                                const std::string& required, const std::string& required_value,
                                Arguments& args) {
    std::string error;
    if (!parse_arguments(argc, argv, allowed, args, error)) {
        return usage_error(error);
    }
    if (!required.empty() && args.options.count(required) == 0) {
        return usage_error(command + " needs " + required + " " + required_value);
    }
    if (args.positional.size() != 1) {
        return usage_error(command + " needs exactly one POLICYFILE");
    }
    return kExitOk;
}

int command_sign(int argc, char** argv) {
    Arguments args;
    if (const int failed = parse_policy_file_arguments(argc, argv, "sign", {"--secret", "-o"},
                                                       "--secret", "SECFILE", args)) {
        return failed;
    }
    std::string error;
    const std::string& policy_path = args.positional[0];
    const std::string output_path =
        args.options.count("-o") != 0 ? args.options["-o"] : policy_path;

    std::string secret_text;
    if (!read_file(args.options["--secret"], secret_text, error)) {
        return failure(error);
    }
    std::uint8_t secret_key[kPolicySecretKeyBytes];
    const bool key_ok = parse_secret_key(secret_text, secret_key, &error);
    sodium_memzero(secret_text.data(), secret_text.size());
    if (!key_ok) {
        return failure(args.options["--secret"] + ": " + error);
    }

    std::string policy_text;
    if (!read_file(policy_path, policy_text, error)) {
        sodium_memzero(secret_key, sizeof secret_key);
        return failure(error);
    }
    const std::string signed_text = sign_policy_text(policy_text, secret_key, &error);
    sodium_memzero(secret_key, sizeof secret_key);
    if (signed_text.empty()) {
        return failure(policy_path + ": " + error);
    }
    if (output_path == "-") {
        if (!write_all(STDOUT_FILENO, signed_text)) {
            return failure("standard output: " + errno_text(errno));
        }
        return kExitOk;
    }
    if (!replace_file(output_path, signed_text, error)) {
        return failure(error);
    }
    const PolicyFileResult parsed = parse_policy_text(signed_text, "");
    std::printf("signed %s: version %s, serial %lld, digest %s\n", output_path.c_str(),
                parsed.policy.version.c_str(), static_cast<long long>(parsed.policy.serial),
                policy_digest_hex(parsed.policy).c_str());
    return kExitOk;
}

// The lifecycle keys as the server reads them: the serial (0 when absent),
// not_after in its canonical spelling, marked when it has passed, and
// max_key_age as a duration and in seconds.
void print_lifecycle(const Policy& policy) {
    std::printf("serial: %lld\n", static_cast<long long>(policy.serial));
    if (policy.not_after) {
        const bool passed = static_cast<std::int64_t>(std::time(nullptr)) >= *policy.not_after;
        std::printf("not_after: %s%s\n", format_utc_time(*policy.not_after).c_str(),
                    passed ? " (passed: the server reports the policy as stale)" : "");
    } else {
        std::printf("not_after: none\n");
    }
    if (policy.max_key_age) {
        std::printf("max_key_age: %s (%lld seconds)\n",
                    format_duration(*policy.max_key_age).c_str(),
                    static_cast<long long>(*policy.max_key_age));
    } else {
        std::printf("max_key_age: none\n");
    }
}

// Loads the one unsigned POLICYFILE that `command` (show, digest) takes,
// without options, into `result`. Returns kExitOk (0), or the command's exit
// code with the error printed when the arguments are wrong or the file is
// not a valid unsigned policy.
int load_unsigned_policy_argument(int argc, char** argv, const std::string& command,
                                  PolicyFileResult& result) {
    Arguments args;
    if (const int failed = parse_policy_file_arguments(argc, argv, command, {}, "", "", args)) {
        return failed;
    }
    const std::string& policy_path = args.positional[0];
    result = load_policy_file(policy_path, "");
    if (result.status != PolicyFileStatus::Unsigned) {
        return failure(policy_path + ": " + std::string(policy_file_status_name(result.status)) +
                       ": " + result.error);
    }
    return kExitOk;
}

int command_show(int argc, char** argv) {
    PolicyFileResult result;
    if (const int failed = load_unsigned_policy_argument(argc, argv, "show", result)) {
        return failed;
    }
    std::printf("version: %s\n", result.policy.version.c_str());
    for (const Category category : kAllCategories) {
        const CategoryPolicy& setting = result.policy.of(category);
        std::printf("%s: %s, %s, %s\n", std::string(category_name(category)).c_str(),
                    setting.enabled ? "encrypted" : "not encrypted",
                    std::string(degradation_name(setting.degradation)).c_str(),
                    std::string(file_cipher_name(setting.cipher)).c_str());
    }
    print_lifecycle(result.policy);
    std::printf("signature: %s\n", result.signature_line != 0
                                       ? ("line " + std::to_string(result.signature_line)).c_str()
                                       : "none");
    std::printf("digest: %s\n", policy_digest_hex(result.policy).c_str());
    return kExitOk;
}

int command_verify(int argc, char** argv) {
    Arguments args;
    if (const int failed = parse_policy_file_arguments(argc, argv, "verify", {"--public"},
                                                       "--public", "PUBFILE", args)) {
        return failed;
    }
    std::string error;
    const std::string& policy_path = args.positional[0];
    std::string public_text;
    if (!read_file(args.options["--public"], public_text, error)) {
        return failure(error);
    }
    std::uint8_t public_key[kPolicyPublicKeyBytes];
    if (!parse_public_key(public_text, public_key, &error)) {
        return failure(args.options["--public"] + ": " + error);
    }

    const PolicyFileResult result = load_policy_file(policy_path, public_text);
    std::printf("status: %s\n", std::string(policy_file_status_name(result.status)).c_str());
    const bool parsed = result.status == PolicyFileStatus::Ok ||
                        result.status == PolicyFileStatus::Unsigned ||
                        result.status == PolicyFileStatus::BadSignature;
    if (parsed) {
        // Printed for rejected files too: it is what the file claims, which
        // is what an operator needs to find the right one.
        std::printf("version: %s\n", result.policy.version.c_str());
        print_lifecycle(result.policy);
        std::printf("digest: %s\n", policy_digest_hex(result.policy).c_str());
    }
    if (result.status != PolicyFileStatus::Ok || !result.signed_ok) {
        return failure(policy_path + ": " + result.error);
    }
    return kExitOk;
}

int command_digest(int argc, char** argv) {
    PolicyFileResult result;
    if (const int failed = load_unsigned_policy_argument(argc, argv, "digest", result)) {
        return failed;
    }
    const std::string digest = policy_digest_hex(result.policy);
    if (digest.empty()) {
        return failure("could not compute the digest");
    }
    std::printf("%s\n", digest.c_str());
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        return usage_error("no command given");
    }
    const std::string_view command = argv[1];
    if (command == "-h" || command == "--help" || command == "help") {
        std::fputs(kUsage, stdout);
        return kExitOk;
    }
    if (sodium_init() < 0) {
        return failure("libsodium could not be initialised");
    }
    if (command == "keygen") {
        return command_keygen(argc, argv);
    }
    if (command == "sign") {
        return command_sign(argc, argv);
    }
    if (command == "verify") {
        return command_verify(argc, argv);
    }
    if (command == "show") {
        return command_show(argc, argv);
    }
    if (command == "digest") {
        return command_digest(argc, argv);
    }
    return usage_error("unknown command '" + std::string(command) + "'");
}
