"""Which folder a list of image names (from a COCO file, a labels CSV) is relative to.

The usual layouts put the images beside the file, in its ``images/``, or in a folder named after the split;
:func:`image_root` takes the one candidate that holds them (the first :data:`SAMPLE` names are checked), or
the folder the user names (``--images DIR``). Two candidates that both hold them are ambiguous: a one-line
error names both. None that holds any is a one-line error naming every folder searched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cnnlab.data.sources import DataError

SAMPLE = 64


def unique_folders(paths: list[Path]) -> list[Path]:
    """The existing folders of ``paths``, each once, in order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir() and p.resolve() not in [q.resolve() for q in found]:
            found.append(p)
    return found


def image_root(owner: Path, names: list[str], candidates: list[Path], images: Path | None,
               resolve: Callable[[Path, str], Path | None], first: str,
               fix: str = "give --images DIR, the folder the image names are relative to") -> Path:
    """The folder ``names`` are relative to (``resolve(folder, name)`` is the file, or None); ``owner`` is the
    file that lists them, ``first`` how its first entry is called in messages (``image 7``, ``row 2``)."""
    if images is not None:
        if not images.is_dir():
            raise DataError(f"--images {images}: no such folder; give the folder the image names in {owner} are "
                            "relative to")
        return images
    if not names or not candidates:
        return owner.parent
    sample = names[:SAMPLE]
    held = {p: sum(resolve(p, n) is not None for n in sample) for p in candidates}
    full = [p for p in candidates if held[p] == len(sample)]
    if len(full) > 1:
        raise DataError(f"{owner}: both {full[0]} and {full[1]} hold its images (e.g. {sample[0]}); give "
                        "--images DIR to say which")
    if full:
        return full[0]
    best = max(candidates, key=lambda p: held[p])
    if held[best] == 0:
        raise DataError(f"{owner}: {first} ({sample[0]}) is in none of the folders searched "
                        f"({', '.join(str(p) for p in candidates)}); {fix}")
    return best
