"""Re-point a copied or moved project's SQLite MLflow store at its new folder.

MLflow stores artifact locations as absolute paths, so after copying a project its
``mlflow.db`` still names the original's ``mlartifacts/``;
:func:`reviewops.registry.tracking.check_artifact_root` refuses such a store and names the
command that runs :func:`main` here: ``python -m reviewops.registry.tracking relocate OLD [NEW]``.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from reviewops.errors import ReviewOpsError
from reviewops.registry.tracking import DB_NAME

USAGE = "usage: python -m reviewops.registry.tracking relocate OLD_PROJECT_DIR [NEW_PROJECT_DIR]"

# Columns of MLflow 3's SQL schema that hold absolute artifact locations.
_LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def relocate_store(old_root: Path | str, new_root: Path | str | None = None, db: Path | str | None = None) -> int:
    """Re-point a moved or copied project's SQLite store from ``old_root`` to ``new_root``.

    MLflow keeps artifact locations as absolute paths (``file:///old/project/mlartifacts/...``);
    this rewrites every one under ``old_root`` (``file:`` URIs and plain paths) to the same
    place under ``new_root`` (default: the current directory). Run it once after copying or
    moving ``mlflow.db`` together with ``mlartifacts/``.

    Args:
        old_root: the project folder the store was created in.
        new_root: the project folder it lives in now.
        db: the database (default ``<new_root>/mlflow.db``).

    Returns:
        The number of rewritten values.

    Raises:
        ReviewOpsError: the database does not exist.
    """
    new = Path(new_root or Path.cwd()).resolve()
    old = Path(old_root).absolute()
    db_path = Path(db or new / DB_NAME)
    if not db_path.is_file():
        raise ReviewOpsError(f"{db_path} not found; run this from the moved project or pass its database")
    pairs = [(old.as_uri() + "/", new.as_uri() + "/"), (f"{old}/", f"{new}/")]
    changed = 0
    with sqlite3.connect(db_path) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in _LOCATION_COLUMNS:
            if table not in tables:
                continue
            for before, after in pairs:
                cur = con.execute(
                    # Table and column names come from the fixed list above, never from input.
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                    (after, len(before) + 1, len(before), before),
                )
                changed += cur.rowcount
    return changed


def main(argv: list[str]) -> int:
    """``python -m reviewops.registry.tracking relocate OLD_ROOT [NEW_ROOT]``; returns the exit status."""
    if len(argv) not in (2, 3) or argv[0] != "relocate":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        n = relocate_store(argv[1], argv[2] if len(argv) == 3 else None)
    except ReviewOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"re-pointed {n} artifact locations from {Path(argv[1]).absolute()} to "
        f"{Path(argv[2] if len(argv) == 3 else Path.cwd()).resolve()}"
    )
    return 0
