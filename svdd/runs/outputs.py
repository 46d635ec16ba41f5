"""The files a finished run leaves: the sample table (CSV or Parquet) and a domain's own formats.

Every file is written next to its final name and renamed into place, so a reader never sees a
half-written table, and a rerun replaces them whole.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .rundir import RunWriteError, set_aside, tmp_name, write_atomic

TABLE_FORMATS = ("csv", "parquet")


def check_table_format(fmt: str) -> None:
    """ValueError unless `fmt` is a table format this installation can write."""
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(TABLE_FORMATS)}; got {fmt!r}")
    if fmt == "parquet":
        try:
            import pandas  # noqa: F401
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("--format parquet needs pandas and pyarrow: pip install 'svdd[parquet]'") from None


def format_number(value: Any) -> str:
    """A number as the shortest text that reads back as the same value; "" for NaN/None.

    A value that is exactly a float32 (a reward computed in float32) is written with float32's
    shortest form, 66.1 rather than 66.0999984741211; +inf and -inf as "inf" and "-inf".
    """
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    x = float(value)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    single = np.float32(x)
    if float(single) == x:
        return str(single)  # numpy prints float32 in its shortest round-tripping form
    return repr(x)


def sample_text(sample: Any) -> str:
    """How a sample appears in the table: strings as they are, token lists space-separated."""
    if isinstance(sample, (list, tuple)):
        return " ".join(map(str, sample))
    return str(sample)


def write_table(path: Path, columns: Mapping[str, list], fmt: str = "csv") -> Path:
    """Write `columns` (equal-length lists; the first is the index) as CSV or Parquet at `path`."""
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"table columns differ in length: {lengths}")
    if fmt == "parquet":
        import pandas as pd

        data = io.BytesIO()
        pd.DataFrame(dict(columns)).to_parquet(data, index=False)
        write_atomic(path, data.getvalue())
        return path
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(list(columns))
    rows = zip(*columns.values())
    for row in rows:
        writer.writerow([v if isinstance(v, str) else format_number(v) for v in row])
    write_atomic(path, buf.getvalue())
    return path


def write_staged(out_dir: Path, write: Callable[[Path], list[Path]]) -> list[Path]:
    """Run `write(staging_dir)` and move each file it made into `out_dir` by an atomic rename.

    A writer of a domain format (FASTA, SDF) then never leaves a half-written file in the run
    directory, even when it writes with a library that knows nothing of temporary files.
    """
    staging = tmp_name(out_dir / ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written = write(staging)
        final = []
        for path in written:
            path = Path(path)
            target = out_dir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                set_aside(target)  # a directory where the file goes: damage, kept aside
            try:
                os.replace(path, target)
            except OSError as exc:
                raise RunWriteError(exc.errno or errno.EIO, f"cannot write {target}: {exc.strerror or exc}") from None
            final.append(target)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
