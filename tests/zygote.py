"""``python -m cnnlab ARGS`` in a process of its own, without importing torch each time.

A test that runs cnnlab in another process (an exit status, a SIGKILL, a resource limit, the user's files
compared afterwards) used to pay for a fresh interpreter each time: ~2.5 s of importing torch on a 2-core CI
machine, ~100 times a suite. Here one *zygote* process imports torch, torchvision and cnnlab once; each
command is a ``fork`` of it (tens of milliseconds) that sets the command's working folder, environment,
resource limits and standard streams, then runs ``cnnlab/__main__.py`` exactly as ``python -m cnnlab``
does (``runpy``) and leaves with its exit status; the zygote reports how the child ended (a signal as
``-N``, as :mod:`subprocess` does). PyTorch supports ``fork`` after import (its DataLoader workers are
forks): ATen resets its thread pool in the child.

What a fork cannot give, :func:`run_cnnlab` leaves to a real ``python -m cnnlab``: a call whose ``env``
changes more than what cnnlab reads while it runs (:data:`RUN_TIME`; ``OMP_*``, ``ONEDNN_*``, ``ATEN_*``,
``LC_*``, ``PYTHON*``... are read at start-up), and reference runs asked for with ``fresh=True`` (a
determinism test compares two interpreters that share nothing, not two forks of one). When the test
process's own environment changes in such a variable (a library sets one as it loads), the zygote is
started again with it.
Anything the zygote's imports print stops it (a fresh process would have shown it to the test); warnings it
showed are shown again in each child. Tests of the start-up itself (import time, Ctrl-C while torch loads, a
closed stdout at start, what ``--help`` imports, the installed entry points) call the interpreter directly.
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
from typing import Any, Mapping

SRC = Path(__file__).resolve().parents[1] / "src"      # where the zygote's cnnlab comes from (editable install)
# environment variables cnnlab reads while it runs (not at start-up): a change of any other one (OMP_*, ONEDNN_*,
# ATEN_*, LD_*, LC_*, PYTHON*, ...) takes a real process, since the zygote read it once when it imported torch
RUN_TIME = ("CNNLAB_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "KERAS_",           # read when Keras is imported, which the zygote never does (cnnlab sets its backend)
            "PYTEST_")          # pytest's own (PYTEST_CURRENT_TEST changes with every test)
SET_BY_TORCH = {"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK", "TORCHINDUCTOR_CACHE_DIR"}   # as modules load
START_LIMIT = 300        # seconds for the zygote's imports and a fork

ZYGOTE = r"""
import atexit, json, os, resource, runpy, signal, sys, threading, traceback, warnings
env0 = dict(os.environ)
quiet = os.dup(2)                              # what the imports print is caught: a fresh process would show it
caught = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(caught, 2)
import numpy, PIL.Image, yaml, safetensors.torch, torch, torchvision, matplotlib
import cnnlab.cli.main, cnnlab.train.engine
assert "keras" not in sys.modules              # KERAS_* is read in each child (RUN_TIME)
sys.stderr.flush()
os.dup2(quiet, 2)
os.close(caught)
main_path = os.path.join(os.path.dirname(cnnlab.__file__), "__main__.py")
threads = len(os.listdir("/proc/self/task"))   # after the imports: no thread pool may start before a fork

def child(req):
    os.close(reply_fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, req["out"]), (2, req["err"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    warnings._filters_mutated()                # a warning the zygote showed is shown again, as in a new process
    warnings.onceregistry.clear()
    code = 1
    try:
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
    except KeyboardInterrupt:                      # as CPython: the traceback, then death by SIGINT
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = 120                                 # CPython's status when flushing at exit fails
    finally:
        os._exit(code & 0xFF)

reply_fd = int(sys.argv[1])                    # the reply pipe; the zygote's own stdout is /dev/null
reply = os.fdopen(reply_fd, "w", buffering=1)
reply.write("ready " + json.dumps(sorted(k for k in os.environ if os.environ.get(k) != env0.get(k))) + "\n")
for line in sys.stdin:
    req = json.loads(line)
    now = len(os.listdir("/proc/self/task"))
    if now > threads:
        reply.write(f"error: {now} threads before a fork, {threads} after the imports\n")
        break
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(req)
    reply.write(f"{pid}\n")
    _, status = os.waitpid(pid, 0)
    reply.write(f"{os.waitstatus_to_exitcode(status)}\n")
"""


class _Zygote:
    """The process that forks: started at the first call, ended with the test session (or at a broken call)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.env = os.environ.copy()             # what torch and the interpreter read at start-up
        self.tmp = tempfile.TemporaryDirectory(prefix="cnnlab-zygote-")
        caught = Path(self.tmp.name, "imports.txt")
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(write), str(caught)], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, env=self.env, pass_fds=(write,))
        os.close(write)
        self.replies = read
        self.buffer = b""
        self.lock = threading.Lock()
        atexit.register(self.close)
        ready = self._line(START_LIMIT) or ""
        said = caught.read_text(errors="replace") if caught.exists() else ""
        if not ready.startswith("ready ") or said:
            self.close()
            raise RuntimeError(f"the test zygote did not start cleanly ({ready!r}); its imports printed: {said[-2000:]}")
        # variables the libraries set in their own process (torch's KMP_*, the inductor's cache folder): not settings
        self.set_by_imports = set(json.loads(ready[len("ready "):])) | SET_BY_TORCH

    def close(self) -> None:
        atexit.unregister(self.close)            # a zygote started again registers its own
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.replies >= 0:
            os.close(self.replies)
            self.replies = -1
        self.tmp.cleanup()

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

    def run(self, argv: list[str], env: dict[str, str], cwd: str, timeout: float | None,
            rlimits: list[tuple[str, int, int]], hide: list[str]) -> tuple[int, str, str]:
        """One command; any failure here ends the zygote (the next call starts another), so replies never
        fall out of step with requests."""
        with self.lock, tempfile.TemporaryDirectory(prefix="cnnlab-zygote-") as tmp:
            out, err = Path(tmp, "out"), Path(tmp, "err")
            request = {"argv": argv, "env": env, "cwd": cwd, "rlimits": rlimits, "hide": hide,
                       "out": str(out), "err": str(err)}
            try:
                self.proc.stdin.write((json.dumps(request) + "\n").encode())  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
                reply = self._line(START_LIMIT)
                if reply is None or not reply.isdigit() or int(reply) <= 1:
                    raise RuntimeError(f"the test zygote could not fork: {reply!r}")
                pid = int(reply)
                status = self._line(timeout)
                if status is None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass                     # it ended just now: the zygote has reaped it
                    self._line(START_LIMIT)
                    raise subprocess.TimeoutExpired(argv, timeout or 0)
            except subprocess.TimeoutExpired:
                raise
            except BaseException:
                self.close()
                raise
            encoding = locale.getpreferredencoding(False)
            return int(status), _text(out, encoding), _text(err, encoding)


def _text(path: Path, encoding: str) -> str:
    """What ``subprocess.run(..., text=True)`` makes of the bytes: universal newlines, strict decoding."""
    return path.read_bytes().decode(encoding).replace("\r\n", "\n").replace("\r", "\n")


_zygote: _Zygote | None = None


def run_cnnlab(*args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None,
               timeout: float | None = None, rlimits: list[tuple[str, int, int]] | None = None,
               hide: tuple[str, ...] = (), fresh: bool = False) -> subprocess.CompletedProcess:
    """``python -m cnnlab ARGS`` with ``capture_output=True, text=True``: a fork of the zygote, or a real
    process where ``env`` changes more than what cnnlab reads while it runs (:data:`RUN_TIME`; a zygote started
    again where this process's own environment changed since it started) or ``fresh`` asks
    for one (a reference run whose interpreter shares nothing with the run it is compared with: another hash
    seed, another start). ``rlimits``: ``(RLIMIT_NAME, soft, hard)`` set in the child before cnnlab runs;
    ``hide``: packages the child cannot import (none of them may be one the zygote imported)."""
    global _zygote
    argv = [sys.executable, "-m", "cnnlab", *args]
    env = dict(os.environ if env is None else env)
    cwd = str(cwd) if cwd else os.getcwd()
    if fresh or os.environ.get("CNNLAB_TEST_NO_ZYGOTE"):
        return _real(argv, env, cwd, timeout, rlimits or [], hide)
    if _settings(env, os.environ):                  # the call changes what a new interpreter reads at start-up
        return _real(argv, env, cwd, timeout, rlimits or [], hide)
    if _zygote is not None and (_zygote.proc.poll() is not None or _settings(os.environ, _zygote.env,
                                                                               _zygote.set_by_imports)):
        _zygote.close()                             # this process's environment changed since: start another
        _zygote = None
    if _zygote is None:
        _zygote = _Zygote()
    zygote = _zygote
    try:
        code, out, err = zygote.run(list(args), env, cwd, timeout, rlimits or [], list(hide))
    finally:
        if zygote.proc.poll() is not None:
            _zygote = None
    return subprocess.CompletedProcess(argv, code, out, err)


def _settings(env: Mapping[str, str], base: Mapping[str, str], ignore: set[str] = frozenset()) -> set[str]:
    """The variables ``env`` sets otherwise than ``base`` that a new interpreter would read at start-up: all but
    :data:`RUN_TIME`'s, ``ignore`` and the repository's own ``PYTHONPATH``."""
    changed = {k for k in set(env) | set(base) if env.get(k) != base.get(k)} - set(ignore)
    changed -= {k for k in changed if k.startswith(RUN_TIME)}
    if env.get("PYTHONPATH") == str(SRC):
        changed.discard("PYTHONPATH")
    return changed


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
