"""The runner of the end-to-end tests and what their checks share.

Every test file is a script run by meson as `python3 test_x.py DAEMON_PATH`.
It calls run_tests(globals()), which runs each test_* function, prints one
line per test and exits non-zero if any failed (77 = skipped, for meson).
The daemon is started and stopped by daemon.py and spoken to with the
clients of clients.py.
"""

import resource
import sys
import time
import traceback

from clients import MIB, OK


class SkipTest(Exception):
    pass


_PATTERN_BLOCK = bytes((i * 131 + (i >> 8)) & 0xFF for i in range(65536 + 256))


def pattern(size, seed):
    """Deterministic bytes that differ per seed (mod 256) and per position."""
    block = _PATTERN_BLOCK[seed % 256:seed % 256 + 65536]
    reps, rest = divmod(size, len(block))
    return block * reps + block[:rest]


def check_alive_and_serving(daemon):
    assert daemon.alive(), "daemon died:\n" + daemon.log()
    with daemon.client(timeout=10) as c:
        key = b"alive-%d" % time.monotonic_ns()
        assert c.put(key, b"yes") == OK
        assert c.get(key) == b"yes"


def wait_for(predicate, what, timeout=10):
    """Polls predicate() until it holds (bounded). what says what was
    awaited: a string, or a callable giving one (a daemon's log, read only
    if the wait fails)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.05)


def stat(daemon, name):
    """One STATS field of the binary port, as a number."""
    return int(daemon.stats()[name])


def wait_stats(daemon, predicate, what, timeout=10):
    """Polls STATS until predicate(stats) holds (bounded); returns them."""
    deadline = time.monotonic() + timeout
    while True:
        with daemon.client() as c:
            s = c.stats()
        if predicate(s):
            return s
        assert time.monotonic() < deadline, "%s: %s" % (what, s)
        time.sleep(0.05)


def rss_limit_bytes(memory_mib):
    """The resident memory a daemon with -m memory_mib stays within whatever
    clients send (docs/command_line.md): 1.25 x -m + 48 MiB."""
    return int(1.25 * memory_mib * MIB + 48 * MIB)


def assert_rss_bounded(daemon, limit_bytes, what):
    """Prints VmRSS and checks it against limit_bytes; not in sanitizer
    builds, whose shadow memory it includes."""
    if daemon.sanitizer_build():
        print("  %s: VmRSS not checked (sanitizer build: shadow memory)" % what, flush=True)
        return
    rss = daemon.rss_bytes()
    print("  %s: VmRSS %.1f MiB (limit %.1f MiB)" % (what, rss / MIB, limit_bytes / MIB), flush=True)
    assert rss <= limit_bytes, "%s: VmRSS %d > %d" % (what, rss, limit_bytes)


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_tests(namespace):
    if len(sys.argv) < 2:
        print("usage: %s PATH/TO/ringcached [TEST_NAME...]" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    exe = sys.argv[1]
    only = set(sys.argv[2:])
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn) and (not only or name in only)]
    passed = failed = skipped = 0
    for name, fn in tests:
        start = time.monotonic()
        try:
            fn(exe)
        except SkipTest as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
            continue
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, time.monotonic() - start), flush=True)
            traceback.print_exc()
            continue
        passed += 1
        print("ok   %s (%.1fs)" % (name, time.monotonic() - start), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
