"""CPython stand-in for the ``micropython`` module."""


def const(value):
    return value


def alloc_emergency_exception_buf(size):
    pass
