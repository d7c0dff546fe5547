"""A data set's fingerprint: what exactly a model was trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

#: How ``TrainingRecipe.load`` begins the ``data.source`` of generated data:
#: ``synthetic(rows=10000, seed=42)``; a file's is its path.
SYNTHETIC = "synthetic("


def is_synthetic(source: str) -> bool:
    """Whether a version's ``data.source`` is generated data rather than a file."""
    return source.startswith(SYNTHETIC)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_frame(frame: pd.DataFrame) -> str:
    """Stable hash of a frame's content (column names, order and values)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def fingerprint(
    frame: pd.DataFrame, path: Path | None, extra: dict[str, float]
) -> dict[str, str | int | float]:
    """sha256 of the source file (or of the frame for generated data), rows and ``extra``."""
    return {
        "sha256": sha256_of_file(path) if path is not None else sha256_of_frame(frame),
        "frame_sha256": sha256_of_frame(frame),
        "rows": len(frame),
        **extra,
    }
