"""CPython stand-in for MicroPython's ``utime``.

Written for the resilink interop harness. Tick counters wrap like
MicroPython's (30-bit period), so ``ticks_diff`` must be used to compare them.
"""

import time as _time

_PERIOD = 1 << 30
_MASK = _PERIOD - 1
_HALF = _PERIOD >> 1

sleep = _time.sleep
time = _time.time
localtime = _time.localtime
gmtime = _time.gmtime
mktime = _time.mktime


def ticks_ms():
    return (_time.monotonic_ns() // 1_000_000) & _MASK


def ticks_us():
    return (_time.monotonic_ns() // 1_000) & _MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(new, old):
    """Signed difference new - old, correct across wrap-around."""
    return ((new - old + _HALF) & _MASK) - _HALF


def sleep_ms(ms):
    _time.sleep(ms / 1000)


def sleep_us(us):
    _time.sleep(us / 1_000_000)
