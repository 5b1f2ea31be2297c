"""The one place that runs graphviz's ``dot`` program.

Everything else in thpviz writes DOT text; this module turns it into SVG or
PNG by running ``dot`` as a subprocess.

Starting ``dot`` costs about 15-20 ms (it loads its plugins), more than
laying out one of our diagrams.  So:

* :func:`render_svg` keeps one ``dot -Tsvg`` process running and feeds it one
  graph after another (``dot`` reads a stream of graphs and writes each SVG
  as soon as the graph is complete); any trouble -- an error on stderr, a
  timeout, the process gone -- drops that process and falls back to a fresh
  one-shot run, which reports the error.  ``THPVIZ_DOT_SERVER=0`` turns the
  long-lived process off.
* :func:`render_many_svg` lays out several graphs with one process
  (storyboards).
"""

from __future__ import annotations

import atexit
import os
import re
import select
import shutil
import subprocess
import threading
import time

_FORMATS = ("svg", "png", "pdf", "dot", "plain")


class GraphvizError(RuntimeError):
    """``dot`` could not be run, failed, or gave no output."""


class GraphvizMissing(GraphvizError):
    """``dot`` is not installed (Debian/Ubuntu: ``apt-get install graphviz``)."""


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


def render(dot_text: str, fmt: str = "svg", timeout: float = 60.0) -> bytes:
    """Lay out one graph with a fresh ``dot`` process; the output bytes."""
    if fmt not in _FORMATS:
        raise ValueError(f"format {fmt!r} not one of {', '.join(_FORMATS)}")
    binary = dot_binary()
    try:
        proc = subprocess.run(
            [binary, f"-T{fmt}"], input=dot_text.encode("utf-8"),
            capture_output=True, timeout=timeout, check=False,
        )
    except OSError as e:
        raise GraphvizError(f"cannot run {binary}: {e.strerror or e}") from None
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"{binary} took more than {timeout:g} s") from None
    if proc.returncode != 0:
        raise GraphvizError(f"dot failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:2000]}")
    if not proc.stdout:
        raise GraphvizError(f"{binary} gave no output")
    return proc.stdout


class _DotServer:
    """A long-lived ``dot -Tsvg`` reading one graph after another."""

    def __init__(self, binary: str):
        self.proc = subprocess.Popen([binary, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)

    def render(self, text: str, timeout: float) -> bytes | None:
        """The SVG of one graph, or None if anything looks wrong."""
        if not text.endswith("\n"):
            text += "\n"  # dot finishes a graph when it sees what follows its closing brace
        try:
            self.proc.stdin.write(text.encode("utf-8"))
        except OSError:
            return None
        out, err = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([out, err], [], [], left)
            if err in ready:
                msg = os.read(err, 65536)
                if not msg or b"Error" in msg or b"error" in msg:
                    return None  # warnings are drained, errors are not ours to parse
            if out in ready:
                data = os.read(out, 1 << 16)
                if not data:
                    return None
                chunks.append(data)
                if b"".join(chunks[-2:]).rstrip().endswith(b"</svg>"):
                    return b"".join(chunks)

    def close(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
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


def _close_server() -> None:
    global _server
    with _lock:
        if _server is not None:
            _server.close()
            _server = None


atexit.register(_close_server)


def _use_server() -> bool:
    return os.name == "posix" and os.environ.get("THPVIZ_DOT_SERVER", "1") != "0"


def render_svg(dot_text: str, timeout: float = 30.0) -> str:
    """The SVG of one graph (through the long-lived ``dot`` when possible)."""
    global _server
    if _use_server():
        with _lock:
            out = None
            try:
                if _server is None or _server.proc.poll() is not None:
                    _server = _DotServer(dot_binary())
                out = _server.render(dot_text, timeout)
            except OSError:
                pass  # the one-shot run below says what is wrong
            if out is None and _server is not None:
                _server.close()
                _server = None
        if out is not None:
            return _unpage(out).decode("utf-8")
    return render(dot_text, "svg").decode("utf-8")


def render_many_svg(dot_texts: list[str], timeout: float = 300.0) -> list[str]:
    """Lay out several graphs with one ``dot`` process; one SVG per graph,
    in order."""
    if not dot_texts:
        return []
    out = _unpage(render("".join(dot_texts), "svg", timeout=timeout)).decode("utf-8")
    parts = [p for p in re.split(r"(?=<\?xml )", out) if p.strip()]
    if len(parts) != len(dot_texts):
        raise GraphvizError(f"dot returned {len(parts)} SVG documents for {len(dot_texts)} graphs")
    return parts
