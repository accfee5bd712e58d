#include "server/process/binary_process.h"

#include <cassert>
#include <cstring>
#include <limits>
#include <string>

#include "server/io/log.h"
#include "server/io/value_copy.h"
#include "server/process/pinned_value.h"

namespace ringcache::server {
namespace {

using protocol::EventKind;
using protocol::Reply;

void append_status(OutputQueue& out, Reply code) {
  const char byte = static_cast<char>(code);
  out.append(std::string_view(&byte, 1));
}

// OK followed by the length of the field that comes next.
void append_ok_field_header(OutputQueue& out, uint64_t field_bytes) {
  assert(field_bytes <= std::numeric_limits<uint32_t>::max());
  const auto length = static_cast<uint32_t>(field_bytes);
  const char header[5] = {
      static_cast<char>(Reply::ok),
      static_cast<char>(length >> 24),
      static_cast<char>(length >> 16),
      static_cast<char>(length >> 8),
      static_cast<char>(length),
  };
  out.append(std::string_view(header, sizeof(header)));
}

}  // namespace

BinaryProcessor::BinaryProcessor(store::StoreThread& store, WritePath& write, ThreadCounters& counters,
                                 const StatsRegistry& registry, const InputBudget& input_budget,
                                 uint64_t item_bytes_max, replication::Replicator* replicator, uint32_t worker)
    : store_(store),
      write_(write),
      counters_(counters),
      registry_(registry),
      input_budget_(input_budget),
      item_bytes_max_(item_bytes_max),
      replicator_(replicator),
      worker_(worker) {
  assert(replicator == nullptr || store.store().config().versioned);
}

ProcessResult BinaryProcessor::process(const protocol::Event& event, PutStream& stream,
                                        OutputQueue& out) {
  switch (event.kind) {
    case EventKind::get:
      get(event.key, out);
      return ProcessResult::proceed;
    case EventKind::del:
      del(event.key, out);
      return ProcessResult::proceed;
    case EventKind::stats:
      stats(out);
      return ProcessResult::proceed;
    case EventKind::put:
      put(event, out);
      return ProcessResult::proceed;
    case EventKind::put_begin:
      assert(!stream.active);
      counters_.puts.add();
      write_.reserve(stream.write, event.key, event.value_size);
      stream.active = true;
      return ProcessResult::proceed;
    case EventKind::put_data:
      assert(stream.active);
      // After a failed append the reservation is dead; the rest of the value
      // is still read (by the parser) and the PUT answered at put_end.
      if (stream.write.reservation.ok()) (void)stream.write.reservation.append(event.data);
      return ProcessResult::proceed;
    case EventKind::put_end:
      put_end(stream, out);
      return ProcessResult::proceed;
    case EventKind::invalid_opcode:
      counters_.invalid.add();
      append_status(out, Reply::einval);
      return ProcessResult::proceed;
    case EventKind::too_big:
      counters_.too_big.add();
      append_status(out, Reply::ebig);
      return ProcessResult::proceed;
    case EventKind::auth:
    case EventKind::auth_too_big:
      assert(false && "BinarySession answers AUTH");
      append_status(out, Reply::einval);
      return ProcessResult::proceed;
    case EventKind::repl_hello:
      assert(false && "BinarySession hands a hello to open_replication()");
      [[fallthrough]];
    case EventKind::repl_invalid:
      refuse_replication("its hello is longer than 256 bytes", out);
      return ProcessResult::close_after_reply;
    case EventKind::need_more:
      break;
  }
  assert(false && "need_more is not a request");
  return ProcessResult::proceed;
}

void BinaryProcessor::answer_auth(bool accepted, OutputQueue& out) {
  append_status(out, accepted ? Reply::ok : Reply::einval);
}

void BinaryProcessor::refuse(OutputQueue& out) {
  counters_.invalid.add();
  append_status(out, Reply::einval);
}

void BinaryProcessor::get(std::string_view key, OutputQueue& out) {
  counters_.gets.add();
  const bool found = store_.get(key, [&](const store::ItemView& item) {
    const uint64_t size = item.value_size();
    if (item.contiguous() && size <= copy_value_bytes_max) {
      append_ok_field_header(out, size);
      out.append(item.value());
      return;
    }
    // Pinned before anything is queued, so a failed append drops the pin.
    std::unique_ptr<PinnedValue> pin = pin_value(item);
    append_ok_field_header(out, size);
    if (size > 0) out.append_pinned(std::move(pin));
  });
  if (found) {
    counters_.hits.add();
  } else {
    counters_.misses.add();
    append_status(out, Reply::enotfound);
  }
}

void BinaryProcessor::put(const protocol::Event& event, OutputQueue& out) {
  counters_.puts.add();
  const store::PutStatus status = write_.put(event.key, event.data);
  if (status == store::PutStatus::stored) {
    append_status(out, Reply::ok);
  } else {
    counters_.unstored.add();
    append_status(out, Reply::eunk);
  }
}

void BinaryProcessor::put_end(PutStream& stream, OutputQueue& out) {
  assert(stream.active);
  const store::PutStatus status = write_.finish(stream.write);
  stream.active = false;
  if (status == store::PutStatus::stored) {
    append_status(out, Reply::ok);
  } else {
    counters_.unstored.add();
    append_status(out, Reply::eunk);
  }
}

void BinaryProcessor::del(std::string_view key, OutputQueue& out) {
  counters_.dels.add();
  append_status(out, write_.del(key) ? Reply::ok : Reply::enotfound);
}

void BinaryProcessor::refuse_replication(const char* why, OutputQueue& out) {
  counters_.invalid.add();
  append_status(out, Reply::einval);
  log_info("replication connection refused: %s", why);
}

std::unique_ptr<replication::IncomingStream> BinaryProcessor::open_replication(
    std::string_view hello, const replication::PeerEndpoint& from, OutputQueue& out) {
  if (replicator_ == nullptr) {
    refuse_replication("this node has no --peer", out);
    return nullptr;
  }
  std::string reply;
  std::unique_ptr<replication::IncomingStream> stream =
      replication::open_incoming_stream(*replicator_, worker_, store_, hello, from, reply);
  if (!stream) {
    // Counted and logged (rate-limited) by replication.
    counters_.invalid.add();
    append_status(out, Reply::einval);
    return nullptr;
  }
  if (!reply.empty()) out.append(reply);
  return stream;
}

void BinaryProcessor::stats(OutputQueue& out) {
  counters_.stats.add();
  StatsSnapshot snapshot = registry_.collect(store_.store().stats(), item_bytes_max_);
  snapshot.input_buffered_bytes = input_budget_.used_bytes();
  std::string text = format_stats(snapshot);
  if (replicator_ != nullptr) append_replication_stats(text, replicator_->stats());
  append_ok_field_header(out, text.size());
  out.append(text);
}

}  // namespace ringcache::server
