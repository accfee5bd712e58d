#include "server/replication/peer_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cassert>
#include <condition_variable>
#include <mutex>
#include <new>
#include <system_error>

namespace ringcache::replication {

bool is_numeric_host(const std::string& host) {
  unsigned char scratch[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), scratch) == 1 || ::inet_pton(AF_INET6, host.c_str(), scratch) == 1;
}

struct PeerResolver::State {
  enum class Phase : uint8_t { idle, asked, answered };

  State(PeerAddress peer_in, std::function<void()> on_answer_in)
      : peer(std::move(peer_in)), on_answer(std::move(on_answer_in)) {}

  const PeerAddress peer;
  const std::function<void()> on_answer;
  std::mutex mutex;
  std::condition_variable asked;
  Phase phase = Phase::idle;
  bool closing = false;
  bool resolved = false;
  std::vector<ResolvedAddress> addresses;
  std::string error;
};

PeerResolver::PeerResolver(PeerAddress peer, std::function<void()> on_answer)
    : state_(std::make_shared<State>(std::move(peer), std::move(on_answer))) {}

PeerResolver::~PeerResolver() {
  bool resolving = false;
  {
    const std::lock_guard lock(state_->mutex);
    state_->closing = true;
    resolving = state_->phase == State::Phase::asked;
  }
  state_->asked.notify_one();
  if (!thread_.joinable()) return;
  // An idle thread returns at once; one inside getaddrinfo would hold the
  // stop for the rest of the DNS timeout. After `closing` it touches only
  // the state it shares.
  if (resolving) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

bool PeerResolver::start(std::string& error) {
  assert(!thread_.joinable());
  try {
    thread_ = std::thread(run, state_);
  } catch (const std::system_error& e) {
    error = "cannot start the resolver thread of peer " + state_->peer.text() + ": " + e.what();
    return false;
  }
  return true;
}

void PeerResolver::ask() {
  {
    const std::lock_guard lock(state_->mutex);
    assert(!state_->closing);
    if (state_->phase != State::Phase::idle) return;
    state_->phase = State::Phase::asked;
  }
  state_->asked.notify_one();
}

PeerResolver::Answer PeerResolver::take(std::vector<ResolvedAddress>& out, std::string& error) {
  const std::lock_guard lock(state_->mutex);
  assert(state_->phase != State::Phase::idle);
  if (state_->phase != State::Phase::answered) return Answer::pending;
  state_->phase = State::Phase::idle;
  if (!state_->resolved) {
    error = std::move(state_->error);
    return Answer::failed;
  }
  out = std::move(state_->addresses);
  return Answer::resolved;
}

void PeerResolver::run(const std::shared_ptr<State>& state) {
  std::unique_lock lock(state->mutex);
  while (true) {
    state->asked.wait(lock, [&] { return state->closing || state->phase == State::Phase::asked; });
    if (state->closing) return;
    lock.unlock();
    std::vector<ResolvedAddress> addresses;
    std::string error;
    bool resolved = false;
    try {
      resolved = resolve_peer_address(state->peer, addresses, error);
    } catch (const std::bad_alloc&) {
      // Under the memory limit; nothing may escape a thread. Short enough
      // for the string's own storage.
      addresses.clear();
      error = "no memory";
    }
    lock.lock();
    if (state->closing) return;
    assert(state->phase == State::Phase::asked);
    state->resolved = resolved;
    state->addresses = std::move(addresses);
    state->error = std::move(error);
    state->phase = State::Phase::answered;
    // Under the lock: once the destructor has set `closing`, no call is
    // running or will start.
    state->on_answer();
  }
}

}  // namespace ringcache::replication
