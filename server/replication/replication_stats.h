// Replication counters. The binary STATS reply lists them after the
// daemon's own fields, each name starting with REPL_ (formatted with the
// other fields in process/binary_stats.cc).
//
// Every counter has one writing thread (the replication thread, or the
// worker that applies an incoming stream): SingleWriterCounter, the same
// type as the daemon's own counters.
#pragma once

#include <cstdint>
#include <string>

#include "server/io/counter.h"

namespace ringcache::replication {

// The daemon's one single-writer counter type (io/counter.h).
using server::SingleWriterCounter;

// Written by the replication thread.
struct alignas(server::cache_line_bytes) SenderCounters {
  SingleWriterCounter peers_connected;   // outgoing links streaming now
  SingleWriterCounter writes_queued;     // client writes queued, once per streaming peer
  SingleWriterCounter resync_items;      // items sent by resync scans
  SingleWriterCounter resyncs_started;   // resyncs begun towards a peer
  SingleWriterCounter resyncs_done;      // resyncs that reached RESYNC_END
  SingleWriterCounter queue_overflows;   // peers cut because the log was full
  SingleWriterCounter handoff_overflows; // worker handoff rings that overflowed
  SingleWriterCounter queued_bytes;      // bytes waiting for peers (log + pending), sampled
  SingleWriterCounter resyncing;         // peers a copy is being scanned for now, sampled with queued_bytes
  SingleWriterCounter bytes_sent;
  SingleWriterCounter connects;          // successful connections
  SingleWriterCounter auth_failures;     // peers that failed to prove the secret, or refused our proof
  SingleWriterCounter tls_failures;      // links whose TLS failed (peer certificate, ours refused, timeout)
};

// Written by one worker (the incoming streams it serves).
struct alignas(server::cache_line_bytes) ReceiverCounters {
  SingleWriterCounter streams;           // incoming streams open now on this worker
  SingleWriterCounter applied;           // PUT/DEL stored because newer
  SingleWriterCounter ignored_older;     // PUT/DEL the store already had a newer version for
  SingleWriterCounter apply_failed;      // not stored for lack of memory
  SingleWriterCounter apply_waits;       // streamed values that waited for the upload budget
  SingleWriterCounter too_big;           // frames over this node's --max-item
  SingleWriterCounter resyncs_received;  // RESYNC_BEGIN seen
  SingleWriterCounter flushes_received;  // FLUSH frames applied (live or before a resync)
  SingleWriterCounter lag_us;            // latest heartbeat delay seen on this worker
  SingleWriterCounter auth_failures;     // hellos or proofs refused for want of the secret
  SingleWriterCounter address_refused;   // unauthenticated hellos from addresses that are no peer's
  SingleWriterCounter hellos_refused;    // malformed hellos, own node id, tag clash, too many streams
  SingleWriterCounter skew_refused;      // streams closed for a version too far ahead of our clock
  SingleWriterCounter tls_failures;      // hellos refused for want of a verified TLS client certificate
};

struct ReplicationStats {
  uint64_t node_tag = 0;
  uint64_t peers = 0;
  uint64_t peers_connected = 0;
  uint64_t incoming = 0;
  uint64_t writes_queued = 0;
  uint64_t resync_items = 0;
  uint64_t applied = 0;
  uint64_t ignored_older = 0;
  uint64_t apply_failed = 0;
  uint64_t apply_waits = 0;
  uint64_t too_big = 0;
  uint64_t resyncs_started = 0;
  uint64_t resyncs_done = 0;
  uint64_t resyncs_received = 0;
  uint64_t flushes_received = 0;
  uint64_t queue_overflows = 0;
  uint64_t handoff_overflows = 0;
  uint64_t queued_bytes = 0;
  uint64_t resyncing = 0;
  uint64_t bytes_sent = 0;
  uint64_t lag_us = 0;
  uint64_t authenticated = 0;  // 1 with --peer-secret-file
  uint64_t auth_failures = 0;
  uint64_t address_refused = 0;
  uint64_t hellos_refused = 0;
  uint64_t skew_refused = 0;
  uint64_t tls = 0;  // 1 with --tls-cert: links are mutually authenticated TLS
  uint64_t tls_failures = 0;
};

}  // namespace ringcache::replication
