"""CPython stand-in for MicroPython's ``uerrno``: the host's errno values."""

from errno import *  # noqa: F401,F403
from errno import errorcode  # noqa: F401
