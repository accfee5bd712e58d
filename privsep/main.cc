// ringcached-privsep: bind the privileged port(s) as root, then become the
// unprivileged daemon.
//
//   root helper (PID P)
//     socket, bind, listen           binary (and text) listening sockets
//     open --tls-key FILE            (with --tls-key) the key, readable by root only
//     socketpair(AF_UNIX, SEQPACKET)
//     fork ─────────────────────────► child (root, short-lived)
//   P closes its listening fds          sends the fds (SCM_RIGHTS), exits
//   P drops to USER, proves the drop
//   P receives the fds, reaps the child
//   P execs ringcached --listen-fd N [--text-listen-fd M] [--tls-key-fd K] ...
//
// So the daemon keeps P (sudo or systemd see the process they started), and
// when it starts serving no process of the service is root: the only root
// process left after bind was the child, reaped before exec. The unprivileged
// side holds the sockets only because they arrived over the Unix socket, the
// shape docs/privsep.md describes. The key file travels the same way.
#include "privsep/drop_privileges.h"
#include "privsep/fd_pass.h"
#include "privsep/key_file.h"
#include "common/tcp_listen.h"
#include "privsep/options.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace ringcache::privsep {
namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr int exit_daemon_not_executable = 126;  // shell convention
constexpr int exit_daemon_not_found = 127;       // shell convention

// The root child sends at once; waiting longer means it is stuck or gone.
constexpr int fd_receive_timeout_ms = 5000;

constexpr const char* program_name = "ringcached-privsep";

constexpr unsigned first_inherited_fd = 3;  // after stdin, stdout, stderr

// What the root child sends: the listening sockets, then the key file.
struct listening_sockets {
  std::vector<int> fds;  // binary first, then text, then the --tls-key file
};

[[gnu::format(printf, 1, 2)]] void log_error(const char* format, ...) {
  std::fprintf(stderr, "%s: error: ", program_name);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

const char* listen_hint(BindStatus status) {
  switch (status) {
    case BindStatus::address_in_use: return " (another process already listens there)";
    case BindStatus::permission_denied: return " (a port below 1024 needs root)";
    case BindStatus::address_unavailable: return " (no local interface has this address)";
    case BindStatus::invalid_address: return " (expected a numeric IPv4 or IPv6 address)";
    case BindStatus::ok:
    case BindStatus::system_error: return "";
  }
  assert(false && "unhandled BindStatus");
  return "";
}

// A failure's description, followed by the system's words for errno when a
// system call failed.
std::string failure_text(const char* description, int error_number) {
  std::string text = description;
  if (error_number != 0) text += std::string(": ") + std::strerror(error_number);
  return text;
}

bool open_one(const std::string& address, std::uint16_t port, const char* role,
              listening_sockets& sockets) {
  const BindResult result = bind_listening_socket(address, port);
  if (result.status != BindStatus::ok) {
    log_error("cannot listen on %s for the %s port: %s%s", format_endpoint(address, port).c_str(),
              role, bind_failure_text(result).c_str(), listen_hint(result.status));
    return false;
  }
  std::fprintf(stderr, "%s: %s port listening on %s\n", program_name, role,
               format_endpoint(address, result.bound_port).c_str());
  sockets.fds.push_back(result.fd);
  return true;
}

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// Returns the child's exit status, or -1 if it did not exit normally.
int reap_child(pid_t child) {
  int status = 0;
  pid_t waited;
  do {
    waited = waitpid(child, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

[[noreturn]] void run_sender(int socket_fd, const listening_sockets& sockets, pid_t parent) {
  // Never outlive the helper as a root process.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != parent) _exit(exit_failure);
  const send_result sent = send_fds(socket_fd, sockets.fds);
  close_all(sockets.fds);
  close(socket_fd);
  if (sent.status != fd_pass_status::ok) {
    log_error("root child could not send the listening sockets: %s",
              failure_text(describe(sent.status), sent.error_number).c_str());
    _exit(exit_failure);
  }
  _exit(0);
}

bool is_regular_file(int fd) {
  struct stat info{};
  return fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
}

bool is_listening_stream_socket(int fd) {
  int type = 0;
  int accepting = 0;
  socklen_t length = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) return false;
  length = sizeof accepting;
  return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting == 1;
}

std::vector<std::string> daemon_command(const helper_options& options, const receive_result& received) {
  std::vector<std::string> argv;
  argv.push_back(options.daemon_argv.front());
  argv.emplace_back("--listen-fd");
  argv.push_back(std::to_string(received.fds[0]));
  if (options.text_port) {
    argv.emplace_back("--text-listen-fd");
    argv.push_back(std::to_string(received.fds[1]));
  } else {
    // Without it the daemon would open its default text port by itself.
    // Daemon options come later, so an explicit --text-port there still wins.
    argv.emplace_back("--text-port");
    argv.emplace_back("0");
  }
  if (!options.tls_key_file.empty()) {
    // The key file is the last fd of the message, after the sockets.
    assert(received.fd_count == (options.text_port ? 3u : 2u));
    argv.emplace_back("--tls-key-fd");
    argv.push_back(std::to_string(received.fds[received.fd_count - 1]));
  }
  argv.insert(argv.end(), options.daemon_argv.begin() + 1, options.daemon_argv.end());
  return argv;
}

[[noreturn]] void exec_daemon(const std::vector<std::string>& command, const target_user& user) {
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  const int error_number = errno;
  log_error("cannot execute '%s' as user '%s': %s%s", argv[0], user.name.c_str(),
            std::strerror(error_number),
            error_number == EACCES ? " (the daemon and every directory above it must be readable"
                                     " and executable by that user)"
                                   : "");
  _exit(error_number == ENOENT ? exit_daemon_not_found : exit_daemon_not_executable);
}

[[noreturn]] void run_daemon(int socket_fd, listening_sockets& sockets, pid_t child,
                             const helper_options& options, const target_user& user) {
  // From here on the sockets may only come back through the Unix socket.
  close_all(sockets.fds);
  sockets.fds.clear();

  const drop_result dropped = drop_privileges(user);
  if (dropped.status == drop_status::old_uid_regained || dropped.status == drop_status::old_gid_regained) {
    log_error("privilege drop is reversible: %s; aborting", describe(dropped.status));
    std::abort();
  }
  if (dropped.status != drop_status::ok) {
    log_error("cannot drop privileges to user '%s': %s", user.name.c_str(),
              failure_text(describe(dropped.status), dropped.error_number).c_str());
    reap_child(child);
    _exit(exit_failure);
  }

  const std::size_t socket_count = options.text_port ? 2 : 1;
  const std::size_t expected = socket_count + (options.tls_key_file.empty() ? 0 : 1);
  const receive_result received = receive_fds(socket_fd, expected);
  const int child_status = reap_child(child);
  close(socket_fd);
  if (received.status != fd_pass_status::ok) {
    log_error("did not receive the listening sockets: %s",
              failure_text(describe(received.status), received.error_number).c_str());
    _exit(exit_failure);
  }
  if (child_status != 0) {
    log_error("root child ended with status %d after sending the sockets", child_status);
    _exit(exit_failure);
  }
  for (std::size_t i = 0; i < received.fd_count; ++i) {
    if (i < socket_count && !is_listening_stream_socket(received.fds[i])) {
      log_error("received fd %d is not a listening TCP socket", received.fds[i]);
      _exit(exit_failure);
    }
    if (i >= socket_count && !is_regular_file(received.fds[i])) {
      log_error("received fd %d is not the --tls-key file", received.fds[i]);
      _exit(exit_failure);
    }
    // MSG_CMSG_CLOEXEC kept them from leaking until now; the daemon needs them.
    if (fcntl(received.fds[i], F_SETFD, 0) != 0) {
      log_error("cannot clear FD_CLOEXEC on fd %d: %s", received.fds[i], std::strerror(errno));
      _exit(exit_failure);
    }
  }

  std::fprintf(stderr,
               "%s: running %s as %s (uid %u gid %u): no supplementary groups, no capabilities, "
               "NoNewPrivs\n",
               program_name, options.daemon_argv.front().c_str(), user.name.c_str(),
               static_cast<unsigned>(user.uid), static_cast<unsigned>(user.gid));
  exec_daemon(daemon_command(options, received), user);
}

int run(const helper_options& options) {
  // Whatever the caller left open (a root-only file, a socket) would pass
  // into the unprivileged daemon through exec.
  if (close_range(first_inherited_fd, ~0U, 0) != 0) {
    log_error("close_range: %s", std::strerror(errno));
    return exit_failure;
  }
  if (geteuid() != 0) {
    log_error("must be started as root to bind port %u (effective uid is %u); try: sudo %s ...",
              static_cast<unsigned>(options.binary_port), static_cast<unsigned>(geteuid()), program_name);
    return exit_failure;
  }
  const user_lookup_result looked_up = lookup_user(options.user);
  switch (looked_up.status) {
    case user_lookup_status::ok: break;
    case user_lookup_status::unknown_user:
      log_error("unknown user '%s'", options.user.c_str());
      return exit_failure;
    case user_lookup_status::root_user:
      log_error("refusing to run the daemon as '%s': its uid or primary gid is 0", options.user.c_str());
      return exit_failure;
    case user_lookup_status::system_error:
      log_error("cannot look up user '%s': %s", options.user.c_str(), std::strerror(looked_up.error_number));
      return exit_failure;
  }

  listening_sockets sockets;
  if (!open_one(options.listen_address, options.binary_port, "binary", sockets) ||
      (options.text_port && !open_one(options.listen_address, *options.text_port, "text", sockets))) {
    close_all(sockets.fds);
    return exit_failure;
  }
  if (!options.tls_key_file.empty()) {
    const key_file_result key = open_key_file(options.tls_key_file);
    if (key.status != key_file_status::ok) {
      log_error("--tls-key %s: %s", options.tls_key_file.c_str(),
                failure_text(describe(key.status), key.error_number).c_str());
      close_all(sockets.fds);
      return exit_failure;
    }
    std::fprintf(stderr, "%s: opened --tls-key %s as root for the daemon\n", program_name,
                 options.tls_key_file.c_str());
    sockets.fds.push_back(key.fd);
  }

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    log_error("socketpair: %s", std::strerror(errno));
    close_all(sockets.fds);
    return exit_failure;
  }
  const timeval timeout{fd_receive_timeout_ms / 1000, (fd_receive_timeout_ms % 1000) * 1000};
  if (setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
    log_error("setsockopt(SO_RCVTIMEO): %s", std::strerror(errno));
    close_all(sockets.fds);
    return exit_failure;
  }

  const pid_t parent = getpid();
  std::fflush(stderr);
  const pid_t child = fork();
  if (child < 0) {
    log_error("fork: %s", std::strerror(errno));
    close_all(sockets.fds);
    return exit_failure;
  }
  if (child == 0) {
    close(pair[0]);
    run_sender(pair[1], sockets, parent);
  }
  close(pair[1]);
  run_daemon(pair[0], sockets, child, options, looked_up.user);
}

}  // namespace
}  // namespace ringcache::privsep

int main(int argc, char** argv) {
  using namespace ringcache::privsep;
  assert(argc >= 1);
  const parse_result parsed =
      parse_options(std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc - 1)));
  if (parsed.status == parse_status::help) {
    std::fputs(usage_text(), stdout);
    return 0;
  }
  if (parsed.status != parse_status::ok) {
    std::fprintf(stderr, "%s: error: %s\nrun '%s --help' for usage\n", program_name,
                 describe(parsed).c_str(), program_name);
    return exit_usage;
  }
  return run(parsed.options);
}
