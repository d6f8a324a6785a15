"""Issue 29 (robustness II): the classes of attacks a second sweep found, each fixed at its cause.

Every CLI attack runs in a subprocess with a timeout and must end with exit status 2, exactly one line on
stderr and no traceback; the user's files are compared byte for byte afterwards; a memory bomb runs under
a bounded address space (``RLIMIT_AS``), so a regression fails the test instead of taking the machine.
(The page's attacks live in tests/web/test_api.py; COCO documents and instance bombs in
test_instance_attacks.py; the temporary sweep in tests/test_files.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run, run_many
from tests.zygote import run_cnnlab
from PIL import Image

TIMEOUT = 120
ADDRESS_SPACE = 6 << 30        # torch maps ~3 GB of libraries; a bomb needs far more than the rest


def cnnlab(*args: str, cwd: Path | None = None, limit_as: bool = False, fsize: int | None = None
           ) -> subprocess.CompletedProcess:
    limits = [("RLIMIT_AS", ADDRESS_SPACE, ADDRESS_SPACE)] if limit_as else []
    limits += [("RLIMIT_FSIZE", fsize, fsize)] if fsize is not None else []
    return run_cnnlab(*args, timeout=TIMEOUT, cwd=cwd, rlimits=limits,
                      env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})


def refused(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr[-1500:])
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr[-2000:]
    for w in words:
        assert w in p.stderr, (w, p.stderr)


def refused_all(results: list[tuple[int, str, str]], *words: str) -> None:
    """``refused`` for results of :func:`tests.helpers.run_many` (several command lines, a process each)."""
    for code, out, err in results:
        refused(subprocess.CompletedProcess([], code, out, err), *words)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def image_folder(root: Path, names: dict[str, list[str]], size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for cls, files in names.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for name in files:
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / cls / name, format="PNG")
    return root


def segmentation_folder(root: Path, mask: int | None = None, size: int = 8, count: int = 12) -> Path:
    """``root/images`` + ``root/masks``: grey images, masks of two classes (or all ``mask``)."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((size, size), 20 * i, np.uint8)).save(root / "images" / f"{i}.png")
        value = i % 2 if mask is None else mask
        Image.fromarray(np.full((size, size), value, np.uint8)).save(root / "masks" / f"{i}.png")
    return root


def digits_run(folder: Path, seed: int = 0) -> Path:
    from cnnlab.train import TrainConfig, train

    train(TrainConfig(epochs=1, seed=seed, out=str(folder)), progress=False)
    return folder


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return digits_run(root / "A"), digits_run(root / "B", seed=1)


# -- 2. files cnnlab did not write ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", [".lock", "log.txt"])
def test_a_link_planted_in_a_run_folder_is_refused_and_its_target_untouched(two_runs, tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    victim = tmp_path / "thesis.tex"
    victim.write_bytes(b"\\section{precious}\n")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    p = cnnlab("train", "--resume", str(run), "--epochs", "2", "--no-progress")
    refused(p, f"{run / name}: is a symbolic link", "rm ")
    assert victim.read_bytes() == b"\\section{precious}\n"


def test_out_on_a_folder_of_yours_does_not_advise_resume(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep")
    p = cnnlab("train", "--epochs", "1", "--out", str(mine), "--no-progress")
    refused(p, "holds no cnnlab run", "choose a new or empty --out")
    assert "--resume" not in p.stderr and snapshot(mine) == {"todo.txt": b"keep"}


# -- 3. memory bombs -------------------------------------------------------------------------------------------

def test_a_spec_too_large_to_train_is_refused_before_allocating(tmp_path):
    spec = tmp_path / "huge.yaml"
    spec.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {filters: 100000000000, kernel: 3}\n"
                    "  - flatten: {}\n  - dense: {units: 10}\n")
    p = cnnlab("train", "--model", str(spec), "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress",
               limit_as=True)
    refused(p, "huge.yaml: training its", "parameters", "of RAM is available")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_scanning_an_image_too_large_for_the_ram_is_refused_before_allocating(two_runs, tmp_path):
    fcn = tmp_path / "fcn"
    assert cnnlab("fcn", "convert", str(two_runs[0]), "--out", str(fcn)).returncode == 0
    Image.new("L", (4000, 4000)).save(tmp_path / "blank.png")        # 16 M pixels, a few KB
    p = cnnlab("fcn", "scan", str(fcn), str(tmp_path / "blank.png"), "--out", str(tmp_path / "scan"), limit_as=True)
    refused(p, "blank.png: scanning this 4000×4000 image needs about", "of RAM is available")
    assert not (tmp_path / "scan").exists()


# -- 5. a run's files belong together ------------------------------------------------------------------------

COPIED = [
    ("model.safetensors", ["eval", "RUN"]),
    ("state.safetensors", ["train", "--resume", "RUN", "--epochs", "2", "--no-progress"]),
    ("model.safetensors", ["train", "--resume", "RUN", "--epochs", "2", "--no-progress"]),   # before it trains
]


@pytest.mark.slow
def test_a_file_copied_in_from_another_run_is_refused_and_nothing_changes(two_runs, tmp_path):
    runs, argvs = [], []
    for n, (name, command) in enumerate(COPIED):
        run = tmp_path / f"A{n}"
        shutil.copytree(two_runs[0], run)
        shutil.copy(two_runs[1] / name, run / name)
        runs.append((run, snapshot(run)))
        argvs.append([str(run) if a == "RUN" else a for a in command])
    for (name, _), (run, before), result in zip(COPIED, runs, run_many(argvs, timeout=TIMEOUT * 2)):
        refused_all([result], f"{name}: belongs to run", "not to this run")
        assert snapshot(run) == before                    # nothing trained, nothing rewritten


@pytest.mark.slow
def test_an_edited_config_cannot_move_the_split(two_runs, tmp_path):
    """Editing the seed once made eval use another split whose test images overlapped the training ones."""
    argvs = []
    for key, value in [("seed", 5), ("epochs", 1e30), ("val_fraction", 0.5)]:
        run = tmp_path / key
        shutil.copytree(two_runs[0], run)
        doc = json.loads((run / "config.json").read_text())
        doc["config"][key] = value
        (run / "config.json").write_text(json.dumps(doc, indent=2))
        argvs += [["eval", str(run)], ["train", "--resume", str(run), "--epochs", "3", "--no-progress"]]
    refused_all(run_many(argvs, timeout=TIMEOUT * 2), "config.json: was edited after the run was made")


@pytest.mark.slow
def test_a_relative_data_path_means_the_same_folder_from_anywhere(tmp_path, monkeypatch, capsys):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    image_folder(work / "ds", {"a": [f"{i}.png" for i in range(20)], "b": [f"{i}.png" for i in range(20)]})
    image_folder(elsewhere / "ds", {"a": [f"{i}.png" for i in range(20)], "b": [f"{i}.png" for i in range(20)]},
                 size=6)                                   # another 'ds', as a relative path finds it from there
    monkeypatch.chdir(work)                                # in this process: main() as `cnnlab` runs it, from there
    code, _, err = run(capsys, "train", "--data", "ds", "--batch", "8", "--epochs", "1", "--out", "run",
                       "--no-progress")
    assert code == 0, err[-1500:]
    assert json.loads((work / "run/config.json").read_text())["config"]["data"] == str(work / "ds")
    monkeypatch.chdir(elsewhere)
    code, out, err = run(capsys, "eval", str(work / "run"), "--json")
    assert code == 0, err[-1500:]
    assert json.loads(out)["confusion"] == json.loads((work / "run/test.json").read_text())["confusion"]
    image_folder(work / "ds", {"a": ["new.png"]})          # the data changed since: its split moved
    refused(subprocess.CompletedProcess([], *run(capsys, "eval", str(work / "run"))), "no longer gives the test split")


def test_config_numbers_are_typed_and_bounded():
    from cnnlab.errors import CnnlabError
    from cnnlab.train.config import TrainConfig

    for bad in ({"epochs": 1e30}, {"epochs": 10**9}, {"batch": True}, {"seed": "0"}, {"size": [8, "x"]},
                {"checkpoint_every": 2**40}):
        with pytest.raises(CnnlabError):
            TrainConfig(**bad).check()            # type: ignore[arg-type]
    TrainConfig(epochs=100_000, batch=2**31).check()


# -- 6. the environment ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_odd_file_names_cannot_break_or_forge_the_log(tmp_path):
    """A name that is not UTF-8 once made writing log.txt fail (the run could be neither resumed nor re-run);
    a name with a newline and ESC forged a log line; 'skipped N' was counted from the log's lines."""
    data = image_folder(tmp_path / "ds", {"a": [f"{i}.png" for i in range(20)], "b": [f"{i}.png" for i in range(20)]})
    os.symlink("nowhere", os.fsencode(data / "a") + b"/bad\xff.png")                 # undecodable name, dangling
    (data / "b" / "x\nskipped forged\x1b[2J.png").write_bytes(b"not a png")
    p = cnnlab("train", "--data", str(data), "--batch", "8", "--epochs", "1", "--out", str(tmp_path / "run"),
               "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "skipped 2 unreadable or missing images" in p.stdout
    log = (tmp_path / "run/log.txt").read_text(encoding="utf-8")
    skipped = [line for line in log.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2 and "\x1b" not in log and "bad\\udcff.png" in log and "x\\nskipped forged" in log


def test_a_class_list_that_is_not_utf8_is_one_line(tmp_path):
    root = segmentation_folder(tmp_path / "seg")
    (root / "classes.txt").write_bytes("background\ncaf\xe9\n".encode("latin-1"))
    before = snapshot(root)
    refused(cnnlab("segment", "train", "--data", str(root), "--model", "fcn32s", "--epochs", "1", "--batch", "2",
                   "--out", str(tmp_path / "run"), "--no-progress"),
            "classes.txt: not UTF-8 text (byte 0xe9", "iconv")
    assert snapshot(root) == before


def test_masks_without_a_labelled_pixel_are_refused(tmp_path):
    root = segmentation_folder(tmp_path / "seg", mask=255, size=16)
    refused(cnnlab("segment", "train", "--data", str(root), "--model", "fcn32s", "--epochs", "1", "--batch", "2",
                   "--out", str(tmp_path / "run"), "--no-progress"), "is 255 (ignore): there is no labelled pixel")


@pytest.mark.slow
def test_a_write_the_system_refuses_is_one_line_and_leaves_nothing_half_written(two_runs, tmp_path):
    """A full disk, a read-only folder or a file-size limit: RLIMIT_FSIZE makes the kernel refuse the write
    for real (EFBIG), as ENOSPC would on a full disk."""
    fcn = tmp_path / "fcn"
    assert cnnlab("fcn", "convert", str(two_runs[0]), "--out", str(fcn)).returncode == 0
    Image.new("L", (64, 64), 90).save(tmp_path / "im.png")
    p = cnnlab("fcn", "scan", str(fcn), str(tmp_path / "im.png"), "--out", str(tmp_path / "scan"), fsize=10_000)
    refused(p, "cannot write it", "ulimit -f", "nothing of yours was changed")
    assert not [f for f in (tmp_path / "scan").iterdir() if "cnnlab-tmp" in f.name]    # no temporary left


def test_write_errors_name_the_file_and_the_fix():
    import errno

    from cnnlab.files import write_error

    for code, words in ((errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"),
                        (errno.EACCES, "permission denied")):
        message = str(write_error("out/x.png", OSError(code, os.strerror(code))))
        assert message.startswith("out/x.png: cannot write it (") and words in message


@pytest.mark.parametrize("argv, words", [
    (["explore", "--port", "70000"], "must be a port number from 1 to 65535"),
    (["ops", "conv2d", "--input", "[" * 3000 + "1" + "]" * 3000, "--kernel", "1"], "nested more than 8 deep"),
    (["memory", "examples/geron_ex2.yaml", "--batch", "1e23"], "argument --batch"),
    (["memory", "examples/geron_ex2.yaml", "--batch", str(2**63)], "argument --batch"),
])
def test_command_line_values_out_of_range(argv, words):
    p = cnnlab(*argv, cwd=Path(__file__).resolve().parents[2])
    refused(p, words)
    assert "--input" not in p.stderr or argv[1] == "conv2d"


@pytest.mark.parametrize("make, words", [
    (lambda d: d.write_text("[" * 100_000 + "]" * 100_000), "nested 100000 levels deep"),
    (lambda d: np.save(d.with_suffix(".npy"), np.array([1 + 2j, 3])), "complex128, not real numbers"),
    (lambda d: np.save(d.with_suffix(".npy"), np.array([1.0, np.inf])), "must be finite"),
    (lambda d: np.save(d.with_suffix(".npy"), np.array([np.nan, 1.0])), "must be finite"),
])
def test_ops_files_past_the_documented_limits(tmp_path, make, words):
    target = tmp_path / "x.json"
    make(target)
    path = target if target.exists() else target.with_suffix(".npy")
    refused(cnnlab("ops", "maxpool", "--input", str(path), "--size", "1"), words)


# -- 7. what reaches the terminal ------------------------------------------------------------------------------

def test_a_right_to_left_override_in_a_layer_name_is_shown_escaped(tmp_path):
    (tmp_path / "named.py").write_text(
        "from torch import nn\n"
        "def build():\n"
        "    net = nn.Sequential()\n"
        "    net.add_module('conv\\u202egnp_exe', nn.Conv2d(1, 4, 3))\n"
        "    return net\n")
    p = cnnlab("analyze", f"{tmp_path / 'named.py'}:build", "--input", "1,8,8")
    assert p.returncode == 0, p.stderr[-1000:]
    assert "\u202e" not in p.stdout and "conv\\u202egnp_exe" in p.stdout


def test_yaml_merge_keys_work_and_an_override_wins(tmp_path):
    """'<<: *defaults' once gave an error about indentation; anchors may live under an x-… key."""
    spec = tmp_path / "merge.yaml"
    spec.write_text("x-conv: &c {filters: 8, kernel: 3, padding: same}\ninput: [1, 28, 28]\nlayers:\n"
                    "  - conv: {<<: *c}\n  - conv: {<<: *c, filters: 16}\n")
    p = cnnlab("analyze", str(spec), "--json")
    assert p.returncode == 0, p.stderr[-1000:]
    params = [row["params"] for row in json.loads(p.stdout)["layers"]]
    assert params == [8 * 9 + 8, 16 * 8 * 9 + 16]           # 1→8 and 8→16 channels, 3×3 kernels with biases


@pytest.mark.slow
def test_a_huge_image_in_a_data_folder_prints_no_raw_warning(tmp_path):
    """Past half of Pillow's decompression-bomb limit Pillow warns in two raw lines; cnnlab checks the RAM."""
    data = image_folder(tmp_path / "ds", {"a": [f"{i}.png" for i in range(20)], "b": [f"{i}.png" for i in range(20)]})
    Image.new("L", (10_000, 9_500)).save(data / "a" / "huge.png")          # 95 M pixels, past Pillow's warning
    p = cnnlab("train", "--data", str(data), "--size", "8,8", "--batch", "8", "--epochs", "1",
               "--out", str(tmp_path / "run"), "--no-progress")
    assert p.returncode == 0, p.stderr[-1500:]
    assert "DecompressionBombWarning" not in p.stderr and "warn" not in p.stderr.lower()


# -- the closing sweep's failures (a second adversarial sweep of 308 attacks), one test per class ----------------

@pytest.mark.slow
def test_a_finished_run_without_its_state_is_not_restarted_over_its_results(two_runs, tmp_path):
    run = tmp_path / "A"
    shutil.copytree(two_runs[0], run)
    (run / "state.safetensors").unlink()
    os.mkfifo(run / "state.safetensors")                 # a FIFO in its place: neither read nor restarted
    before = snapshot(run)
    refused(cnnlab("train", "--resume", str(run), "--epochs", "2", "--no-progress"), "state.safetensors")
    (run / "state.safetensors").unlink()
    refused(cnnlab("train", "--resume", str(run), "--epochs", "2", "--no-progress"),
            "state.safetensors: missing, but the run has trained")
    assert snapshot(run) == before


@pytest.mark.slow
@pytest.mark.parametrize("command", [["eval", "RUN"], ["fcn", "convert", "RUN", "--out", "OUT"]])
def test_a_fifo_in_place_of_the_weights_is_refused_not_waited_on(two_runs, tmp_path, command):
    run = tmp_path / "A"
    shutil.copytree(two_runs[0], run)
    (run / "model.safetensors").unlink()
    os.mkfifo(run / "model.safetensors")
    argv = [str(run) if a == "RUN" else str(tmp_path / "o") if a == "OUT" else a for a in command]
    refused(cnnlab(*argv), "model.safetensors: is not a regular file")


def test_a_study_never_writes_into_a_folder_of_yours(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my report")
    refused(cnnlab("study", "cnn-vs-dense", "--data", "digits", "--quick", "--out", str(mine), "--no-progress"),
            "holds no cnnlab study")
    assert snapshot(mine) == {"report.md": b"my report"}


@pytest.mark.slow
def test_fcn_convert_never_overwrites_a_weights_file_of_yours(two_runs, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "fcn.safetensors").write_bytes(b"mine")
    refused(cnnlab("fcn", "convert", str(two_runs[0]), "--out", str(out)), "already holds fcn.safetensors")
    assert (out / "fcn.safetensors").read_bytes() == b"mine"


def test_a_training_step_too_large_for_the_ram_is_refused_before_the_run_folder(tmp_path):
    """cnnlab's own step prediction against the RAM (ulimit -v here) before anything is written."""
    p = cnnlab("train", "--model", "resnet18", "--size", "128,128", "--batch", "1024", "--epochs", "1",
               "--out", str(tmp_path / "run"), "--no-progress", limit_as=True)
    refused(p, "cnnlab's prediction of the step", "lower --batch or --size")
    assert not (tmp_path / "run").exists()


def test_full_size_images_past_the_ram_ask_for_size(tmp_path):
    data = image_folder(tmp_path / "ds", {"a": ["0.png", "1.png"], "b": ["0.png", "1.png"]})
    Image.new("L", (12000, 12000)).save(tmp_path / "big.png")       # 144 M pixels in 140 KB
    for cls in ("a", "b"):
        for i in range(7):            # 14 × 144 MB decoded, twice that to stack: past the ~3 GB left by ulimit -v
            shutil.copyfile(tmp_path / "big.png", data / cls / f"big{i}.png")
    refused(cnnlab("train", "--data", str(data), "--batch", "2", "--epochs", "1", "--out", str(tmp_path / "r"),
                   "--no-progress", limit_as=True), "of RAM with the copy that stacks them", "give --size H,W")


@pytest.mark.parametrize("argv, words", [
    (["scenes", "make", "--source", "digits", "--count", "1000000", "--size", "4096,4096", "--out", "OUT"],
     "of RAM is available"),
    (["augment", "preview", "--images", "100000"], "from 1 to 64"),
    (["explore", "--host", ""], "is not a host address"),
])
def test_sizes_from_the_command_line_are_bounded(tmp_path, argv, words):
    refused(cnnlab(*[str(tmp_path / "o") if a == "OUT" else a for a in argv], limit_as=True), words)


CORRUPT_IDX = [
    (lambda d: _idx(d / "train-labels-idx1-ubyte.gz", [300], np.full(300, 200, np.uint8)), "a train label is 200"),
    (lambda d: _idx(d / "train-images-idx3-ubyte.gz", [300, 28], np.zeros((300, 28), np.uint8)),
     "2 dimensions where 3 are expected"),
    (lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes(__import__("gzip").compress(b"\0\0\x08\x03\0\0")),
     "header is truncated"),
    (lambda d: _idx(d / "t10k-images-idx3-ubyte.gz", [100, 14, 14], np.zeros((100, 14, 14), np.uint8)),
     "the test images are 14×14"),
    (lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes(__import__("gzip").compress(
        b"\0\0\x08\x03" + (100_000).to_bytes(4, "big") * 3)), "over 1,073,741,824"),
]


@pytest.mark.parametrize("n", range(len(CORRUPT_IDX)))
def test_corrupt_idx_files_are_one_line(corrupted_idx, n):
    folder, (code, out, err) = corrupted_idx[n]
    refused_all([(code, out, err)], CORRUPT_IDX[n][1])
    assert not (folder / "r").exists()


@pytest.fixture(scope="module")
def corrupted_idx(tmp_path_factory) -> list[tuple[Path, tuple[int, str, str]]]:
    """Each corruption in its own copy of a small Fashion-MNIST folder, each trained on in its own process."""
    folders, argvs = [], []
    for n, (corrupt, _) in enumerate(CORRUPT_IDX):
        folder = tmp_path_factory.mktemp(f"idx{n}")
        d = folder / "fm"
        d.mkdir()
        _idx(d / "train-images-idx3-ubyte.gz", [300, 28, 28], np.zeros((300, 28, 28), np.uint8))
        _idx(d / "train-labels-idx1-ubyte.gz", [300], np.arange(300, dtype=np.uint8) % 10)
        _idx(d / "t10k-images-idx3-ubyte.gz", [100, 28, 28], np.zeros((100, 28, 28), np.uint8))
        _idx(d / "t10k-labels-idx1-ubyte.gz", [100], np.arange(100, dtype=np.uint8) % 10)
        corrupt(d)
        folders.append(folder)
        argvs.append(["train", "--data", "fashion-mnist", "--data-dir", str(d), "--epochs", "1",
                      "--out", str(folder / "r"), "--no-progress"])
    return list(zip(folders, run_many(argvs, timeout=TIMEOUT * 2)))


def _idx(path: Path, dims: list[int], data: np.ndarray) -> None:
    import gzip

    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(gzip.compress(header + data.tobytes()))


def test_a_spec_integer_of_5000_digits_is_one_line(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text("input: [1, 28, 28]\nlayers:\n  - conv: {filters: " + "9" * 5000 + ", kernel: 3}\n")
    refused(cnnlab("analyze", str(spec)), "big.yaml: invalid YAML: Exceeds the limit")


def test_stdout_closed_or_ascii_only_is_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "cnnlab", "zoo", "list"], stdout=subprocess.DEVNULL, timeout=TIMEOUT,
                       capture_output=False, stderr=subprocess.PIPE, text=True,
                       preexec_fn=lambda: os.close(1))
    assert p.returncode == 0 and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "cnnlab", "analyze", "examples/geron_ex2.yaml", "--explain"],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd=Path(__file__).resolve().parents[2],
                       env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert p.returncode == 0 and "Traceback" not in p.stderr and "\\u2014" in p.stdout


def test_a_class_name_with_a_newline_stays_on_its_line(tmp_path):
    """Names from folders reach tables and prediction lines escaped and cut: never a real line break."""
    from cnnlab.text import label

    assert label("c\nnewline") == "c\\nnewline"
    assert label("\x1b[2J" + "x" * 100_000).startswith("\\x1b[2J") and len(label("y" * 100_000)) == 80


@pytest.mark.parametrize("argv, words", [
    (["train", "--model", "a" * 4000], "characters)"),
    (["fit", "resnet18", "--budget", "9" * 3000 + "GB"], "characters)"),
    (["analyze", "b" * 4000 + ".yaml"], "characters)"),
    (["memory", "lenet5", "--threads", "100000000"], "from 1 to 4096"),
])
def test_a_long_value_is_never_echoed_whole(argv, words):
    (code, out, err), = run_many([argv], timeout=TIMEOUT)
    refused_all([(code, out, err)], words)
    assert len(err) < 600


def test_two_images_with_one_stem_are_named_not_dropped(tmp_path):
    root = segmentation_folder(tmp_path / "seg", size=16)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "images" / "0.jpg")
    refused(cnnlab("segment", "train", "--data", str(root), "--model", "fcn32s", "--epochs", "1", "--batch", "2",
                   "--out", str(tmp_path / "run"), "--no-progress"), "0.png: has the same stem as 0.jpg")


@pytest.mark.slow
def test_a_run_without_its_id_does_not_take_weights_that_carry_one(two_runs, tmp_path):
    run = tmp_path / "A"
    shutil.copytree(two_runs[0], run)
    doc = json.loads((run / "config.json").read_text())
    doc.pop("run_id"), doc.pop("digest")
    (run / "config.json").write_text(json.dumps(doc))
    shutil.copy(two_runs[1] / "model.safetensors", run / "model.safetensors")
    refused(cnnlab("eval", str(run)), "model.safetensors: belongs to run", "names no run")


@pytest.mark.slow
def test_an_extension_stopped_before_its_test_report_is_tested_on_resume(two_runs, tmp_path):
    """Killed after the extension's last checkpoint, the run held the shorter run's test.json and resume said
    'complete'. Simulated exactly: the 1-epoch report put back after the extension finished."""
    run = tmp_path / "A"
    shutil.copytree(two_runs[0], run)
    short = (run / "test.json").read_bytes()
    assert cnnlab("train", "--resume", str(run), "--epochs", "2", "--no-progress").returncode == 0
    assert json.loads((run / "test.json").read_text())["epochs"] == 2
    (run / "test.json").write_bytes(short)
    p = cnnlab("train", "--resume", str(run), "--no-progress")
    assert p.returncode == 0, p.stderr[-1500:]
    assert json.loads((run / "test.json").read_text())["epochs"] == 2
