"""Bad inputs a user (or a file from elsewhere) can throw at the CLI: each ends in one line and exit 2, fast.

Each attack runs in a subprocess with a timeout (a hang fails the test), and must end with exit status 2,
exactly one line on stderr naming the problem, and no traceback. Caps are tested just past their limit.
(The issue that asked for this corpus: robustness under attack; more classes live next to the code they
test: tests/train for checkpoints and run folders, tests/data for images.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_many
from tests.zygote import run_cnnlab

TIMEOUT = 60     # seconds: the slowest attack here answers in a few


def laughs(tmp: Path) -> str:
    """A 'billion laughs' YAML spec: nine aliases of nine aliases, 9^9 values once expanded (~400 bytes)."""
    text, prev = "a: &a [x, x, x, x, x, x, x, x, x]\n", "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    (tmp / "laughs.yaml").write_text(text + "input: [1, 28, 28]\nlayers: *i\n")
    return str(tmp / "laughs.yaml")


def deep(tmp: Path) -> str:
    (tmp / "deep.json").write_text('{"input": [1, 28, 28], "layers": [' + "[" * 5000 + "]" * 5000 + "]}")
    return str(tmp / "deep.json")


def deep_yaml(tmp: Path) -> str:
    (tmp / "deep.yaml").write_text("input: [1, 28, 28]\nlayers: " + "[" * 5000 + "]" * 5000 + "\n")
    return str(tmp / "deep.yaml")


def written(name: str, text: str):  # type: ignore[no-untyped-def]
    def make(tmp: Path) -> str:
        (tmp / name).write_text(text)
        return str(tmp / name)
    make.__name__ = name
    return make


def out_dir(tmp: Path) -> str:
    return str(tmp / "run")


ATTACKS = [
    (["analyze", laughs], "expands to more than 200,000 values"),
    (["analyze", deep], "deeper than 50 levels"),
    (["analyze", deep_yaml], "maximum nesting depth"),         # libyaml refuses it itself
    (["ops", "lrn", "--input", "1,2,3", "--size", "3000000000"], "go up to 256"),
    (["ops", "conv2d", "--input", "[[1,2],[3,4]]", "--kernel", "[[1]]", "--padding", "257", "--exact"], "go up to 256"),
    (["ops", "conv1d", "--input", "1,2,3", "--kernel", "1", "--padding", "100000"], "go up to 256"),
    (["ops", "conv1d", "--input", "nan,1,2", "--kernel", "1"], "'nan' is not a number"),
    (["ops", "conv1d", "--input", "1e400,1", "--kernel", "1"], "too large"),
    (["ops", "conv1d", "--input", "1" * 5000, "--kernel", "1"], ""),
    (["fit", "examples/geron_ex2.yaml", "--budget", "1e400"], "too large a size"),
    (["fit", "examples/geron_ex2.yaml", "--budget", "-5GB"], ""),
    (["memory", "examples/geron_ex2.yaml", "--batch", "0"], ""),
    (["analyze", "resnet19"], "unknown zoo model"),
    (["train", "--size", "60000", "--epochs", "1", "--out", out_dir], "of RAM is available; choose a smaller --size"),
    (["train", "--size", "100000", "--epochs", "1", "--out", out_dir], "--size must be H,W with sizes 1..65536"),
    (["memory", "vgg16", "--batch", "1000000", "--measure"], "of RAM is available; lower --batch"),
    (["analyze", written("dup.yaml", "input: [1, 28, 28]\nlayers:\n  - conv: {filters: 8, kernel: 3, filters: 16}\n")],
     "the key 'filters' is given twice"),
    (["analyze", written("dup.json", '{"input": [1, 28, 28], "layers": [{"conv": {"filters": 8, "filters": 3}}]}')],
     "the key 'filters' is given twice"),
    (["analyze", written("esc.yaml", 'input: [1, 28, 28]\nlayers:\n  - conv: {filters: 8, kernel: 3, '
                                     '"\\e[31mred\\nline": 1}\n')], "unknown field '\\x1b[31mred\\nline'"),
]


@pytest.fixture(scope="module")
def attacked(tmp_path_factory) -> list[tuple[int, str, str]]:
    """Every attack of ATTACKS, each in its own folder, run one after the other, each in its own process (a hang
    fails the batch through its timeout)."""
    argvs = []
    for n, (argv, _) in enumerate(ATTACKS):
        tmp = tmp_path_factory.mktemp(f"attack{n}")
        argvs.append([a(tmp) if callable(a) else a for a in argv])
    return run_many(argvs, timeout=TIMEOUT * 4)


@pytest.mark.parametrize("n", range(len(ATTACKS)), ids=[" ".join(str(a) if isinstance(a, str) else a.__name__
                                                                 for a in argv)[:60] for argv, _ in ATTACKS])
def test_attack_ends_in_one_line_and_exit_2(attacked, n):
    code, _, err = attacked[n]
    assert code == 2, (code, err[-500:])
    assert "Traceback" not in err and err.count("\n") == 1, err[-2000:]
    assert ATTACKS[n][1] in err
    assert len(err) < 2000                   # a rejected value is never echoed in full


def test_a_1_mb_spec_loads_in_linear_time(tmp_path):
    """21,000 layers (1 MB of YAML) parse and validate; the analysis follows (a subprocess with a timeout)."""
    spec = tmp_path / "big.yaml"
    spec.write_text("input: [1, 28, 28]\nlayers:\n" + "  - conv: {filters: 8, kernel: 3, padding: same}\n" * 21000)
    assert spec.stat().st_size > 1_000_000
    code = ("from cnnlab.spec import load_spec; s = load_spec(%r); print(len(s.layers), s.shapes[-1])" % str(spec))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0 and p.stdout.split()[0] == "21000", p.stderr[-1000:]


def test_nothing_the_user_had_changes_when_a_spec_is_refused(tmp_path):
    path = laughs(tmp_path)
    before = Path(path).read_bytes()
    run_cnnlab("analyze", path, "--json", timeout=TIMEOUT)
    assert Path(path).read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["laughs.yaml"]


def _run_folder(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tamper") / "run"
    run_cnnlab("train", "--epochs", "2", "--out", str(run), "--no-progress", timeout=300).check_returncode()
    return run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return _run_folder(tmp_path_factory)


def rewrite_metadata(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Edit the JSON metadata in a safetensors header, keeping the file a valid safetensors file."""
    import json

    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["cnnlab"])
    change(meta)
    header["__metadata__"]["cnnlab"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])


CHANGES = [
    lambda m: m["run"].update(epoch=-1),
    lambda m: m["run"].update(step="x"),
    lambda m: m.update(scheduler={"lr_lambdas": [None], "evil": 1}),
    lambda m: m["run"].update(history=[[[[]]]]),
]


@pytest.fixture(scope="module")
def tampered(finished_run, tmp_path_factory) -> list[tuple[Path, bytes, tuple[int, str, str]]]:
    """A copy of the finished run per change, its checkpoint's metadata edited, each resumed (a process each)."""
    import shutil

    runs = []
    for n, change in enumerate(CHANGES):
        run = tmp_path_factory.mktemp(f"tampered{n}") / "run"
        shutil.copytree(finished_run, run)
        rewrite_metadata(run / "state.safetensors", change)
        runs.append((run, (run / "state.safetensors").read_bytes()))
    results = run_many([["train", "--resume", str(run), "--epochs", "3", "--no-progress"] for run, _ in runs],
                       timeout=TIMEOUT * 2)
    return [(run, before, result) for (run, before), result in zip(runs, results)]


@pytest.mark.slow
@pytest.mark.parametrize("n", range(len(CHANGES)), ids=["negative epoch", "string step", "scheduler keys",
                                                         "nested history"])
def test_tampered_checkpoint_metadata_is_refused_and_left_alone(tampered, n):
    run, before, (code, _, err) = tampered[n]
    assert code == 2 and "does not match the digest" in err and err.count("\n") == 1, err
    assert (run / "state.safetensors").read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("path, value, words", [
    (("data", "shape"), "abc", "'data.shape' must be [C, H, W]"),
    (("data", "classes"), 5, "'data.classes' must be a list"),
    (("data", "std"), [0.0], "'data.std' must be positive"),
    (("model", "kind"), "pickle", "'model' needs kind"),
    (("config", "epochs"), -3, "'config' section does not fit"),
    (("config", "batch"), "many", "'config' section does not fit"),
])
def test_a_tampered_config_json_is_one_line(finished_run, tmp_path, path, value, words):
    """An edit is refused by the digest; one that re-seals the document (deliberate) still meets the type and
    range checks (the layer that also guards runs made before digests)."""
    import json
    import shutil

    from cnnlab.train.config import seal

    resume = ["train", "--resume", "RUN", "--epochs", "3", "--no-progress"]
    argvs, expected = [], []
    for resealed in (False, True):
        run = tmp_path / f"run{int(resealed)}"
        shutil.copytree(finished_run, run)
        doc = json.loads((run / "config.json").read_text())
        doc[path[0]][path[1]] = value
        (run / "config.json").write_text(json.dumps(seal(doc) if resealed else doc))
        for argv in (["eval", str(run)], *([resume] if path[0] == "config" else [])):   # one reader: load_run_config
            argvs.append([str(run) if a == "RUN" else a for a in argv])
            expected.append(words if resealed else "was edited after the run was made")
    for argv, words_, (code, _, err) in zip(argvs, expected, run_many(argvs, timeout=TIMEOUT * 2)):
        assert code == 2 and words_ in err and err.count("\n") == 1, (argv, err[-1500:])


def test_names_in_tables_reach_the_terminal_as_text(tmp_path):
    """Layer names come from the user's module: an ESC sequence is shown escaped, ``[bold]`` is shown as typed."""
    (tmp_path / "named.py").write_text(
        "from torch import nn\n"
        "def build():\n"
        "    net = nn.Sequential()\n"
        "    net.add_module('evil\\x1b[2J[bold]x[/bold]', nn.Conv2d(1, 4, 3))\n"
        "    net.add_module('flat', nn.Flatten())\n"
        "    return net\n")
    p = run_cnnlab("analyze", f"{tmp_path / 'named.py'}:build", "--input", "1,8,8", timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr[-1000:]
    assert "\x1b" not in p.stdout
    assert "evil\\x1b[2J[bold]x[/bold]" in p.stdout


@pytest.mark.slow
def test_predict_on_a_fifo_names_it_and_goes_on(finished_run, tmp_path):
    """Opening a FIFO waits for a writer forever; predict refuses it as not a regular file, then does the rest."""
    import os

    import numpy as np
    from PIL import Image

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    Image.fromarray((np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint8)).save(tmp_path / "ok.png")
    p = run_cnnlab("predict", str(finished_run), str(fifo), str(tmp_path / "ok.png"), timeout=TIMEOUT)
    assert p.returncode == 1, p.stderr[-500:]          # some images could not be read, the others were predicted
    assert "pipe.png: not a regular file" in p.stderr and "ok.png:" in p.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("env, words", [
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not an integer"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "70000"},
     "MASTER_PORT='70000' is not an integer from 1 to 65535"),
    ({"WORLD_SIZE": "2"}, "RANK, MASTER_ADDR, MASTER_PORT not set"),
    ({"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}, "ranks go from 0 to 1"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "CNNLAB_JOIN_TIMEOUT": "2"},
     "could not join the others within 2 s"),                          # the peer never comes: no 30-minute hang
], ids=["malformed", "port out of range", "no peers named", "rank past world", "peer never comes"])
def test_a_multi_process_environment_without_its_peers_is_one_line(tmp_path, env, words):
    import os

    env = {**{k: v for k, v in os.environ.items() if k not in ("RANK", "MASTER_ADDR", "MASTER_PORT")}, **env}
    if "MASTER_ADDR" in env:
        env.setdefault("MASTER_PORT", str(_free_port()))
    p = run_cnnlab("train", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress", timeout=TIMEOUT,
                   env=env)
    assert p.returncode == 2, (p.returncode, p.stderr[-500:])
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr[-2000:]
    assert words in p.stderr


NET = ("import sys\nfrom torch import nn\n"
       "class Net(nn.Module):\n"
       "    def __init__(self):\n"
       "        super().__init__()\n"
       "        self.fc = nn.Linear(4, 2)\n"
       "    def forward(self, x):\n"
       "        {body}\n"
       "def build():\n"
       "    return Net()\n")


USER_CODE = [
    (NET.format(body="return 'hello'"), "forward returned str, not a tensor"),
    (NET.format(body="self.fc(x)"), "forward returned NoneType, not a tensor"),
    (NET.format(body="return self.fc(x) / 0 if x.shape[0] > 100 else 1 / 0"),
     "the network's own code at user.py:8 in forward raised ZeroDivisionError: division by zero"),
    (NET.format(body="sys.exit(3)"), "the network's own code at user.py:8 in forward called sys.exit(3)"),
    ("def build(:\n    pass\n", "syntax error in user.py line 1"),
    ("raise ImportError('no weights here')\n", "running it raised ImportError: no weights here"),
    ("def build():\n    raise KeyError('weights')\n", "calling 'build()' it raised KeyError"),
    ("from torch import nn\ndef build():\n    return nn.Conv2d(3, 8, kernel=3)\n",
     "calling 'build()' it raised TypeError"),                    # a TypeError inside, not a signature problem
]
USER_CODE_IDS = ["returns str", "returns None", "raises", "sys.exit", "syntax error", "import raises",
                 "factory raises", "TypeError inside the factory"]
COMMANDS = ["analyze", "memory"]


@pytest.fixture(scope="module")
def users_code_failing(tmp_path_factory) -> dict[tuple[str, int], tuple[int, str, str]]:
    """Each failing user module under each command, each in its own process."""
    keys, argvs = [], []
    for n, (source, _) in enumerate(USER_CODE):
        folder = tmp_path_factory.mktemp(f"user{n}")
        (folder / "user.py").write_text(source)
        for command in COMMANDS:
            keys.append((command, n))
            argvs.append([command, f"{folder / 'user.py'}:build", "--input", "4"])
    return dict(zip(keys, run_many(argvs, timeout=TIMEOUT * 4)))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("n", range(len(USER_CODE)), ids=USER_CODE_IDS)
def test_the_users_network_code_failing_is_one_line_naming_where(users_code_failing, command, n):
    code, _, err = users_code_failing[(command, n)]
    assert code == 2, (code, err[-500:])
    assert "Traceback" not in err and err.count("\n") == 1, err[-2000:]
    assert USER_CODE[n][1] in err


def test_a_target_file_named_like_a_library_does_not_replace_it(tmp_path):
    import numpy

    from cnnlab.targets import load_module_target

    (tmp_path / "numpy.py").write_text("from torch import nn\ndef build():\n    return nn.Linear(4, 2)\n")
    net = load_module_target(f"{tmp_path / 'numpy.py'}:build")
    assert net.in_features == 4 and sys.modules["numpy"] is numpy


def test_ctrl_c_while_torch_is_still_loading_is_one_line():
    import signal
    import time

    # a shell's background job ignores SIGINT, and the child inherits that: give it the default back
    p = subprocess.Popen([sys.executable, "-m", "cnnlab", "analyze", "resnet50"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.0)                        # the parser is built; torch and torchvision are being imported
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 130 and err == "cnnlab: interrupted\n", (p.returncode, err[-1500:])


INTERRUPTED_IMPORT = """import os, signal, time
from torch import nn
class Field:                       # a library's descriptor: Python 3.11 wraps what __set_name__ raises
    def __set_name__(self, owner, name):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
class Holder:
    f = Field()
def build():
    return nn.Linear(4, 2)
"""

INTERRUPTED_BUILD = """import os, signal, sys, time
from torch import nn
def build():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
    finally:
        open(os.environ["MARK"], "w").close()
    return nn.Linear(4, 2)
"""


def test_ctrl_c_inside_an_import_is_one_line_whatever_the_library_makes_of_it(tmp_path):
    """Ctrl-C landing in a library's __set_name__ during an import became 'RuntimeError: Error calling
    __set_name__' with a traceback (seen while torch loads): inside an import cnnlab stops at once, one line."""
    import signal

    (tmp_path / "user.py").write_text(INTERRUPTED_IMPORT)
    p = subprocess.run([sys.executable, "-m", "cnnlab", "analyze", f"{tmp_path / 'user.py'}:build", "--input", "4"],
                       capture_output=True, text=True, timeout=TIMEOUT,     # a background job's child ignores SIGINT
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (p.returncode, p.stderr) == (130, "cnnlab: interrupted\n"), p.stderr[-1500:]


def test_ctrl_c_outside_imports_still_runs_the_finally_blocks_on_its_way(tmp_path):
    import os
    import signal

    (tmp_path / "user.py").write_text(INTERRUPTED_BUILD)
    mark = tmp_path / "finally-ran"
    p = subprocess.run([sys.executable, "-m", "cnnlab", "analyze", f"{tmp_path / 'user.py'}:build", "--input", "4"],
                       capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "MARK": str(mark)},
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (p.returncode, p.stderr) == (130, "cnnlab: interrupted\n"), p.stderr[-1500:]
    assert mark.exists()


def test_an_error_inside_cnnlab_keeps_its_traceback_even_under_the_users_forward(tmp_path):
    """Only the user's own frames make a one-line 'fix it there'; cnnlab's are a bug report (traceback)."""
    (tmp_path / "user.py").write_text(NET.format(body="from cnnlab.analysis.walk import count_params; "
                                                      "return self.fc(x) * count_params(None)[0]"))
    p = run_cnnlab("analyze", f"{tmp_path / 'user.py'}:build", "--input", "4", timeout=TIMEOUT)
    assert p.returncode == 1 and "Traceback" in p.stderr and "walk.py" in p.stderr, p.stderr[-800:]
