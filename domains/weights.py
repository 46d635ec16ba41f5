"""Finding a domain's shipped weight files, with an error that says how to make them again."""

from __future__ import annotations

from pathlib import Path


def shipped(directory: Path, file: str, what: str, make_target: str) -> Path:
    """`directory / file`, or FileNotFoundError naming the weights and the make target that retrains them."""
    path = directory / file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the shipped {what} weights should be in the repository "
                                f"(retrain with `make {make_target}`)")
    return path
