"""CPython stand-in for MicroPython's ``usocket`` (client-side subset).

Written for the resilink interop harness. The ``socket`` class wraps a CPython
socket and gives it the MicroPython stream semantics micropython-iot relies on:

* ``readline()`` on a non-blocking socket returns ``None`` when no data is
  available, ``b''`` at end of stream, otherwise the bytes up to and including
  the next ``b'\\n'``. If only part of a line has arrived, that part is
  returned (the caller joins the pieces). Never more than one line is returned.
* ``send()`` accepts ``str`` (sent UTF-8 encoded) or bytes and returns the
  number of bytes written; when it would block it raises
  ``OSError(errno.EAGAIN)``.
* ``recv()`` raises ``OSError(errno.EAGAIN)`` when it would block.
"""

import errno as _errno
import socket as _socket

AF_INET = _socket.AF_INET
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
IPPROTO_TCP = _socket.IPPROTO_TCP
SOL_SOCKET = _socket.SOL_SOCKET
SO_REUSEADDR = _socket.SO_REUSEADDR
error = OSError


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """IPv4/TCP by default, matching the default of ``socket()``."""
    return _socket.getaddrinfo(host, port, af or AF_INET, type or SOCK_STREAM,
                               proto, flags)


def _eagain():
    return OSError(_errno.EAGAIN, "EAGAIN")


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        self._sock = _socket.socket(af, type, proto)
        self._rbuf = b""  # bytes received but not yet handed out
        self._eof = False

    def fileno(self):
        return self._sock.fileno()

    def setsockopt(self, level, opt, value):
        self._sock.setsockopt(level, opt, value)

    def setblocking(self, flag):
        self._sock.setblocking(flag)

    def settimeout(self, value):
        self._sock.settimeout(value)

    def connect(self, addr):
        self._sock.connect(addr)

    def close(self):
        self._sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            return self._sock.send(data)
        except BlockingIOError:
            raise _eagain() from None

    def write(self, data):
        """Stream write: like send() but None instead of EAGAIN."""
        try:
            return self.send(data)
        except OSError as e:
            if e.args and e.args[0] == _errno.EAGAIN:
                return None
            raise

    def recv(self, bufsize):
        if self._rbuf:
            data, self._rbuf = self._rbuf[:bufsize], self._rbuf[bufsize:]
            return data
        if self._eof:
            return b""
        try:
            return self._sock.recv(bufsize)
        except BlockingIOError:
            raise _eagain() from None

    def readline(self):
        while True:
            nl = self._rbuf.find(b"\n")
            if nl >= 0:
                line, self._rbuf = self._rbuf[:nl + 1], self._rbuf[nl + 1:]
                return line
            if self._eof:  # hand out any tail, then b'' for ever
                line, self._rbuf = self._rbuf, b""
                return line
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                if self._rbuf:  # partial line: caller joins the pieces
                    line, self._rbuf = self._rbuf, b""
                    return line
                return None  # nothing available right now
            if data:
                self._rbuf += data
            else:
                self._eof = True
