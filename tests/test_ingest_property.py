"""Random deliveries through the ingestion job: random bytes, random CSV and JSON shapes, random
file names. Whatever arrives, the job does not crash, every file is recorded once, and
received = accepted + quarantined for every file."""

from __future__ import annotations

import gzip
import json
import shutil
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_jobs.ingest import bronze
from spark_jobs.ingest.bronze import BatchStats
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.spark import table_names

CSV_SOURCE, JSON_SOURCE = get_contract("postal_codes"), get_contract("web_events")
CSV_COLUMNS = [c.file_name for c in CSV_SOURCE.columns]
JSON_KEYS = [c.file_name for c in JSON_SOURCE.columns]

# Any character a file system allows in a name, weighted towards those that broke paths before.
names = st.text(
    st.one_of(
        st.sampled_from(" %#?[]{}*+:;=,'\"&é€\\"), st.characters(exclude_characters="/\x00", exclude_categories=("Cs",))
    ),
    min_size=1,
    max_size=24,
).filter(lambda n: n not in (".", "..") and not n.startswith((".", "_")) and len(n.encode()) < 200)
field = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", '"', '""', "a,b", "x\ny", "NaN", "1e309", "GB", "2026-01-02T10:00:00Z", "9999-12-31", " page_view"]
    ),
)


@st.composite
def csv_file(draw) -> bytes:
    header = draw(
        st.lists(st.one_of(st.sampled_from(CSV_COLUMNS), st.text(min_size=1, max_size=8)), min_size=1, max_size=9)
    )
    rows = draw(st.lists(st.lists(field, min_size=0, max_size=len(header) + 2), max_size=6))

    def line(values):
        return ",".join('"' + v.replace('"', '""') + '"' if draw(st.booleans()) else v for v in values)

    text = "\n".join([line(header), *(line(r) for r in rows)]) + "\n"
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), errors="replace")


@st.composite
def json_file(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        keys = draw(st.lists(st.one_of(st.sampled_from(JSON_KEYS), st.text(max_size=6)), max_size=8))
        values = [draw(st.one_of(field, st.integers(), st.none(), st.floats())) for _ in keys]
        body = ", ".join(
            f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=draw(st.booleans()))}"
            for k, v in zip(keys, values, strict=True)
        )  # written by hand: keys may repeat
        lines.append(draw(st.sampled_from(["{" + body + "}", "{" + body, body, ""])))
    return "\n".join(lines).encode(draw(st.sampled_from(["utf-8", "latin-1"])), errors="replace")


@st.composite
def delivery(draw) -> tuple[str, bytes]:
    content = draw(st.one_of(csv_file(), json_file(), st.binary(max_size=300)))
    if draw(st.booleans()):
        packed = gzip.compress(content)
        content = packed[: draw(st.integers(1, len(packed)))]  # often a truncated gzip
        return draw(names) + ".gz", content
    return draw(names), content


runs = count()


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(delivery(), min_size=1, max_size=5), st.lists(delivery(), min_size=0, max_size=3))
def test_any_delivery_is_accounted_for(fresh_database, tmp_path, csv_deliveries, json_deliveries):
    spark = fresh_database
    landing = tmp_path / f"example-{next(runs)}" / "landing"
    written = set()
    for contract, files in ((CSV_SOURCE, csv_deliveries), (JSON_SOURCE, json_deliveries)):
        folder = landing / contract.landing / "2026-01-02"
        folder.mkdir(parents=True)
        for name, content in files:
            (folder / name).write_bytes(content)
            written.add(f"{contract.landing}/2026-01-02/{name}")
    for table in table_names(spark, "bronze"):
        spark.sql(f"DROP TABLE IF EXISTS bronze.{table}")

    results = bronze.ingest_sources(spark, [CSV_SOURCE, JSON_SOURCE], landing.as_uri(), "b1")

    assert all(isinstance(r, BatchStats) for r in results.values()), results  # every failure pinned to a file
    files = spark.table(bronze.PROCESSED_FILES_TABLE).collect()
    assert sorted(f.landing_path for f in files) == sorted(written)  # each file recorded, once
    for f in files:
        assert f.received == f.accepted + f.quarantined, f
        assert f.status == "loaded" or (f.received == 0 and f.error), f
    quarantined = sum(f.quarantined for f in files)
    stored = spark.table(bronze.QUARANTINE_TABLE).count() if quarantined else 0
    assert stored == quarantined
    again = bronze.ingest_sources(spark, [CSV_SOURCE, JSON_SOURCE], landing.as_uri(), "b2")
    assert [(r.files, r.failed_files) for r in again.values()] == [(0, 0), (0, 0)]
    shutil.rmtree(landing.parent)
