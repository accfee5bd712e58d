// PeerResolver: the name of one --peer resolved on a thread of its own.
//
// getaddrinfo cannot be made non-blocking, and a DNS server that answers
// slowly or never holds it for the system resolver's whole timeout
// (resolv.conf's timeout x attempts x servers: 10 s and more by default).
// Run on the replication thread, one such peer stalled every link, the
// heartbeats and the stop. Here only that peer's link waits
// (LinkState::resolving): the replication thread asks, goes on serving the
// others, and this thread wakes it when the answer is in. One resolution at
// a time per peer, so a peer holds at most one thread, started with the
// Replicator (before the memory limit is measured), and no queue of
// requests can grow.
//
// Peers given as numeric addresses need no resolver and get none.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/non_copyable.h"
#include "server/replication/peer_address.h"

namespace ringcache::replication {

// Whether `host` is an IPv4 or IPv6 address (getaddrinfo reads it without
// asking anyone).
bool is_numeric_host(const std::string& host);

class PeerResolver : NonCopyable {
 public:
  enum class Answer : uint8_t { pending, resolved, failed };

  // on_answer: run on the resolver's thread once an answer is ready (the
  // Replicator wakes its thread); never once the destructor has begun.
  PeerResolver(PeerAddress peer, std::function<void()> on_answer);
  // A resolution still waiting for the DNS is left to end by itself on its
  // thread, which is then detached: the stop does not wait for the DNS.
  // Its answer is dropped.
  ~PeerResolver();

  // Starts the thread. False with `error`.
  bool start(std::string& error);
  // Starts a resolution, unless one asked earlier has not been taken yet
  // (still waiting for the DNS, or answered): its answer serves this ask.
  void ask();
  // The answer to what was asked: pending while the DNS is asked; then,
  // once, resolved (into `out`) or failed (`error` says why).
  Answer take(std::vector<ResolvedAddress>& out, std::string& error);

 private:
  struct State;
  static void run(const std::shared_ptr<State>& state);

  // Shared with the thread, which outlives this object when detached.
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace ringcache::replication
