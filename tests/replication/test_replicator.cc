// The replication thread end to end on loopback, without the daemon: a
// Replicator streams to receivers that apply with IncomingStream, as workers
// do. Every wait is bounded.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "repl_test_util.h"

using namespace repl_test;

namespace {

// What a worker does for a client PUT / DEL (server/process/binary_process.cc).
void client_put(store::StoreThread& thread, WorkerReplication& worker, const std::string& key,
                const std::string& value) {
  const store::ItemMeta meta{0, 0, worker.next_version()};
  const store::PutStatus status = thread.put(key, value, meta, store::PutOptions{store::PutMode::newer, 0});
  REQUIRE((status == store::PutStatus::stored || status == store::PutStatus::older));
  if (status == store::PutStatus::stored) worker.put(key, value, meta);
}

void client_del(store::StoreThread& thread, WorkerReplication& worker, const std::string& key) {
  const uint64_t version = worker.next_version();
  const uint32_t expires_at = worker.tombstone_expires_at(thread.store().now_s());
  if (thread.del_versioned(key, version, expires_at) == store::PutStatus::stored) worker.del(key, version);
}

std::string value_for(int i, size_t size = 100) {
  std::string v(size, static_cast<char>('a' + i % 26));
  const std::string tag = std::to_string(i);
  v.replace(0, std::min(tag.size(), size), tag.substr(0, size));
  return v;
}

// One node of an in-process mesh: store, replicator, receiver.
struct MeshNode {
  uint16_t port = 0;
  int fd = -1;
  store::Store store{versioned_config()};
  std::unique_ptr<Replicator> replicator;
  std::unique_ptr<Receiver> receiver;
  std::unique_ptr<store::StoreThread> client;
};

std::vector<std::unique_ptr<MeshNode>> make_mesh(size_t count,
                                                 std::shared_ptr<const PeerSecret> secret = nullptr) {
  std::vector<std::unique_ptr<MeshNode>> nodes;
  for (size_t i = 0; i < count; ++i) {
    nodes.push_back(std::make_unique<MeshNode>());
    nodes.back()->fd = listen_loopback(nodes.back()->port);
  }
  for (size_t i = 0; i < count; ++i) {
    std::vector<uint16_t> peers;
    for (size_t j = 0; j < count; ++j) {
      if (j != i) peers.push_back(nodes[j]->port);
    }
    MeshNode& n = *nodes[i];
    n.replicator = std::make_unique<Replicator>(n.store, sender_config(std::to_string(i + 1), peers, secret));
    n.receiver = std::make_unique<Receiver>(n.store, n.replicator->clock(), n.fd, n.port, count - 1, secret);
    n.client = std::make_unique<store::StoreThread>(n.store);
    std::string error;
    REQUIRE(n.replicator->start(error));
  }
  return nodes;
}

bool mesh_converged(std::vector<std::unique_ptr<MeshNode>>& nodes) {
  const auto first = contents(*nodes[0]->client);
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (contents(*nodes[i]->client) != first) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a peer gets a full copy on connecting, then the live stream") {
  LogCapture::clear();
  ReceivingPeer peer;
  store::Store store(versioned_config());
  store::StoreThread thread(store);
  HybridClock seed_clock(1);
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(thread.put("pre-" + std::to_string(i), value_for(i), store::ItemMeta{0, 0, seed_clock.next()}) ==
            store::PutStatus::stored);
  }
  std::string big(1024 * 1024 + 3, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  REQUIRE(thread.put("pre-big", big, store::ItemMeta{0, 0, seed_clock.next()}) == store::PutStatus::stored);
  REQUIRE(thread.del_versioned("pre-7", seed_clock.next(), store.now_s() + 600) == store::PutStatus::stored);

  Replicator replicator(store, sender_config("alpha", {peer.port}));
  std::string error;
  REQUIRE(replicator.start(error));
  store::StoreThread peer_thread(peer.store);
  CHECK(wait_until([&] { return contents(peer_thread) == contents(thread); }));
  CHECK(peer.receiver.hello_node_id() == "alpha");
  CHECK(!get_string(peer_thread, "pre-7"));
  CHECK(get_string(peer_thread, "pre-big") == big);
  CHECK(wait_until([&] { return replicator.stats().resyncs_done == 1; }));

  WorkerReplication& worker = replicator.worker(0);
  for (int i = 0; i < 500; ++i) client_put(thread, worker, "live-" + std::to_string(i), value_for(i, 10 + i));
  client_put(thread, worker, "live-big", std::string(200 * 1024, 'B'));  // sent by lookup
  client_del(thread, worker, "pre-8");
  client_put(thread, worker, "pre-9", "overwritten");
  CHECK(wait_until([&] { return contents(peer_thread) == contents(thread); }));
  CHECK(get_string(peer_thread, "live-big") == std::string(200 * 1024, 'B'));
  CHECK(!get_string(peer_thread, "pre-8"));
  CHECK(version_of(peer_thread, "pre-9") == version_of(thread, "pre-9"));

  const ReplicationStats stats = replicator.stats();
  CHECK(stats.peers == 1);
  CHECK(stats.peers_connected == 1);
  CHECK(stats.writes_queued == 503);
  CHECK(stats.resync_items == 2001);  // 1999 items, the big one, the tombstone of pre-7
  CHECK(stats.queue_overflows == 0);
  CHECK(stats.resyncing == 0);
  CHECK(peer.receiver.connections == 1);
  CHECK(LogCapture::contains("replication: connected to peer 127.0.0.1:"));
  CHECK(LogCapture::contains("resync to peer 127.0.0.1:" + std::to_string(peer.port) + " done: 2001 items"));
  // Heartbeats arrive even with no writes: the receiver measures the lag.
  CHECK(wait_until([&] { return peer.receiver.counters().lag_us.get() > 0; }));
}

TEST_CASE("a peer that is unreachable at start-up joins later and gets everything") {
  LogCapture::clear();
  ReceivingPeer peer(false);  // port bound, not listening: connections are refused
  SendingNode node(sender_config("early", {peer.port}));
  node.start();
  WorkerReplication& worker = node.replicator.worker(0);
  for (int i = 0; i < 300; ++i) client_put(node.thread, worker, "k" + std::to_string(i), value_for(i));
  CHECK(wait_until([&] { return LogCapture::contains("unreachable"); }));
  CHECK(node.replicator.stats().peers_connected == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  peer.receiver.start_listening();
  store::StoreThread peer_thread(peer.store);
  CHECK(wait_until([&] { return contents(peer_thread) == contents(node.thread); }));
  CHECK(contents(peer_thread).size() == 300);
  CHECK(node.replicator.stats().peers_connected == 1);
}

TEST_CASE("REPL_RESYNCING counts the copies under way; a copy dropped half-way stops counting") {
  // What a node about to be stopped waits for (docs/replication.md §8):
  // started minus done cannot tell, since a dropped copy never gets done.
  LogCapture::clear();
  auto peer = std::make_unique<ReceivingPeer>(true, 128 * store::mib_bytes);
  peer->receiver.pause_reading = true;
  store::Store store(versioned_config(128 * store::mib_bytes));
  store::StoreThread thread(store);
  HybridClock seed_clock(1);
  // Far more than both socket buffers hold: the copy stalls.
  for (int i = 0; i < 30000; ++i) {
    REQUIRE(thread.put("pre-" + std::to_string(i), value_for(i, 1000), store::ItemMeta{0, 0, seed_clock.next()}) ==
            store::PutStatus::stored);
  }
  Replicator replicator(store, sender_config("copying", {peer->port}));
  std::string error;
  REQUIRE(replicator.start(error));
  CHECK(wait_until([&] { return replicator.stats().resyncing == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ReplicationStats stalled = replicator.stats();
  CHECK(stalled.resyncing == 1);
  CHECK(stalled.peers_connected == 1);
  CHECK(stalled.resyncs_done == 0);

  peer.reset();  // the stalled copy's connection is reset
  CHECK(wait_until([&] { return replicator.stats().peers_connected == 0; }));
  CHECK(wait_until([&] { return replicator.stats().resyncing == 0; }));
  const ReplicationStats dropped = replicator.stats();
  CHECK(dropped.resyncs_started > dropped.resyncs_done);
  CHECK(dropped.queued_bytes == 0);
}

TEST_CASE("a peer that falls too far behind is cut, reconnected and resynced; nothing is lost") {
  LogCapture::clear();
  ReceivingPeer peer(true, 128 * store::mib_bytes);
  ReplicationConfig config = sender_config("fast", {peer.port});
  config.tuning.log_bytes_max = 256 * 1024;
  config.tuning.log_chunk_bytes = 16 * 1024;
  SendingNode node(config, versioned_config(128 * store::mib_bytes));
  node.start();
  store::StoreThread peer_thread(peer.store);
  CHECK(wait_until([&] { return node.replicator.stats().resyncs_done == 1; }));

  peer.receiver.pause_reading = true;
  WorkerReplication& worker = node.replicator.worker(0);
  // Far more than the log and both socket buffers hold.
  for (int i = 0; i < 40000; ++i) {
    client_put(node.thread, worker, "w" + std::to_string(i), value_for(i, 1000));
    if (i % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(wait_until([&] { return node.replicator.stats().queue_overflows >= 1; }));
  peer.receiver.pause_reading = false;
  CHECK(wait_until([&] { return contents(peer_thread) == contents(node.thread); }, 20000));
  CHECK(contents(peer_thread).size() == 40000);
  CHECK(peer.receiver.connections >= 2);
  CHECK(node.replicator.stats().resyncs_started >= 2);
  CHECK(LogCapture::contains("send queue overflowed"));
}

TEST_CASE("a handoff ring that overflows triggers a catch-up resync of what is new; nothing is lost") {
  LogCapture::clear();
  ReceivingPeer peer;
  ReplicationConfig config = sender_config("tiny-ring", {peer.port});
  config.tuning.handoff_ring_bytes = 4096;
  SendingNode node(config);
  WorkerReplication& worker = node.replicator.worker(0);
  // Before the thread runs nothing drains: the ring overflows for sure. The
  // full resync on connecting covers those writes.
  for (int i = 0; i < 200; ++i) client_put(node.thread, worker, "before-" + std::to_string(i), value_for(i));
  node.start();
  store::StoreThread peer_thread(peer.store);
  CHECK(wait_until([&] { return contents(peer_thread) == contents(node.thread); }));
  CHECK(node.replicator.stats().handoff_overflows == 1);
  CHECK(node.replicator.stats().resync_items == 200);

  // Old items, handed over calmly.
  for (int i = 0; i < 1000; ++i) {
    client_put(node.thread, worker, "old-" + std::to_string(i), value_for(i, 64));
    if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(wait_until([&] { return contents(peer_thread) == contents(node.thread); }));
  const ReplicationStats calm = node.replicator.stats();
  // Bursts far larger than the ring, until one overflows while streaming.
  int burst_items = 0;
  for (int round = 0; round < 50 && node.replicator.stats().handoff_overflows == calm.handoff_overflows; ++round) {
    for (int i = 0; i < 2000; ++i, ++burst_items) {
      client_put(node.thread, worker, "burst-" + std::to_string(burst_items), value_for(i, 64));
    }
  }
  CHECK(wait_until([&] { return contents(peer_thread) == contents(node.thread); }, 20000));
  const ReplicationStats after = node.replicator.stats();
  REQUIRE(after.handoff_overflows > calm.handoff_overflows);
  CHECK(after.resyncs_started == after.handoff_overflows);  // the first came before connecting
  // Catch-up resyncs sent only what was at least as new as a lost write:
  // never the 1000 old items again.
  CHECK(after.resync_items - calm.resync_items <= static_cast<uint64_t>(burst_items) *
                                                       (after.handoff_overflows - calm.handoff_overflows));
  CHECK(LogCapture::contains("catch-up resync to peer"));
  CHECK(peer.receiver.connections == 1);
}

TEST_CASE("a peer that refuses the hello is logged and retried until it accepts") {
  LogCapture::clear();
  ReceivingPeer peer;
  peer.receiver.refuse = true;
  SendingNode node(sender_config("refused", {peer.port}));
  node.start();
  client_put(node.thread, node.replicator.worker(0), "k", "v");
  CHECK(wait_until([&] { return LogCapture::contains("refused our hello"); }));
  peer.receiver.refuse = false;
  store::StoreThread peer_thread(peer.store);
  CHECK(wait_until([&] { return get_string(peer_thread, "k") == std::optional<std::string>("v"); }));
}

TEST_CASE("admit refuses our own node id and a clashing version tag") {
  store::Store store(versioned_config());
  Replicator replicator(store, sender_config("12", {}));
  CHECK(replicator.node_tag() == 12);
  CHECK(replicator.admit("12") == AdmitStatus::own_node_id);
  CHECK(replicator.admit("13") == AdmitStatus::admitted);
  std::string clash;
  for (int i = 0; clash.empty(); ++i) {
    const std::string id = "n" + std::to_string(i);
    if (node_tag_of(id) == 12) clash = id;
  }
  CHECK(replicator.admit(clash) == AdmitStatus::tag_clash);
}

TEST_CASE("three nodes in a full mesh converge, concurrent writes and deletes included") {
  LogCapture::clear();
  auto nodes = make_mesh(3);
  // Keys written on one node, keys written on every node at once, deletes.
  for (int i = 0; i < 3000; ++i) {
    MeshNode& n = *nodes[static_cast<size_t>(i) % 3];
    client_put(*n.client, n.replicator->worker(0), "spread-" + std::to_string(i), value_for(i));
  }
  for (int i = 0; i < 300; ++i) {
    for (size_t j = 0; j < 3; ++j) {
      MeshNode& n = *nodes[j];
      client_put(*n.client, n.replicator->worker(0), "contended-" + std::to_string(i),
                 "from node " + std::to_string(j) + " #" + std::to_string(i));
    }
  }
  for (int i = 0; i < 3000; i += 10) {
    MeshNode& n = *nodes[static_cast<size_t>(i / 10) % 3];
    client_del(*n.client, n.replicator->worker(0), "spread-" + std::to_string(i));
  }
  CHECK(wait_until([&] { return mesh_converged(nodes); }, 15000));
  const auto final_contents = contents(*nodes[0]->client);
  CHECK(final_contents.size() == 3000 - 300 + 300);
  for (int i = 0; i < 300; i += 37) {
    const std::string key = "contended-" + std::to_string(i);
    const uint64_t v0 = version_of(*nodes[0]->client, key);
    CHECK(v0 != 0);
    CHECK(version_of(*nodes[1]->client, key) == v0);
    CHECK(version_of(*nodes[2]->client, key) == v0);
  }
  for (auto& n : nodes) n->replicator->stop();
}

TEST_CASE("replicated writes are applied, never forwarded again") {
  auto nodes = make_mesh(3);
  for (auto& n : nodes) {
    CHECK(wait_until([&] { return n->replicator->stats().resyncs_done == 2; }));
  }
  MeshNode& origin = *nodes[0];
  for (int i = 0; i < 1000; ++i) {
    client_put(*origin.client, origin.replicator->worker(0), "only-a-" + std::to_string(i), value_for(i));
  }
  CHECK(wait_until([&] { return mesh_converged(nodes); }));
  CHECK(origin.replicator->stats().writes_queued == 2000);  // 1000 writes x 2 peers
  CHECK(nodes[1]->replicator->stats().writes_queued == 0);
  CHECK(nodes[2]->replicator->stats().writes_queued == 0);
  CHECK(nodes[1]->receiver->counters().applied.get() == 1000);
  for (auto& n : nodes) n->replicator->stop();
}

TEST_CASE("with a secret, a link authenticates before streaming; a peer with another secret gets nothing") {
  LogCapture::clear();
  ReceivingPeer peer(true, 64 * store::mib_bytes, make_secret('s'));
  SendingNode node(sender_config("alpha", {peer.port}, make_secret('s')));
  node.start();
  client_put(node.thread, node.replicator.worker(0), "k", "v");
  store::StoreThread peer_thread(peer.store);
  CHECK(wait_until([&] { return get_string(peer_thread, "k") == "v"; }));
  CHECK(LogCapture::contains("connected to peer 127.0.0.1:" + std::to_string(peer.port) + " (127.0.0.1:" +
                             std::to_string(peer.port) + "), authenticated"));
  CHECK(node.replicator.stats().authenticated == 1);
  CHECK(node.replicator.stats().auth_failures == 0);

  LogCapture::clear();
  ReceivingPeer stranger(true, 64 * store::mib_bytes, make_secret('t'));
  SendingNode node2(sender_config("beta", {stranger.port}, make_secret('s')));
  node2.start();
  client_put(node2.thread, node2.replicator.worker(0), "k", "v");
  CHECK(wait_until([&] { return node2.replicator.stats().auth_failures >= 2; }));
  CHECK(LogCapture::contains("not authenticated (it failed to prove the peer secret"));
  CHECK(node2.replicator.stats().peers_connected == 0);
  store::StoreThread stranger_thread(stranger.store);
  CHECK(!get_string(stranger_thread, "k"));
}

TEST_CASE("three nodes with a secret converge") {
  auto nodes = make_mesh(3, make_secret('m'));
  for (int i = 0; i < 300; ++i) {
    MeshNode& n = *nodes[static_cast<size_t>(i) % 3];
    client_put(*n.client, n.replicator->worker(0), "key-" + std::to_string(i % 50), value_for(i));
  }
  CHECK(wait_until([&] { return mesh_converged(nodes); }));
  for (auto& n : nodes) CHECK(n->replicator->stats().auth_failures == 0);
}

namespace {

// Stops the peer's reading, then writes 10 000 values of 1000 bytes on the
// node: more than the socket buffers hold, less than the log (16 MiB). True
// once some are queued on the node, in this node only.
bool queue_writes_the_peer_does_not_read(SendingNode& node, ReceivingPeer& peer) {
  peer.receiver.pause_reading = true;
  WorkerReplication& worker = node.replicator.worker(0);
  for (int i = 0; i < 10000; ++i) {
    client_put(node.thread, worker, "w" + std::to_string(i), value_for(i, 1000));
    if (i % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return wait_until([&] { return node.replicator.stats().queued_bytes > 0; });
}

}  // namespace

TEST_CASE("stop first sends what is queued to a streaming peer, even one that reads it late") {
  LogCapture::clear();
  ReceivingPeer peer(true, 128 * store::mib_bytes);
  SendingNode node(sender_config("stopping", {peer.port}), versioned_config(128 * store::mib_bytes));
  node.start();
  store::StoreThread peer_thread(peer.store);
  REQUIRE(wait_until([&] { return node.replicator.stats().resyncs_done == 1; }));

  REQUIRE(queue_writes_the_peer_does_not_read(node, peer));
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    peer.receiver.pause_reading = false;
  });
  node.replicator.stop();
  reader.join();
  CHECK(wait_until([&] { return contents(peer_thread) == contents(node.thread); }, 20000));
  CHECK(contents(peer_thread).size() == 10000);
  CHECK(LogCapture::contains("replication: stop: sent every write accepted before the stop to 1 of 1"));
  CHECK(!LogCapture::contains("gave up"));
}

TEST_CASE("stop gives up on a peer that reads nothing once stop_drain_ms_max has passed") {
  LogCapture::clear();
  ReceivingPeer peer;
  ReplicationConfig config = sender_config("stuck", {peer.port});
  config.tuning.stop_drain_ms_max = 300;
  SendingNode node(config);
  node.start();
  REQUIRE(wait_until([&] { return node.replicator.stats().resyncs_done == 1; }));

  REQUIRE(queue_writes_the_peer_does_not_read(node, peer));
  const auto start = std::chrono::steady_clock::now();
  node.replicator.stop();
  const auto took_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  CHECK(took_ms >= 300);
  // The margin covers a loaded machine and the sanitizers, not a second drain.
  CHECK(took_ms < 300 + 1500);
  CHECK(LogCapture::contains("replication: stop: gave up after"));
  CHECK(LogCapture::contains("bytes unsent"));
  peer.receiver.pause_reading = false;
}
