"""Finding the weight and data files that ship inside the installed package."""

from __future__ import annotations

from pathlib import Path


def shipped(directory: Path, file: str, what: str) -> Path:
    """`directory / file`, or FileNotFoundError saying the installation is incomplete.

    Every weight and data file is package data of the `svdd` wheel, so a missing one means a
    broken or partial install, not something the user should retrain.
    """
    path = directory / file
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the {what} file ships with the svdd package, so this "
            "installation is incomplete; reinstall the package (pip install --force-reinstall svdd)"
        )
    return path
