"""Ingestion benchmark: the contract-checked job against a plain Spark read-and-append to Delta.

Generates N customers with all their sources, ingests every contract with
:func:`ingest_contract` (read as text, checks, quarantine, MERGE/CDC, logs), then loads the
same files with ``spark.read...write.format("delta").mode("append")`` and no checks. The
ratio of the two is the cost of the safety. Prints rows/s per source and in total, the
ratio, the peak memory of this process and its JVM, and the bronze size on disk.

A third run ingests the same landing zone with malformed files added (1 % of the files, and
at least one of each kind: a truncated gzip, random bytes, rows cut in half, text that is not
UTF-8) into an empty bronze: the clean files' throughput there against the all-clean run is
the cost of bad deliveries to everyone else.

    ./cdp bench-ingest --customers 100000          (or python -m bench.ingest)

It runs in its own folder (``$CDP_HOME/bench/ingest-<N>``) with its own in-memory catalog, so
it neither touches nor locks the main lakehouse.
"""

from __future__ import annotations

import gzip
import math
import random
import shutil
import time
from pathlib import Path

from bench.common import bench_main
from devstack.sample.generate import generate
from spark_jobs.ingest.bronze import ingest_contract, pending_files
from spark_jobs.ingest.contracts import Contract, load_contracts
from spark_jobs.settings import Settings


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plain_append(spark, contract: Contract, landing: Path, target: Path) -> int:
    """What a pipeline without contracts does: read with Spark's inference-free defaults, append."""
    source = str(landing / contract.landing)
    reader = spark.read.option("recursiveFileLookup", True)
    df = reader.option("header", True).csv(source) if contract.format == "csv" else reader.json(source)
    df.write.format("delta").mode("append").save(str(target / contract.name))
    return spark.read.format("delta").load(str(target / contract.name)).count()


MALFORMED_KINDS = ("truncated gzip", "random bytes", "rows cut in half", "not UTF-8")


def add_malformed_files(landing: Path, share: float, seed: int) -> list[tuple[str, str]]:
    """Beside the clean files, add ``share`` of their number (at least one of each kind) as
    malformed copies of clean files, under new names. Returns (kind, path) per file."""
    rng = random.Random(seed)
    clean = sorted(p for p in landing.rglob("*") if p.is_file())
    wanted = max(len(MALFORMED_KINDS), math.ceil(share * len(clean)))
    added = []
    for i, source in enumerate(rng.sample(clean, min(wanted, len(clean)))):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        data = source.read_bytes()
        if source.suffix == ".gz":
            data = gzip.decompress(data)
        target = source.with_name(f"malformed-{i}-{source.name.removesuffix('.gz')}")
        if kind == "truncated gzip":
            packed = gzip.compress(data)
            target = target.with_name(target.name + ".gz")
            target.write_bytes(packed[: len(packed) // 2])
        elif kind == "random bytes":
            target.write_bytes(rng.randbytes(min(len(data), 1 << 20)))
        elif kind == "rows cut in half":
            lines = data.split(b"\n")
            target.write_bytes(b"\n".join(line[: len(line) // 2] if n % 2 else line for n, line in enumerate(lines)))
        else:  # a Latin-1 letter in the first rows (the header stays readable)
            head, _, rows = data.partition(b"\n")
            target.write_bytes(head + b"\n" + rows.replace(b"a", b"\xe4", 50))
        added.append((kind, str(target.relative_to(landing))))
    return added


def checked_ingestion(spark, landing: Path) -> dict[str, tuple[int, int, float]]:
    """Every contract through the job, as the job runs them; (received, rows of loaded files
    that are not malformed copies, seconds) per source. The first source's time includes
    listing the whole landing zone."""
    contracts = load_contracts()
    measured = {}
    t0 = time.monotonic()
    pending = pending_files(spark, landing.as_uri(), list(contracts.values()))
    for name, contract in contracts.items():
        stats = ingest_contract(spark, contract, landing.as_uri(), "bench", pending=pending[name])
        assert stats.received == stats.accepted + stats.quarantined
        measured[name] = (stats.received, time.monotonic() - t0)
        t0 = time.monotonic()
    clean_rows = {
        r.entity: r.rows
        for r in spark.sql(
            "SELECT entity, sum(received) AS rows FROM bronze._processed_files "
            "WHERE status = 'loaded' AND landing_path NOT LIKE '%/malformed-%' GROUP BY entity"
        ).collect()
    }
    return {name: (received, clean_rows.get(name, 0), seconds) for name, (received, seconds) in measured.items()}


def warm_up(spark, folder: Path) -> None:
    """Load the Delta and JSON/CSV code paths once, so the first measured source does not pay
    the JVM's warm-up for both ingestion styles."""
    from delta.tables import DeltaTable

    path = str(folder / "warm-up")
    spark.range(10_000).selectExpr("id", "cast(id as string) as v").write.format("delta").save(path)
    updates = spark.range(5_000, 15_000).selectExpr("id", "cast(id * 2 as string) as v")
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(updates.alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    spark.read.json(
        spark.range(100).selectExpr("to_json(named_struct('id', id)) as value").rdd.map(lambda r: r[0])
    ).count()


def run(customers: int, seed: int, days: int, home: Path) -> int:
    from devstack.memory import PeakMemorySampler
    from spark_jobs.spark import build_session, quiet, table_names

    folder = home / "bench" / f"ingest-{customers}"
    shutil.rmtree(folder, ignore_errors=True)
    landing, warehouse = folder / "landing", folder / "warehouse"

    started = time.monotonic()
    zone = generate(landing, folder / "truth", customers, seed, days)
    generate_seconds = time.monotonic() - started
    landing_bytes = _folder_bytes(landing)

    settings = Settings.from_env({"CDP_HOME": str(home)})
    with PeakMemorySampler() as memory:
        spark = build_session(
            settings,
            "cdp-bench-ingest",
            overrides={
                "spark.sql.catalogImplementation": "in-memory",
                "spark.sql.warehouse.dir": warehouse.as_uri(),
                "spark.ui.enabled": "false",
            },
        )
        quiet(spark)
        spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
        warm_up(spark, folder)
        contracts = load_contracts()
        checked = {
            name: (received, seconds) for name, (received, _, seconds) in checked_ingestion(spark, landing).items()
        }
        checked_total = sum(s for _, s in checked.values())
        plain: dict[str, tuple[int, float]] = {}
        for name, contract in contracts.items():
            t0 = time.monotonic()
            rows = plain_append(spark, contract, landing, folder / "plain")
            plain[name] = (rows, time.monotonic() - t0)
        plain_total = sum(s for _, s in plain.values())

        bronze_bytes = _folder_bytes(warehouse / "bronze.db")
        malformed_landing = folder / "landing-malformed"
        shutil.copytree(landing, malformed_landing)
        malformed = add_malformed_files(malformed_landing, 0.01, seed)
        for table in table_names(spark, "bronze"):
            spark.sql(f"DROP TABLE bronze.{table}")
        with_bad = checked_ingestion(spark, malformed_landing)
        failed = spark.table("bronze._processed_files").where("status = 'failed'").count()
        quarantined_bad = spark.table("bronze._quarantine").where("landing_path LIKE '%/malformed-%'").count()
        # the all-clean run again, as warm as the JVM was for the malformed one
        for table in table_names(spark, "bronze"):
            spark.sql(f"DROP TABLE bronze.{table}")
        warm_clean = checked_ingestion(spark, landing)
        spark.stop()

    rows_total = sum(r for r, _ in checked.values())
    print(
        f"\ningestion benchmark: customers={customers} days={days} seed={seed} "
        f"landing={landing_bytes / 2**20:.0f} MiB generated in {generate_seconds:.0f}s"
    )
    print(f"  {'source':<26}{'rows':>10}{'checked s':>11}{'rows/s':>10}{'plain s':>9}{'rows/s':>10}{'ratio':>7}")
    for name in contracts:
        rows, seconds = checked[name]
        plain_rows, plain_seconds = plain[name]
        print(
            f"  {name:<26}{rows:>10}{seconds:>11.1f}{rows / seconds:>10.0f}{plain_seconds:>9.1f}"
            f"{plain_rows / plain_seconds:>10.0f}{seconds / plain_seconds:>7.2f}"
        )
    print(
        f"  {'total':<26}{rows_total:>10}{checked_total:>11.1f}{rows_total / checked_total:>10.0f}"
        f"{plain_total:>9.1f}{rows_total / plain_total:>10.0f}{checked_total / plain_total:>7.2f}"
    )
    clean_files = sum(1 for p in landing.rglob("*") if p.is_file())
    bad_total = sum(seconds for _, _, seconds in with_bad.values())
    clean_rows_with_bad = sum(rows for _, rows, _ in with_bad.values())
    print(
        f"  with {len(malformed)} malformed file(s) added to {clean_files} "
        f"({', '.join(sorted({k for k, _ in malformed}))}): {bad_total:.1f}s, "
        f"{failed} file(s) failed, {quarantined_bad} of their rows quarantined"
    )
    warm_total = sum(seconds for _, _, seconds in warm_clean.values())
    print(
        f"  clean rows/s beside malformed files {clean_rows_with_bad / bad_total:.0f}, all clean again (as warm) "
        f"{rows_total / warm_total:.0f} in {warm_total:.1f}s: "
        f"{clean_rows_with_bad / bad_total / (rows_total / warm_total):.2f}x (clean rows {clean_rows_with_bad})"
    )
    print(f"  peak resident memory (python + JVM): {memory.peak_bytes / 2**30:.2f} GiB")
    print(f"  bronze on disk: {bronze_bytes / 2**20:.0f} MiB (landing {landing_bytes / 2**20:.0f} MiB)")
    print(f"  sources generated: {len(zone.sources)}, people {zone.people}, households {zone.households}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main(run, __doc__.splitlines()[0], 100_000, argv)


if __name__ == "__main__":
    raise SystemExit(main())
