// The TLS private key read from an inherited descriptor (--tls-key-fd N).
//
// ringcached-privsep opens the --tls-key file as root and hands the open
// descriptor over with the listening sockets (privsep/main.cc), so the key
// file can stay mode 0600 owned by root: the unprivileged daemon never opens
// the path, it only reads the descriptor it was given. Every read is a pread
// from offset 0, so a SIGHUP reload sees the file rewritten in place (same
// inode) but not a new file renamed over the path (docs/privsep.md).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>

namespace ringcache::server {

// A PEM key file is a few KiB (RSA-8192 is ~6.5 KiB); anything larger is not
// a key and is refused before it is read.
inline constexpr std::size_t tls_key_bytes_max = 64 * 1024;

// Reads the PEM private key from fd and installs it in ctx. On failure returns
// false and `error` says what is wrong with the descriptor (never the key's
// bytes). The buffer that held the PEM is cleansed before it is freed.
bool use_private_key_fd(SSL_CTX* ctx, int fd, std::string& error);

}  // namespace ringcache::server
