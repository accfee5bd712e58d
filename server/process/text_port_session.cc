#include "server/process/text_port_session.h"

#include "server/process/mc_binary_session.h"
#include "server/process/text_session.h"

namespace ringcache::server {

ConsumeResult TextPortSession::consume(std::string_view input, OutputQueue& out, const PauseCheck&) {
  ConsumeResult result;
  if (input.empty()) return result;
  const auto first = static_cast<uint8_t>(input[0]);
  if (first == protocol::memcache_binary::request_magic) {
    successor_ = std::make_unique<McBinarySession>(binary_, auth_);
  } else if (text_first_byte(first)) {
    successor_ = std::make_unique<TextSession>(text_, auth_);
  } else {
    text_.counters().client_errors.add();
    out.append(unknown_protocol_line);
    result.close_after_reply = true;
    return result;
  }
  result.handed_over = true;
  return result;
}

}  // namespace ringcache::server
