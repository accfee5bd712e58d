#include "protocol_codec.h"

#include <cassert>

#include "binary_codec.h"
#include "mc_binary_codec.h"
#include "text_codec.h"

namespace ringcache::loadgen {

std::string_view reply_status_name(reply_status status) {
  switch (status) {
    case reply_status::stored: return "STORED";
    case reply_status::hit: return "HIT";
    case reply_status::miss: return "MISS";
    case reply_status::einval: return "EINVAL";
    case reply_status::ebinary: return "EBINARY";
    case reply_status::ebig: return "EBIG";
    case reply_status::eunk: return "EUNK";
    case reply_status::not_found_on_put: return "ENOTFOUND_ON_PUT";
    case reply_status::not_stored: return "NOT_STORED";
    case reply_status::server_error: return "SERVER_ERROR";
    case reply_status::client_error: return "CLIENT_ERROR";
    case reply_status::error: return "ERROR";
  }
  assert(false && "reply_status out of range");
  return "?";
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
