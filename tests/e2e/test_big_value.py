"""A 200 MiB value (issue 3): PUT then GET byte-exact, streamed through a
store reservation on the way in and sent from pinned store memory on the way
out."""

import hashlib
import threading

from clients import MIB, OK, get_frame, put_frame
from daemon import Daemon
from harness import pattern, run_tests

SIZE = 200 * MIB


def test_200_mib_value(exe):
    value = pattern(SIZE, 77)
    digest = hashlib.sha256(value).digest()
    with Daemon(exe, "-t", "2", "-m", "512") as d:
        with d.client(timeout=60) as c:
            c.send(put_frame(b"huge", value))
            assert c.read_status() == OK
        with d.client(timeout=60) as c:
            c.send(get_frame(b"huge"))
            got = c.read_value_reply()
            assert len(got) == SIZE, len(got)
            assert hashlib.sha256(got).digest() == digest, "value differs"
            del got
            # Two readers at once, and a small request queued behind the big reply.
            results = []

            def reader():
                with d.client(timeout=60) as r:
                    r.send(get_frame(b"huge") + get_frame(b"missing"))
                    v = r.read_value_reply()
                    results.append(hashlib.sha256(v).digest() == digest and r.read_value_reply() is None)

            threads = [threading.Thread(target=reader) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert results == [True, True], results
            assert c.delete(b"huge") == OK
            assert c.get(b"huge") is None


if __name__ == "__main__":
    run_tests(globals())
