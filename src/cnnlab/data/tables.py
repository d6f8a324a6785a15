"""A labels CSV, the Kaggle layout: one row per image, ``file,label``.

    id,label                 image,level              file,label
    0a1b2c,cat               10_left.jpeg,2           train/dog/001.png,dog

The file column is the first one named ``file``, ``filename``, ``file_name``, ``image``, ``image_id``,
``image_name``, ``img``, ``path``, ``name`` or ``id`` (else the first column); the label column the first
one named ``label``, ``labels``, ``class``, ``category``, ``target``, ``level``, ``breed``, ``species``
or ``y`` (else the second of two). A CSV without a header row is read as ``file,label``. A name may hold
sub-folders; a name without a suffix (Kaggle's ``id``) is looked up with each image suffix. The images
are in the folder ``--images`` names, or the one of the CSV's folder, its ``images/``, or the folder named
after the CSV (``train.csv`` → ``train/``) that holds them. The classes are the distinct labels, in
numeric order when every label is an integer, else alphabetical. Other columns (a ``split`` or ``fold``
column included) are not read: the images are split at random (20 % test, then ``--val-fraction`` of the
rest for validation). A file listed twice is read once; with two different labels it is an error, as is a
row without a label.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cnnlab.data.locate import image_root, unique_folders
from cnnlab.data.sources import IMAGE_SUFFIXES, DataError, FolderLayout, Split, read_items, size_range

FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_id", "image_name", "img", "path", "name", "id")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "level", "breed", "species", "y")
MAX_CSV_BYTES = 256 << 20            # a labels CSV of a million rows is about 40 MB


def resolve(root: Path, name: str) -> Path | None:
    """The image file ``name`` names under ``root`` (a suffix tried in turn when it has none), or None."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith(("/", "\\")):
        return None
    path = root.joinpath(*parts)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return path if path.is_file() else None
    for suffix in IMAGE_SUFFIXES:
        for candidate in (path.with_name(path.name + suffix), path.with_name(path.name + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise DataError(f"{path}: over {MAX_CSV_BYTES:,} bytes; split the table")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (offset {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:                           # (line number, cells) of the non-blank rows: messages name the file's own lines
        return [(k, r) for k, r in enumerate(csv.reader(io.StringIO(text), dialect), start=1)
                if any(c.strip() for c in r)]
    except csv.Error as err:
        raise DataError(f"{path}: not a CSV table ({err})") from None


def _columns(path: Path, header: list[str]) -> tuple[int, int]:
    """(file column, label column) of a header row."""
    names = [h.strip().lower() for h in header]
    file_col = next((names.index(n) for n in FILE_COLUMNS if n in names), 0)
    label_col = next((names.index(n) for n in LABEL_COLUMNS if n in names and names.index(n) != file_col), None)
    if label_col is None:
        if len(names) != 2:
            raise DataError(f"{path}: cannot tell the label column among {', '.join(header[:8])}; name it 'label' "
                            "(one class per row: file,label)")
        label_col = 1 - file_col
    return file_col, label_col


def _classes(labels: list[str]) -> list[str]:
    distinct = sorted(set(labels))
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return distinct


def _items(path: Path, root: Path, rows: list[tuple[int, str, str]], index: dict[str, int], strict: bool,
           skipped: list[tuple[str, str]]) -> list[tuple[Path, int]]:
    """(image file, class index) of each row; a file listed twice is kept once (refused with two labels: the
    same image in two classes, or in two splits, would leak)."""
    items, first = [], {}
    for line, name, lab in rows:
        file = resolve(root, name)
        if file is None:
            why = f"line {line}: {name} is not in {root}"
            if strict:
                raise DataError(f"{path}: {why}; fix the row, or drop --strict to skip it")
            skipped.append((str(root / name), why))
            continue
        key = file.resolve()
        if key in first:
            seen_line, seen_lab = first[key]
            if seen_lab != lab:
                raise DataError(f"{path}: lines {seen_line} and {line} give {name} two labels ({seen_lab!r} and "
                                f"{lab!r}); one image, one class: remove one of the rows")
            continue
        first[key] = (line, lab)
        items.append((file, index[lab]))
    return items


def load_csv(path: Path, images: Path | None, channels: int | None, size: tuple[int, int] | None, strict: bool
             ) -> tuple[list[str], dict[str, Split], list[tuple[str, str]], FolderLayout]:
    """The classes, ``{"all": split}``, the skipped images and the layout of a labels CSV (module notes)."""
    rows = _rows(path)
    if not rows:
        raise DataError(f"{path}: an empty table; give one row per image: file,label")
    where = unique_folders([path.parent, path.parent / "images", path.parent / path.stem])
    first = rows[0][1]
    # a first row whose first cell names an image is data (a CSV without a header row)
    header = not any(resolve(p, first[0].strip()) for p in ([images] if images else where))
    file_col, label_col = _columns(path, first) if header else (0, 1)
    body = rows[1:] if header else rows
    short = next(((k, r) for k, r in body if len(r) <= max(file_col, label_col)), None)
    if short is not None:
        raise DataError(f"{path}: line {short[0]} has {len(short[1])} cells; every row needs the file and its label")
    table = [(k, r[file_col].strip(), r[label_col].strip()) for k, r in body]
    if not table:
        raise DataError(f"{path}: a header and no rows; give one row per image: file,label")
    empty = next((k for k, _, lab in table if not lab), None)
    if empty is not None:
        raise DataError(f"{path}: line {empty} has no label; give every image its class (or remove the row)")
    root = image_root(path, [n for _, n, _ in table], where, images, resolve, f"line {table[0][0]}")
    classes = _classes([lab for *_, lab in table])
    if len(classes) < 2:
        raise DataError(f"{path}: every row has the label {classes[0]!r}; a classifier needs at least two classes")
    skipped: list[tuple[str, str]] = []
    items = _items(path, root, table, {c: i for i, c in enumerate(classes)}, strict, skipped)
    seen: list[tuple[int, int]] = []
    split, note = read_items(root, items, channels, size, strict, skipped, seen)
    columns = (f"column {first[file_col].strip()!r} → file, {first[label_col].strip()!r} → label" if header
               else "no header: file,label")
    return classes, {"all": split}, skipped, FolderLayout(f"labels CSV {path.name} ({columns}; images in {root})",
                                                          size_range(seen), note)
