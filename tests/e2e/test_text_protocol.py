"""The memcached text port against the real daemon (issue 7): every command,
noreply, expiry, meta commands, stats, and one store shared with the binary
port."""

import time

from clients import OK, ENOTFOUND, TextClient
from daemon import Daemon
from harness import run_tests

# Bounded waits for expiry: memcached's clock has one-second steps.
EXPIRY_WAIT_MAX_S = 4.0


def wait_until_gone(client, key):
    deadline = time.monotonic() + EXPIRY_WAIT_MAX_S
    while time.monotonic() < deadline:
        if client.value(key) is None:
            return True
        time.sleep(0.2)
    return False


def test_storage_commands(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        assert c.store(b"set", b"k", b"hello", flags=4294967295) == b"STORED"
        assert c.get(b"k") == {b"k": (4294967295, b"hello", None)}
        assert c.store(b"add", b"k", b"x") == b"NOT_STORED"
        assert c.store(b"add", b"new", b"x") == b"STORED"
        assert c.store(b"replace", b"absent", b"x") == b"NOT_STORED"
        assert c.store(b"replace", b"k", b"world", flags=7) == b"STORED"
        assert c.store(b"append", b"k", b"!!", flags=99) == b"STORED"
        assert c.store(b"prepend", b"k", b">>") == b"STORED"
        # append/prepend keep the item's flags.
        assert c.get(b"k") == {b"k": (7, b">>world!!", None)}
        assert c.store(b"append", b"absent", b"x") == b"NOT_STORED"
        assert c.store(b"prepend", b"absent", b"x") == b"NOT_STORED"
        # Values are bytes: empty, binary, holding "\r\n" and command text.
        tricky = b"\r\nEND\r\nVALUE x 0 1\r\n\x00\xff"
        assert c.store(b"set", b"tricky", tricky) == b"STORED"
        assert c.store(b"set", b"empty", b"") == b"STORED"
        assert c.get(b"tricky", b"empty", b"absent") == {b"tricky": (0, tricky, None), b"empty": (0, b"", None)}


def test_cas_and_gets(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        assert c.store(b"set", b"k", b"v1") == b"STORED"
        (_, _, cas1) = c.get(b"k", command=b"gets")[b"k"]
        assert c.store(b"cas", b"k", b"v2", cas=cas1) == b"STORED"
        (_, value, cas2) = c.get(b"k", command=b"gets")[b"k"]
        assert value == b"v2" and cas2 != cas1
        assert c.store(b"cas", b"k", b"v3", cas=cas1) == b"EXISTS"
        assert c.store(b"cas", b"absent", b"v", cas=cas2) == b"NOT_FOUND"
        assert c.value(b"k") == b"v2"
        # Every write changes the cas, so a stale one never wins.
        assert c.store(b"set", b"k", b"v4") == b"STORED"
        assert c.store(b"cas", b"k", b"v5", cas=cas2) == b"EXISTS"


def test_delete_incr_decr_touch(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        assert c.call(b"delete absent") == b"NOT_FOUND"
        c.store(b"set", b"k", b"v")
        assert c.call(b"delete k") == b"DELETED"
        assert c.value(b"k") is None
        assert c.call(b"delete k 0") == b"NOT_FOUND"
        assert c.call(b"delete k 5") == b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
        assert c.call(b"incr n 1") == b"NOT_FOUND"
        c.store(b"set", b"n", b"10")
        assert c.call(b"incr n 5") == b"15"
        assert c.call(b"decr n 100") == b"0", "decr stops at 0"
        assert c.call(b"incr n 18446744073709551615") == b"18446744073709551615"
        assert c.call(b"incr n 1") == b"0", "incr wraps at 2^64"
        assert c.call(b"incr n x") == b"CLIENT_ERROR invalid numeric delta argument"
        c.store(b"set", b"text", b"abc")
        assert c.call(b"incr text 1") == b"CLIENT_ERROR cannot increment or decrement non-numeric value"
        assert c.call(b"touch absent 10") == b"NOT_FOUND"
        assert c.call(b"touch n 100") == b"TOUCHED"
        assert c.call(b"touch n x") == b"CLIENT_ERROR invalid exptime argument"
        assert c.value(b"n") == b"0"


def test_noreply_everywhere(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        c.store(b"set", b"base", b"1")
        cas = c.get(b"base", command=b"gets")[b"base"][2]
        # Every command that takes noreply, successes and failures alike,
        # errors included: nothing may come back before MN.
        c.send(b"set a 0 0 1 noreply\r\nx\r\n"
               b"add a 0 0 1 noreply\r\ny\r\n"
               b"add b 0 0 1 noreply\r\ny\r\n"
               b"replace a 0 0 1 noreply\r\nz\r\n"
               b"replace none 0 0 1 noreply\r\nz\r\n"
               b"append a 0 0 1 noreply\r\n+\r\n"
               b"prepend a 0 0 1 noreply\r\n-\r\n"
               b"cas base 0 0 1 %d noreply\r\n2\r\n"
               b"cas base 0 0 1 %d noreply\r\n3\r\n"
               b"incr base 5 noreply\r\n"
               b"decr base 1 noreply\r\n"
               b"incr none 1 noreply\r\n"
               b"touch a 100 noreply\r\n"
               b"delete b noreply\r\n"
               b"delete none noreply\r\n"
               b"verbosity 0 noreply\r\n"
               b"incr base x noreply\r\n"
               b"set a 0 0 1 noreply\r\nxy\r\n"
               b"flush_all 0 noreply\r\n"
               b"set after 0 0 1 noreply\r\n!\r\n"
               b"mn\r\n" % (cas, cas))
        # The bad data chunk above ("xy\r" read as a 1-byte block) leaves "\n",
        # an empty line: ERROR, exactly as memcached answers it.
        assert c.read_line() == b"ERROR"
        assert c.read_line() == b"MN"
        assert c.get(b"a", b"b", b"base", b"after") == {b"after": (0, b"!", None)}


def test_noreply_effects(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        c.send(b"set a 0 0 1 noreply\r\nx\r\nappend a 0 0 1 noreply\r\ny\r\nset n 0 0 1 noreply\r\n5\r\n"
               b"incr n 10 noreply\r\ndelete gone noreply\r\nmn\r\n")
        assert c.read_line() == b"MN"
        assert c.get(b"a", b"n") == {b"a": (0, b"xy", None), b"n": (0, b"15", None)}


def test_expiry(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        now = int(time.time())
        assert c.store(b"set", b"past", b"v", exptime=-1) == b"STORED"
        assert c.store(b"set", b"absolute_past", b"v", exptime=now - 10) == b"STORED"
        assert c.store(b"set", b"absolute_future", b"v", exptime=now + 3600) == b"STORED"
        assert c.store(b"set", b"relative", b"v", exptime=3600) == b"STORED"
        assert c.store(b"set", b"short", b"v", exptime=1) == b"STORED"
        assert c.store(b"set", b"touched", b"v", exptime=1) == b"STORED"
        assert c.call(b"touch touched 3600") == b"TOUCHED"
        assert c.store(b"set", b"gat", b"v", exptime=1) == b"STORED"
        assert c.get(b"gat", command=b"gat 3600") == {b"gat": (0, b"v", None)}
        found = c.get(b"past", b"absolute_past", b"absolute_future", b"relative")
        assert set(found) == {b"absolute_future", b"relative"}
        assert wait_until_gone(c, b"short"), "an item with exptime 1 is still served"
        assert c.value(b"touched") == b"v" and c.value(b"gat") == b"v"
        # Expired items never come back, whatever asks for them.
        assert c.call(b"touch short 100") == b"NOT_FOUND"
        assert c.call(b"mg short v") == b"EN"
        assert c.store(b"add", b"short", b"again") == b"STORED", "add succeeds over an expired item"
        # touch with a negative exptime expires at once; stats see it gone.
        assert c.call(b"touch relative -1") == b"TOUCHED"
        assert c.value(b"relative") is None


def test_flush_all(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        c.store(b"set", b"a", b"1")
        assert c.call(b"flush_all") == b"OK"
        assert c.value(b"a") is None
        assert c.store(b"set", b"b", b"2") == b"STORED", "items stored after a flush stay"
        assert c.value(b"b") == b"2"
        assert c.call(b"flush_all 1") == b"OK"
        assert c.value(b"b") == b"2", "a delayed flush waits"
        assert wait_until_gone(c, b"b"), "the delayed flush never happened"
        assert c.call(b"flush_all x") == b"CLIENT_ERROR invalid exptime argument"


def test_meta_commands(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        assert c.call(b"mn") == b"MN"
        c.send(b"ms foo 2 F7 T100 k O1\r\nhi\r\n")
        assert c.read_line() == b"HD kfoo O1"
        c.send(b"mg foo v f k s t O9\r\n")
        line = c.read_line().split(b" ")
        assert line[:6] == [b"VA", b"2", b"f7", b"kfoo", b"s2", line[5]] and 98 <= int(line[5][1:]) <= 100, line
        assert line[6] == b"O9"
        assert c.read_exact(4) == b"hi\r\n"
        assert c.call(b"mg missing v") == b"EN"
        # q hides a miss; mn shows where the replies end.
        c.send(b"mg missing v q\r\nmg foo q k\r\nmn\r\n")
        assert c.read_line() == b"HD kfoo"
        assert c.read_line() == b"MN"
        # Modes: add, replace, append, prepend; C compares the cas.
        c.send(b"ms foo 1 ME\r\nx\r\nms none 1 MR\r\nx\r\nms foo 1 MA\r\n!\r\nms foo 1 MP\r\n<\r\n")
        assert [c.read_line() for _ in range(4)] == [b"NS", b"NS", b"HD", b"HD"]
        assert c.value(b"foo") == b"<hi!"
        c.send(b"mg foo c\r\n")
        cas = int(c.read_line().split(b" ")[1][1:])
        c.send(b"ms foo 1 C%d\r\n1\r\nms foo 1 C%d\r\n2\r\n" % (cas, cas))
        assert [c.read_line() for _ in range(2)] == [b"HD", b"EX"]
        # Base64 keys reach the same item as the plain key.
        c.send(b"mg Zm9v b v k\r\n")
        assert c.read_line() == b"VA 1 kZm9v b" and c.read_exact(3) == b"1\r\n"
        # md, and ma with auto-create.
        c.send(b"md foo q\r\nmd foo\r\nmn\r\n")
        assert [c.read_line() for _ in range(2)] == [b"NF", b"MN"]
        c.send(b"ma cnt\r\nma cnt N0 J10 v\r\nma cnt v\r\nma cnt MD D4 v\r\n")
        assert c.read_line() == b"NF"
        assert (c.read_line(), c.read_line()) == (b"VA 2", b"10")
        assert (c.read_line(), c.read_line()) == (b"VA 2", b"11")
        assert (c.read_line(), c.read_line()) == (b"VA 1", b"7")
        # Meta errors always reach the client, q or not.
        assert c.call(b"mg foo v v q") == b"CLIENT_ERROR duplicate flag"
        c.send(b"ms foo 1 MX q\r\nx\r\nmn\r\n")
        assert [c.read_line() for _ in range(2)] == [b"CLIENT_ERROR invalid mode for ms M token", b"MN"]


def test_keys_are_shared_with_the_binary_port(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as t, d.client() as b:
        assert b.put(b"from-binary", b"\x00binary\r\n") == OK
        assert t.get(b"from-binary") == {b"from-binary": (0, b"\x00binary\r\n", None)}
        assert t.store(b"set", b"from-text", b"text value", flags=5) == b"STORED"
        assert b.get(b"from-text") == b"text value"
        assert t.call(b"delete from-binary") == b"DELETED"
        assert b.get(b"from-binary") is None
        assert b.delete(b"from-text") == OK
        assert t.value(b"from-text") is None
        assert b.delete(b"from-text") == ENOTFOUND
        # The binary port's items are counted by the text port's stats.
        assert int(t.stats()["curr_items"]) == int(b.stats()["KEYS"])


def test_stats_version_verbosity_quit(exe):
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d, TextClient(d.text_port) as c:
        c.store(b"set", b"k", b"v")
        c.get(b"k", b"missing")
        stats = c.stats()
        for name in ("pid", "uptime", "time", "version", "curr_connections", "total_connections", "cmd_get",
                     "cmd_set", "get_hits", "get_misses", "curr_items", "bytes", "evictions",
                     "limit_maxbytes", "threads"):
            assert name in stats, "stats lacks %s: %r" % (name, stats)
        assert int(stats["pid"]) == d.pid
        assert abs(int(stats["time"]) - time.time()) < 5
        assert (stats["cmd_get"], stats["get_hits"], stats["get_misses"]) == ("2", "1", "1")
        assert stats["cmd_set"] == "1" and stats["curr_items"] == "1"
        assert stats["limit_maxbytes"] == str(16 << 20) and stats["threads"] == "2"
        assert int(stats["curr_connections"]) >= 1
        assert c.stats(b"settings")["item_size_max"] == str(8 << 20)
        assert c.call(b"stats nonsense") == b"ERROR"
        assert c.call(b"version").startswith(b"VERSION 1.6.")
        assert c.call(b"verbosity 0") == b"OK"
        assert c.call(b"bogus") == b"ERROR"
        c.send(b"get k\r\nquit\r\nget k\r\n")
        assert c.read_values() == {b"k": (0, b"v", None)}
        assert c.expect_eof() == b"", "nothing is answered after quit"


if __name__ == "__main__":
    run_tests(globals())
