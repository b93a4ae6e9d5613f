"""CPython stand-in for MicroPython's ``network`` (WLAN only).

Written for the resilink interop harness; there is no radio. The station
interface starts out connected. ``disconnect()`` makes ``isconnected()`` False
until the next ``connect()``; micropython-iot's Client relies on this after an
outage (it disconnects, then waits while ``isconnected()`` is True, then
reconnects), so a WLAN that is connected for ever would stall it.
"""

STA_IF = 0
AP_IF = 1

STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 5

_state = {}  # interface id -> connected flag (shared like real hardware)


class WLAN:
    def __init__(self, interface_id=STA_IF):
        self._if = interface_id
        _state.setdefault(interface_id, interface_id == STA_IF)
        self._active = False

    def active(self, *args):
        if args:
            self._active = bool(args[0])
            return None
        return self._active

    def connect(self, ssid=None, key=None, **kwargs):
        _state[self._if] = True

    def disconnect(self):
        _state[self._if] = False

    def isconnected(self):
        return _state[self._if]

    def status(self, *args):
        return STAT_GOT_IP if _state[self._if] else STAT_IDLE

    def ifconfig(self, *args):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args, **kwargs):
        return None
