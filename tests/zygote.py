"""``python -m cnnlab ARGS`` in a process of its own, without importing torch each time.

A test that runs cnnlab in another process (an exit status, a SIGKILL, a resource limit, the user's files
compared afterwards) used to pay for a fresh interpreter each time: ~2.5 s of importing torch on a 2-core CI
machine, ~100 times a suite. Here one *zygote* process imports torch, torchvision and cnnlab once; each
command is a ``fork`` of it (tens of milliseconds) that sets the command's working folder, environment,
resource limits and standard streams, then runs ``cnnlab/__main__.py`` exactly as ``python -m cnnlab``
does (``runpy``) and leaves with its exit status; the zygote reports how the child ended (a signal as
``-N``, as :mod:`subprocess` does). PyTorch supports ``fork`` after import (its DataLoader workers are
forks): ATen resets its thread pool in the child.

What a fork cannot give, :func:`run_cnnlab` leaves to a real ``python -m cnnlab``: settings read when torch
is imported (``OMP_*``, ``MKL_*``, ``ONEDNN_*``/``DNNL_*``, ``ATEN_*``, ``KMP_*``, ``TORCH_*``/``PYTORCH_*``,
``KERAS_*``) in ``env``. Tests of the start-up itself (import time, Ctrl-C while torch loads, a closed
stdout at start, what ``--help`` imports) call the interpreter directly, as before.
``CNNLAB_TEST_NO_ZYGOTE=1`` makes every call a real process (to compare).
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"      # where the zygote's cnnlab comes from (editable install)
IMPORT_TIME = ("OMP_", "MKL_", "ONEDNN_", "DNNL_", "ATEN_", "KMP_", "TORCH_", "PYTORCH_", "KERAS_", "PYTHON")

ZYGOTE = r"""
import atexit, json, os, resource, runpy, sys, threading, traceback
import numpy, PIL.Image, yaml, safetensors.torch, torch, torchvision, matplotlib
import cnnlab.cli.main, cnnlab.train.engine
main_path = os.path.join(os.path.dirname(cnnlab.__file__), "__main__.py")

def child(req):
    os.close(reply_fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, req["out"]), (2, req["err"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    code = 1
    try:
        if req["cwd"]:
            os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        for name in req["hide"]:                   # unimportable, as if not installed
            if sys.modules.get(name) is not None:
                raise RuntimeError(f"the test zygote has imported {name}: it cannot be hidden")
            sys.modules[name] = None
        for name, soft, hard in req["rlimits"]:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        sys.argv = [main_path, *req["argv"]]
        runpy.run_module("cnnlab", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:                    # what the interpreter does with it
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)

reply_fd = int(sys.argv[1])                    # the reply pipe; the zygote's own stdout is /dev/null
reply = os.fdopen(reply_fd, "w", buffering=1)
for line in sys.stdin:
    req = json.loads(line)
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(req)
    reply.write(f"{pid}\n")
    _, status = os.waitpid(pid, 0)
    reply.write(f"{os.waitstatus_to_exitcode(status)}\n")
"""


class _Zygote:
    """The process that forks: started at the first call, ended with the test session."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(write)], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, env=os.environ.copy(), pass_fds=(write,))
        os.close(write)
        self.replies = read
        self.buffer = b""
        self.lock = threading.Lock()
        atexit.register(self.close)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.replies)

    def _line(self, timeout: float | None) -> str | None:
        fd = self.replies
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the test zygote ended (exit status {self.proc.wait()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def run(self, argv: list[str], env: dict[str, str], cwd: str | None, timeout: float | None,
            rlimits: list[tuple[str, int, int]], hide: list[str]) -> tuple[int, str, str]:
        with self.lock, tempfile.TemporaryDirectory(prefix="cnnlab-zygote-") as tmp:
            out, err = Path(tmp, "out"), Path(tmp, "err")
            request = {"argv": argv, "env": env, "cwd": cwd, "rlimits": rlimits, "hide": hide,
                       "out": str(out), "err": str(err)}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            pid = int(self._line(None) or "0")
            status = self._line(timeout)
            if status is None:
                os.kill(pid, signal.SIGKILL)
                self._line(None)
                raise subprocess.TimeoutExpired(argv, timeout or 0)
            encoding = locale.getpreferredencoding(False)
            return int(status), _text(out, encoding), _text(err, encoding)


def _text(path: Path, encoding: str) -> str:
    """What ``subprocess.run(..., text=True)`` makes of the bytes: universal newlines, strict decoding."""
    return path.read_bytes().decode(encoding).replace("\r\n", "\n").replace("\r", "\n")


_zygote: _Zygote | None = None


def run_cnnlab(*args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None,
               timeout: float | None = None, rlimits: list[tuple[str, int, int]] | None = None,
               hide: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``python -m cnnlab ARGS`` with ``capture_output=True, text=True``: a fork of the zygote, or a real
    process where ``env`` changes what torch reads at import. ``rlimits``: ``(RLIMIT_NAME, soft, hard)`` set
    in the child before cnnlab runs; ``hide``: packages the child cannot import (none of them may be one the
    zygote imported)."""
    global _zygote
    argv = [sys.executable, "-m", "cnnlab", *args]
    env = dict(os.environ if env is None else env)
    changed = {k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)}
    changed.discard("PYTHONPATH") if env.get("PYTHONPATH") == str(SRC) else None
    if os.environ.get("CNNLAB_TEST_NO_ZYGOTE") or any(k.startswith(IMPORT_TIME) for k in changed):
        return _real(argv, env, cwd, timeout, rlimits or [], hide)
    if _zygote is None or _zygote.proc.poll() is not None:
        _zygote = _Zygote()
    code, out, err = _zygote.run(list(args), env, str(cwd) if cwd else None, timeout, rlimits or [], list(hide))
    return subprocess.CompletedProcess(argv, code, out, err)


def _real(argv: list[str], env: dict[str, str], cwd: Any, timeout: float | None,
          rlimits: list[tuple[str, int, int]], hide: tuple[str, ...]) -> subprocess.CompletedProcess:
    import resource

    if hide:
        code = f"import sys, runpy; sys.modules.update(dict.fromkeys({list(hide)!r})); sys.argv[0] = 'cnnlab'; " \
               "runpy.run_module('cnnlab', run_name='__main__', alter_sys=True)"
        argv = [sys.executable, "-c", code, *argv[3:]]

    def limits() -> None:
        for name, soft, hard in rlimits:
            resource.setrlimit(getattr(resource, name), (soft, hard))

    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
                          preexec_fn=limits if rlimits else None)
