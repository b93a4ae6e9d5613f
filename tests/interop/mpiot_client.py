#!/usr/bin/env python3
"""stdio bridge around the ORIGINAL micropython-iot ``iot.client.Client``.

usage: mpiot_client.py [options] ID HOST PORT TIMEOUT_MS

* Each stdin line (without its '\\n') is sent with
  ``await client.write(line, qos, wait)``, in order, one at a time.
  Empty lines are skipped with a warning (see --send-empty).
* Each line received from the server is printed to stdout as-is (payload
  only, trailing '\\n' of the protocol removed), flushed at once.
* Logs and the original code's own prints go to stderr.

Exit status:
  0   stdin reached EOF, every write completed (qos: was ACKed) and at least
      --recv lines were received; or --exit-after lines were received; or
      SIGTERM/SIGINT (after closing the socket)
  1   stdout closed (broken pipe)
  2   bad usage / bad MICROPYTHON_IOT_DIR
  3   a task of the original client (or of this bridge) raised, e.g. the
      initial connection was refused (unless --retry-initial)
  77  micropython-iot source not found
"""

import argparse
import asyncio
import signal
import sys

import mpiot_common as mc

PROG = "mpiot_client"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="mpiot_client.py",
        description="stdio bridge around the original micropython-iot Client")
    p.add_argument("id", help="client ID sent as the first line")
    p.add_argument("host", help="server address (use 127.0.0.1 in tests)")
    p.add_argument("port", type=int)
    p.add_argument("timeout", type=int, help="link timeout in ms (e.g. 2000)")
    p.add_argument("--no-qos", dest="qos", action="store_false",
                   help="write with qos=False (default qos=True)")
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="write with wait=False (default wait=True)")
    p.add_argument("--concurrent", action="store_true",
                   help="start each write as its own task instead of awaiting "
                        "it before the next (order then not guaranteed)")
    p.add_argument("--recv", type=int, default=0, metavar="N",
                   help="at stdin EOF, also wait until N lines were received "
                        "before exiting")
    p.add_argument("--exit-after", type=int, default=0, metavar="N",
                   help="exit 0 as soon as N lines were received (regardless "
                        "of stdin and pending writes)")
    p.add_argument("--linger-ms", type=int, default=200, metavar="MS",
                   help="on normal completion keep running MS ms before "
                        "closing, so that ACKs still queued get sent "
                        "(default 200)")
    p.add_argument("--retry-initial", action="store_true",
                   help="if the very first connection fails, keep retrying "
                        "(overrides Client.bad_server, which by default "
                        "raises and kills the client)")
    p.add_argument("--send-empty", action="store_true",
                   help="send empty stdin lines too (original quirk: an empty "
                        "payload is indistinguishable from an ACK)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="verbose=True for the original Client (stderr)")
    return p.parse_args(argv)


async def amain(args, out, log):
    from iot import client as iot_client  # the original code
    import uasyncio  # our shim, for its exception handler hook

    loop = asyncio.get_running_loop()
    done = loop.create_future()
    stats = {"rx": 0, "tx": 0}

    def finish(code, why, linger=False):
        if not done.done():
            log(why)
            done.set_result((code, linger))

    def on_task_error(_loop, context):
        exc = context.get("exception")
        uasyncio.get_event_loop().default_exception_handler(_loop, context)
        finish(3, "task of the original client failed: {!r}".format(exc))

    uasyncio.get_event_loop().set_exception_handler(on_task_error)

    def spawn(coro):  # our own tasks: any exception is fatal
        task = asyncio.create_task(coro)
        task.add_done_callback(
            lambda t: t.cancelled() or t.exception() is None or
            finish(3, "bridge task failed: {!r}".format(t.exception())))
        return task

    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT"),
                      (signal.SIGHUP, "SIGHUP")):
        loop.add_signal_handler(sig, finish, 0, "got " + name)  # no linger

    def conn_cb(state):
        log("link", "up" if state else "down")

    cls = iot_client.Client
    if args.retry_initial:
        class RetryClient(iot_client.Client):
            async def bad_server(self):  # documented override point
                log("initial connection failed; retrying")
        cls = RetryClient

    # A non-empty ssid is required: with ssid == '' Client.bad_wifi() raises
    # on non-ESP8266 platforms. The fake WLAN ignores the credentials.
    cl = cls(args.id, args.host, args.port, "interop", "", args.timeout,
             conn_cb=conn_cb, verbose=args.verbose)
    log("client", repr(args.id), "->", "{}:{}".format(args.host, args.port),
        "timeout", args.timeout, "qos", args.qos, "wait", args.wait)

    lines = asyncio.Queue()
    state = {"eof_done": False}

    def check_complete():
        if state["eof_done"] and stats["rx"] >= args.recv:
            finish(0, "complete: sent {tx}, received {rx}".format(**stats),
                   linger=True)

    async def reader():
        while True:
            line = await cl.readline()
            if line.endswith("\n"):
                line = line[:-1]
            if not out.line(line):
                finish(1, "stdout closed")
                return
            stats["rx"] += 1
            if args.exit_after and stats["rx"] >= args.exit_after:
                finish(0, "received {rx} lines (--exit-after)".format(
                    **stats), linger=True)
            check_complete()

    async def one_write(line):
        await cl.write(line, args.qos, args.wait)
        stats["tx"] += 1

    async def writer():
        pending = set()
        while True:
            line = await lines.get()
            if line is None:
                break
            if line == "" and not args.send_empty:
                log("skipping empty stdin line (see --send-empty)")
                continue
            if args.concurrent:
                task = spawn(one_write(line))
                pending.add(task)
                task.add_done_callback(pending.discard)
            else:
                await one_write(line)
        if pending:
            await asyncio.gather(*pending)
        log("stdin EOF, all {} writes completed".format(stats["tx"]))
        state["eof_done"] = True
        check_complete()

    spawn(reader())
    spawn(writer())
    mc.start_stdin_reader(loop, lines.put_nowait,
                          lambda: lines.put_nowait(None))

    code, linger = await done
    if linger and args.linger_ms > 0:
        await asyncio.sleep(args.linger_ms / 1000)
    log("exit", code, "(sent {tx}, received {rx})".format(**stats))
    cl.close()
    # Leave without cancelling the original tasks: Client._run's finally
    # clause would sleep 2*timeout before letting go.
    mc.hard_exit(code)


def main():
    args = parse_args(sys.argv[1:])
    log = mc.Log("{}[{}]".format(PROG, args.id))
    _src, out = mc.setup(PROG)
    asyncio.run(amain(args, out, log))


if __name__ == "__main__":
    main()
