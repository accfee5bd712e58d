#include "server/process/text_process.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "server/io/log.h"
#include "server/process/text_reply.h"

#ifndef RINGCACHE_VERSION
#error "RINGCACHE_VERSION must be defined by the build"
#endif

namespace ringcache::server {
namespace {

using protocol::text::Command;
using protocol::text::Error;
using protocol::text::Event;
using protocol::text::EventKind;

constexpr std::string_view out_of_memory_line = "SERVER_ERROR out of memory storing object\r\n";

void reply(OutputQueue& out, bool noreply, std::string_view line) {
  if (!noreply) out.append(line);
}

bool more_keys(std::string_view keys) { return keys.find_first_not_of(' ') != std::string_view::npos; }

// A set (or ms in set mode) whose new value could not be stored.
bool is_plain_set(const Event& event) {
  if (event.command == Command::set) return true;
  return event.command == Command::meta_set && event.meta->mode == 'S' && !event.meta->has('C');
}

}  // namespace

std::string_view text_version() { return "1.6.18-ringcache-" RINGCACHE_VERSION; }

TextProcessor::TextProcessor(store::StoreThread& store, WritePath& write, TextCounters& counters,
                             const TextStatsContext& stats, uint64_t item_bytes_max)
    : store_(store), write_(write), counters_(counters), stats_(stats), item_bytes_max_(item_bytes_max) {}

protocol::text::ParserLimits TextProcessor::parser_limits() const {
  protocol::text::ParserLimits limits{item_bytes_max_};
  return limits;
}

uint32_t TextProcessor::expires_at(int64_t exptime, uint32_t now_s) {
  constexpr uint64_t expires_at_max = std::numeric_limits<uint32_t>::max();
  if (exptime == 0) return 0;
  // Already expired: any nonzero time not after now (0 would mean "never").
  const uint32_t past = std::max<uint32_t>(now_s, 1);
  if (exptime < 0) return past;
  if (exptime <= relative_exptime_s_max) {
    return static_cast<uint32_t>(std::min(uint64_t{now_s} + static_cast<uint64_t>(exptime), expires_at_max));
  }
  if (exptime <= int64_t{now_s}) return past;
  return static_cast<uint32_t>(std::min(static_cast<uint64_t>(exptime), expires_at_max));
}

TextResult TextProcessor::process(const Event& event, TextRequestState& state, OutputQueue& out,
                                  const PauseCheck& pause) {
  switch (event.kind) {
    case EventKind::request:
      if (event.command == Command::quit) return TextResult::close;
      request(event, state, out, pause);
      return TextResult::proceed;
    case EventKind::value_begin:
      stream_begin(event, state.stream);
      return TextResult::proceed;
    case EventKind::value_data:
      assert(state.stream.active);
      if (state.stream.concat) {
        state.stream.concat_data.append(event.data);
      } else if (state.stream.write.reservation.ok()) {
        // After a failed append the reservation is dead; the rest of the
        // value is still read and the request answered at value_end.
        (void)state.stream.write.reservation.append(event.data);
      }
      return TextResult::proceed;
    case EventKind::value_end:
      stream_end(event, state.stream, out);
      return TextResult::proceed;
    case EventKind::error:
      error(event, state, out);
      return event.error == Error::line_too_long ? TextResult::close : TextResult::proceed;
    case EventKind::need_more:
      break;
  }
  assert(false && "need_more is not a request");
  return TextResult::proceed;
}

void TextProcessor::request(const Event& event, TextRequestState& state, OutputQueue& out,
                            const PauseCheck& pause) {
  switch (event.command) {
    case Command::get:
    case Command::gets:
    case Command::gat:
    case Command::gats:
      start_retrieval(event, state, out, pause);
      return;
    case Command::set:
    case Command::add:
    case Command::replace:
    case Command::append:
    case Command::prepend:
    case Command::cas:
    case Command::meta_set:
      store_whole(event, out);
      return;
    case Command::del:
      remove(event, out);
      return;
    case Command::incr:
    case Command::decr:
      arithmetic(event, out);
      return;
    case Command::touch:
      touch(event, out);
      return;
    case Command::flush_all:
      flush_all(event, out);
      return;
    case Command::stats:
      stats(event, out);
      return;
    case Command::version:
      out.append(ReplyLine().text("VERSION ").text(text_version()).end_line().view());
      return;
    case Command::verbosity:
      // As memcached: the log level of the whole daemon (-v).
      log_set_verbose(event.number > 0);
      reply(out, event.noreply, "OK\r\n");
      return;
    case Command::meta_get:
      meta_get(event, out);
      return;
    case Command::meta_delete:
      meta_delete(event, out);
      return;
    case Command::meta_arithmetic:
      meta_arithmetic(event, out);
      return;
    case Command::meta_noop:
      out.append("MN\r\n");
      return;
    case Command::quit:
    case Command::none:
      break;
  }
  assert(false && "not a request command");
}

// get/gets/gat/gats: answers the keys it can now; the rest (a pause for
// output space) is kept in `state` for resume.
void TextProcessor::start_retrieval(const Event& event, TextRequestState& state, OutputQueue& out,
                                    const PauseCheck& pause) {
  const uint32_t touch_expires_at = touches(event.command) ? expires_at(event.exptime, store_.store().now_s()) : 0;
  std::string_view keys = event.keys;
  retrieve(event.command, touch_expires_at, keys, out, pause);
  if (keys.empty()) return;
  // The parser's views end with this call: keep what is left.
  PendingRetrieval& pending = state.retrieval;
  pending.command = event.command;
  pending.touch_expires_at = touch_expires_at;
  pending.keys.assign(keys);
  pending.offset = 0;
}

void TextProcessor::flush_all(const Event& event, OutputQueue& out) {
  counters_.cmd_flush.add();
  const uint32_t now = store_.store().now_s();
  // A delay of zero or less flushes now; a later one schedules it.
  const uint32_t at_s = event.exptime <= 0 ? 0 : expires_at(event.exptime, now);
  write_.flush_all(at_s);
  reply(out, event.noreply, "OK\r\n");
}

void TextProcessor::error(const Event& event, TextRequestState& state, OutputQueue& out) {
  if (state.stream.active) {
    // Only a bad data chunk ends a streamed value early: nothing is stored.
    assert(event.error == Error::bad_data_chunk);
    state.stream.write.reservation.abort();
    state.stream = TextStream();
  }
  if (event.error == Error::too_large) {
    counters_.too_large.add();
    if (is_plain_set(event)) (void)write_.del(event.key);
  } else {
    counters_.client_errors.add();
  }
  reply(out, event.noreply, protocol::text::error_line(event.error));
}

void TextProcessor::continue_retrieval(TextRequestState& state, OutputQueue& out, const PauseCheck& pause) {
  PendingRetrieval& pending = state.retrieval;
  assert(!pending.empty());
  std::string_view keys = std::string_view(pending.keys).substr(pending.offset);
  retrieve(pending.command, pending.touch_expires_at, keys, out, pause);
  if (keys.empty()) {
    pending = PendingRetrieval();
  } else {
    pending.offset = static_cast<size_t>(keys.data() - pending.keys.data());
  }
}

// Answers keys until all are done (then END; keys becomes empty) or the
// connection must pause (keys keeps the rest).
void TextProcessor::retrieve(Command command, uint32_t touch_expires_at, std::string_view& keys,
                             OutputQueue& out, const PauseCheck& pause) {
  std::string_view key;
  while (protocol::text::next_key(keys, key)) {
    answer_key(command, key, touch_expires_at, out);
    if (more_keys(keys) && pause.must_pause()) return;
  }
  out.append("END\r\n");
  keys = {};
}

void TextProcessor::answer_key(Command command, std::string_view key, uint32_t touch_expires_at,
                               OutputQueue& out) {
  counters_.cmd_get.add();
  if (touches(command)) {
    counters_.cmd_touch.add();
    // Touched first, so that gats hands out the cas the item has afterwards.
    if (write_.touch(key, touch_expires_at) != store::PutStatus::stored) {
      counters_.touch_misses.add();
      counters_.get_misses.add();
      return;
    }
    write_.changed(key);
    counters_.touch_hits.add();
  }
  const bool found = store_.get(key, [&](const store::ItemView& item) {
    ReplyLine line;
    line.text("VALUE ").text(key).character(' ').number(item.flags()).character(' ').number(item.value_size());
    if (shows_cas(command)) line.character(' ').number(item.cas());
    append_line_and_value(out, line, item);
  });
  (found ? counters_.get_hits : counters_.get_misses).add();
}

TextProcessor::StorePlan TextProcessor::plan_store(const Event& event) const {
  StorePlan plan;
  const uint32_t now = store_.store().now_s();
  if (event.command == Command::meta_set) {
    const protocol::text::MetaRequest& meta = *event.meta;
    plan.meta.flags = meta.client_flags;
    plan.meta.expires_at = meta.has('T') ? expires_at(meta.ttl, now) : 0;
    switch (meta.mode) {
      case 'E': plan.options.mode = store::PutMode::add; break;
      case 'R': plan.options.mode = store::PutMode::replace; break;
      case 'A': plan.concat = true; break;
      case 'P': plan.concat = plan.prepend = true; break;
      default: plan.options.mode = store::PutMode::set; break;
    }
    // C compares the cas of a set or replace; an add has nothing to compare.
    if (meta.has('C') && !plan.concat && plan.options.mode != store::PutMode::add) {
      plan.options = store::PutOptions{store::PutMode::cas, meta.compare_cas};
    }
    if (plan.concat && meta.has('N')) {
      plan.vivify = true;
      plan.meta.expires_at = expires_at(meta.vivify_ttl, now);
    }
    return plan;
  }
  plan.meta = store::ItemMeta{event.flags, expires_at(event.exptime, now), 0};
  switch (event.command) {
    case Command::add: plan.options.mode = store::PutMode::add; break;
    case Command::replace: plan.options.mode = store::PutMode::replace; break;
    case Command::append: plan.concat = true; break;
    case Command::prepend: plan.concat = plan.prepend = true; break;
    case Command::cas: plan.options = store::PutOptions{store::PutMode::cas, event.number}; break;
    default: plan.options.mode = store::PutMode::set; break;
  }
  return plan;
}

store::PutStatus TextProcessor::carry_out(const Event& event, const StorePlan& plan, std::string_view value) {
  if (!plan.concat) return write_.put(event.key, value, plan.meta, plan.options);
  store::PutStatus status = write_.concat(event.key, value, plan.prepend);
  if (status == store::PutStatus::stored) {
    write_.changed(event.key);
  } else if (status == store::PutStatus::not_stored && plan.vivify) {
    status = write_.put(event.key, value, plan.meta, store::PutOptions{store::PutMode::add, 0});
  }
  return status;
}

void TextProcessor::count_store(const Event& event, store::PutStatus status) {
  switch (status) {
    case store::PutStatus::stored: counters_.total_items.add(); break;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
      counters_.no_memory.add();
      // memcached drops the old value rather than keep serving it after a failed set.
      if (is_plain_set(event)) (void)write_.del(event.key);
      break;
    default: break;
  }
  const bool compares = event.command == Command::cas || (event.command == Command::meta_set && event.meta->has('C'));
  if (!compares) return;
  switch (status) {
    case store::PutStatus::stored: counters_.cas_hits.add(); break;
    case store::PutStatus::exists: counters_.cas_badval.add(); break;
    case store::PutStatus::not_found: counters_.cas_misses.add(); break;
    default: break;
  }
}

void TextProcessor::store_whole(const Event& event, OutputQueue& out) {
  counters_.cmd_set.add();
  const store::PutStatus status = carry_out(event, plan_store(event), event.data);
  count_store(event, status);
  answer_store(event, status, out);
}

void TextProcessor::stream_begin(const Event& event, TextStream& stream) {
  assert(!stream.active);
  counters_.cmd_set.add();
  const StorePlan plan = plan_store(event);
  stream.active = true;
  stream.concat = plan.concat;
  if (!plan.concat) write_.reserve(stream.write, event.key, event.value_size, plan.meta, plan.options);
}

void TextProcessor::stream_end(const Event& event, TextStream& stream, OutputQueue& out) {
  assert(stream.active);
  store::PutStatus status = store::PutStatus::aborted;
  if (stream.concat) {
    status = carry_out(event, plan_store(event), stream.concat_data);
  } else {
    status = write_.finish(stream.write);
  }
  stream = TextStream();
  count_store(event, status);
  answer_store(event, status, out);
}

void TextProcessor::answer_store(const Event& event, store::PutStatus status, OutputQueue& out) {
  if (event.command == Command::meta_set) {
    answer_meta_store(event, status, out);
    return;
  }
  switch (status) {
    case store::PutStatus::stored: reply(out, event.noreply, "STORED\r\n"); return;
    case store::PutStatus::not_stored: reply(out, event.noreply, "NOT_STORED\r\n"); return;
    case store::PutStatus::exists:
      // A concat that lost every retry to concurrent writers did not happen.
      reply(out, event.noreply, event.command == Command::cas ? "EXISTS\r\n" : "NOT_STORED\r\n");
      return;
    case store::PutStatus::not_found: reply(out, event.noreply, "NOT_FOUND\r\n"); return;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
    case store::PutStatus::older:
      reply(out, event.noreply, out_of_memory_line);
      return;
  }
  assert(false && "unknown PutStatus");
}

void TextProcessor::remove(const Event& event, OutputQueue& out) {
  if (write_.del(event.key)) {
    counters_.delete_hits.add();
    reply(out, event.noreply, "DELETED\r\n");
  } else {
    counters_.delete_misses.add();
    reply(out, event.noreply, "NOT_FOUND\r\n");
  }
}

void TextProcessor::arithmetic(const Event& event, OutputQueue& out) {
  const bool decrement = event.command == Command::decr;
  uint64_t value = 0;
  switch (write_.add_delta(event.key, event.number, decrement, &value)) {
    case store::ArithStatus::ok: {
      write_.changed(event.key);
      (decrement ? counters_.decr_hits : counters_.incr_hits).add();
      ReplyLine line;
      reply(out, event.noreply, line.number(value).end_line().view());
      return;
    }
    case store::ArithStatus::not_found:
      (decrement ? counters_.decr_misses : counters_.incr_misses).add();
      reply(out, event.noreply, "NOT_FOUND\r\n");
      return;
    case store::ArithStatus::not_number:
      counters_.client_errors.add();
      reply(out, event.noreply, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
      return;
    case store::ArithStatus::no_memory:
      counters_.no_memory.add();
      reply(out, event.noreply, out_of_memory_line);
      return;
  }
  assert(false && "unknown ArithStatus");
}

void TextProcessor::touch(const Event& event, OutputQueue& out) {
  counters_.cmd_touch.add();
  const uint32_t at = expires_at(event.exptime, store_.store().now_s());
  if (write_.touch(event.key, at) == store::PutStatus::stored) {
    write_.changed(event.key);
    counters_.touch_hits.add();
    reply(out, event.noreply, "TOUCHED\r\n");
  } else {
    counters_.touch_misses.add();
    reply(out, event.noreply, "NOT_FOUND\r\n");
  }
}

void TextProcessor::stats(const Event& event, OutputQueue& out) {
  const std::string_view args = event.data;
  if (args.empty()) {
    out.append(format_text_stats(stats_, store_.store().stats(), store_.store().now_s()));
  } else if (args == "settings") {
    out.append(format_text_settings(stats_, store_.store().stats()));
  } else if (args == "items" || args == "slabs" || args == "sizes" || args == "conns") {
    // No slab classes or per-connection records here: memcached answers an
    // empty cache the same way.
    out.append("END\r\n");
  } else {
    counters_.client_errors.add();
    out.append(protocol::text::error_line(Error::unknown_command));
  }
}

}  // namespace ringcache::server
