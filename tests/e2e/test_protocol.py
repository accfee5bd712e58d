"""The binary protocol (docs/binary_protocol.md) against the real daemon: request semantics, replies, STATS,
EBIG, pipelining and byte-at-a-time frames."""

import random
import threading
import time

from clients import (EBIG, EINVAL, ENOTFOUND, MIB, OK, STATS_FRAME, Client, TextClient, del_frame, field, get_frame,
                     put_frame)
from daemon import Daemon
from harness import pattern, run_tests

REQUIRED_STATS = ["PUTS", "DELS", "GETS", "KEYS", "STATS", "INVALID", "HITS", "MISSES",
                  "EVICTIONS", "BYTES", "LIMIT", "CONNECTIONS", "THREADS", "UPTIME"]


def test_put_get_del(exe):
    with Daemon(exe, "-t", "2") as d, d.client() as c:
        assert c.get(b"missing") is None
        assert c.put(b"k", b"v1") == OK
        assert c.get(b"k") == b"v1"
        assert c.put(b"k", b"second value") == OK, "overwrite"
        assert c.get(b"k") == b"second value"
        assert c.delete(b"k") == OK
        assert c.get(b"k") is None
        assert c.delete(b"k") == ENOTFOUND
        # Keys and values are arbitrary bytes, empty ones included.
        binary_key = bytes(range(256)) + b"\0\0\xff"
        assert c.put(binary_key, b"\0" * 10 + b"\xff") == OK
        assert c.get(binary_key) == b"\0" * 10 + b"\xff"
        assert c.get(binary_key[:-1]) is None
        assert c.put(b"", b"empty key") == OK
        assert c.get(b"") == b"empty key"
        assert c.put(b"empty value", b"") == OK
        assert c.get(b"empty value") == b""
        # Another connection sees the same store.
        with d.client() as other:
            assert other.get(binary_key) == b"\0" * 10 + b"\xff"
            assert other.delete(b"") == OK
        assert c.get(b"") is None


def test_values_of_every_path(exe):
    # Copied (<= 16 KiB), pinned (> 16 KiB), streamed (> 64 KiB), chunked (> 1 MiB segments).
    sizes = [0, 1, 100, 16 * 1024, 16 * 1024 + 1, 64 * 1024, 64 * 1024 + 1, 512 * 1024 + 3,
             MIB, 3 * MIB + 5]
    with Daemon(exe, "-t", "2", "-m", "128") as d, d.client() as c:
        for i, size in enumerate(sizes):
            assert c.put(b"v%d" % i, pattern(size, i)) == OK, size
        for i, size in enumerate(sizes):
            assert c.get(b"v%d" % i) == pattern(size, i), size
        with d.client() as other:
            for i, size in reversed(list(enumerate(sizes))):
                assert other.get(b"v%d" % i) == pattern(size, i), size


def test_stats_fields_and_counts(exe):
    with Daemon(exe, "-t", "3", "-m", "32") as d, d.client() as c:
        s = c.stats()
        assert s["_order"][:len(REQUIRED_STATS)] == REQUIRED_STATS, s["_order"]
        assert s["PUTS"] == "0" and s["GETS"] == "0" and s["KEYS"] == "0"
        assert s["THREADS"] == "3"
        assert s["LIMIT"] == str(32 * MIB)
        assert s["CONNECTIONS"] == "1"
        assert s["STATS"] == "1"
        for i in range(10):
            assert c.put(b"key%d" % i, b"x" * i) == OK
        for i in range(15):
            c.get(b"key%d" % i)
        assert c.delete(b"key0") == OK
        assert c.delete(b"nope") == ENOTFOUND
        c.send(b"\x00\x07")
        assert c.read_status() == EINVAL and c.read_status() == EINVAL
        with d.client() as other:
            s = other.stats()
        assert s["PUTS"] == "10"
        assert s["GETS"] == "15"
        assert s["DELS"] == "2"
        assert s["HITS"] == "10" and s["MISSES"] == "5"
        assert s["KEYS"] == "9"
        assert s["INVALID"] == "2"
        assert s["STATS"] == "2"
        assert s["CONNECTIONS"] == "2"
        assert int(s["BYTES"]) == sum(len(b"key%d" % i) + i for i in range(1, 10))
        assert int(s["UPTIME"]) >= 0
        assert len(s["THREAD_CONNECTIONS"].split(",")) == 3
        assert sum(map(int, s["THREAD_CONNECTIONS"].split(","))) == 2
        time.sleep(1.1)
        assert int(c.stats()["UPTIME"]) >= 1


def test_overwrites_at_the_limit_are_compacted_and_lose_nothing(exe):
    """Keys overwritten at random leave old segments partly dead: the store
    compacts them (their live items move, docs/store.md) instead of evicting,
    every key keeps its newest value, and both ports' stats say so."""
    keys = 6000
    rounds = 20
    rng = random.Random(7)

    def value(i, rnd):
        return (b"%d:%d " % (i, rnd)) * 100

    with Daemon(exe, "-t", "1", "-m", "16", text="bind") as d, d.client() as c:
        newest = {i: 0 for i in range(keys)}
        c.put_many([(b"key-%d" % i, value(i, 0)) for i in range(keys)])
        for rnd in range(1, rounds + 1):
            chosen = rng.sample(range(keys), keys // 3)
            c.put_many([(b"key-%d" % i, value(i, rnd)) for i in chosen])
            newest.update((i, rnd) for i in chosen)
        s = c.stats()
        print("  %s" % " ".join("%s=%s" % (k, s[k]) for k in ("KEYS", "BYTES", "EVICTIONS", "EVICTED_SEGMENTS",
                                                             "MERGED_SEGMENTS", "MERGED_ITEMS")), flush=True)
        assert int(s["MERGED_SEGMENTS"]) > 0 and int(s["MERGED_ITEMS"]) > 0, s
        assert s["EVICTIONS"] == "0" and s["KEYS"] == str(keys), s
        for i in range(keys):
            assert c.get(b"key-%d" % i) == value(i, newest[i]), "key-%d" % i
        with TextClient(d.text_port) as t:
            text = t.stats()
        assert (text["merged_segments"], text["merged_items"]) == (s["MERGED_SEGMENTS"], s["MERGED_ITEMS"])
        assert text["evicted_segments"] == s["EVICTED_SEGMENTS"]


def test_ebig_keeps_the_stream_in_sync(exe):
    with Daemon(exe, "-t", "1", "--max-item", "1K") as d, d.client() as c:
        assert c.put(b"k" * 1024, b"v" * 1024) == OK, "exactly --max-item is accepted"
        # Long value, long key, long GET/DEL keys: each answered EBIG once,
        # the rest of its frame skipped, the next request answered normally.
        c.send(put_frame(b"a", b"x" * 5000) + get_frame(b"k" * 1024))
        assert c.read_status() == EBIG
        assert c.read_value_reply() == b"v" * 1024
        c.send(put_frame(b"K" * 1025, b"value") + put_frame(b"after", b"ok") + get_frame(b"after"))
        assert c.read_status() == EBIG
        assert c.read_status() == OK
        assert c.read_value_reply() == b"ok"
        c.send(get_frame(b"g" * 2000) + del_frame(b"d" * 4000) + STATS_FRAME)
        assert c.read_status() == EBIG
        assert c.read_status() == EBIG
        assert c.read_status() == OK
        s = c.read_field().decode()
        assert " EBIG=4 " in " " + s + " ", s
        # EBIG is sent as soon as the length is read, before the value arrives.
        c.send(bytes([11]) + field(b"early") + (100000).to_bytes(4, "big"))
        assert c.read_status() == EBIG
        c.send(b"z" * 100000 + get_frame(b"early"))
        assert c.read_value_reply() is None


def test_pipelined_20000_requests(exe):
    count = 20000
    with Daemon(exe, "-t", "2") as d, d.client() as c:
        requests = []
        for i in range(count // 2):
            requests.append(put_frame(b"p%d" % i, b"value-%d" % i))
        for i in range(count // 2):
            requests.append(get_frame(b"p%d" % (i if i % 10 else i + count)))
        sender = threading.Thread(target=c.send, args=(b"".join(requests),))
        sender.start()
        for i in range(count // 2):
            assert c.read_status() == OK, i
        for i in range(count // 2):
            value = c.read_value_reply()
            assert value == (b"value-%d" % i if i % 10 else None), i
        sender.join(30)
        s = c.stats()
        assert s["PUTS"] == str(count // 2) and s["GETS"] == str(count // 2)


def test_concurrent_clients(exe):
    errors = []

    def worker(port, n):
        try:
            with Client(port) as c:
                for i in range(300):
                    key = b"c%d-%d" % (n, i)
                    value = pattern(i * 37 % 5000, n + i)
                    assert c.put(key, value) == OK
                    assert c.get(key) == value
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    with Daemon(exe, "-t", "2") as d:
        threads = [threading.Thread(target=worker, args=(d.port, n)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        with d.client() as c:
            assert c.stats()["KEYS"] == str(8 * 300)


def test_frames_one_byte_at_a_time(exe):
    with Daemon(exe, "-t", "2") as d, d.client() as c:
        # Empty keys and values split across reads, too: the parser then hands
        # out empty views of its own (possibly unallocated) buffer.
        stream = (put_frame(b"slow", b"drip") + get_frame(b"slow") + b"\x09" + del_frame(b"slow")
                  + get_frame(b"slow") + STATS_FRAME + put_frame(b"", b"") + get_frame(b"")
                  + put_frame(b"e", b"") + get_frame(b"e") + del_frame(b""))
        for byte in stream:
            c.send(bytes([byte]))
            time.sleep(0.002)
        assert c.read_status() == OK
        assert c.read_value_reply() == b"drip"
        assert c.read_status() == EINVAL
        assert c.read_status() == OK
        assert c.read_value_reply() is None
        assert c.read_status() == OK
        c.read_field()
        assert c.read_status() == OK
        assert c.read_value_reply() == b""
        assert c.read_status() == OK
        assert c.read_value_reply() == b""
        assert c.read_status() == OK
        # A streamed value (> 64 KiB) in pieces of 1 to 7 bytes.
        rng = random.Random(5)
        value = pattern(70 * 1024, 3)
        frame = put_frame(b"streamed", value) + get_frame(b"streamed")
        pos = 0
        while pos < len(frame):
            step = rng.randint(1, 7)
            c.send(frame[pos:pos + step])
            pos += step
        assert c.read_status() == OK
        assert c.read_value_reply() == value


if __name__ == "__main__":
    run_tests(globals())
