"""CPython stand-in for MicroPython's ``uasyncio`` (V3 API subset).

Written for the resilink interop harness. Only what micropython-iot's client
and primitives use is provided, mapped onto CPython's ``asyncio``.

Differences from plain ``asyncio`` worth knowing:

* ``sleep_ms(0)`` pauses for ``$MPIOT_POLL_MS`` milliseconds (default 1)
  instead of only yielding. MicroPython code polls with it (iot.client's
  ``_readline`` spins on a non-blocking socket with ``sleep_ms(0)``), which
  under CPython would pin a CPU core. ``MPIOT_POLL_MS=0`` gives a pure yield.
* ``create_task()`` attaches a done-callback that reports an exception in a
  task immediately (as MicroPython does) instead of when the task is garbage
  collected. The report goes to the handler installed with
  ``get_event_loop().set_exception_handler()``; by default a traceback is
  printed to stderr.
"""

import asyncio as _asyncio
import os as _os
import sys as _sys
import traceback as _traceback

# Names whose CPython semantics match uasyncio V3 closely enough.
Event = _asyncio.Event
Lock = _asyncio.Lock
Task = _asyncio.Task
TimeoutError = _asyncio.TimeoutError
CancelledError = _asyncio.CancelledError
sleep = _asyncio.sleep
gather = _asyncio.gather
wait_for = _asyncio.wait_for
current_task = _asyncio.current_task
run = _asyncio.run


_POLL_S = max(0.0, float(_os.environ.get("MPIOT_POLL_MS") or 1)) / 1000


def sleep_ms(ms):
    """Awaitable pause of ``ms`` milliseconds (0: see module docstring)."""
    return _asyncio.sleep(ms / 1000 if ms > 0 else _POLL_S)


def wait_for_ms(aw, timeout_ms):
    """Like ``wait_for`` with a timeout in milliseconds (None: no timeout)."""
    return _asyncio.wait_for(aw, None if timeout_ms is None else timeout_ms / 1000)


_exc_handler = None


def _report(task):
    if task.cancelled():
        return
    exc = task.exception()  # also marks the exception as retrieved
    if exc is None:
        return
    context = {"message": "Task exception wasn't retrieved",
               "exception": exc, "future": task}
    handler = _exc_handler or _Loop.default_exception_handler
    handler(_loop, context)


def create_task(coro):
    """Schedule ``coro`` on the running loop; report its exception at once."""
    task = _asyncio.get_running_loop().create_task(coro)
    task.add_done_callback(_report)
    return task


class _Loop:
    """The object returned by ``get_event_loop()`` (MicroPython style)."""

    @staticmethod
    def create_task(coro):
        return create_task(coro)

    @staticmethod
    def set_exception_handler(handler):
        global _exc_handler
        _exc_handler = handler

    @staticmethod
    def get_exception_handler():
        return _exc_handler

    @staticmethod
    def default_exception_handler(loop, context):
        exc = context.get("exception")
        print(context.get("message", "uasyncio exception"), file=_sys.stderr)
        if exc is not None:
            _traceback.print_exception(type(exc), exc, exc.__traceback__,
                                       file=_sys.stderr)

    @staticmethod
    def call_exception_handler(context):
        (_exc_handler or _Loop.default_exception_handler)(_loop, context)

    @staticmethod
    def run_until_complete(aw):
        return _asyncio.run(aw)

    @staticmethod
    def stop():
        _asyncio.get_running_loop().stop()

    @staticmethod
    def close():
        pass


_loop = _Loop()


def get_event_loop(*_args, **_kwargs):
    return _loop


def new_event_loop():
    """MicroPython resets scheduler state here; we only drop the handler."""
    global _exc_handler
    _exc_handler = None
    return _loop
