"""Reading the CSV tables that one stage hands to the next, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ..errors import G2IError


def read_stage_table(path: str | Path, required: Sequence[str], made_by: str, **read_csv) -> pd.DataFrame:
    """`path` as a DataFrame; a missing file, unparsable CSV or missing column is a G2IError naming it."""
    path = Path(path)
    if not path.is_file():
        raise G2IError(f"{path}: not found (run the {made_by} stage first)")
    try:
        table = pd.read_csv(path, **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise G2IError(f"{path}: not a readable CSV table ({exc})") from exc
    missing = sorted(set(required) - set(table.columns))
    if missing:
        raise G2IError(f"{path}: missing column(s) {missing}")
    return table
