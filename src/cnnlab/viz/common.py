"""What every cnnlab figure shares: the off-screen backend and an atomic PNG write."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.files import atomic_path  # noqa: E402

# a class or file name with a control character has no glyph: matplotlib would print the raw character in a
# warning on stderr; the figure shows a blank for it instead
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically and close it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        plt.close(fig)
        raise CnnlabError(f"{path}: figures are PNG files; give a path ending in .png")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    except OSError as err:
        raise CnnlabError(f"{path}: cannot write the figure ({err.strerror})") from None
    finally:
        plt.close(fig)
    return path


__all__ = ["plt", "save_figure"]
