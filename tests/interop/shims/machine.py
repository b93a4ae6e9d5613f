"""CPython stand-in for MicroPython's ``machine`` (inert stubs).

Written for the resilink interop harness. ``Timer`` never fires its callback,
so micropython-iot's software watchdog (``wdog=True``) is inert; ``reset()``
raises ``SystemExit`` instead of rebooting.
"""


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None, **kwargs):
        self._id = id
        self._value = 0 if value is None else int(bool(value))

    def value(self, *args):
        if args:
            self._value = int(bool(args[0]))
            return None
        return self._value

    __call__ = value

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kwargs):
        self._id = id

    def init(self, **kwargs):
        pass

    def deinit(self):
        pass


class WDT:
    def __init__(self, id=0, timeout=5000):
        self._timeout = timeout

    def feed(self):
        pass


def reset():
    raise SystemExit("machine.reset() called")


def soft_reset():
    reset()
