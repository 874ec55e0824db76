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
import shutil
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
        self._by_day: dict[date, list[int]] = {}  # day -> [files, rows, bad rows]

    def _count(self, day: date, rows: int, bad_rows: int) -> None:
        counts = self._by_day.setdefault(day, [0, 0, 0])
        counts[0] += 1
        counts[1] += rows
        counts[2] += bad_rows

    def path(self, day: date, ext: str, part: int = 1) -> Path:
        return self.folder / day.isoformat() / f"{self.stem}_{day:%Y%m%d}_{part:03d}.{ext}"

    def write_jsonl(self, day: date, records: Iterable[dict | str], compress: bool = False, part: int = 1) -> None:
        """Records are dicts, or already-broken lines (str) injected on purpose."""
        path = self.path(day, "jsonl.gz" if compress else "jsonl", part)
        rows_before, bad_before = self.rows, self.bad_rows
        with _atomic_text(path, compress) as fh:
            for record in records:
                if isinstance(record, str):
                    self.bad_rows += 1
                    fh.write(record + "\n")
                else:
                    fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                self.rows += 1
        self.files.append(path)
        self._count(day, self.rows - rows_before, self.bad_rows - bad_before)

    def write_csv(self, day: date, header: list[str], rows: Iterable[list], bad_rows: int = 0, part: int = 1) -> None:
        """``bad_rows``: how many of ``rows`` were broken on purpose (counted for the manifest)."""
        path = self.path(day, "csv", part)
        rows_before = self.rows
        with _atomic_text(path, compress=False) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                self.rows += 1
        self.bad_rows += bad_rows
        self.files.append(path)
        self._count(day, self.rows - rows_before, bad_rows)

    def summary(self, through: date | None = None) -> dict[str, int]:
        """Files, rows and bad rows delivered (up to and including the day ``through``)."""
        if through is None:
            return {"files": len(self.files), "rows": self.rows, "bad_rows": self.bad_rows}
        delivered = [counts for day, counts in self._by_day.items() if day <= through]
        return {
            "files": sum(c[0] for c in delivered),
            "rows": sum(c[1] for c in delivered),
            "bad_rows": sum(c[2] for c in delivered),
        }

    def withhold_after(self, day: date) -> None:
        """Remove the folders of the days after ``day``: deliveries that have not arrived yet."""
        for later in [d for d in self._by_day if d > day]:
            shutil.rmtree(self.folder / later.isoformat(), ignore_errors=True)
