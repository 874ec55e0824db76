"""``./cdp sql``: one query through the Spark service's JDBC endpoint (HiveServer2), as a BI tool
sends it. A Python Thrift client (PyHive), so no JVM starts and nothing but the result is printed.

Output: an aligned table (default; the first ``--limit`` rows, 20 unless told, then the row count),
``--format csv`` (a header line, then every row unless ``--limit`` is given) or ``--format json``
(one JSON object per line). The row count goes to stdout for a table and to stderr for CSV and
JSON, so a script can pipe the data.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

FORMATS = ("table", "csv", "json")
TABLE_LIMIT = 20  # rows a table shows unless --limit says otherwise
FETCH = 1000  # rows per round trip


def fetch(cursor, limit: int | None) -> tuple[list[tuple], int]:
    """(the first ``limit`` rows, or all, and the number of rows the query returned)."""
    rows: list[tuple] = []
    total = 0
    while batch := cursor.fetchmany(FETCH):
        total += len(batch)
        room = len(batch) if limit is None else max(limit - len(rows), 0)
        rows.extend(batch[:room])
    return rows, total


def text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: a float would round amounts
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def write_table(out: TextIO, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    cells = [[text(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out.write("\n".join([rule, line(columns), rule, *(line(r) for r in cells), rule]) + "\n")


def write_csv(out: TextIO, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else text(v) for v in row] for row in rows])


def write_json(out: TextIO, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    for row in rows:
        out.write(json.dumps({c: json_value(v) for c, v in zip(columns, row, strict=True)}) + "\n")


def count_line(shown: int, total: int) -> str:
    noun = "row" if total == 1 else "rows"
    if shown == total:
        return f"({total} {noun})"
    return f"({shown} of {total} {noun} shown; --limit N for more, --limit 0 for all)"


def run_query(host: str, port: int, user: str, query: str, limit: int | None) -> tuple[list[str], list[tuple], int]:
    """(column names, the first ``limit`` rows, the row count) of ``query`` on HiveServer2."""
    from pyhive import hive

    logging.getLogger("pyhive").setLevel(logging.WARNING)  # it logs every statement at INFO
    with hive.connect(host=host, port=port, username=user) as connection:
        cursor = connection.cursor()
        cursor.execute(query)
        if cursor.description is None:  # a statement without a result (insert, create ...)
            return [], [], 0
        columns = [d[0].split(".")[-1] for d in cursor.description]
        rows, total = fetch(cursor, limit)
    return columns, rows, total


def server_message(error: Exception) -> str:
    """The useful line of a HiveServer2 error (its status message), not the Thrift structure."""
    status = getattr(getattr(error, "args", [None])[0], "status", None)
    message = getattr(status, "errorMessage", None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


def main(host: str, port: int, user: str, query: str, output_format: str, limit: int | None) -> int:
    if limit is None:
        limit = TABLE_LIMIT if output_format == "table" else 0
    try:
        columns, rows, total = run_query(host, port, user, query, limit or None)
    except Exception as error:  # the server's message is what the user needs
        print(f"cdp sql: {server_message(error)}", file=sys.stderr)
        return 1
    if not columns:
        print("OK", file=sys.stderr)
        return 0
    {"table": write_table, "csv": write_csv, "json": write_json}[output_format](sys.stdout, columns, rows)
    print(count_line(len(rows), total), file=sys.stdout if output_format == "table" else sys.stderr)
    return 0
