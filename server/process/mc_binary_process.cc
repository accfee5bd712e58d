#include "server/process/mc_binary_process.h"

#include <array>
#include <cassert>
#include <cstring>

#include "server/io/log.h"
#include "server/process/mc_binary_response.h"

namespace ringcache::server {
namespace {

namespace mcb = protocol::memcache_binary;
using mcb::Opcode;
using mcb::Status;
using mc_binary::respond_error;
using mc_binary::respond_ok;
using mc_binary::store_be;

// The extras of each command that has them.
constexpr uint8_t store_extras_bytes = 8;       // flags, expiration
constexpr uint8_t arithmetic_extras_bytes = 20;  // delta, initial, expiration
constexpr uint8_t expiration_extras_bytes = 4;   // touch/gat, flush delay, verbosity level
constexpr uint8_t flags_extras_bytes = 4;        // a get's response
// incr/decr with this expiration never create a missing key.
constexpr uint32_t no_create_expiration = 0xffffffff;

uint64_t load_be(std::string_view bytes, size_t at, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value = value << 8 | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

bool is_quiet(uint8_t opcode) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::getq: case Opcode::getkq: case Opcode::setq: case Opcode::addq: case Opcode::replaceq:
    case Opcode::deleteq: case Opcode::incrementq: case Opcode::decrementq: case Opcode::quitq:
    case Opcode::flushq: case Opcode::appendq: case Opcode::prependq: case Opcode::gatq: case Opcode::gatkq:
      return true;
    default:
      return false;
  }
}

bool is_store(uint8_t opcode) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::set: case Opcode::setq: case Opcode::add: case Opcode::addq: case Opcode::replace:
    case Opcode::replaceq:
      return true;
    default:
      return false;
  }
}

bool is_concat(uint8_t opcode) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::append: case Opcode::appendq: case Opcode::prepend: case Opcode::prependq: return true;
    default: return false;
  }
}

bool is_sasl(uint8_t opcode) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::sasl_list_mechs: case Opcode::sasl_auth: case Opcode::sasl_step: return true;
    default: return false;
  }
}

// SASL mechanism names are case-insensitive (RFC 4422), as memcached's
// libsasl2 takes them.
bool is_plain_mechanism(std::string_view name) {
  constexpr std::string_view plain = "PLAIN";
  if (name.size() != plain.size()) return false;
  for (size_t i = 0; i < plain.size(); ++i) {
    const char c = name[i];
    if ((c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c) != plain[i]) return false;
  }
  return true;
}

bool is_plain_set(const mcb::Header& header) {
  const auto opcode = static_cast<Opcode>(header.opcode);
  return (opcode == Opcode::set || opcode == Opcode::setq) && header.cas == 0;
}

// The value of a request refused under --auth-file is read and dropped,
// nothing reserved or kept: true for value_begin and value_data, which wait
// for value_end; the request is answered at value_end (which ends the
// stream) as when it comes whole or too large.
bool drained(const mcb::Event& event, McBinaryStream& stream) {
  using Kind = mcb::EventKind;
  switch (event.kind) {
    case Kind::value_begin:
      assert(!stream.active);
      stream.active = true;
      return true;
    case Kind::value_data:
      assert(stream.active);
      return true;
    case Kind::value_end:
      assert(stream.active);
      stream = McBinaryStream();
      return false;
    case Kind::request:
    case Kind::too_large:
      assert(!stream.active);
      return false;
    case Kind::bad_lengths:
    case Kind::bad_magic:
    case Kind::need_more:
      break;
  }
  assert(false && "process() serves framing errors itself");
  return true;
}

}  // namespace

McBinaryProcessor::McBinaryProcessor(TextProcessor& text)
    : text_(text), store_(text.store()), write_(text.write_path()), counters_(text.counters()) {}

McBinaryProcessor::Status McBinaryProcessor::check_shape(const Header& header, uint64_t value_size) {
  const uint8_t extras = header.extras_length;
  const bool keyed = header.key_length > 0;
  const bool empty_value = value_size == 0;
  bool fits = false;
  switch (static_cast<Opcode>(header.opcode)) {
    case Opcode::get: case Opcode::getq: case Opcode::getk: case Opcode::getkq:
    case Opcode::del: case Opcode::deleteq:
      fits = extras == 0 && keyed && empty_value;
      break;
    case Opcode::touch: case Opcode::gat: case Opcode::gatq: case Opcode::gatk: case Opcode::gatkq:
      fits = extras == expiration_extras_bytes && keyed && empty_value;
      break;
    case Opcode::set: case Opcode::setq: case Opcode::add: case Opcode::addq: case Opcode::replace:
    case Opcode::replaceq:
      fits = extras == store_extras_bytes && keyed;
      break;
    case Opcode::append: case Opcode::appendq: case Opcode::prepend: case Opcode::prependq:
      fits = extras == 0 && keyed;
      break;
    case Opcode::increment: case Opcode::incrementq: case Opcode::decrement: case Opcode::decrementq:
      fits = extras == arithmetic_extras_bytes && keyed && empty_value;
      break;
    case Opcode::quit: case Opcode::quitq: case Opcode::noop: case Opcode::version:
      fits = extras == 0 && !keyed && empty_value;
      break;
    case Opcode::flush: case Opcode::flushq:
      fits = (extras == 0 || extras == expiration_extras_bytes) && !keyed && empty_value;
      break;
    case Opcode::stat:
      fits = extras == 0 && empty_value;
      break;
    case Opcode::verbosity:
      fits = extras == expiration_extras_bytes && !keyed && empty_value;
      break;
    case Opcode::sasl_list_mechs: case Opcode::sasl_auth: case Opcode::sasl_step:
      // Without --auth-file, as memcached without -S (with it, sasl() answers them).
      return Status::unknown_command;
    default:
      return Status::unknown_command;
  }
  return fits ? Status::success : Status::invalid_arguments;
}

McBinaryResult McBinaryProcessor::process(const Event& event, McBinaryStream& stream, ConnectionAuth& auth,
                                          OutputQueue& out) {
  using Kind = mcb::EventKind;
  // Unframeable lengths and bad magic carry no command: answered alike, authenticated or not.
  if (auth.required() && event.kind != Kind::bad_lengths && event.kind != Kind::bad_magic) {
    if (is_sasl(event.header.opcode)) return sasl(event, stream, auth, out);
    // memcached serves version before authentication: clients probe with it.
    if (!auth.authenticated() && static_cast<Opcode>(event.header.opcode) != Opcode::version) {
      return refuse_unauthenticated(event, stream, out);
    }
  }
  return serve(event, stream, out);
}

McBinaryResult McBinaryProcessor::sasl(const Event& event, McBinaryStream& stream, ConnectionAuth& auth,
                                       OutputQueue& out) {
  if (drained(event, stream)) return McBinaryResult::proceed;
  const Header& header = event.header;
  const auto opcode = static_cast<Opcode>(header.opcode);
  // memcached's 0x0004, not an attempt: no SASL request has extras, and LIST_MECHS has no body.
  if (header.extras_length != 0 || (opcode == Opcode::sasl_list_mechs && header.body_length != 0)) {
    counters_.client_errors.add();
    respond_error(out, header, Status::invalid_arguments);
    return McBinaryResult::proceed;
  }
  if (opcode == Opcode::sasl_list_mechs) {
    respond_ok(out, header, 0, "PLAIN");
    return McBinaryResult::proceed;
  }
  // A value that streamed or was too large is longer than any PLAIN message;
  // SASL_STEP is a failure, since PLAIN never asks for one.
  const bool whole = event.kind == mcb::EventKind::request;
  const AuthAttempt attempt = opcode == Opcode::sasl_auth && whole ? plain_attempt(event, auth) : auth.refuse();
  if (attempt == AuthAttempt::accepted) {
    respond_ok(out, header, 0, "Authenticated");
    return McBinaryResult::proceed;
  }
  respond_error(out, header, Status::auth_error);
  return attempt == AuthAttempt::refused_close ? McBinaryResult::close : McBinaryResult::proceed;
}

AuthAttempt McBinaryProcessor::plain_attempt(const Event& event, ConnectionAuth& auth) {
  if (event.key.size() > sasl_mechanism_bytes_max || !is_plain_mechanism(event.key) ||
      event.data.size() > sasl_plain_message_bytes_max) {
    return auth.refuse();
  }
  // authzid NUL user NUL password, none of them holding a NUL.
  const std::string_view message = event.data;
  const size_t first = message.find('\0');
  const size_t second = first == std::string_view::npos ? first : message.find('\0', first + 1);
  if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos) {
    return auth.refuse();
  }
  const std::string_view authzid = message.substr(0, first);
  const std::string_view user = message.substr(first + 1, second - first - 1);
  const std::string_view password = message.substr(second + 1);
  // An authzid other than the user would act as someone else: nobody may.
  if (user.empty() || password.empty() || (!authzid.empty() && authzid != user)) return auth.refuse();
  return auth.attempt(user, password);
}

McBinaryResult McBinaryProcessor::refuse_unauthenticated(const Event& event, McBinaryStream& stream,
                                                         OutputQueue& out) {
  if (drained(event, stream)) return McBinaryResult::proceed;
  respond_error(out, event.header, Status::auth_error);
  const auto opcode = static_cast<Opcode>(event.header.opcode);
  // memcached refuses quit too, then closes as asked.
  return opcode == Opcode::quit || opcode == Opcode::quitq ? McBinaryResult::close : McBinaryResult::proceed;
}

McBinaryResult McBinaryProcessor::serve(const Event& event, McBinaryStream& stream, OutputQueue& out) {
  using Kind = mcb::EventKind;
  switch (event.kind) {
    case Kind::request:
      return request(event, out);
    case Kind::value_begin:
      stream_begin(event, stream);
      return McBinaryResult::proceed;
    case Kind::value_data:
      assert(stream.active);
      if (stream.refusal != Status::success) return McBinaryResult::proceed;
      if (stream.concat) {
        stream.concat_data.append(event.data);
      } else if (stream.write.reservation.ok()) {
        // After a failed append the reservation is dead; the rest of the
        // value is still read and the request answered at value_end.
        (void)stream.write.reservation.append(event.data);
      }
      return McBinaryResult::proceed;
    case Kind::value_end:
      stream_end(event, stream, out);
      return McBinaryResult::proceed;
    case Kind::too_large:
      too_large(event, out);
      return McBinaryResult::proceed;
    case Kind::bad_lengths:
      counters_.client_errors.add();
      respond_error(out, event.header, Status::invalid_arguments);
      return McBinaryResult::proceed;
    case Kind::bad_magic:
      // Nothing after it can be framed: memcached closes without a reply.
      counters_.client_errors.add();
      return McBinaryResult::close;
    case Kind::need_more:
      break;
  }
  assert(false && "need_more is not a request");
  return McBinaryResult::proceed;
}

McBinaryResult McBinaryProcessor::request(const Event& event, OutputQueue& out) {
  const Header& header = event.header;
  const Status shape = check_shape(header, event.data.size());
  if (shape != Status::success) {
    counters_.client_errors.add();
    respond_error(out, header, shape);
    return McBinaryResult::proceed;
  }
  switch (static_cast<Opcode>(header.opcode)) {
    case Opcode::get: case Opcode::getq: case Opcode::getk: case Opcode::getkq:
    case Opcode::touch: case Opcode::gat: case Opcode::gatq: case Opcode::gatk: case Opcode::gatkq:
      retrieve(event, out);
      break;
    case Opcode::set: case Opcode::setq: case Opcode::add: case Opcode::addq: case Opcode::replace:
    case Opcode::replaceq: case Opcode::append: case Opcode::appendq: case Opcode::prepend: case Opcode::prependq:
      store_value(header, event.extras, event.key, event.data, out);
      break;
    case Opcode::del: case Opcode::deleteq:
      remove(event, out);
      break;
    case Opcode::increment: case Opcode::incrementq: case Opcode::decrement: case Opcode::decrementq:
      arithmetic(event, out);
      break;
    case Opcode::quit:
      respond_ok(out, header);
      return McBinaryResult::close;
    case Opcode::quitq:
      return McBinaryResult::close;
    case Opcode::flush: case Opcode::flushq:
      flush(event, out);
      break;
    case Opcode::noop:
      respond_ok(out, header);
      break;
    case Opcode::version:
      respond_ok(out, header, 0, text_version());
      break;
    case Opcode::stat:
      stats(event, out);
      break;
    case Opcode::verbosity:
      // As memcached: the log level of the whole daemon (-v).
      log_set_verbose(load_be(event.extras, 0, 4) > 0);
      respond_ok(out, header);
      break;
    case Opcode::sasl_list_mechs: case Opcode::sasl_auth: case Opcode::sasl_step:
      assert(false && "check_shape refuses SASL");
      break;
  }
  return McBinaryResult::proceed;
}

void McBinaryProcessor::too_large(const Event& event, OutputQueue& out) {
  const Header& header = event.header;
  Status status = check_shape(header, 0);
  if (status == Status::success && (is_store(header.opcode) || is_concat(header.opcode))) {
    status = Status::value_too_large;
    counters_.too_large.add();
    drop_after_failed_set(header, event.key);
  } else {
    // A command that takes no value was sent one.
    if (status == Status::success) status = Status::invalid_arguments;
    counters_.client_errors.add();
  }
  respond_error(out, header, status);
}

void McBinaryProcessor::drop_after_failed_set(const Header& header, std::string_view key) {
  if (is_plain_set(header)) (void)write_.del(key);
}

uint64_t McBinaryProcessor::cas_of(std::string_view key) {
  uint64_t cas = 0;
  (void)store_.get(key, [&](const store::ItemView& item) { cas = item.cas(); });
  return cas;
}

void McBinaryProcessor::retrieve(const Event& event, OutputQueue& out) {
  const Header& header = event.header;
  const auto opcode = static_cast<Opcode>(header.opcode);
  const bool touches = header.extras_length == expiration_extras_bytes;
  const bool with_key = opcode == Opcode::getk || opcode == Opcode::getkq || opcode == Opcode::gatk ||
                        opcode == Opcode::gatkq;
  const bool with_value = opcode != Opcode::touch;
  bool found = true;
  if (opcode != Opcode::touch) counters_.cmd_get.add();
  if (touches) {
    counters_.cmd_touch.add();
    const int64_t exptime = static_cast<int64_t>(load_be(event.extras, 0, 4));
    found = write_.touch(event.key, TextProcessor::expires_at(exptime, store_.store().now_s())) ==
            store::PutStatus::stored;
    if (found) write_.changed(event.key);
    (found ? counters_.touch_hits : counters_.touch_misses).add();
  }
  if (found) {
    found = store_.get(event.key, [&](const store::ItemView& item) {
      char flags[flags_extras_bytes];
      store_be(flags, item.flags(), flags_extras_bytes);
      mc_binary::Response response(header, Status::success, item.cas());
      const std::string_view key = with_key ? event.key : std::string_view();
      if (with_value) {
        response.send_item(out, {flags, flags_extras_bytes}, key, item);
      } else {
        response.send(out, {flags, flags_extras_bytes}, key, {});
      }
    });
  }
  if (opcode != Opcode::touch) (found ? counters_.get_hits : counters_.get_misses).add();
  if (found || is_quiet(header.opcode)) return;
  if (with_key) {
    // memcached answers a getk/gatk miss with the key and no message.
    mc_binary::Response(header, Status::key_not_found, 0).send(out, {}, event.key, {});
    return;
  }
  respond_error(out, header, Status::key_not_found);
}

void McBinaryProcessor::store_value(const Header& header, std::string_view extras, std::string_view key,
                                    std::string_view value, OutputQueue& out) {
  counters_.cmd_set.add();
  store::PutStatus status = store::PutStatus::aborted;
  if (is_concat(header.opcode)) {
    const auto opcode = static_cast<Opcode>(header.opcode);
    status = write_.concat(key, value, opcode == Opcode::prepend || opcode == Opcode::prependq);
    if (status == store::PutStatus::stored) write_.changed(key);
  } else {
    store::ItemMeta meta;
    store::PutOptions options;
    plan(header, extras, meta, options);
    status = write_.put(key, value, meta, options);
  }
  answer_store(header, key, status, out);
}

void McBinaryProcessor::plan(const Header& header, std::string_view extras, store::ItemMeta& meta,
                             store::PutOptions& options) const {
  meta.flags = static_cast<uint32_t>(load_be(extras, 0, 4));
  meta.expires_at = TextProcessor::expires_at(static_cast<int64_t>(load_be(extras, 4, 4)), store_.store().now_s());
  switch (static_cast<Opcode>(header.opcode)) {
    case Opcode::add: case Opcode::addq: options.mode = store::PutMode::add; break;
    case Opcode::replace: case Opcode::replaceq: options.mode = store::PutMode::replace; break;
    default: options.mode = store::PutMode::set; break;
  }
  // A nonzero cas makes any of them (add too, as in memcached) store only over the item with that cas.
  if (header.cas != 0) options = store::PutOptions{store::PutMode::cas, header.cas};
}

void McBinaryProcessor::stream_begin(const Event& event, McBinaryStream& stream) {
  assert(!stream.active);
  stream.active = true;
  stream.refusal = check_shape(event.header, event.value_size);
  if (stream.refusal != Status::success) return;
  counters_.cmd_set.add();
  stream.key.assign(event.key);
  stream.concat = is_concat(event.header.opcode);
  if (stream.concat) return;
  store::ItemMeta meta;
  store::PutOptions options;
  plan(event.header, event.extras, meta, options);
  write_.reserve(stream.write, event.key, event.value_size, meta, options);
}

void McBinaryProcessor::stream_end(const Event& event, McBinaryStream& stream, OutputQueue& out) {
  assert(stream.active);
  const Header& header = event.header;
  if (stream.refusal != Status::success) {
    counters_.client_errors.add();
    respond_error(out, header, stream.refusal);
  } else {
    store::PutStatus status = store::PutStatus::aborted;
    if (stream.concat) {
      const auto opcode = static_cast<Opcode>(header.opcode);
      status = write_.concat(stream.key, stream.concat_data, opcode == Opcode::prepend || opcode == Opcode::prependq);
      if (status == store::PutStatus::stored) write_.changed(stream.key);
    } else {
      status = write_.finish(stream.write);
    }
    answer_store(header, stream.key, status, out);
  }
  stream = McBinaryStream();
}

void McBinaryProcessor::answer_store(const Header& header, std::string_view key, store::PutStatus status,
                                     OutputQueue& out) {
  const bool concat = is_concat(header.opcode);
  const auto opcode = static_cast<Opcode>(header.opcode);
  const bool adds = opcode == Opcode::add || opcode == Opcode::addq;
  if (header.cas != 0 && !concat) {
    switch (status) {
      case store::PutStatus::stored: counters_.cas_hits.add(); break;
      case store::PutStatus::exists: counters_.cas_badval.add(); break;
      case store::PutStatus::not_found: counters_.cas_misses.add(); break;
      default: break;
    }
  }
  switch (status) {
    case store::PutStatus::stored:
      counters_.total_items.add();
      // The store does not return the new cas: read it back.
      if (!is_quiet(header.opcode)) respond_ok(out, header, cas_of(key));
      return;
    case store::PutStatus::not_stored:
      // memcached's words: an add finds the key, a replace does not, a concat has nothing to extend.
      respond_error(out, header, concat ? Status::not_stored : adds ? Status::key_exists : Status::key_not_found);
      return;
    case store::PutStatus::exists:
      // A concat that lost every retry to concurrent writers did not happen.
      respond_error(out, header, concat ? Status::not_stored : Status::key_exists);
      return;
    case store::PutStatus::not_found:
      respond_error(out, header, Status::key_not_found);
      return;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
    case store::PutStatus::older:
      counters_.no_memory.add();
      drop_after_failed_set(header, key);
      respond_error(out, header, Status::out_of_memory);
      return;
  }
  assert(false && "unknown PutStatus");
}

void McBinaryProcessor::remove(const Event& event, OutputQueue& out) {
  const Header& header = event.header;
  if (header.cas != 0) {
    uint64_t cas = 0;
    const bool present = store_.get(event.key, [&](const store::ItemView& item) { cas = item.cas(); });
    if (present && cas != header.cas) {
      respond_error(out, header, Status::key_exists);
      return;
    }
  }
  if (!write_.del(event.key)) {
    counters_.delete_misses.add();
    respond_error(out, header, Status::key_not_found);
    return;
  }
  counters_.delete_hits.add();
  if (!is_quiet(header.opcode)) respond_ok(out, header);
}

void McBinaryProcessor::arithmetic(const Event& event, OutputQueue& out) {
  const Header& header = event.header;
  const auto opcode = static_cast<Opcode>(header.opcode);
  const bool decrement = opcode == Opcode::decrement || opcode == Opcode::decrementq;
  const uint64_t delta = load_be(event.extras, 0, 8);
  const uint32_t expiration = static_cast<uint32_t>(load_be(event.extras, 16, 4));
  if (header.cas != 0) {
    const uint64_t cas = cas_of(event.key);
    if (cas != 0 && cas != header.cas) {
      respond_error(out, header, Status::key_exists);
      return;
    }
  }
  const WritePath::ArithInitial initial{load_be(event.extras, 8, 8),
                                        TextProcessor::expires_at(expiration, store_.store().now_s())};
  uint64_t value = 0;
  const store::ArithStatus status = write_.add_delta_or_create(
      event.key, delta, decrement, expiration == no_create_expiration ? nullptr : &initial, &value);
  switch (status) {
    case store::ArithStatus::ok: {
      write_.changed(event.key);
      (decrement ? counters_.decr_hits : counters_.incr_hits).add();
      if (is_quiet(header.opcode)) return;
      char digits[8];
      store_be(digits, value, sizeof(digits));
      respond_ok(out, header, cas_of(event.key), {digits, sizeof(digits)});
      return;
    }
    case store::ArithStatus::not_found:
      (decrement ? counters_.decr_misses : counters_.incr_misses).add();
      respond_error(out, header, Status::key_not_found);
      return;
    case store::ArithStatus::not_number:
      counters_.client_errors.add();
      respond_error(out, header, Status::non_numeric);
      return;
    case store::ArithStatus::no_memory:
      counters_.no_memory.add();
      respond_error(out, header, Status::out_of_memory);
      return;
  }
  assert(false && "unknown ArithStatus");
}

void McBinaryProcessor::flush(const Event& event, OutputQueue& out) {
  counters_.cmd_flush.add();
  const uint32_t delay = event.extras.empty() ? 0 : static_cast<uint32_t>(load_be(event.extras, 0, 4));
  // A delay of zero flushes now; a later one schedules it.
  write_.flush_all(delay == 0 ? 0 : TextProcessor::expires_at(delay, store_.store().now_s()));
  if (!is_quiet(event.header.opcode)) respond_ok(out, event.header);
}

void McBinaryProcessor::stats(const Event& event, OutputQueue& out) {
  const std::string_view group = event.key;
  std::string lines;
  if (group.empty()) {
    lines = format_text_stats(text_.stats_context(), store_.store().stats(), store_.store().now_s());
  } else if (group == "settings") {
    lines = format_text_settings(text_.stats_context(), store_.store().stats());
  } else if (group != "items" && group != "slabs" && group != "sizes" && group != "conns") {
    respond_error(out, event.header, Status::key_not_found);
    return;
  }
  // The text port's "STAT name value" lines, one response each, then the
  // empty response that ends them.
  std::string_view rest = lines;
  constexpr std::string_view stat_prefix = "STAT ";
  while (rest.starts_with(stat_prefix)) {
    const size_t line_end = rest.find("\r\n");
    assert(line_end != std::string_view::npos);
    const std::string_view line = rest.substr(stat_prefix.size(), line_end - stat_prefix.size());
    const size_t space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    const std::string_view value = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    mc_binary::Response(event.header, Status::success, 0).send(out, {}, name, value);
    rest.remove_prefix(line_end + 2);
  }
  respond_ok(out, event.header);
}

}  // namespace ringcache::server
