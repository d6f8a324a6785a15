"""Classification data as people have it: an image folder of mixed sizes and modes, a labels CSV (Kaggle)."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.data.sources import DataError
from tests.helpers import run

SIZES = [(20, 24), (28, 28), (32, 20), (28, 36), (26, 30)]    # (H, W)
MODES = ["L", "RGB", "RGBA", "P"]


def mixed_images(folder_of, n: int = 40) -> list[tuple[str, str, tuple[int, int]]]:  # type: ignore[no-untyped-def]
    """``n`` images of two classes in every mode and five sizes; (path, label, (H, W)) of each."""
    rng = np.random.default_rng(2)
    out = []
    for i in range(n):
        c = ("cat", "dog")[i % 2]
        h, w = SIZES[i % len(SIZES)]
        a = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
        a[..., i % 2] += 180
        path = folder_of(i, c)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).convert(MODES[(i // 2) % 4]).save(path)
        out.append((str(path), c, (h, w)))
    return out


def test_a_folder_of_mixed_sizes_and_modes_trains_at_the_median_size(tmp_path, capsys):
    made = mixed_images(lambda i, c: tmp_path / "d" / c / f"{i:03d}.png")
    data = load_data(str(tmp_path / "d"))
    median = (statistics.median_low(h for *_, (h, w) in made), statistics.median_low(w for *_, (h, w) in made))
    assert data.shape == (3, *median)                       # RGBA and palette read as RGB, grey expanded
    assert f"resized to {median[0]}×{median[1]}, their median height × median width" in data.note
    assert data.seen == "H 20–32 × W 20–36"
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "d"), "--epochs", "1", "--batch", "8",
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    assert "read image folders <class>/<image>: " in err and "2 classes: 0 cat, 1 dog" in err


def test_size_still_chooses(tmp_path):
    mixed_images(lambda i, c: tmp_path / "d" / c / f"{i:03d}.png")
    assert load_data(str(tmp_path / "d"), size=(16, 16)).shape == (3, 16, 16)


def test_a_kaggle_csv_with_ids_without_suffix(tmp_path, capsys):
    made = mixed_images(lambda i, c: tmp_path / "train" / f"{i:04x}.png")
    rows = "\n".join(f"{Path(p).stem},{c}" for p, c, _ in made)
    (tmp_path / "train.csv").write_text(f"id,label\n{rows}\n")
    data = load_data(str(tmp_path / "train.csv"))
    assert data.classes == ["cat", "dog"] and len(data.train) + len(data.val) + len(data.test) == 40
    assert data.layout.startswith("labels CSV train.csv")
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "train.csv"), "--epochs", "1", "--batch", "8",
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    code, _, err = run(capsys, "eval", str(tmp_path / "run"))
    assert code == 0, err


def test_a_csv_without_header_with_sub_folders_and_numeric_labels(tmp_path):
    made = mixed_images(lambda i, c: tmp_path / "images" / c / f"{i}.png")
    rows = "\n".join(f"{c}/{Path(p).name};{10 if c == 'cat' else 2}" for p, c, _ in made)
    (tmp_path / "labels.csv").write_text(rows + "\n")
    data = load_data(str(tmp_path / "labels.csv"))
    assert data.classes == ["2", "10"]                     # numeric order, not "10" < "2"
    cats = [i for i, (_, c, _) in enumerate(made) if c == "cat"]
    assert len(cats) == 20 and int((data.train.labels == 1).sum() + (data.val.labels == 1).sum()
                                   + (data.test.labels == 1).sum()) == 20


def test_a_csv_label_column_by_name_and_images_elsewhere(tmp_path):
    made = mixed_images(lambda i, c: tmp_path / "pics" / f"{i}.png")
    rows = "\n".join(f"{i},{Path(p).name},{c}" for i, (p, c, _) in enumerate(made))
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "t.csv").write_text(f"row,filename,breed\n{rows}\n")
    with pytest.raises(DataError, match=r"line 2 \(0.png\) is in none of the folders searched.*--images DIR"):
        load_data(str(tmp_path / "meta" / "t.csv"))
    data = load_data(str(tmp_path / "meta" / "t.csv"), images=str(tmp_path / "pics"))
    assert data.classes == ["cat", "dog"]


def test_a_csv_whose_label_column_cannot_be_told_is_one_clear_error(tmp_path, capsys):
    mixed_images(lambda i, c: tmp_path / f"{i}.png", n=4)
    (tmp_path / "t.csv").write_text("a,b,c\n0.png,x,y\n1.png,y,x\n")
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "run"))
    assert code == 2 and "cannot tell the label column among a, b, c; name it 'label'" in err
    assert err.count("\n") == 1


def test_a_csv_listing_an_image_twice(tmp_path):
    """A file listed twice is read once (it cannot land in two splits); two labels for it, or none, is an error
    naming the lines."""
    made = mixed_images(lambda i, c: tmp_path / "images" / f"{i}.png", n=20)
    rows = [f"{Path(p).name},{c}" for p, c, _ in made]
    (tmp_path / "twice.csv").write_text("file,label\n" + "\n".join(rows + rows[:3] + ["7,%s" % made[7][1]]) + "\n")
    data = load_data(str(tmp_path / "twice.csv"))
    assert len(data.train) + len(data.val) + len(data.test) == 20
    (tmp_path / "two.csv").write_text("file,label\n" + "\n".join(rows + ["3.png,other"]) + "\n")
    with pytest.raises(DataError, match=r"lines 5 and 22 give 3.png two labels \('dog' and 'other'\)"):
        load_data(str(tmp_path / "two.csv"))
    (tmp_path / "none.csv").write_text("file,label\n\n" + "\n".join(rows[:4] + ["9.png,"]) + "\n")
    with pytest.raises(DataError, match=r"none.csv: line 7 has no label"):
        load_data(str(tmp_path / "none.csv"))
