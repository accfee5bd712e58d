// Opening the TLS private key as root, so the daemon can use a key file that
// only root may read (mode 0600, owner root).
//
// ringcached-privsep --tls-key FILE opens FILE before it drops privileges and
// hands the descriptor to the daemon with the listening sockets (fd_pass.h);
// the daemon reads the PEM from it (ringcached --tls-key-fd N). The helper
// never reads the key's bytes: it only checks that the path names a regular
// file of a plausible size, so a FIFO, a device or a directory is refused
// while the helper is still root instead of being handed over.
#pragma once

#include <cstddef>
#include <string>

namespace ringcache::privsep {

// The daemon refuses larger keys too (tls_key_bytes_max in
// server/io/tls/tls_key_fd.h); a PEM key is a few KiB.
inline constexpr std::size_t key_file_bytes_max = 64 * 1024;

enum class key_file_status {
  ok,
  open_failed,       // open(2) failed; see error_number
  not_regular_file,  // a directory, FIFO, device or socket
  empty,
  too_large,         // larger than key_file_bytes_max
  system_error,      // fstat failed; see error_number
};

struct key_file_result {
  key_file_status status;
  int fd;            // O_RDONLY | O_CLOEXEC when status == ok, else -1
  int error_number;  // errno behind a failed call, else 0
};

// Opens path read-only without following it into a FIFO's blocking open
// (O_NONBLOCK) and checks what it is. Symbolic links are followed: key paths
// such as /etc/letsencrypt/live/NAME/privkey.pem are links.
key_file_result open_key_file(const std::string& path);

const char* describe(key_file_status status);

}  // namespace ringcache::privsep
