// What an event loop needs from the rest of the daemon, as interfaces, so
// that io/ includes neither process/ nor the store: a session for each
// connection it accepts, a tick for housekeeping, and somewhere to count.
// process/worker_processors.h implements them; main.cc connects the two.
#pragma once

#include <cstdint>
#include <memory>

#include "server/io/counter.h"
#include "server/io/session.h"
#include "server/listen_sockets.h"

namespace ringcache::server {

class TlsChannel;

// A worker's connection counters (a part of STATS), written by its event loop.
struct ConnectionCounters {
  SingleWriterCounter connections_open;
  SingleWriterCounter connections_accepted;  // connections this thread has served
  SingleWriterCounter bytes_received;
  SingleWriterCounter bytes_sent;
  SingleWriterCounter read_pauses;           // times a connection stopped being read (slow reader)
  SingleWriterCounter connections_dropped;   // closed for lack of memory or a protocol violation
  SingleWriterCounter upload_aborts;         // closed mid-request after upload_idle_ms_max without a byte
  // TLS (io/tls/): handshakes completed and connections open, by version;
  // handshakes that failed (bad or no certificate, protocol errors,
  // plaintext clients, too many bytes, timeouts), and of those the timeouts.
  SingleWriterCounter tls_handshakes_tls12;
  SingleWriterCounter tls_handshakes_tls13;
  SingleWriterCounter tls_connections_tls12;
  SingleWriterCounter tls_connections_tls13;
  SingleWriterCounter tls_handshake_errors;
  SingleWriterCounter tls_handshake_timeouts;
};

// One worker's protocol side; used only by that worker's thread.
class WorkerServices {
 public:
  virtual ~WorkerServices() = default;
  // The session of a connection accepted on a listener of `kind`; `tls`
  // is its channel (nullptr: plaintext), which outlives the session. May
  // throw std::bad_alloc (the connection is then closed).
  virtual std::unique_ptr<Session> open_session(ListenerKind kind, int fd, const TlsChannel* tls) = 0;
  // Once per housekeeping tick (expire_interval_ms).
  virtual void tick() = 0;
};

class WorkerServicesFactory {
 public:
  // Builds worker `worker`'s services, in that worker's own thread, once.
  // May throw: the worker then fails to start.
  virtual std::unique_ptr<WorkerServices> make(uint32_t worker) = 0;
  virtual ConnectionCounters& counters(uint32_t worker) = 0;

 protected:
  ~WorkerServicesFactory() = default;
};

}  // namespace ringcache::server
