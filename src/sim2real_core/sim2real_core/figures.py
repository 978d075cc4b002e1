"""PNG figures for reports, with matplotlib's file-only backend (no display needed)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plt", "save_figure"]


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Lay out, write (creating the folder) and close a figure; return the PNG path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
