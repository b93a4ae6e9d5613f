#!/usr/bin/env python3
"""stdio bridge around the ORIGINAL micropython-iot ``iot.server``.

usage: mpiot_server.py [options] --port PORT --timeout MS ID [ID ...]

* Runs ``iot.server.run(expected_ids, verbose, port, timeout)``, listening on
  --bind (default 127.0.0.1; the original hard-codes 0.0.0.0, which this
  bridge rewrites at runtime without touching the original file).
* Every message received from client ID is printed to stdout as
  ``ID<TAB>payload`` (flushed at once). Messages from clients that were not
  in the expected set are printed too (the original accepts them).
* Every stdin line ``ID<TAB>payload`` is written to that client's Connection
  with ``await conn.write(payload, qos, wait)``. Lines for one client are
  written in order, one at a time; different clients are independent. A line
  for a client that has not connected yet waits until it connects.
  Lines without a TAB and empty payloads are skipped with a warning.
* Logs and the original code's prints go to stderr.

By default the server runs until SIGTERM/SIGINT (stdin EOF does not stop it).

Exit status:
  0   SIGTERM/SIGINT; or --exit-on-eof and stdin EOF, all writes completed and
      --recv messages received; or --exit-after messages received
  1   stdout closed (broken pipe)
  2   bad usage, cannot listen (e.g. port in use), bad MICROPYTHON_IOT_DIR
  3   a task of the bridge or of the original server raised
  77  micropython-iot source not found
"""

import argparse
import asyncio
import signal
import sys

import mpiot_common as mc

PROG = "mpiot_server"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="mpiot_server.py",
        description="stdio bridge around the original micropython-iot server")
    p.add_argument("ids", nargs="+", metavar="ID",
                   help="expected client IDs")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--timeout", type=int, default=2000,
                   help="link timeout in ms (default 2000)")
    p.add_argument("--bind", default="127.0.0.1",
                   help="IPv4 address to listen on instead of the original's "
                        "0.0.0.0 (default 127.0.0.1)")
    p.add_argument("--no-qos", dest="qos", action="store_false",
                   help="write with qos=False (default qos=True)")
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="write with wait=False (default wait=True)")
    p.add_argument("--exit-on-eof", action="store_true",
                   help="exit 0 once stdin is at EOF, all writes completed "
                        "and --recv messages were received")
    p.add_argument("--recv", type=int, default=0, metavar="N",
                   help="with --exit-on-eof: also wait for N received messages "
                        "(total over all clients)")
    p.add_argument("--exit-after", type=int, default=0, metavar="N",
                   help="exit 0 as soon as N messages were received in total")
    p.add_argument("--linger-ms", type=int, default=200, metavar="MS",
                   help="on normal completion keep running MS ms before "
                        "closing, so that queued ACKs get sent (default 200)")
    p.add_argument("--ready-file", metavar="PATH",
                   help="create PATH once the server socket is listening")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="verbose=True for the original server (stderr)")
    return p.parse_args(argv)


class _SocketModuleProxy:
    """Stands in for ``socket`` inside iot.server: rewrites the bind host."""

    def __init__(self, module, bind):
        self._module = module
        self._bind = bind

    def __getattr__(self, name):
        return getattr(self._module, name)

    def getaddrinfo(self, host, *args, **kwargs):
        if host == "0.0.0.0":
            host = self._bind
        return self._module.getaddrinfo(host, *args, **kwargs)


async def amain(args, out, log):
    from iot import server  # the original code (CPython branch)

    server.socket = _SocketModuleProxy(server.socket, args.bind)

    loop = asyncio.get_running_loop()
    done = loop.create_future()
    stats = {"rx": 0, "tx": 0, "queued": 0}
    state = {"eof": False}

    def finish(code, why, linger=False):
        if not done.done():
            log(why)
            done.set_result((code, linger))

    def spawn(coro, what):
        task = asyncio.create_task(coro)

        def check(t):
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                code = 2 if what == "server.run" else 3
                finish(code, "{} failed: {!r}".format(what, exc))
        task.add_done_callback(check)
        return task

    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT"),
                      (signal.SIGHUP, "SIGHUP")):
        loop.add_signal_handler(sig, finish, 0, "got " + name)  # no linger

    def check_complete():
        if (args.exit_on_eof and state["eof"] and stats["queued"] == 0
                and stats["rx"] >= args.recv):
            finish(0, "complete: sent {tx}, received {rx}".format(**stats),
                   linger=True)

    # --- server -----------------------------------------------------------
    run_task = spawn(server.run(set(args.ids), args.verbose, args.port,
                                args.timeout), "server.run")
    # server.run binds and listens before its first await.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    if run_task.done():
        code, _linger = await done
        mc.hard_exit(code)
    log("listening on {}:{} expecting {} timeout {} qos {} wait {}".format(
        args.bind, args.port, sorted(args.ids), args.timeout, args.qos,
        args.wait))
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("{}\n".format(args.port))

    # --- received messages -> stdout -----------------------------------------
    async def reader(cid, conn):
        while True:
            line = await conn.readline()
            if line.endswith("\n"):
                line = line[:-1]
            if not out.line("{}\t{}".format(cid, line)):
                finish(1, "stdout closed")
                return
            stats["rx"] += 1
            if args.exit_after and stats["rx"] >= args.exit_after:
                finish(0, "received {rx} messages (--exit-after)".format(
                    **stats), linger=True)
            check_complete()

    async def watch_connections():
        readers = {}
        status = {}
        while True:
            for cid, conn in list(server.Connection._conns.items()):
                if cid not in readers:
                    readers[cid] = spawn(reader(cid, conn), "reader " + cid)
                if conn.status() != status.get(cid):
                    status[cid] = conn.status()
                    log("client", repr(cid), "up" if status[cid] else "down")
            await asyncio.sleep(0.05)

    spawn(watch_connections(), "connection watcher")

    # --- stdin -> conn.write ------------------------------------------------
    queues = {}

    async def writer(cid, q):
        conn = await server.client_conn(cid)
        while True:
            payload = await q.get()
            await conn.write(payload, args.qos, args.wait)
            stats["tx"] += 1
            stats["queued"] -= 1
            check_complete()

    def on_line(line):
        cid, tab, payload = line.partition("\t")
        if not tab:
            log("ignoring stdin line without TAB:", repr(line))
            return
        if payload == "":
            log("ignoring empty payload for", repr(cid),
                "(would look like an ACK on the wire)")
            return
        if cid not in queues:
            if cid not in args.ids:
                log("warning: stdin names unexpected client", repr(cid))
            queues[cid] = asyncio.Queue()
            spawn(writer(cid, queues[cid]), "writer " + cid)
        stats["queued"] += 1
        queues[cid].put_nowait(payload)

    def on_eof():
        state["eof"] = True
        log("stdin EOF ({} lines queued)".format(stats["queued"]))
        check_complete()

    mc.start_stdin_reader(loop, on_line, on_eof)

    code, linger = await done
    if linger and args.linger_ms > 0:
        await asyncio.sleep(args.linger_ms / 1000)
    log("exit", code, "(sent {tx}, received {rx})".format(**stats))
    server.Connection.close_all()
    mc.hard_exit(code)


def main():
    args = parse_args(sys.argv[1:])
    log = mc.Log(PROG)
    _src, out = mc.setup(PROG)
    asyncio.run(amain(args, out, log))


if __name__ == "__main__":
    main()
