#include "server/replication/incoming_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "server/replication/log_sink.h"
#include "server/replication/version_clock.h"

namespace ringcache::replication {
namespace {

// Every write a peer sends applies only over an older version of its key.
constexpr store::PutOptions newest_wins{store::PutMode::newer, 0};

DecoderLimits decoder_limits(const ReplicationConfig& config) {
  DecoderLimits limits;
  limits.item_bytes_max = config.item_bytes_max;
  return limits;
}

}  // namespace

IncomingStream::IncomingStream(const IncomingContext& context, store::StoreThread& store,
                               std::string peer_node_id, std::string peer_address)
    : context_(context),
      store_(store),
      peer_node_id_(std::move(peer_node_id)),
      peer_address_(std::move(peer_address)),
      decoder_(decoder_limits(context.config)) {
  assert(is_valid_node_id(peer_node_id_));
}

std::unique_ptr<IncomingStream> IncomingStream::unauthenticated(const IncomingContext& context,
                                                                store::StoreThread& store,
                                                                std::string peer_node_id,
                                                                std::string peer_address) {
  assert(context.config.secret == nullptr && "a node with a secret admits authenticated streams only");
  std::unique_ptr<IncomingStream> stream(
      new IncomingStream(context, store, std::move(peer_node_id), std::move(peer_address)));
  // open_incoming_stream() took it only from a verified certificate with TLS.
  stream->start_streaming(context.config.tls != nullptr ? "TLS client certificate verified" : "unauthenticated");
  return stream;
}

std::unique_ptr<IncomingStream> IncomingStream::challenge(const IncomingContext& context,
                                                          store::StoreThread& store, const Hello& hello,
                                                          std::string peer_address, std::string& reply) {
  assert(context.config.secret != nullptr);
  assert(hello.version == HelloVersion::v2);
  std::unique_ptr<IncomingStream> stream(
      new IncomingStream(context, store, std::string(hello.node_id), std::move(peer_address)));
  AuthTranscript transcript;
  transcript.initiator_id = hello.node_id;
  transcript.acceptor_id = context.config.node_id;
  transcript.initiator_nonce = hello.nonce;
  if (!make_auth_nonce(transcript.acceptor_nonce)) throw std::runtime_error("no random nonce from libcrypto");
  const PeerSecret& secret = *context.config.secret;
  append_challenge(reply, context.config.node_id, transcript.acceptor_nonce,
                   auth_mac(secret, AuthRole::acceptor, transcript));
  stream->expected_proof_ = auth_mac(secret, AuthRole::initiator, transcript);
  stream->phase_ = Phase::awaiting_proof;
  return stream;
}

IncomingStream::~IncomingStream() {
  if (!counted_) return;
  context_.counters.streams.set(context_.counters.streams.get() - 1);
  if (wait_ != Wait::none) {
    emit(context_.config.info,
         "replication: stream from node %s closed while a value waited %llu ms for the upload budget; "
         "the peer sends it again when it reconnects (resync)",
         peer_node_id_.c_str(), static_cast<unsigned long long>(monotonic_ms() - wait_started_ms_));
  }
  emit(context_.config.info, "replication: stream from node %s closed", peer_node_id_.c_str());
}

bool IncomingStream::watch_connection(int fd) {
  assert(fd >= 0);
  const ReplicationTuning& tuning = context_.config.tuning;
  assert(tuning.incoming_keepalive_idle_s > 0);
  assert(tuning.incoming_keepalive_interval_s > 0);
  const int on = 1;
  const int idle = static_cast<int>(tuning.incoming_keepalive_idle_s);
  const int interval = static_cast<int>(tuning.incoming_keepalive_interval_s);
  const int probes = static_cast<int>(tuning.incoming_keepalive_probes);
  const struct {
    int level, name, value;
    const char* what;
  } options[] = {{SOL_SOCKET, SO_KEEPALIVE, on, "SO_KEEPALIVE"},
                 {IPPROTO_TCP, TCP_KEEPIDLE, idle, "TCP_KEEPIDLE"},
                 {IPPROTO_TCP, TCP_KEEPINTVL, interval, "TCP_KEEPINTVL"},
                 {IPPROTO_TCP, TCP_KEEPCNT, probes, "TCP_KEEPCNT"}};
  for (const auto& option : options) {
    if (::setsockopt(fd, option.level, option.name, &option.value, sizeof(option.value)) != 0) {
      // Not fatal: the stream works, it only will not notice a silent death.
      emit(context_.config.info, "replication: stream from node %s: %s: %s; a sender that vanishes silently "
           "will not be noticed", peer_node_id_.c_str(), option.what, std::strerror(errno));
      return false;
    }
  }
  return true;
}

void IncomingStream::start_streaming(const char* how) {
  assert(phase_ != Phase::closed);
  assert(!counted_);
  phase_ = Phase::streaming;
  counted_ = true;
  context_.counters.streams.add();
  emit(context_.config.info, "replication: stream from node %s (%s) opened, %s", peer_node_id_.c_str(),
       peer_address_.c_str(), how);
}

StreamStatus IncomingStream::refuse(std::string_view why) {
  phase_ = Phase::closed;
  reservation_ = store::Reservation();
  put_active_ = false;
  context_.trust_log.refusal(monotonic_ms(), "replication: stream from node " + peer_node_id_ + " (" +
                                                 peer_address_ + ") refused: " + std::string(why));
  return StreamStatus::close;
}

// The proof is 33 bytes; it may arrive in pieces, and the stream's first
// frames may follow it in the same read.
StreamStatus IncomingStream::check_proof(std::string_view& bytes, std::string& reply) {
  assert(phase_ == Phase::awaiting_proof);
  assert(proof_.size() < response_bytes);
  const size_t take = std::min(bytes.size(), response_bytes - proof_.size());
  proof_.append(bytes.substr(0, take));
  bytes.remove_prefix(take);
  AuthMac received{};
  size_t used = 0;
  const HandshakeStatus status = decode_response(proof_, received, used);
  if (status == HandshakeStatus::need_more) return StreamStatus::ok;
  assert(!(status == HandshakeStatus::ok && used != proof_.size()));
  const bool proven = status == HandshakeStatus::ok &&
                      auth_mac_matches(expected_proof_, std::string_view(reinterpret_cast<const char*>(received.data()),
                                                                         received.size()));
  std::string().swap(proof_);
  if (!proven) {
    context_.counters.auth_failures.add();
    reply.push_back(static_cast<char>(refusal_byte));
    return refuse(status == HandshakeStatus::ok ? "wrong authentication proof (not the same --peer-secret-file?)"
                                                : "no authentication proof where one was due");
  }
  reply.push_back(static_cast<char>(auth_ok_byte));
  start_streaming("authenticated");
  return StreamStatus::ok;
}

StreamStatus IncomingStream::feed(std::string_view bytes, std::string& reply, size_t& used) {
  const size_t given = bytes.size();
  used = given;
  if (phase_ == Phase::closed) return StreamStatus::close;
  if (phase_ == Phase::awaiting_proof) {
    if (check_proof(bytes, reply) == StreamStatus::close) return StreamStatus::close;
    if (phase_ == Phase::awaiting_proof) return StreamStatus::ok;
  }
  // Only an authenticated (or unauthenticated v1) stream reaches its frames.
  assert(phase_ == Phase::streaming);
  assert(counted_);
  assert(!(proof_.size() > 0));
  // One reading of the wall clock per received chunk: the skew bound is in
  // seconds, a chunk takes microseconds.
  wall_ms_ = context_.clock.wall_ms();
  const auto wait_here = [&] {
    assert(wait_ != Wait::none);
    used = given - bytes.size();
    return StreamStatus::wait;
  };
  if (wait_ != Wait::none && !retry_wait()) return wait_here();
  while (true) {
    // A value being written is handed only what its reservation has room
    // for, so that a block refused at the upload budget waits with the
    // bytes still unread.
    std::string_view input = bytes;
    if (put_active_ && !skip_put_ && reservation_.ok() && reservation_.remaining() > 0 && !bytes.empty()) {
      if (!claim_room()) return wait_here();
      if (reservation_.ok()) input = bytes.substr(0, reservation_.room());
    }
    size_t step = 0;
    const DecodeEvent event = decoder_.next(input, step);
    bytes.remove_prefix(step);
    if (event.kind == DecodeKind::need_more) {
      // It used all of `input`: a cut one was not empty, so this progresses.
      if (bytes.empty()) return StreamStatus::ok;
      continue;
    }
    if (event.kind == DecodeKind::bad_opcode) {
      char why[64];
      std::snprintf(why, sizeof(why), "byte %u where an opcode belongs", static_cast<unsigned>(event.byte));
      return refuse(why);
    }
    if (!version_acceptable(event)) {
      assert(phase_ == Phase::closed);
      reservation_ = store::Reservation();
      put_active_ = false;
      return StreamStatus::close;
    }
    apply(event);
    if (wait_ != Wait::none) return wait_here();
  }
}

bool IncomingStream::version_acceptable(const DecodeEvent& event) {
  assert(phase_ == Phase::streaming);
  assert(!(event.kind == DecodeKind::need_more || event.kind == DecodeKind::bad_opcode));
  switch (event.kind) {
    case DecodeKind::put:
    case DecodeKind::put_begin:
    case DecodeKind::del:
    case DecodeKind::flush:
      break;
    default:
      return true;
  }
  const uint64_t version = event.meta.version;
  if (version == 0) {
    refuse("a version 0, which no node issues");
    return false;
  }
  // A delayed flush's threshold is the instant at_s itself (tag 0), which
  // may lie far ahead; the clock never observes it (apply()), so only its
  // form is checked. A due one is bounded like any version.
  if (event.kind == DecodeKind::flush && version_tag(version) == 0 && event.number > store_.store().now_s() &&
      version == version_at_unix_ms(event.number * 1000)) {
    return true;
  }
  const uint64_t now_ms = wall_ms_;
  const uint64_t at_ms = version_unix_ms(version);
  if (at_ms <= now_ms + static_cast<uint64_t>(context_.config.max_clock_skew_ms)) return true;
  context_.counters.skew_refused.add();
  const uint64_t ahead_ms = at_ms - now_ms;
  phase_ = Phase::closed;
  if (context_.trust_log.skew_line_due(monotonic_ms(), peer_node_id_)) {
    emit(context_.trust_log.sink(),
         "replication: stream from node %s (%s) refused: its clock is %llu.%03llu s ahead of this node's "
         "(--max-clock-skew %lld s); synchronise the clocks (NTP). Its writes are not applied until then",
         peer_node_id_.c_str(), peer_address_.c_str(), static_cast<unsigned long long>(ahead_ms / 1000),
         static_cast<unsigned long long>(ahead_ms % 1000),
         static_cast<long long>(context_.config.max_clock_skew_ms / 1000));
  }
  return false;
}

void IncomingStream::count(store::PutStatus status) {
  switch (status) {
    case store::PutStatus::stored:
      context_.counters.applied.add();
      return;
    case store::PutStatus::older:
      context_.counters.ignored_older.add();
      return;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
      context_.counters.apply_failed.add();
      return;
    case store::PutStatus::not_stored:
    case store::PutStatus::exists:
    case store::PutStatus::not_found:
      break;
  }
  assert(false && "not a status of a newest-wins put");
  context_.counters.apply_failed.add();
}

// The store checks newest-wins only when it links a written item, so an
// older write would still take segment space. A resync repeats mostly what
// the receiver has: look first, and skip what is not newer. (Tombstones are
// invisible to get(); for them the store's own check decides.)
bool IncomingStream::holds_newer(std::string_view key, uint64_t version) {
  uint64_t held = 0;
  const bool present = store_.get(key, [&](const store::ItemView& item) { held = item.version(); });
  return present && held >= version;
}

void IncomingStream::apply(const DecodeEvent& event) {
  assert(phase_ == Phase::streaming);
  assert(!(put_active_ && event.kind != DecodeKind::put_data && event.kind != DecodeKind::put_end));
  switch (event.kind) {
    case DecodeKind::put:
      apply_put(event);
      return;
    case DecodeKind::put_begin:
      begin_streamed_put(event);
      return;
    case DecodeKind::put_data:
      assert(put_active_);
      // After a failed append the rest of the value is still read; the
      // outcome is counted at put_end.
      if (!skip_put_ && reservation_.ok()) (void)reservation_.append(event.data);
      return;
    case DecodeKind::put_end:
      end_streamed_put();
      return;
    case DecodeKind::del: {
      context_.clock.observe(event.meta.version);
      const uint32_t expires_at = store_.store().now_s() + context_.config.tuning.tombstone_lifetime_s;
      count(store_.del_versioned(event.key, event.meta.version, expires_at));
      return;
    }
    case DecodeKind::flush:
      apply_flush(event);
      return;
    case DecodeKind::resync_begin:
      context_.counters.resyncs_received.add();
      emit(context_.config.info, "replication: resync from node %s started", peer_node_id_.c_str());
      return;
    case DecodeKind::resync_end:
      emit(context_.config.info, "replication: resync from node %s done (%llu items)", peer_node_id_.c_str(),
           static_cast<unsigned long long>(event.number));
      return;
    case DecodeKind::heartbeat: {
      const uint64_t now = wall_clock_unix_us();
      context_.counters.lag_us.set(now > event.number ? now - event.number : 0);
      return;
    }
    case DecodeKind::mesh:
      check_mesh(event.number);
      return;
    case DecodeKind::too_big:
      note_too_big();
      return;
    case DecodeKind::need_more:
    case DecodeKind::bad_opcode:
      break;
  }
  assert(false && "handled by feed()");
}

void IncomingStream::apply_put(const DecodeEvent& event) {
  assert(event.kind == DecodeKind::put);
  assert(!put_active_);
  context_.clock.observe(event.meta.version);
  if (holds_newer(event.key, event.meta.version)) {
    count(store::PutStatus::older);
    return;
  }
  const store::ItemMeta meta{event.meta.flags, event.meta.expires_at, event.meta.version};
  count(store_.put(event.key, event.data, meta, newest_wins));
}

void IncomingStream::begin_streamed_put(const DecodeEvent& event) {
  assert(event.kind == DecodeKind::put_begin);
  assert(!put_active_);
  context_.clock.observe(event.meta.version);
  put_active_ = true;
  skip_put_ = holds_newer(event.key, event.meta.version);
  if (skip_put_) return;
  const store::ItemMeta meta{event.meta.flags, event.meta.expires_at, event.meta.version};
  reservation_ = store_.reserve(event.key, event.value_size, meta, newest_wins);
  if (reservation_.ok() || !reservation_.upload_full()) return;
  // Only a value that waits pays for a copy of its key.
  pending_key_.assign(event.key);
  pending_meta_ = meta;
  pending_value_size_ = event.value_size;
  start_waiting(Wait::reserve);
}

bool IncomingStream::claim_room() {
  assert(put_active_ && !skip_put_);
  assert(reservation_.ok() && reservation_.remaining() > 0);
  if (reservation_.room() > 0) return true;
  // Out of memory kills the reservation: the rest of the value is read and
  // dropped, counted at put_end like a failed append.
  if (reservation_.claim_piece() != store::Reservation::Claim::upload_full) return true;
  start_waiting(Wait::piece);
  return false;
}

void IncomingStream::start_waiting(Wait what) {
  assert(what != Wait::none);
  assert(put_active_ && !skip_put_);
  wait_ = what;
  if (!value_waited_) {
    value_waited_ = true;
    wait_started_ms_ = monotonic_ms();
    context_.counters.apply_waits.add();
  }
  if (wait_streak_) return;
  wait_streak_ = true;
  emit(context_.config.info,
       "replication: stream from node %s: a value waits for the upload budget (UPLOAD_BYTES_MAX, held by "
       "values still arriving); the stream is not read until it frees, for at most --upload-timeout",
       peer_node_id_.c_str());
}

bool IncomingStream::retry_wait() {
  assert(put_active_ && !skip_put_);
  switch (wait_) {
    case Wait::reserve:
      reservation_ = store_.reserve(pending_key_, pending_value_size_, pending_meta_, newest_wins);
      if (!reservation_.ok() && reservation_.upload_full()) return false;
      std::string().swap(pending_key_);
      break;
    case Wait::piece:
      assert(reservation_.ok() && reservation_.room() == 0);
      if (reservation_.claim_piece() == store::Reservation::Claim::upload_full) return false;
      break;
    case Wait::none:
      assert(false && "retry_wait() without a wait");
      return true;
  }
  wait_ = Wait::none;
  return true;
}

void IncomingStream::end_streamed_put() {
  assert(put_active_);
  store::PutStatus status = store::PutStatus::older;
  if (!skip_put_) status = reservation_.ok() ? reservation_.commit() : reservation_.status();
  reservation_ = store::Reservation();
  put_active_ = false;
  skip_put_ = false;
  assert(!reservation_.ok());
  assert(wait_ == Wait::none);
  if (!value_waited_) wait_streak_ = false;
  value_waited_ = false;
  count(status);
}

void IncomingStream::apply_flush(const DecodeEvent& event) {
  assert(event.kind == DecodeKind::flush);
  assert(!put_active_);
  const auto at_s = static_cast<uint32_t>(event.number);
  const bool due_now = at_s <= store_.store().now_s();
  // A threshold that is the instant of a future at_s (tag 0, see
  // client_writes.h) must not drag the clock there: this node's writes
  // until at_s have to stay below it. Any other one was issued by the
  // peer's clock, like a PUT's version.
  if (due_now || version_tag(event.meta.version) != 0) context_.clock.observe(event.meta.version);
  store_.flush_versions_before(event.meta.version, due_now ? 0 : at_s);
  context_.counters.flushes_received.add();
  emit(context_.config.info, "replication: node %s flushed versions below %llu (at %u)", peer_node_id_.c_str(),
       static_cast<unsigned long long>(event.meta.version), at_s);
}

void IncomingStream::check_mesh(uint64_t peers_listed) {
  if (peers_listed == context_.config.peers.size() || warned_mesh_) return;
  warned_mesh_ = true;
  emit(context_.config.info,
       "replication: node %s lists %llu peers, this node lists %zu: not a full mesh? "
       "(every node must list every other; writes reach only the nodes that list their origin)",
       peer_node_id_.c_str(), static_cast<unsigned long long>(peers_listed), context_.config.peers.size());
}

void IncomingStream::note_too_big() {
  context_.counters.too_big.add();
  if (warned_too_big_) return;
  warned_too_big_ = true;
  emit(context_.config.info,
       "replication: node %s sent an item over this node's --max-item (%llu bytes); skipped "
       "(give every node the same --max-item)",
       peer_node_id_.c_str(), static_cast<unsigned long long>(context_.config.item_bytes_max));
}

std::unique_ptr<IncomingStream> open_incoming_stream(Replicator& replicator, uint32_t worker,
                                                     store::StoreThread& store, std::string_view hello_field,
                                                     const PeerEndpoint& from, std::string& reply) {
  const IncomingContext context = replicator.incoming_context(worker);
  const auto refuse = [&](const std::string& why, SingleWriterCounter& counter) {
    counter.add();
    context.trust_log.refusal(monotonic_ms(), "replication: hello from " + from.text + " refused: " + why);
    return nullptr;
  };
  Hello hello;
  const HelloStatus hello_status = parse_hello(hello_field, hello);
  if (hello_status != HelloStatus::ok) return refuse(hello_status_text(hello_status), context.counters.hellos_refused);
  const std::string node = "node " + std::string(hello.node_id) + ": ";
  if (context.config.tls != nullptr && !from.tls_verified) {
    return refuse(node + (from.tls ? "its TLS connection presented no certificate signed by --tls-ca (a replication "
                                     "link must; is its --tls-cert from this mesh's CA?)"
                                   : "not a TLS connection, and replication here is TLS only"),
                  context.counters.tls_failures);
  }
  const bool has_secret = context.config.secret != nullptr;
  if (has_secret && hello.version == HelloVersion::v1) {
    return refuse(node + "unauthenticated RINGCACHE-REPL/1 hello; this node requires authentication "
                         "(give every node the same --peer-secret-file)",
                  context.counters.auth_failures);
  }
  if (!has_secret && hello.version == HelloVersion::v2) {
    return refuse(node + "it asks for authentication and this node has no --peer-secret-file",
                  context.counters.auth_failures);
  }
  if (!has_secret && !replicator.allowlist().allows(from.address)) {
    return refuse(node + "not an address the --peer names resolve to (replication is unauthenticated; "
                         "with NAT or several interfaces use --peer-secret-file)",
                  context.counters.address_refused);
  }
  const AdmitStatus admit = replicator.admit(hello.node_id);
  if (admit != AdmitStatus::admitted) return refuse(node + admit_status_text(admit), context.counters.hellos_refused);
  if (has_secret) return IncomingStream::challenge(context, store, hello, from.text, reply);
  return IncomingStream::unauthenticated(context, store, std::string(hello.node_id), from.text);
}

}  // namespace ringcache::replication
