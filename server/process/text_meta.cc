// The meta commands of TextProcessor (mg, ms's reply, md, ma), apart from the
// classic commands in text_process.cc.
//
// Return flags are written in the order the client sent them, as memcached
// does: k (with " b" after it for a base64 key, which is echoed as sent), O,
// and the item facts c f s t where the command has them. Not supported, and
// therefore never answered: h and l (the store keeps no access history), the
// win/recache tokens of R, and the stale marking of I (md I deletes, ms I
// stores plainly). N vivifies: the first mg to miss creates an empty item
// and is told W; later ones see that item (memcached's Z token needs a
// per-item flag the store does not keep).
#include <algorithm>
#include <cassert>
#include <string>

#include "server/process/text_process.h"
#include "server/process/text_reply.h"

namespace ringcache::server {
namespace {

using protocol::text::Event;
using protocol::text::MetaRequest;

constexpr std::string_view out_of_memory_line = "SERVER_ERROR out of memory storing object\r\n";

// What a reply may say about the item, when it was read.
struct ItemFacts {
  uint64_t cas = 0;
  uint32_t flags = 0;
  uint64_t size = 0;
  int64_t ttl_s = -1;  // remaining seconds; -1 = never expires
};

ItemFacts facts_of(const store::ItemView& item, uint32_t now_s) {
  ItemFacts facts{item.cas(), item.flags(), item.value_size(), -1};
  if (item.expires_at() != 0) facts.ttl_s = item.expires_at() > now_s ? int64_t{item.expires_at() - now_s} : 0;
  return facts;
}

// The return flags a command answers, in request order. `facts` is null when
// the item was not read (a miss, or a reply that carries no item facts).
void append_return_flags(ReplyLine& line, const Event& event, std::string_view answered, const ItemFacts* facts) {
  const MetaRequest& meta = *event.meta;
  for (size_t i = 0; i < meta.count; ++i) {
    const char letter = meta.order[i];
    if (answered.find(letter) == std::string_view::npos) continue;
    switch (letter) {
      case 'k':
        line.text(" k").text(meta.key_token);
        if (meta.has('b')) line.text(" b");
        break;
      case 'O':
        line.text(" O").text(meta.opaque);
        break;
      case 'c':
        if (facts != nullptr) line.text(" c").number(facts->cas);
        break;
      case 'f':
        if (facts != nullptr) line.text(" f").number(facts->flags);
        break;
      case 's':
        if (facts != nullptr) line.text(" s").number(facts->size);
        break;
      case 't':
        if (facts != nullptr) line.text(" t").number(facts->ttl_s);
        break;
      default:
        break;
    }
  }
}

// A reply without a value: "HD", "NS", "EX", "NF" or "EN" and the flags.
void append_status_line(OutputQueue& out, std::string_view code, const Event& event, std::string_view answered,
                        const ItemFacts* facts = nullptr) {
  ReplyLine line;
  line.text(code);
  append_return_flags(line, event, answered, facts);
  out.append(line.end_line().view());
}

}  // namespace

void TextProcessor::meta_get(const Event& event, OutputQueue& out) {
  const MetaRequest& meta = *event.meta;
  counters_.cmd_meta.add();
  counters_.cmd_get.add();
  const uint32_t now = store_.store().now_s();
  if (meta.has('T')) {
    counters_.cmd_touch.add();
    const bool touched = write_.touch(event.key, expires_at(meta.ttl, now)) == store::PutStatus::stored;
    if (touched) write_.changed(event.key);
    (touched ? counters_.touch_hits : counters_.touch_misses).add();
  }
  const auto answer_hit = [&](bool won) {
    return store_.get(event.key, [&](const store::ItemView& item) {
      const ItemFacts facts = facts_of(item, now);
      ReplyLine line;
      if (meta.has('v')) {
        line.text("VA ").number(item.value_size());
      } else {
        line.text("HD");
      }
      append_return_flags(line, event, "cfksOt", &facts);
      if (won) line.text(" W");
      if (meta.has('v')) {
        append_line_and_value(out, line, item);
      } else {
        out.append(line.end_line().view());
      }
    });
  };
  if (answer_hit(false)) {
    counters_.get_hits.add();
    return;
  }
  counters_.get_misses.add();
  if (meta.has('N')) {
    // Vivify: the first client to miss creates an empty item and wins (W) the job of filling it.
    const store::ItemMeta item_meta{0, expires_at(meta.vivify_ttl, now), 0};
    const bool won =
        write_.put(event.key, {}, item_meta, store::PutOptions{store::PutMode::add, 0}) == store::PutStatus::stored;
    if (answer_hit(won)) return;
  }
  if (!meta.has('q')) append_status_line(out, "EN", event, "kO");
}

void TextProcessor::answer_meta_store(const Event& event, store::PutStatus status, OutputQueue& out) {
  const MetaRequest& meta = *event.meta;
  counters_.cmd_meta.add();
  switch (status) {
    case store::PutStatus::stored: {
      if (meta.has('q')) return;
      ItemFacts facts;
      const ItemFacts* known = nullptr;
      if (meta.has('c')) {
        // The store does not return the new cas: read it back.
        if (store_.get(event.key, [&](const store::ItemView& item) { facts = facts_of(item, store_.store().now_s()); }))
          known = &facts;
      }
      append_status_line(out, "HD", event, "kOc", known);
      return;
    }
    case store::PutStatus::not_stored:
    case store::PutStatus::exists:
      // exists: a compared cas differed, or a concat lost every retry.
      append_status_line(out, status == store::PutStatus::exists && meta.has('C') ? "EX" : "NS", event, "kO");
      return;
    case store::PutStatus::not_found:
      append_status_line(out, "NF", event, "kO");
      return;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
    case store::PutStatus::older:
      out.append(out_of_memory_line);
      return;
  }
  assert(false && "unknown PutStatus");
}

void TextProcessor::meta_delete(const Event& event, OutputQueue& out) {
  const MetaRequest& meta = *event.meta;
  counters_.cmd_meta.add();
  bool present = false;
  uint64_t cas = 0;
  store::ItemMeta item_meta;
  if (meta.has('C') || meta.has('x')) {
    present = store_.get(event.key, [&](const store::ItemView& item) {
      cas = item.cas();
      item_meta = store::ItemMeta{item.flags(), item.expires_at(), 0};
    });
    if (!present) {
      counters_.delete_misses.add();
      append_status_line(out, "NF", event, "kO");
      return;
    }
    if (meta.has('C') && cas != meta.compare_cas) {
      append_status_line(out, "EX", event, "kO");
      return;
    }
  }
  bool removed = false;
  if (meta.has('x')) {
    // x empties the value but keeps the item (its flags and expiry); the
    // put only lands if nobody changed the item since it was read.
    removed = write_.put(event.key, {}, item_meta, store::PutOptions{store::PutMode::cas, cas}) ==
              store::PutStatus::stored;
  } else {
    removed = write_.del(event.key);
  }
  if (!removed) {
    counters_.delete_misses.add();
    append_status_line(out, meta.has('x') ? "EX" : "NF", event, "kO");
    return;
  }
  counters_.delete_hits.add();
  if (!meta.has('q')) append_status_line(out, "HD", event, "kO");
}

void TextProcessor::meta_arithmetic(const Event& event, OutputQueue& out) {
  const MetaRequest& meta = *event.meta;
  counters_.cmd_meta.add();
  const bool decrement = meta.mode == 'D';
  const uint32_t now = store_.store().now_s();
  if (meta.has('C')) {
    uint64_t cas = 0;
    const bool present = store_.get(event.key, [&](const store::ItemView& item) { cas = item.cas(); });
    if (present && cas != meta.compare_cas) {
      append_status_line(out, "EX", event, "kO");
      return;
    }
  }
  uint64_t value = 0;
  // N auto-creates the key with the initial value (J), which is answered as is.
  const WritePath::ArithInitial initial{meta.initial, expires_at(meta.vivify_ttl, now)};
  const store::ArithStatus status =
      write_.add_delta_or_create(event.key, meta.delta, decrement, meta.has('N') ? &initial : nullptr, &value);
  switch (status) {
    case store::ArithStatus::ok:
      break;
    case store::ArithStatus::not_found:
      (decrement ? counters_.decr_misses : counters_.incr_misses).add();
      append_status_line(out, "NF", event, "kO");
      return;
    case store::ArithStatus::not_number:
      counters_.client_errors.add();
      out.append("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
      return;
    case store::ArithStatus::no_memory:
      counters_.no_memory.add();
      out.append(out_of_memory_line);
      return;
  }
  (decrement ? counters_.decr_hits : counters_.incr_hits).add();
  if (meta.has('T')) (void)write_.touch(event.key, expires_at(meta.ttl, now));
  write_.changed(event.key);
  if (meta.has('q') && !meta.has('v')) return;
  ItemFacts facts;
  const ItemFacts* known = nullptr;
  if (meta.has('c') || meta.has('t')) {
    if (store_.get(event.key, [&](const store::ItemView& item) { facts = facts_of(item, now); })) known = &facts;
  }
  ReplyLine digits;
  digits.number(value);
  ReplyLine line;
  if (meta.has('v')) {
    line.text("VA ").number(digits.view().size());
  } else {
    line.text("HD");
  }
  append_return_flags(line, event, "kOct", known);
  out.append(line.end_line().view());
  if (meta.has('v')) out.append(digits.end_line().view());
}

}  // namespace ringcache::server
