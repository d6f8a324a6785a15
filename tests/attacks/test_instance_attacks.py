"""Malformed COCO documents and memory bombs against instance-segmentation data (issue 29, classes 3 and 4).

Most malformed documents are checked on ``validate_coco`` directly (fast); a few go through the CLI in a
subprocess with a timeout, as tests/attacks/test_attacks.py does: exit status 2, exactly one line on stderr
naming the file and the field, no traceback, the user's files unchanged and no run folder. The bombs run with
the child's address space bounded (RLIMIT_AS), so that one the checks miss ends in a MemoryError traceback
(or a kill) instead of swapping the machine.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import instances
from cnnlab import machine
from cnnlab.data.coco_schema import validate_coco
from cnnlab.text import excerpt
from cnnlab.data.instances import MAX_INSTANCES, load_instances
from cnnlab.data.sources import DataError

from tests.zygote import run_cnnlab

TIMEOUT = 120                  # seconds: a refused input answers in a few; importing torch takes most of it
ADDRESS_SPACE = 6 << 30        # a whole 1-epoch Mask R-CNN run on 2 images peaks at 4.3 GB VmPeak (measured);
                               # every bomb below needs well over 6 GiB without its check


def poly(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def valid_doc() -> dict[str, Any]:
    """Two 30×20 images, categories 3 and 17 (a gap, as COCO has), one polygon and one RLE annotation."""
    return {"images": [{"id": 1, "file_name": "images/a.png", "height": 20, "width": 30},
                       {"id": 2, "file_name": "images/b.png", "height": 20, "width": 30}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 3, "segmentation": poly(2, 2, 10, 8),
                             "iscrowd": 0, "area": 48.0, "bbox": [2, 2, 8, 6]},
                            {"id": 6, "image_id": 2, "category_id": 17, "iscrowd": 0,
                             "segmentation": {"size": [20, 30], "counts": [100, 20, 480]}}],
            "categories": [{"id": 3, "name": "cat"}, {"id": 17, "name": "dog"}]}


def write_coco(root: Path, doc: dict[str, Any] | str | bytes, size: tuple[int, int] = (20, 30)) -> Path:
    """A COCO folder: images/a.png and images/b.png (grey, ``size`` H×W) and annotations.json holding ``doc``."""
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full(size, 90, np.uint8)).save(root / "images" / name)
    text = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    (root / "annotations.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def train_cli(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``cnnlab segment train --task instance`` on ``data`` in a child with a bounded address space."""
    return run_cnnlab("segment", "train", "--task", "instance", "--data", str(data), "--out", str(out), "--epochs",
                      "1", "--no-progress", *extra, timeout=TIMEOUT,
                      rlimits=[("RLIMIT_AS", ADDRESS_SPACE, ADDRESS_SPACE)])


def assert_refused(p: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2, one line on stderr holding every word, no traceback."""
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr[-2000:]
    assert p.stderr.startswith("cnnlab: error: ") and len(p.stderr) < 2000
    for w in words:
        assert w in p.stderr, (w, p.stderr)


# -- validate_coco, directly -----------------------------------------------------------------------------------

def change(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation setting ``doc[a][b]...`` (``path`` as 'annotations.1.image_id'); the value ``...`` deletes."""
    def apply(doc: dict) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        for k in parents:
            doc = doc[k]
        if value is ...:
            del doc[last]
        else:
            doc[last] = value
    apply.__name__ = f"{path}={excerpt(value)}"
    return apply


RLE = "annotations.1.segmentation"
MALFORMED = [           # (mutation, words the one-line message must hold) — the nine first
    (change("annotations.1", 5), "annotation at index 1: must be an object with 'id'"),
    (change("annotations.1.id", ...), "annotation at index 1: field 'id': must be an integer (missing)"),
    (change("annotations.1.image_id", [4]), "annotation 6 (index 1): field 'image_id': must be the integer id of "
                                            "an image that 'images' lists (got [4])"),
    (change("annotations.0.segmentation", [[1, 1, "x", 5, 5, 5]]),
     "annotation 5 (index 0): field 'segmentation': polygon 0 must be [x1, y1, x2, y2, x3, y3, ...]"),
    (change(f"{RLE}.counts", 5), "field 'segmentation': an RLE's 'counts' must be a list of run lengths or a "
                                 "compressed RLE string (got 5)"),
    (change(f"{RLE}.counts", "é01"), "field 'segmentation': an RLE's 'counts' string must be pycocotools' "
                                     "compressed RLE: characters '0' to 'o', at most 616 of them (got 'é01')"),
    (change(f"{RLE}.counts", [-5, 605]), "an RLE's 'counts' must be run lengths, whole numbers ≥ 0 summing to "
                                         "height × width = 600 (got [-5, 605])"),
    (change(f"{RLE}.counts", [100, 20]), "summing to height × width = 600 (got [100, 20])"),
    (change(f"{RLE}.counts", [100, 20, 481]), "summing to height × width = 600"),
    (change(f"{RLE}.size", [16]), "field 'segmentation': an RLE's 'size' must be [height, width], two whole "
                                  "numbers 1 to 65,535 (got [16])"),
    (change(f"{RLE}.size", 16), "an RLE's 'size' must be [height, width]"),
    (change("annotations", ...), "ann.json: 'annotations' is missing; a COCO instances file is a JSON object with "
                                 "'images', 'annotations' and 'categories' lists"),
    (change("categories", ...), "ann.json: 'categories' is missing"),
    (change("images.1.id", 1), "ann.json: image 1 (index 1): field 'id': image 1 is listed twice (indices 0 and 1)"),
    # the rest of COCO's instances format
    (change("categories.1.id", 3), "category 3 (index 1): field 'id': category 3 is listed twice (indices 0 and 1)"),
    (change("annotations.1.id", 5), "annotation 5 (index 1): field 'id': annotation 5 is listed twice"),
    (change("images", {"1": "a.png"}), "ann.json: 'images' must be a list (got {'1': 'a.png'})"),
    (change("categories", []), "ann.json: 'categories' is empty"),
    (change("images.0", "a.png"), "image at index 0: must be an object with 'id', 'file_name'"),
    (change("images.0.id", True), "image at index 0: field 'id': must be an integer (got True)"),
    (change("images.0.id", 2**63), "image at index 0: field 'id': must be an integer (got 9223372036854775808)"),
    (change("images.0.file_name", ""), "image 1 (index 0): field 'file_name': must be the image's path relative"),
    (change("images.0.file_name", ...), "field 'file_name': must be the image's path relative to the folder (missing)"),
    (change("images.0.file_name", "images/../../secret.png"), "field 'file_name': must be a path inside the folder"),
    (change("images.0.file_name", "/etc/passwd"), "field 'file_name': must be a path inside the folder"),
    (change("images.0.file_name", "C:\\data\\a.png"), "field 'file_name': must be a path inside the folder"),
    (change("images.0.width", 0), "image 1 (index 0): field 'width': must be a whole number of pixels, 1 to 65,535"),
    (change("images.0.height", 70_000), "field 'height': must be a whole number of pixels, 1 to 65,535 (got 70000)"),
    (change("images.0.height", 20.0), "field 'height': must be a whole number of pixels"),
    (change("categories.0.name", 7), "category 3 (index 0): field 'name': must be the class name"),
    (change("annotations.0.category_id", "3"), "annotation 5 (index 0): field 'category_id': must be an integer "
                                               "category id (got '3')"),
    (change("annotations.0.image_id", 99), "annotation 5 (index 0): field 'image_id': must be the integer id of an "
                                           "image that 'images' lists (got 99)"),
    (change("annotations.0.iscrowd", True), "field 'iscrowd': must be 0 or 1 (got True)"),
    (change("annotations.0.iscrowd", 2), "field 'iscrowd': must be 0 or 1 (got 2)"),
    (change("annotations.0.bbox", [1, 2, 3]), "field 'bbox': must be [x, y, width, height], 4 finite numbers"),
    (change("annotations.0.bbox", [1, 2, 3, float("nan")]), "field 'bbox': must be [x, y, width, height]"),
    (change("annotations.0.area", float("inf")), "field 'area': must be a finite number (got inf)"),
    (change("annotations.0.segmentation", [[1, 1, 5, 5]]), "polygon 0 must be [x1, y1, x2, y2, x3, y3, ...]"),
    (change("annotations.0.segmentation", [[1, 1, 5, 5, 5]]), "polygon 0 must be"),
    (change("annotations.0.segmentation", [[1, 1, 5, 1, 5, 10**400]]), "polygon 0 must be"),
    (change("annotations.0.segmentation", [[1, 1, 5, 1, 5, True]]), "polygon 0 must be"),
    (change("annotations.0.segmentation", "1 2 3"), "field 'segmentation': must be a list of polygons or an RLE"),
    (change(f"{RLE}.counts", "1" * 617), "at most 616 of them"),
    (change(f"{RLE}.counts", [100.0, 20, 480]), "an RLE's 'counts' must be run lengths"),
    (change(f"{RLE}.counts", ...), "an RLE's 'counts' must be a list of run lengths or a compressed RLE string "
                                   "(got None)"),
]


@pytest.mark.parametrize("mutate, words", MALFORMED, ids=[m.__name__ for m, _ in MALFORMED])
def test_a_malformed_document_is_one_line_naming_the_place(mutate, words):
    doc = valid_doc()
    mutate(doc)
    with pytest.raises(DataError) as err:
        validate_coco(doc, "ann.json")
    message = str(err.value)
    assert words in message and message.startswith("ann.json: ") and "\n" not in message and len(message) < 300


def test_a_document_that_is_not_an_object_is_named():
    for doc in ([], 5, None, "images"):
        with pytest.raises(DataError, match="ann.json: a COCO instances file is a JSON object"):
            validate_coco(doc, "ann.json")


@pytest.mark.parametrize("path, value, start", [
    ("images.0.file_name", "../" * 10**6, "'../../"),
    ("annotations.0.segmentation", [[1.5] * 10**6 + ["x"]], "[1.5, 1.5"),
    ("annotations.0.image_id", {str(k): k for k in range(10**5)}, "{'0': 0"),
])
def test_an_echoed_value_is_cut_short(path, value, start):
    doc = valid_doc()
    change(path, value)(doc)
    with pytest.raises(DataError) as err:
        validate_coco(doc, "ann.json")
    got = str(err.value).rsplit("(got ", 1)[1][:-1]
    assert len(got) <= 70 and got.startswith(start) and len(str(err.value)) < 300, got


def test_an_excerpt_escapes_control_characters():
    assert excerpt("a\x1bb\nc") == "'a\\x1bb\\nc'"
    assert len(excerpt("x" * 100)) < 70 and "…" in excerpt("x" * 100) and excerpt("x" * 38) == repr("x" * 38)
    assert len(excerpt([[1] * 10**6] * 10**3)) <= 40          # a huge value is never shown (nor built) whole


def test_a_valid_document_passes_and_pycocotools_reads_it_alike():
    from pycocotools.coco import COCO

    doc = valid_doc()
    doc["images"][0]["file_name"] = "./images/sub/../a.png"      # '..' that stays inside the folder is fine
    validate_coco(doc, "ann.json")
    coco = COCO()
    coco.dataset = copy.deepcopy(doc)
    coco.createIndex()
    mask = coco.annToMask(coco.anns[6])
    assert mask.sum() == 20 and mask.T.flatten()[100:120].all()  # column-major runs: 100 off, 20 on, 480 off


def test_documents_cnnlab_writes_pass(tmp_path):
    """'scenes make' output (every mask as pycocotools' compressed RLE) and the folders test_instances builds."""
    from cnnlab.data.scenes import SceneConfig, make_scenes, write_scenes

    scenes = make_scenes(SceneConfig(source="digits", count=30, size=(32, 32), objects=(1, 3), item_px=(12, 16)))
    write_scenes(scenes, tmp_path / "s")
    for split in ("train", "val", "test"):
        path = tmp_path / "s" / split / "annotations.json"
        validate_coco(json.loads(path.read_text()), str(path))
    root = write_coco(tmp_path / "d", valid_doc())
    xs, ys, cats = instances.read_coco(root / "annotations.json", None, None, False, [])
    assert len(xs) == 2 and cats == {3: "cat", 17: "dog"} and [int(m.sum()) for m, _ in ys] == [48, 20]


@pytest.mark.parametrize("h, w", [(20, 30), (1, 1), (64, 64), (7, 3)])
def test_every_rle_pycocotools_writes_passes_and_every_sum_it_refuses_is_refused(h, w):
    """The bounds on RLE hold for pycocotools' own output — the checkerboard is the longest string (h·w + 1
    runs) — and the run-length sum rule matches what its decoder accepts (more than h·w: an error; fewer: it
    pads silently, which we refuse too)."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    board = (np.indices((h, w)).sum(0) % 2).astype(np.uint8)
    for m in (board, 1 - board, np.zeros((h, w), np.uint8), np.ones((h, w), np.uint8),
              (rng.random((h, w)) < 0.5).astype(np.uint8)):
        rle = mask_utils.encode(np.asfortranarray(m))
        doc = valid_doc()
        doc["images"][1].update(height=h, width=w)
        doc["annotations"][1]["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
        validate_coco(doc, "ann.json")
    too_many = mask_utils.frPyObjects({"size": [h, w], "counts": [h * w, 1]}, h, w)
    with pytest.raises(Exception, match="Invalid RLE"):
        mask_utils.decode(too_many)
    doc["annotations"][1]["segmentation"] = {"size": [h, w], "counts": [h * w, 1]}
    with pytest.raises(DataError, match="summing to height × width"):
        validate_coco(doc, "ann.json")


def test_a_malformed_document_is_an_error_even_with_skip_bad(tmp_path):
    doc = valid_doc()
    doc["annotations"][1]["segmentation"]["counts"] = [-5, 605]
    root = write_coco(tmp_path / "d", doc)
    with pytest.raises(DataError, match="annotation 6 \\(index 1\\): field 'segmentation'") as err:
        load_instances(str(root), skip_bad=True)
    assert str(root / "annotations.json") in str(err.value) and "--skip-bad" not in str(err.value)


# -- data errors keep --skip-bad -------------------------------------------------------------------------------

def test_an_image_of_another_size_than_images_says_is_a_data_error(tmp_path):
    doc = valid_doc()
    doc["images"][1].update(height=10, width=15)
    doc["annotations"][1]["segmentation"] = poly(1, 1, 5, 5)
    root = write_coco(tmp_path / "d", doc)
    with pytest.raises(DataError, match="image 2: images/b.png is 30×20 pixels but 'images' gives width 15, "
                                        "height 10; fix them; fix it, or pass --skip-bad"):
        load_instances(str(root))
    skipped: list = []
    assert len(instances.read_coco(root / "annotations.json", None, None, True, skipped)[0]) == 1 and "images/b.png is 30×20" in skipped[0][1]


def test_too_many_instances_on_one_coco_image_is_named_before_decoding(tmp_path, monkeypatch):
    doc = valid_doc()
    doc["annotations"] += [{"id": 100 + k, "image_id": 2, "category_id": 3, "segmentation": poly(1, 1, 5, 5)}
                           for k in range(MAX_INSTANCES)]
    doc["annotations"].append({"id": 99, "image_id": 2, "category_id": 3, "iscrowd": 1,
                               "segmentation": poly(1, 1, 5, 5)})             # crowd regions are not counted
    root = write_coco(tmp_path / "d", doc)
    decoded = []
    monkeypatch.setattr(instances, "_decode_segmentation", lambda *a: decoded.append(1) or np.zeros((20, 30), np.uint8))
    with pytest.raises(DataError, match=f"annotations.json: image 2 \\(images/b.png\\): {MAX_INSTANCES + 1:,} "
                                        f"instances, past the limit of {MAX_INSTANCES:,} per image"):
        load_instances(str(root))
    assert len(decoded) == 1                                  # image 1's mask only: image 2's were never decoded
    skipped: list = []
    xs, _, _ = instances.read_coco(root / "annotations.json", None, None, True, skipped)
    assert len(xs) == 1 and "1,001 instances" in skipped[0][1]
    doc["annotations"].pop(2)                                   # exactly the limit is fine
    (root / "annotations.json").write_text(json.dumps(doc))
    assert len(instances.read_coco(root / "annotations.json", None, None, False, [])[0]) == 2


def test_masks_past_the_ram_available_are_refused_before_decoding(tmp_path, monkeypatch):
    root = write_coco(tmp_path / "d", valid_doc())
    need = 2 * 20 * 30 + 2 * 3 * 20 * 30                          # 2 masks of 600 B, 2 images of 3 × 600 B
    monkeypatch.setattr(machine, "available_ram", lambda: need - 1)
    monkeypatch.setattr(instances, "JSON_RAM_FACTOR", 0)        # this test is about the masks
    with pytest.raises(DataError, match=f"annotations.json: decoding its images and 2 instance masks needs about "
                                        f"{need:,} B \\(0.00 MB, 0.00 MiB\\) but {need - 1:,} B"):
        load_instances(str(root))
    monkeypatch.setattr(machine, "available_ram", lambda: need)
    instances.read_coco(root / "annotations.json", None, None, False, [])


def test_parsing_past_the_ram_available_is_refused_before_reading(tmp_path, monkeypatch):
    root = write_coco(tmp_path / "d", valid_doc())
    size = (root / "annotations.json").stat().st_size
    monkeypatch.setattr(machine, "available_ram", lambda: size * instances.JSON_RAM_FACTOR - 1)
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(DataError, match=f"annotations.json: parsing its {size:,} B needs about "
                                        f"{size * instances.JSON_RAM_FACTOR:,} B"):
        instances.read_json(root / "annotations.json")


def test_json_that_nests_too_deep_or_is_not_json_is_one_line(tmp_path):
    for i, text in enumerate(["[" * 100_000 + "]" * 100_000, "{'images': []}", b"\xff\xfe{}"]):
        root = write_coco(tmp_path / str(i), text)
        with pytest.raises(DataError, match="annotations.json: not a JSON file") as err:
            load_instances(str(root))
        assert "\n" not in str(err.value)


def label_folder(root: Path, bomb: np.ndarray | None = None, n: int = 5) -> Path:
    """images/ + instances/: ``n`` 181×181 images with two instances each, and ``bomb`` as 0-bomb.png."""
    for sub in ("images", "instances"):
        (root / sub).mkdir(parents=True)
    owner = np.zeros((181, 181), np.uint16)
    owner[1:60, 1:60], owner[90:170, 20:120] = 7, 300
    for k, label in [*[(str(k), owner) for k in range(1, n + 1)], *([("0-bomb", bomb)] if bomb is not None else [])]:
        Image.fromarray(np.full((181, 181), 60, np.uint8)).save(root / "images" / f"{k}.png")
        Image.fromarray(label).save(root / "instances" / f"{k}.png")
    return root


def distinct_ids() -> np.ndarray:
    """The issue's label image: 181×181, 16-bit, 32,761 distinct ids (a 1.5 KB PNG)."""
    return np.arange(1, 181 * 181 + 1, dtype=np.uint16).reshape(181, 181)


def test_a_label_image_with_too_many_instances_is_named_or_skipped(tmp_path, monkeypatch):
    root = label_folder(tmp_path / "a", distinct_ids())
    built = []
    real = instances.from_label_image
    monkeypatch.setattr(instances, "from_label_image", lambda owner, *a: built.append(1) or real(owner, *a))
    with pytest.raises(DataError, match="0-bomb.png: 32,761 instances \\(distinct non-zero values\\), past the "
                                        "limit of 1,000 per image"):
        load_instances(str(root), val_fraction=0.25)
    assert not built
    data = load_instances(str(root), val_fraction=0.25, skip_bad=True)
    assert len(data.skipped) == 1 and len(data.train) + len(data.val) + len(data.test) == 5


def test_label_masks_past_the_ram_available_are_refused(tmp_path, monkeypatch):
    from cnnlab.data import sources

    root = label_folder(tmp_path / "a")
    monkeypatch.setattr(machine, "available_ram", lambda: 2 * 181 * 181 - 1)
    monkeypatch.setattr(sources, "DECODE_RAM_FACTOR", 0)      # this test is about the masks, not the decoding
    with pytest.raises(DataError, match=f"1.png: building its 2 instance masks needs about {2 * 181 * 181:,} B"):
        load_instances(str(root), val_fraction=0.25)


# -- through the CLI, in a child process ---------------------------------------------------------------------

def only_images(doc: dict) -> None:
    """The issue's file holding only 'images' (it once ended in "num_classes counts the background too")."""
    del doc["annotations"], doc["categories"]


CLI_CASES = [
    (change("annotations.1", 5), "annotation at index 1: must be an object"),
    (only_images, "'annotations' and 'categories' are missing"),
    (change("images.1.id", 1), "image 1 (index 1): field 'id': image 1 is listed twice (indices 0 and 1)"),
    (change(f"{RLE}.counts", "é"), "annotation 6 (index 1): field 'segmentation'"),
]


@pytest.mark.parametrize("mutate, words", CLI_CASES, ids=[m.__name__ for m, _ in CLI_CASES])
def test_the_cli_refuses_a_malformed_document_in_one_line(tmp_path, mutate, words):
    doc = valid_doc()
    mutate(doc)
    root = write_coco(tmp_path / "d", doc)
    before = files_of(root)
    p = train_cli(root, tmp_path / "run")
    assert_refused(p, f"{root / 'annotations.json'}: ", words)
    assert files_of(root) == before and not (tmp_path / "run").exists()


def test_the_label_image_bomb_is_one_line(tmp_path):
    """The issue's 1.5 KB PNG once grew the process to 24 GB (training went on with 32,761 instances)."""
    root = label_folder(tmp_path / "a", distinct_ids(), n=19)
    assert (root / "instances" / "0-bomb.png").stat().st_size < 4000
    before = files_of(root)
    p = train_cli(root, tmp_path / "run", "--batch", "2")
    assert_refused(p, "0-bomb.png: 32,761 instances (distinct non-zero values)", "limit of 1,000 per image")
    assert files_of(root) == before and not (tmp_path / "run").exists()


def test_masks_that_cannot_fit_in_ram_are_one_line(tmp_path):
    """20 images of 8,000 × 8,000 with 1,000 polygons each: 1.28 TB of masks, refused before one is decoded."""
    side, n_images = 8000, 20
    doc = {"images": [{"id": i, "file_name": "images/big.png", "height": side, "width": side}
                      for i in range(n_images)],
           "annotations": [{"id": i * MAX_INSTANCES + k, "image_id": i, "category_id": 1,
                            "segmentation": poly(10, 10, 20 + k, 20 + k)}
                           for i in range(n_images) for k in range(MAX_INSTANCES)],
           "categories": [{"id": 1, "name": "thing"}]}
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((side, side), np.uint8)).save(root / "images" / "big.png")
    (root / "annotations.json").write_text(json.dumps(doc))
    before = files_of(root)
    p = train_cli(root, tmp_path / "run")
    need = n_images * (MAX_INSTANCES + 3) * side * side
    assert_refused(p, f"{root / 'annotations.json'}: decoding its images and 20,000 instance masks needs about "
                      f"{need:,} B ({need / 1e6:,.2f} MB", "of RAM is available")
    assert files_of(root) == before and not (tmp_path / "run").exists()


def test_an_annotations_file_past_2_gb_is_refused_before_reading(tmp_path):
    root = write_coco(tmp_path / "d", valid_doc())
    with open(root / "annotations.json", "r+b") as f:
        f.truncate(instances.MAX_JSON_BYTES + 1)          # sparse: no disk used, 2 GB of NULs if read
    p = train_cli(root, tmp_path / "run")
    assert_refused(p, f"{root / 'annotations.json'}: 2,000,000,001 B is past the limit of 2,000,000,000 B (2 GB)")
    assert (root / "annotations.json").stat().st_size == instances.MAX_JSON_BYTES + 1
