// ParseStep: what one state of an incremental parser did with its input.
//
// The three parsers of the daemon (protocol/binary FrameParser,
// protocol/text TextParser, replication's StreamDecoder) are each a loop
// over one function per state. A state's function either moved the parser
// to another state (again: take the next step in the same call) or set the
// event that the call returns (done; an event left untouched is need_more).
//
// Header-only and dependency-free, so that replication/ can see it too.
#pragma once

#include <cstdint>

namespace ringcache::protocol {

enum class ParseStep : uint8_t { again, done };

}  // namespace ringcache::protocol
