#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds follow each harness's input layout (see the comment at the top of each
fuzz/<target>_fuzz.cpp): valid traffic (id lines, keepalives, ACKs, messages,
retransmits) and edge cases. Seeds named regress_* are
inputs that once found a bug and are kept. Rerun after changing a layout;
libFuzzer keeps
whatever it finds in its scratch copy only (tools/fuzz.sh).
"""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MAX_LINE = 1024  # the Linux build's RESILINK_MAX_LINE
MAX_ID = 32

TRAFFIC = {
    "session": b"\n00boot\n00\n\n01t=21.5\n01\n\n",
    "keepalives": b"\n\n\n\n",
    "acks": b"00\n01\n7f\nFF\nff\naB\n",
    "messages": b"00hello\n01world\n02x\nfe" + b"p" * 40 + b"\n",
    "retransmits": b"01t=21.5\n01t=21.5\n01t=21.5\n02next\n",
    "restart": b"00a\n01b\n00a\n01b\n",
    "crlf_nul_high": b"01a\r\n02\x00\x01\n03\xff\xfe\n",
    "malformed_one_byte": b"\n1\n",
    "bad_mid": b"\nzz\n0g1\n",
    "long_valid": b"01" + b"x" * (MAX_LINE - 2) + b"\n",
    "too_long": b"01" + b"x" * (MAX_LINE - 1) + b"\n",
    "partial": b"01partial line without end",
    "full_queue": b"".join(b"%02xm%d\n" % (i, i) for i in range(1, 40)),
    "wrap": b"".join(b"%02xw\n" % (i % 256) for i in range(240, 270) if i % 256),
}

IDS = {
    "id_ok": b"dev1\n\n",
    "id_max": b"i" * MAX_ID + b"\n\n01x\n",
    "id_too_long": b"i" * (MAX_ID + 1) + b"\n",
    "id_empty": b"\n",
    "id_space": b"dev 1\n\n",
    "id_control": b"dev\x01\n\n",
    "id_cr": b"dev1\r\n\r\n",
    "id_high": b"d\xe9v\n",
    "id_tilde_bang": b"!~\n00hi\n",
    "id_then_traffic": b"dev1\n\n00boot\n00\n01x\n",
    "id_no_newline": b"dev1",
    "garbage": b"\x01\xfe\x00garbage",
    "long_garbage": b"\xab" * 600,
}


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chunkings():
    # (label, sizes): whole, bytewise, small primes, with empty feeds
    return [("whole", [255]), ("bytes", [1]), ("mixed", [3, 1, 7, 2]), ("empty", [0, 5, 0, 1])]


def line_decoder():
    for name, stream in {**TRAFFIC, **IDS}.items():
        for cap in (4, 32, 63):
            label, sizes = chunkings()[(len(name) + cap) % 4]
            write("line_decoder", f"{name}_cap{cap}_{label}", bytes([cap - 1, len(sizes) - 1, *sizes]) + stream)


def handshake():
    for name, stream in IDS.items():
        for label, sizes in chunkings()[:3]:
            write("handshake", f"{name}_{label}", bytes([len(sizes) - 1, *sizes]) + stream)


def u16(v):
    return bytes([v >> 8, v & 255])


# engine_fuzz opcodes (op % 20)
RAW, TOKEN, SMALL, BIG, AT, BEFORE, WQOS, WRAW, READ, PEEK, CLOSE, START, LOST, CONNECTED, READY, FAILED, SENDALL, SENDSOME, TIMEOUT, TURN = range(20)


def engine_config(server, timeout=2000, window=16):
    flags = 1 if server else 0
    return bytes([flags]) + u16(timeout) + bytes([50]) + u16(8000) + bytes([7, window])


def raw(data):
    out = b""
    for i in range(0, len(data), 255):
        part = data[i:i + 255]
        out += bytes([RAW, len(part)]) + part
    return out


def engine():
    client_up = bytes([START, READY, CONNECTED, SENDALL]) + raw(b"\n")
    server_up = bytes([CONNECTED, SENDALL]) + raw(b"\n")
    for name, stream in TRAFFIC.items():
        write("engine", f"server_{name}", engine_config(True) + server_up + raw(stream) + bytes([SENDALL, READ, 0, READ, 0, TURN]))
        write("engine", f"client_{name}", engine_config(False) + client_up + raw(stream) + bytes([SENDALL, READ, 0, TURN]))
    writes = bytes([WQOS, 4, 5, WQOS, 5, 9, WRAW, 6, 3, SENDALL]) + raw(b"00\n01\n") + bytes([SENDALL])
    write("engine", "client_writes_acked", engine_config(False, window=2) + client_up + writes)
    write("engine", "server_writes_retransmit", engine_config(True, timeout=100) + server_up + writes +
          bytes([AT, TURN, AT, TURN, SMALL, 30, TURN]))
    write("engine", "client_outage_reconnect", engine_config(False, timeout=100) + client_up +
          bytes([WQOS, 4, 3, SENDALL, AT, AT, AT, AT, TIMEOUT, READY, CONNECTED, SENDALL]) + raw(b"\n00\n"))
    write("engine", "client_connect_fails", engine_config(False, timeout=100) +
          bytes([START, READY, FAILED, AT, FAILED, BEFORE, AT, BIG, 0, 9, READY, CONNECTED]))
    write("engine", "server_replaced", engine_config(True) + server_up + bytes([CONNECTED, SENDALL]) + raw(b"\n01x\n"))
    write("engine", "server_lost_and_closed", engine_config(True) + server_up + bytes([LOST, 3, CONNECTED, CLOSE, 0, WQOS, 4, 4]))
    write("engine", "server_fill_tx", engine_config(True) + server_up + bytes([WRAW, 3] * 12 + [SMALL, 250, SMALL, 250, SENDSOME, 7]))
    write("engine", "server_tokens", engine_config(True) + server_up +
          bytes([TOKEN, 0, 0, TOKEN, 2, 0, TOKEN, 3, 1, TOKEN, 1, 5, TOKEN, 7, 9, TOKEN, 2, 0, READ, 1, TOKEN, 4, 3]))


# engine_pair_fuzz opcodes (op % 16)
(C_SEND, S_SEND, C_DELIVER, S_DELIVER, SMALL_P, DEADLINE, C_QOS, S_QOS, C_RAW, S_RAW, C_READ, S_READ, CUT,
 HALF_OPEN, BIG_P, TURN_P) = range(16)


def pair_config(timeout_byte=48, window=15, server_window=15):
    return bytes([timeout_byte, window, 3, 20, server_window])


def engine_pair():
    handshake_turns = bytes([TURN_P, TURN_P, TURN_P])
    seeds = {
        "qos_both_ways": handshake_turns + bytes([C_QOS, 3, S_QOS, 4, TURN_P, TURN_P, TURN_P, C_READ, S_READ]),
        "window_burst": handshake_turns + bytes([C_QOS, 1] * 12 + [TURN_P] * 6 + [S_READ] * 12),
        "nonqos": handshake_turns + bytes([C_RAW, 2, S_RAW, 3, TURN_P, TURN_P, C_READ, S_READ]),
        "byte_by_byte": handshake_turns + bytes([C_QOS, 9] + [C_SEND, 1, S_DELIVER, 1] * 30 + [TURN_P] * 3),
        "cut_and_resend": handshake_turns + bytes([C_QOS, 5, C_QOS, 6, C_SEND, 0, CUT, 0, DEADLINE, DEADLINE, TURN_P] * 2),
        "half_open": handshake_turns + bytes([S_QOS, 5, S_SEND, 0, HALF_OPEN, 0, DEADLINE, DEADLINE, DEADLINE, TURN_P]),
        "outage_by_time": handshake_turns + bytes([C_QOS, 7, BIG_P, 12, TURN_P, BIG_P, 20, TURN_P]),
        "full_rx_queue": handshake_turns + bytes([C_QOS, 1] * 40 + [TURN_P, SMALL_P, 30] * 8),
        "long_payloads": handshake_turns + bytes([C_QOS, 255, S_QOS, 255, TURN_P, TURN_P]),
        "deadlines": handshake_turns + bytes([DEADLINE] * 20),
    }
    for name, ops in seeds.items():
        write("engine_pair", name, pair_config() + ops)
        write("engine_pair", name + "_w1_fast", pair_config(timeout_byte=1, window=0, server_window=0) + ops)


if __name__ == "__main__":
    # Seeds named regress_* are inputs that once found a bug: kept as they are.
    for target in os.listdir(ROOT) if os.path.isdir(ROOT) else []:
        for f in os.listdir(os.path.join(ROOT, target)):
            if not f.startswith("regress_"):
                os.remove(os.path.join(ROOT, target, f))
    line_decoder()
    handshake()
    engine()
    engine_pair()
    for target in sorted(os.listdir(ROOT)):
        files = os.listdir(os.path.join(ROOT, target))
        size = sum(os.path.getsize(os.path.join(ROOT, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")
