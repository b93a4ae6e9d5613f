"""Shared helpers for the micropython-iot interop scripts.

* Locates the original micropython-iot source (a directory containing
  ``iot/``) and puts it on ``sys.path`` behind our shims (``shims/``).
* Small stdio helpers: a stdin line reader feeding the asyncio loop, and an
  unbuffered line writer for the real stdout (``sys.stdout`` itself is pointed
  at stderr so that stray prints of the original code cannot corrupt the
  stdio protocol).

Run ``python3 mpiot_common.py --locate`` to print the source directory
(exit 77 if not found); ``find_mpiot.sh`` does just that.

Source lookup order:
  1. ``$MICROPYTHON_IOT_DIR`` (must contain ``iot/client.py`` and
     ``iot/server.py``; if set but invalid this is an error, exit 2);
  2. the git repository at ``$MICROPYTHON_IOT_REPO`` (default
     ``/work/.mirror/peterhinch+micropython-iot/repo``): its ``HEAD:iot`` is
     extracted once into ``$MPIOT_CACHE_DIR`` (default: the system temp dir)
     as ``resilink-mpiot-<commit>/``;
  3. otherwise exit 77 (skip).
"""

import gc
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHIMS = os.path.join(HERE, "shims")
DEFAULT_REPO = "/work/.mirror/peterhinch+micropython-iot/repo"

EXIT_SKIP = 77
EXIT_BADENV = 2
SKIP_MSG = "micropython-iot source not found; set MICROPYTHON_IOT_DIR"


class SourceNotFound(Exception):
    pass


class SourceInvalid(Exception):
    pass


def _is_source_dir(path):
    return all(os.path.isfile(os.path.join(path, "iot", name))
               for name in ("__init__.py", "client.py", "server.py"))


def _git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout


def _extract_from_repo(repo):
    try:
        commit = _git(repo, "rev-parse", "HEAD").decode().strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise SourceNotFound("cannot read git repository {}: {}".format(repo, e))
    cache_root = os.environ.get("MPIOT_CACHE_DIR") or tempfile.gettempdir()
    dest = os.path.join(cache_root, "resilink-mpiot-" + commit[:12])
    if _is_source_dir(dest):
        return dest
    os.makedirs(cache_root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".resilink-mpiot-", dir=cache_root)
    try:
        data = _git(repo, "archive", "--format=tar", commit, "iot")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        try:
            os.rename(tmp, dest)  # atomic: concurrent extractions are fine
        except OSError:
            if not _is_source_dir(dest):
                raise
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as e:
        raise SourceNotFound("cannot extract iot/ from {}: {}".format(repo, e))
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    if not _is_source_dir(dest):
        raise SourceNotFound("extraction into {} incomplete".format(dest))
    return dest


def locate_source():
    """Return a directory containing the original ``iot`` package."""
    env = os.environ.get("MICROPYTHON_IOT_DIR")
    if env:
        if not _is_source_dir(env):
            raise SourceInvalid(
                "MICROPYTHON_IOT_DIR={} does not contain iot/__init__.py, "
                "iot/client.py and iot/server.py".format(env))
        return os.path.abspath(env)
    repo = os.environ.get("MICROPYTHON_IOT_REPO") or DEFAULT_REPO
    if os.path.isdir(repo):
        return _extract_from_repo(repo)
    raise SourceNotFound("no MICROPYTHON_IOT_DIR and no repository at " + repo)


def locate_or_exit(prog):
    try:
        return locate_source()
    except SourceInvalid as e:
        print("{}: {}".format(prog, e), file=sys.stderr)
        sys.exit(EXIT_BADENV)
    except SourceNotFound as e:
        print("{}: {} ({})".format(prog, SKIP_MSG, e), file=sys.stderr)
        sys.exit(EXIT_SKIP)


def setup(prog):
    """Make ``import iot`` load the original code with our shims in front.

    Returns (source_dir, out) where ``out`` is a LineWriter on the real stdout.
    Exits 77 if the source cannot be found.
    """
    src = locate_or_exit(prog)
    sys.dont_write_bytecode = True  # never write into the source tree
    sys.path[0:0] = [SHIMS, src]
    if not hasattr(gc, "mem_free"):  # MicroPython extensions of gc
        gc.mem_free = lambda: 1 << 20
        gc.mem_alloc = lambda: 0
    out = LineWriter(sys.stdout)
    sys.stdout = sys.stderr  # stray prints (library, verbose) go to stderr
    return src, out


class LineWriter:
    """Writes whole lines to the protocol stdout, flushing each one."""

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def line(self, text):
        if self.broken:
            return False
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True
            return False
        return True


class Log:
    def __init__(self, prog):
        self._prog = prog
        self._t0 = time.monotonic()

    def __call__(self, *args):
        msg = " ".join(str(a) for a in args)
        try:
            sys.stderr.write("[{:8.3f}] {}: {}\n".format(
                time.monotonic() - self._t0, self._prog, msg))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def start_stdin_reader(loop, on_line, on_eof):
    """Read fd 0 in a daemon thread; call on_line(str) / on_eof() in ``loop``.

    Lines are split on b'\\n' (which is removed) and decoded as UTF-8 with
    replacement. A final line without newline is delivered too. Raw
    ``os.read`` is used so that process exit never waits on the stdin lock.
    """
    def post(cb, *args):
        try:
            loop.call_soon_threadsafe(cb, *args)
        except RuntimeError:  # loop closed: we are exiting
            raise SystemExit

    def run():
        buf = b""
        while True:
            try:
                chunk = os.read(0, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                post(on_line, raw.decode("utf-8", "replace"))
        if buf:
            post(on_line, buf.decode("utf-8", "replace"))
        post(on_eof)

    threading.Thread(target=run, name="stdin", daemon=True).start()


def hard_exit(code):
    """Flush and leave at once (skips asyncio teardown; see README)."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:] == ["--locate"]:
        print(locate_or_exit("find_mpiot"))
        sys.exit(0)
    print("usage: mpiot_common.py --locate", file=sys.stderr)
    sys.exit(2)
