"""The one place that runs graphviz's ``dot`` program.

Everything else in thpviz writes DOT text; this module turns it into SVG or
PNG by running ``dot`` as a subprocess.

Starting ``dot`` costs about 15-20 ms (it loads its plugins), more than
laying out one of our diagrams.  So:

* :func:`render_svg` keeps one ``dot -Tsvg`` process running and feeds it one
  graph after another (``dot`` reads a stream of graphs and writes each SVG
  as soon as the graph is complete).  That process grows with every graph
  (about 15-40 KiB each), so it is *recycled*: replaced by a fresh one after
  :data:`RECYCLE_GRAPHS` graphs or once its resident size passes
  :data:`RECYCLE_RSS_KIB`.  An error on stderr or the process gone drops it
  and falls back to a fresh one-shot run, which reports the error.
  ``THPVIZ_DOT_SERVER=0`` turns the long-lived process off.
* SVG is cached by the DOT text (a bounded LRU, :data:`CACHE_ITEMS` graphs
  and :data:`CACHE_BYTES` bytes): stepping back and forth in a player, or
  drawing the same frame in two storyboards, lays it out once.
* A layout that runs out of time raises :class:`LayoutTimeout` and is
  remembered: the same DOT text raises again at once instead of blocking
  for another timeout (the diagrams keep themselves small enough that this
  should never happen; see :mod:`thpviz.render.budget`).
* :func:`render_many_svg` lays out several graphs with one process
  (storyboards), taking what it can from the cache.
* :func:`render_async` lays out off the caller's thread and returns a
  :class:`concurrent.futures.Future` (for widgets that show a placeholder
  first; :func:`placeholder_svg` draws one without ``dot``).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from html import escape

_FORMATS = ("svg", "png", "pdf", "dot", "plain")

#: seconds one layout may take before :class:`LayoutTimeout`
DEFAULT_TIMEOUT = 10.0
#: the long-lived ``dot`` is replaced after this many graphs ...
RECYCLE_GRAPHS = 500
#: ... or when its resident set grows past this (checked every few graphs)
RECYCLE_RSS_KIB = 96 * 1024
_RSS_EVERY = 25
#: SVG cache bounds
CACHE_ITEMS = 256
CACHE_BYTES = 64 * 1024 * 1024
#: how many failed layouts are remembered
FAILED_ITEMS = 256


class GraphvizError(RuntimeError):
    """``dot`` could not be run, failed, or took too long (the base of the
    three below; the command line turns it into one line and exit 2)."""


class GraphvizMissing(GraphvizError):
    """``dot`` is not installed (Debian/Ubuntu: ``apt-get install graphviz``)."""


class DotError(GraphvizError):
    """``dot`` rejected the graph (the message is its stderr)."""


class LayoutTimeout(GraphvizError):
    """``dot`` did not finish in time; the same DOT text is not laid out again."""


def dot_binary() -> str:
    """Path of ``dot``: ``$THPVIZ_DOT``, then the PATH, then /usr/bin/dot."""
    env = os.environ.get("THPVIZ_DOT")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise GraphvizMissing(f"THPVIZ_DOT={env} is not an executable program (unset it to use dot from PATH)")
        return env
    found = shutil.which("dot")
    if found:
        return found
    if os.path.exists("/usr/bin/dot"):
        return "/usr/bin/dot"
    raise GraphvizMissing("graphviz's dot program was not found (apt-get install graphviz, "
                          "or conda install graphviz)")


def available() -> bool:
    try:
        dot_binary()
    except GraphvizMissing:
        return False
    return True


def _key(dot_text: str, fmt: str = "svg") -> str:
    return fmt + ":" + hashlib.sha256(dot_text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------- the cache
class _Lru:
    """A bounded LRU of SVG text keyed by a digest of the DOT text."""

    def __init__(self, items: int, nbytes: int):
        self.items, self.nbytes = items, nbytes
        self.data: OrderedDict[str, str] = OrderedDict()
        self.size = 0
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self.lock:
            v = self.data.get(key)
            if v is None:
                self.misses += 1
                return None
            self.hits += 1
            self.data.move_to_end(key)
            return v

    def put(self, key: str, value: str) -> None:
        if len(value) > self.nbytes:
            return
        with self.lock:
            old = self.data.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self.data[key] = value
            self.size += len(value)
            while len(self.data) > self.items or self.size > self.nbytes:
                _, v = self.data.popitem(last=False)
                self.size -= len(v)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.size = 0
            self.hits = self.misses = 0


_cache = _Lru(CACHE_ITEMS, CACHE_BYTES)
_failed: OrderedDict[str, str] = OrderedDict()
_failed_lock = threading.Lock()


def _remember_failure(key: str, message: str) -> None:
    with _failed_lock:
        _failed[key] = message
        while len(_failed) > FAILED_ITEMS:
            _failed.popitem(last=False)


def _check_failed(key: str) -> None:
    with _failed_lock:
        msg = _failed.get(key)
    if msg is not None:
        raise LayoutTimeout(msg + " (remembered: not laid out again)")


def cached_svg(dot_text: str) -> str | None:
    """The SVG of ``dot_text`` if it is in the cache (no layout)."""
    return _cache.get(_key(dot_text))


def cache_info() -> dict:
    """Cache and server counters (for tests and the benchmark)."""
    with _lock:
        server = None if _server is None else {"pid": _server.proc.pid, "graphs": _server.graphs}
    return {"items": len(_cache.data), "bytes": _cache.size, "hits": _cache.hits, "misses": _cache.misses,
            "failed": len(_failed), "server": server, "servers_started": _stats["servers"]}


def clear_cache() -> None:
    """Forget cached SVG and remembered failures."""
    _cache.clear()
    with _failed_lock:
        _failed.clear()


# ------------------------------------------------------------- one-shot runs
def render(dot_text: str, fmt: str = "svg", timeout: float = 60.0) -> bytes:
    """Lay out one graph with a fresh ``dot`` process; the output bytes.
    A timeout is remembered (:class:`LayoutTimeout` at once next time)."""
    if fmt not in _FORMATS:
        raise ValueError(f"format {fmt!r} not one of {', '.join(_FORMATS)}")
    key = _key(dot_text, fmt)
    _check_failed(key)
    try:
        proc = subprocess.run(
            [dot_binary(), f"-T{fmt}"], input=dot_text.encode("utf-8"),
            capture_output=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        msg = f"dot took more than {timeout:g} s to lay out this graph"
        _remember_failure(key, msg)
        raise LayoutTimeout(msg) from None
    except OSError as err:
        raise GraphvizMissing(f"cannot run {dot_binary()}: {err}") from None
    if proc.returncode != 0:
        raise DotError(f"dot failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:2000]}")
    if not proc.stdout:
        raise DotError(f"{dot_binary()} gave no output")
    return proc.stdout


# ------------------------------------------------------ the long-lived dot
class _DotServer:
    """A long-lived ``dot -Tsvg`` reading one graph after another."""

    def __init__(self, binary: str):
        try:
            self.proc = subprocess.Popen([binary, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=0)
        except OSError as err:
            raise GraphvizMissing(f"cannot run {binary}: {err}") from None
        self.graphs = 0
        _stats["servers"] += 1

    def rss_kib(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return None

    def worn_out(self) -> bool:
        """Time to replace this process (it keeps what it allocated)."""
        if self.graphs >= RECYCLE_GRAPHS:
            return True
        if self.graphs and self.graphs % _RSS_EVERY == 0:
            rss = self.rss_kib()
            return rss is not None and rss > RECYCLE_RSS_KIB
        return False

    def render(self, text: str, timeout: float) -> tuple[str, bytes | None]:
        """("ok", svg), ("timeout", None) or ("error", None)."""
        if not text.endswith("\n"):
            text += "\n"  # dot finishes a graph when it sees what follows its closing brace
        self.graphs += 1
        stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # all three are PIPEs
        try:
            stdin.write(text.encode("utf-8"))
        except OSError:
            return "error", None
        out, err = stdout.fileno(), stderr.fileno()
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None
            ready, _, _ = select.select([out, err], [], [], left)
            if err in ready:
                msg = os.read(err, 65536)
                if not msg or b"Error" in msg or b"error" in msg:
                    return "error", None  # warnings are drained, errors are not ours to parse
            if out in ready:
                data = os.read(out, 1 << 16)
                if not data:
                    return "error", None
                chunks.append(data)
                if b"".join(chunks[-2:]).rstrip().endswith(b"</svg>"):
                    return "ok", b"".join(chunks)

    def close(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is None:
                continue
            try:
                f.close()
            except OSError:
                pass


# dot prefixes the ids of the second and later graphs of a stream
# ("page0,1_node1"); strip that so every SVG looks as if laid out alone
_PAGE_ID = re.compile(rb'(id="|href="#)page\d+,\d+_')


def _unpage(svg: bytes) -> bytes:
    return _PAGE_ID.sub(rb"\1", svg)


_server: _DotServer | None = None
_lock = threading.Lock()
_stats = {"servers": 0}


def _close_server() -> None:
    global _server
    with _lock:
        if _server is not None:
            _server.close()
            _server = None


atexit.register(_close_server)


def _use_server() -> bool:
    return os.name == "posix" and os.environ.get("THPVIZ_DOT_SERVER", "1") != "0"


def render_svg(dot_text: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The SVG of one graph: from the cache, else through the long-lived
    ``dot`` when possible.  Raises :class:`LayoutTimeout` (remembered),
    :class:`DotError` or :class:`GraphvizMissing`."""
    global _server
    key = _key(dot_text)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    _check_failed(key)
    out = None
    t0 = time.monotonic()
    if _use_server():
        with _lock:
            if _server is not None and (_server.proc.poll() is not None or _server.worn_out()):
                _server.close()
                _server = None
            if _server is None:
                binary = dot_binary()
                try:
                    _server = _DotServer(binary)
                except OSError as err:
                    raise GraphvizMissing(f"cannot run {binary}: {err.strerror or err}") from None
            status, out = _server.render(dot_text, timeout)
            if status != "ok":
                _server.close()
                _server = None
        if status == "timeout":
            msg = f"dot took more than {timeout:g} s to lay out this graph"
            _remember_failure(key, msg)
            raise LayoutTimeout(msg)
    if out is not None:
        svg = _unpage(out).decode("utf-8")
    else:
        left = max(0.5, timeout - (time.monotonic() - t0))
        svg = render(dot_text, "svg", timeout=left).decode("utf-8")
    _cache.put(key, svg)
    return svg


def render_many_svg(dot_texts: list[str], timeout: float = 300.0) -> list[str]:
    """Lay out several graphs with one ``dot`` process (the ones not in the
    cache); one SVG per graph, in order."""
    if not dot_texts:
        return []
    keys = [_key(t) for t in dot_texts]
    got: dict[str, str] = {}
    todo: list[int] = []
    for i, k in enumerate(keys):
        hit = _cache.get(k)
        if hit is not None:
            got[k] = hit
        elif k not in got and all(keys[j] != k for j in todo):
            _check_failed(k)
            todo.append(i)
    if todo:
        texts = [dot_texts[i] if dot_texts[i].endswith("\n") else dot_texts[i] + "\n" for i in todo]
        out = _unpage(render("".join(texts), "svg", timeout=timeout)).decode("utf-8")
        parts = [p for p in re.split(r"(?=<\?xml )", out) if p.strip()]
        if len(parts) != len(todo):
            raise DotError(f"dot returned {len(parts)} SVG documents for {len(todo)} graphs")
        for i, svg in zip(todo, parts):
            got[keys[i]] = svg
            _cache.put(keys[i], svg)
    return [got[k] for k in keys]


# --------------------------------------------------------- off the thread
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thpviz-dot")
        return _executor


def render_async(dot_text: str, callback=None, timeout: float = DEFAULT_TIMEOUT) -> Future:
    """Lay out ``dot_text`` on a worker thread.  Returns a Future whose
    result is the SVG text (or whose exception is :class:`LayoutTimeout`,
    :class:`DotError`, :class:`GraphvizMissing`).  ``callback(svg, error)``
    is called when it is done (on the worker thread; ``svg`` is None when
    ``error`` is set).  A cached graph gives a Future that is already done.
    A Future not yet started can be ``cancel()``-ed (a newer step wins)."""
    hit = cached_svg(dot_text)
    if hit is not None:
        fut: Future = Future()
        fut.set_result(hit)
    else:
        fut = _pool().submit(render_svg, dot_text, timeout)
    if callback is not None:
        def done(f: Future) -> None:
            if f.cancelled():
                return
            err = f.exception()
            callback(None if err else f.result(), err)
        fut.add_done_callback(done)
    return fut


def placeholder_svg(text: str = "laying out the diagram…", width: int = 360, height: int = 60) -> str:
    """A small SVG to show while :func:`render_async` works (no ``dot``)."""
    t = escape(text, quote=True)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{t}">'
            f'<rect width="100%" height="100%" rx="6" fill="#FBFAF6" stroke="#bbbbbb"/>'
            f'<text x="12" y="{height // 2 + 5}" font-family="Helvetica,Arial,sans-serif" font-size="14" '
            f'fill="#555555">{t}</text></svg>')
