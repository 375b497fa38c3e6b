#!/usr/bin/env python3
"""Tiny wire-protocol probes for the local infrastructure scripts (standard library only).

    wireproto.py mongo-ping HOST PORT
        Sends OP_MSG {ping: 1, $db: "admin"}; exit 0 when the reply has ok == 1.
    wireproto.py kafka-ping HOST PORT
        Sends Kafka ApiVersions v0; exit 0 when the broker answers with error_code 0.
    wireproto.py kafka-create-topics HOST PORT PARTITIONS REPLICATION TOPIC...
        One CreateTopics v2 request for every topic (TOPIC_ALREADY_EXISTS counts as success).
        Retries retriable errors (controller not ready yet) for up to --timeout seconds.
    wireproto.py kafka-list-topics HOST PORT
        Metadata v4 for all topics; prints "name<TAB>partitions" per non-internal topic, sorted.

Exit codes: 0 ok, 1 protocol/logic error, 2 usage, 3 cannot connect.
Only Kafka API versions that 3.x and 4.x brokers both accept are used.
"""

import os
import socket
import struct
import sys
import time

TIMEOUT = float(os.environ.get("WA_WIRE_TIMEOUT", "5"))


class WireError(Exception):
    pass


def _connect(host, port):
    try:
        return socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except OSError as exc:
        print(f"cannot connect to {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(3)


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise WireError("connection closed by peer")
        buf += chunk
    return bytes(buf)


# ---------------------------------------------------------------- MongoDB (OP_MSG)

def _bson_cstring(s):
    return s.encode() + b"\x00"


def _bson_encode(doc):
    body = b""
    for key, value in doc.items():
        if isinstance(value, bool):
            body += b"\x08" + _bson_cstring(key) + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            body += b"\x10" + _bson_cstring(key) + struct.pack("<i", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\x00"
            body += b"\x02" + _bson_cstring(key) + struct.pack("<i", len(raw)) + raw
        else:
            raise TypeError(f"unsupported BSON value for {key!r}")
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _bson_decode_top(data):
    """Decodes the scalar top-level fields of a BSON document; nested values are skipped."""
    (total,) = struct.unpack_from("<i", data, 0)
    pos, out = 4, {}
    while pos < total - 1:
        etype = data[pos]
        pos += 1
        end = data.index(b"\x00", pos)
        key = data[pos:end].decode()
        pos = end + 1
        if etype == 0x01:
            (out[key],) = struct.unpack_from("<d", data, pos)
            pos += 8
        elif etype in (0x02, 0x0D, 0x0E):
            (n,) = struct.unpack_from("<i", data, pos)
            out[key] = data[pos + 4:pos + 4 + n - 1].decode(errors="replace")
            pos += 4 + n
        elif etype in (0x03, 0x04):
            (n,) = struct.unpack_from("<i", data, pos)
            pos += n
        elif etype == 0x05:
            (n,) = struct.unpack_from("<i", data, pos)
            pos += 5 + n
        elif etype == 0x07:
            pos += 12
        elif etype == 0x08:
            out[key] = data[pos] == 1
            pos += 1
        elif etype in (0x09, 0x11, 0x12):
            (out[key],) = struct.unpack_from("<q", data, pos)
            pos += 8
        elif etype == 0x10:
            (out[key],) = struct.unpack_from("<i", data, pos)
            pos += 4
        elif etype in (0x06, 0x0A, 0x7F, 0xFF):
            out[key] = None
        elif etype == 0x13:
            pos += 16
        else:
            raise WireError(f"unsupported BSON type 0x{etype:02x} in reply")
    return out


def mongo_ping(host, port):
    sock = _connect(host, port)
    with sock:
        doc = _bson_encode({"ping": 1, "$db": "admin"})
        payload = struct.pack("<I", 0) + b"\x00" + doc  # flagBits, section kind 0
        header = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013)  # OP_MSG
        sock.sendall(header + payload)
        length, _req, _resp, opcode = struct.unpack("<iiii", _recv_exact(sock, 16))
        body = _recv_exact(sock, length - 16)
    if opcode != 2013:
        raise WireError(f"unexpected reply opcode {opcode}")
    if body[4] != 0:
        raise WireError("unexpected OP_MSG section kind in reply")
    reply = _bson_decode_top(body[5:])
    if reply.get("ok") not in (1, 1.0, True):
        raise WireError(f"ping failed: {reply}")
    print(f"mongo {host}:{port} ok")


# ---------------------------------------------------------------- Kafka

def _kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def _unpack(self, fmt):
        (val,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return val

    def i8(self):
        return self._unpack(">b")

    def i16(self):
        return self._unpack(">h")

    def i32(self):
        return self._unpack(">i")

    def skip_int32_array(self):
        count = self.i32()
        self.pos += 4 * max(count, 0)

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        val = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return val


def _kafka_call(sock, api_key, api_version, body, corr=1):
    header = struct.pack(">hhi", api_key, api_version, corr) + _kstr("wabridge-infra")
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (length,) = struct.unpack(">i", _recv_exact(sock, 4))
    data = _recv_exact(sock, length)
    reader = _Reader(data)
    if reader.i32() != corr:
        raise WireError("correlation id mismatch")
    return reader


def kafka_ping(host, port):
    with _connect(host, port) as sock:
        reader = _kafka_call(sock, 18, 0, b"")  # ApiVersions v0
        err = reader.i16()
    if err != 0:
        raise WireError(f"ApiVersions error_code {err}")
    print(f"kafka {host}:{port} ok")


# errors worth waiting for while a fresh single-node KRaft cluster settles
_RETRIABLE = {
    5: "LEADER_NOT_AVAILABLE",
    7: "REQUEST_TIMED_OUT",
    8: "BROKER_NOT_AVAILABLE",
    14: "COORDINATOR_LOAD_IN_PROGRESS",
    15: "COORDINATOR_NOT_AVAILABLE",
    19: "NOT_ENOUGH_REPLICAS",
    41: "NOT_CONTROLLER",
    51: "CONCURRENT_TRANSACTIONS",
    89: "THROTTLING_QUOTA_EXCEEDED",
}
_TOPIC_ALREADY_EXISTS = 36


def kafka_create_topics(host, port, partitions, replication, topics, deadline_s):
    deadline = time.monotonic() + deadline_s
    pending = list(dict.fromkeys(topics))
    last = ""
    while True:
        body = struct.pack(">i", len(pending))
        for name in pending:
            body += _kstr(name) + struct.pack(">ihii", partitions, replication, 0, 0)
        body += struct.pack(">ib", 15000, 0)  # timeout_ms, validate_only=false
        try:
            with _connect(host, port) as sock:
                reader = _kafka_call(sock, 19, 2, body)  # CreateTopics v2
        except (OSError, WireError) as exc:
            last = str(exc)
            reader = None
        retry = []
        if reader is not None:
            reader.i32()  # throttle_time_ms
            for _ in range(reader.i32()):
                name, err, msg = reader.string(), reader.i16(), reader.string()
                if err in (0, _TOPIC_ALREADY_EXISTS):
                    continue
                if err in _RETRIABLE:
                    retry.append(name)
                    last = f"{name}: {_RETRIABLE[err]} {msg or ''}".strip()
                else:
                    raise WireError(f"CreateTopics {name}: error_code {err} {msg or ''}".strip())
        else:
            retry = pending
        if not retry:
            print(f"kafka topics ready ({len(topics)}): {' '.join(topics)}")
            return
        if time.monotonic() >= deadline:
            raise WireError(f"CreateTopics still failing after {deadline_s}s: {last}")
        pending = retry
        time.sleep(0.5)


def kafka_list_topics(host, port):
    body = struct.pack(">ib", -1, 0)  # all topics, allow_auto_topic_creation=false
    with _connect(host, port) as sock:
        reader = _kafka_call(sock, 3, 4, body)  # Metadata v4
    reader.i32()  # throttle_time_ms
    for _ in range(reader.i32()):  # brokers
        reader.i32()
        reader.string()
        reader.i32()
        reader.string()
    reader.string()  # cluster_id
    reader.i32()  # controller_id
    rows = []
    for _ in range(reader.i32()):
        err, name, internal = reader.i16(), reader.string(), reader.i8()
        nparts = reader.i32()
        for _ in range(nparts):
            reader.i16()
            reader.i32()
            reader.i32()
            reader.skip_int32_array()  # replica_nodes
            reader.skip_int32_array()  # isr_nodes
        if not internal and err == 0:
            rows.append((name, nparts))
    for name, nparts in sorted(rows):
        print(f"{name}\t{nparts}")


def main(argv):
    args = argv[1:]
    timeout = 30.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, host, port = args[0], args[1], args[2]
    try:
        if cmd == "mongo-ping":
            mongo_ping(host, port)
        elif cmd == "kafka-ping":
            kafka_ping(host, port)
        elif cmd == "kafka-list-topics":
            kafka_list_topics(host, port)
        elif cmd == "kafka-create-topics" and len(args) >= 6:
            kafka_create_topics(host, port, int(args[3]), int(args[4]), args[5:], timeout)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (WireError, OSError, struct.error, ValueError, IndexError) as exc:
        print(f"{cmd} {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
