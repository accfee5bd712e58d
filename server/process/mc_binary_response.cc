#include "server/process/mc_binary_response.h"

namespace ringcache::server::mc_binary {

namespace mcb = protocol::memcache_binary;
using mcb::Status;

std::string_view message_of(Status status) {
  switch (status) {
    case Status::success: return {};
    case Status::key_not_found: return "Not found";
    case Status::key_exists: return "Data exists for key.";
    case Status::value_too_large: return "Too large.";
    case Status::invalid_arguments: return "Invalid arguments";
    case Status::not_stored: return "Not stored.";
    case Status::non_numeric: return "Non-numeric server-side value for incr or decr";
    case Status::auth_error: return "Auth failure.";
    case Status::auth_continue: return "Auth continue";
    case Status::unknown_command: return "Unknown command";
    case Status::out_of_memory: return "Out of memory";
  }
  return "Unknown error";
}

void respond_ok(OutputQueue& out, const mcb::Header& request, uint64_t cas, std::string_view value) {
  Response(request, Status::success, cas).send(out, {}, {}, value);
}

void respond_error(OutputQueue& out, const mcb::Header& request, Status status) {
  assert(status != Status::success);
  Response(request, status, 0).send(out, {}, {}, message_of(status));
}

}  // namespace ringcache::server::mc_binary
