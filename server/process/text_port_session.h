// TextPortSession: the first session of every text-port connection. Like
// memcached on its port, the first byte picks the protocol: 0x80 starts
// memcached's binary protocol (McBinarySession), a byte a text command line
// can start with starts the text protocol (TextSession); the connection is
// handed over to that session before anything is parsed, so neither
// protocol pays for the choice after the first byte. Any other first byte
// (a control byte, or 0x81..0xFF) is answered with one error line and the
// connection closed at once, rather than waiting for a line end that
// may never come. The connection's authentication (auth.h) goes to the
// session chosen: with --auth-file the text protocol authenticates with
// memcached's `set` convention (text_session.h), the binary one with SASL
// (mc_binary_process.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "server/io/session.h"
#include "server/process/auth.h"
#include "server/process/mc_binary_process.h"
#include "server/process/text_process.h"

namespace ringcache::server {

// The reply to a first byte no protocol on the text port accepts.
inline constexpr std::string_view unknown_protocol_line =
    "CLIENT_ERROR unknown protocol: expected a text command or 0x80\r\n";

// Whether a text command line may start with `byte` (printable ASCII or
// whitespace: anything else is not the text protocol).
constexpr bool text_first_byte(uint8_t byte) { return (byte >= 0x20 && byte <= 0x7e) || (byte >= 0x09 && byte <= 0x0d); }

class TextPortSession final : public Session {
 public:
  TextPortSession(TextProcessor& text, McBinaryProcessor& binary, const ConnectionAuth& auth)
      : text_(text), binary_(binary), auth_(auth) {}

  ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) override;
  std::unique_ptr<Session> take_successor() override { return std::move(successor_); }

  bool at_frame_boundary() const override { return true; }
  bool mid_request() const override { return false; }
  size_t held_bytes() const override { return 0; }
  const char* close_reason() const override { return "first byte neither a text command nor 0x80"; }

 private:
  TextProcessor& text_;
  McBinaryProcessor& binary_;
  ConnectionAuth auth_;
  std::unique_ptr<Session> successor_;
};

}  // namespace ringcache::server
