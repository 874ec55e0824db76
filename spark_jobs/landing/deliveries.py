"""Writing landing files the way source systems deliver them: dated folders, CSV or JSON lines,
optionally gzip-compressed, and idempotently.

Re-generating the same zone must not make the ingestion job see new files (it keys files on
path, size and modification time), so a file whose bytes did not change is left untouched.
"""

from __future__ import annotations

import csv
import filecmp
import gzip
import io
import json
import os
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date
from pathlib import Path


@contextmanager
def _atomic_text(path: Path, compress: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: the ingestion job skips dot files
    raw = tmp.open("wb")
    # mtime=0 and no file name in the gzip header: same content, same bytes.
    binary = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) if compress else raw
    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    try:
        yield text
        text.close()
        if compress:
            raw.close()
    except BaseException:
        text.close()
        tmp.unlink(missing_ok=True)
        raise
    if path.exists() and filecmp.cmp(tmp, path, shallow=False):
        tmp.unlink()
    else:
        os.replace(tmp, path)


class Deliveries:
    """All files of one source entity: ``<landing>/<subdir>/<YYYY-MM-DD>/<stem>.<ext>``."""

    def __init__(self, landing: Path, subdir: str, stem: str):
        self.folder = landing / subdir
        self.stem = stem
        self.files: list[Path] = []
        self.rows = 0
        self.bad_rows = 0

    def path(self, day: date, ext: str, part: int = 1) -> Path:
        return self.folder / day.isoformat() / f"{self.stem}_{day:%Y%m%d}_{part:03d}.{ext}"

    def write_jsonl(self, day: date, records: Iterable[dict | str], compress: bool = False, part: int = 1) -> None:
        """Records are dicts, or already-broken lines (str) injected on purpose."""
        path = self.path(day, "jsonl.gz" if compress else "jsonl", part)
        with _atomic_text(path, compress) as fh:
            for record in records:
                if isinstance(record, str):
                    self.bad_rows += 1
                    fh.write(record + "\n")
                else:
                    fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                self.rows += 1
        self.files.append(path)

    def write_csv(self, day: date, header: list[str], rows: Iterable[list], bad_rows: int = 0, part: int = 1) -> None:
        """``bad_rows``: how many of ``rows`` were broken on purpose (counted for the manifest)."""
        path = self.path(day, "csv", part)
        with _atomic_text(path, compress=False) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                self.rows += 1
        self.bad_rows += bad_rows
        self.files.append(path)

    def summary(self) -> dict[str, int]:
        return {"files": len(self.files), "rows": self.rows, "bad_rows": self.bad_rows}
