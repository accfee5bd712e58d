"""Clients of ringcached's two protocols, standard library only: Client for
the binary protocol (docs/binary_protocol.md; requests one at a time or in pipelined
batches) and TextClient for the memcached text port (docs/text_protocol.md),
with the frame builders and reply codes the tests use.

Both read through one buffer. A recv asks for what is missing, at least
RECV_BYTES_MIN so that pipelined replies arrive together, at most
RECV_BYTES_MAX, into a scratch buffer kept by the connection: Python's
recv allocates the whole size asked for at every call (and meson's
MALLOC_PERTURB_ fills it), which made a client asking for 1 MiB at every
recv 35 times slower on pipelined small replies.
"""

import socket
import struct
import time

OP_PUT, OP_DEL, OP_GET, OP_STATS = 11, 12, 13, 21
OK, EINVAL, ENOTFOUND, EBINARY, EBIG, EUNK = 101, 111, 112, 113, 114, 115
KNOWN_OPCODES = {OP_PUT, OP_DEL, OP_GET, OP_STATS}

MIB = 1024 * 1024
SOCKET_TIMEOUT_S = 30
EOF_TIMEOUT_S = 10
RECV_BYTES_MIN = 64 * 1024
RECV_BYTES_MAX = 1 << 20
# Requests per pipelined batch of put_many / get_many.
BATCH_REQUESTS_MAX = 500


def field(data):
    return struct.pack(">I", len(data)) + data


def put_frame(key, value):
    return bytes([OP_PUT]) + field(key) + field(value)


def get_frame(key):
    return bytes([OP_GET]) + field(key)


def del_frame(key):
    return bytes([OP_DEL]) + field(key)


STATS_FRAME = bytes([OP_STATS])


def parse_stats(raw):
    """A STATS reply as {name: value}, with the names in order under "_order"."""
    text = raw.decode("ascii")
    assert not text.endswith((" ", "\n", "\0")), repr(text[-5:])
    assert "  " not in text
    out = {}
    for pair in text.split(" "):
        name, _, value = pair.partition("=")
        assert name and value, "bad STATS pair %r" % pair
        out[name] = value
    out["_order"] = [pair.partition("=")[0] for pair in text.split(" ")]
    return out


class Connection:
    """A TCP connection with TCP_NODELAY and a read buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=SOCKET_TIMEOUT_S):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self._start = 0  # of the unread bytes in _buffer
        self._scratch = bytearray()  # what recv_into fills, grown to the largest recv

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def _unread(self):
        return len(self._buffer) - self._start

    def _fill(self, missing):
        """One recv for at least `missing` more bytes."""
        if self._start:
            del self._buffer[:self._start]
            self._start = 0
        size = min(max(missing, RECV_BYTES_MIN), RECV_BYTES_MAX)
        if len(self._scratch) < size:
            self._scratch = bytearray(size)
        with memoryview(self._scratch) as scratch:
            got = self.sock.recv_into(scratch, size)
            if not got:
                raise AssertionError("connection closed with %d bytes still expected; unread: %r"
                                     % (missing, bytes(self._buffer[:200])))
            self._buffer += scratch[:got]

    def _consume(self, end):
        """The unread bytes up to offset end of the buffer."""
        if end - self._start < RECV_BYTES_MIN:
            out = bytes(self._buffer[self._start:end])  # two copies, but the fastest for short ones
        else:
            with memoryview(self._buffer) as view:
                out = bytes(view[self._start:end])
        if end == len(self._buffer):
            self._buffer = bytearray()
            self._start = 0
        else:
            self._start = end
        return out

    def read_exact(self, n):
        while self._unread() < n:
            self._fill(n - self._unread())
        return self._consume(self._start + n)

    def read_line(self):
        """One line, without its \\r\\n (which must be there)."""
        searched = 0
        while True:
            end = self._buffer.find(b"\r\n", self._start + searched)
            if end >= 0:
                line = self._consume(end)
                self._start += 2
                return line
            searched = max(0, self._unread() - 1)
            self._fill(1)

    def expect_eof(self, timeout=EOF_TIMEOUT_S):
        """What is still unread when the server closes the connection;
        AssertionError when it does not close within timeout."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.sock.recv(RECV_BYTES_MIN)
            if not data:
                return self._consume(len(self._buffer))
            self._buffer += data
        raise AssertionError("the server did not close the connection; unread: %r"
                             % bytes(self._buffer[self._start:self._start + 200]))


class Client(Connection):
    """The binary protocol."""

    def read_status(self):
        return self.read_exact(1)[0]

    def read_field(self):
        (length,) = struct.unpack(">I", self.read_exact(4))
        return self.read_exact(length)

    def read_value_reply(self):
        """A GET reply: the value, or None on ENOTFOUND."""
        status = self.read_status()
        if status == ENOTFOUND:
            return None
        assert status == OK, "GET answered %d" % status
        return self.read_field()

    def put(self, key, value):
        self.send(put_frame(key, value))
        return self.read_status()

    def get(self, key):
        self.send(get_frame(key))
        return self.read_value_reply()

    def delete(self, key):
        self.send(del_frame(key))
        return self.read_status()

    def put_many(self, pairs, batch=BATCH_REQUESTS_MAX):
        """PUTs every (key, value) in pipelined batches; returns the statuses."""
        out = []
        for i in range(0, len(pairs), batch):
            chunk = pairs[i:i + batch]
            self.send(b"".join(put_frame(k, v) for k, v in chunk))
            out.extend(self.read_status() for _ in chunk)
        return out

    def get_many(self, keys, batch=BATCH_REQUESTS_MAX):
        """GETs every key in pipelined batches; returns the values (None: ENOTFOUND)."""
        out = []
        for i in range(0, len(keys), batch):
            chunk = keys[i:i + batch]
            self.send(b"".join(get_frame(k) for k in chunk))
            out.extend(self.read_value_reply() for _ in chunk)
        return out

    def stats(self):
        self.send(STATS_FRAME)
        status = self.read_status()
        assert status == OK, "STATS answered %d" % status
        return parse_stats(self.read_field())


class TextClient(Connection):
    """The memcached text protocol."""

    def call(self, line):
        """Sends one command line, returns the reply line."""
        self.send(line + b"\r\n")
        return self.read_line()

    def store(self, command, key, value, flags=0, exptime=0, cas=None, noreply=False):
        line = b"%s %s %d %d %d" % (command, key, flags, exptime, len(value))
        if cas is not None:
            line += b" %d" % cas
        if noreply:
            line += b" noreply"
        self.send(line + b"\r\n" + value + b"\r\n")
        return None if noreply else self.read_line()

    def read_values(self):
        """VALUE blocks up to END: {key: (flags, value, cas or None)}."""
        found = {}
        while True:
            line = self.read_line()
            if line == b"END":
                return found
            parts = line.split(b" ")
            assert parts[0] == b"VALUE" and len(parts) in (4, 5), line
            value = self.read_exact(int(parts[3]))
            assert self.read_exact(2) == b"\r\n"
            found[parts[1]] = (int(parts[2]), value, int(parts[4]) if len(parts) == 5 else None)

    def get(self, *keys, command=b"get"):
        self.send(command + b" " + b" ".join(keys) + b"\r\n")
        return self.read_values()

    def value(self, key):
        found = self.get(key)
        return found[key][1] if key in found else None

    def stats(self, args=b""):
        self.send(b"stats" + (b" " + args if args else b"") + b"\r\n")
        out = {}
        while True:
            line = self.read_line()
            if line == b"END":
                return out
            parts = line.split(b" ", 2)
            assert parts[0] == b"STAT" and len(parts) == 3, line
            out[parts[1].decode()] = parts[2].decode()


# memcached's binary protocol (the text port, first byte 0x80;
# docs/memcache_binary_protocol.md).
MC_REQUEST, MC_RESPONSE = 0x80, 0x81
MC_GET, MC_SET, MC_DELETE, MC_INCREMENT, MC_QUIT, MC_FLUSH, MC_GETQ, MC_NOOP = 0x00, 0x01, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A
MC_VERSION, MC_GETK, MC_GETKQ, MC_APPEND, MC_STAT, MC_SETQ = 0x0B, 0x0C, 0x0D, 0x0E, 0x10, 0x11
MC_SUCCESS, MC_NOT_FOUND, MC_EXISTS, MC_TOO_LARGE, MC_INVALID, MC_NOT_STORED = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
MC_NON_NUMERIC, MC_UNKNOWN_COMMAND = 0x06, 0x81
MC_SASL_LIST_MECHS, MC_SASL_AUTH, MC_SASL_STEP = 0x20, 0x21, 0x22
MC_AUTH_ERROR = 0x20
MC_HEADER = struct.Struct(">BBHBBHIIQ")


def mc_request(opcode, key=b"", value=b"", extras=b"", opaque=0, cas=0):
    body = extras + key + value
    return MC_HEADER.pack(MC_REQUEST, opcode, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


def mc_store_extras(flags=0, exptime=0):
    return struct.pack(">II", flags, exptime)


class McBinaryClient(Connection):
    """memcached's binary protocol: requests out, (header fields, extras,
    key, value) responses in."""

    def response(self):
        """{magic, opcode, status, opaque, cas, extras, key, value}."""
        magic, opcode, key_length, extras_length, _, status, body, opaque, cas = MC_HEADER.unpack(
            self.read_exact(MC_HEADER.size))
        payload = self.read_exact(body)
        return {"magic": magic, "opcode": opcode, "status": status, "opaque": opaque, "cas": cas,
                "extras": payload[:extras_length], "key": payload[extras_length:extras_length + key_length],
                "value": payload[extras_length + key_length:]}

    def call(self, opcode, key=b"", value=b"", extras=b"", opaque=0, cas=0):
        self.send(mc_request(opcode, key, value, extras, opaque, cas))
        return self.response()
