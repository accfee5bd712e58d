#include "protocol_codec.h"

#include <array>
#include <cassert>

#include "binary_codec.h"
#include "mc_binary_codec.h"
#include "text_codec.h"

namespace ringcache::loadgen {

namespace {

// Indexed by reply_status, like the reply counters the report prints.
constexpr std::array<std::string_view, reply_status_count> reply_status_names = {
    "STORED", "HIT", "MISS", "EINVAL", "EBINARY", "EBIG", "EUNK", "ENOTFOUND_ON_PUT",
    "NOT_STORED", "SERVER_ERROR", "CLIENT_ERROR", "ERROR"};
static_assert(reply_status_names[static_cast<std::size_t>(reply_status::stored)] == "STORED");
static_assert(reply_status_names[static_cast<std::size_t>(reply_status::not_found_on_put)] ==
              "ENOTFOUND_ON_PUT");
static_assert(reply_status_names[static_cast<std::size_t>(reply_status::error)] == "ERROR");

}  // namespace

std::string_view reply_status_name(reply_status status) {
  const auto index = static_cast<std::size_t>(status);
  assert(index < reply_status_names.size() && "reply_status out of range");
  return reply_status_names[index];
}

std::unique_ptr<protocol_codec> make_codec(protocol_kind kind) {
  switch (kind) {
    case protocol_kind::binary: return std::make_unique<binary_codec>();
    case protocol_kind::text: return std::make_unique<text_codec>();
    case protocol_kind::mcbin: return std::make_unique<mc_binary_codec>();
  }
  assert(false && "protocol_kind out of range");
  return nullptr;
}

std::string_view protocol_name(protocol_kind kind) {
  switch (kind) {
    case protocol_kind::binary: return "binary";
    case protocol_kind::text: return "text";
    case protocol_kind::mcbin: return "mcbin";
  }
  assert(false && "protocol_kind out of range");
  return "?";
}

}  // namespace ringcache::loadgen
