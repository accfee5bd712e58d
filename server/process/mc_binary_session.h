// McBinarySession: memcached's binary protocol on the text port, for a
// connection whose first byte was 0x80 (TextPortSession, text_port_session.h,
// hands it over). Its parser, a value still streaming in, and the worker's
// McBinaryProcessor; like TextSession it answers one event at a time and
// checks between events whether the connection must pause. It carries the
// connection's authentication (auth.h), which SASL requests change under
// --auth-file (mc_binary_process.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "server/io/session.h"
#include "server/process/auth.h"
#include "server/process/mc_binary_process.h"
#include "server/protocol/memcache_binary/mc_binary_parser.h"

namespace ringcache::server {

class McBinarySession final : public Session {
 public:
  McBinarySession(McBinaryProcessor& processor, const ConnectionAuth& auth)
      : processor_(processor), parser_(processor.parser_limits()), auth_(auth) {}

  ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) override;
  std::unique_ptr<Session> take_successor() override { return nullptr; }

  bool at_frame_boundary() const override { return parser_.at_frame_boundary() && !stream_.active; }
  bool mid_request() const override { return !at_frame_boundary(); }
  size_t held_bytes() const override { return parser_.buffered_bytes() + stream_.held_bytes(); }
  const char* close_reason() const override {
    return "binary quit, a byte other than 0x80 starting a request, or failed SASL authentication";
  }

 private:
  McBinaryProcessor& processor_;
  protocol::memcache_binary::McBinaryParser parser_;
  McBinaryStream stream_;
  ConnectionAuth auth_;
};

}  // namespace ringcache::server
