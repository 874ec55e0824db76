"""The library alternative: Splink 5 (Spark backend) on the same records, scored on the same truth.

Evaluation only (the platform does not depend on Splink). The identity benchmark runs this
in its own process with Splink on the path (benchmark.splink_path):

    ./cdp bench-identity --dataset febrl3          # ours, then Splink
    ./cdp bench-identity --dataset sample --customers 10000

Splink gets the platform's standardised records (records.py for a CSV, persons.py for the
sample) and the configuration its documentation recommends for person data: NameComparison
on first and last names with term frequencies, DateOfBirthComparison, EmailComparison,
exact phone, Jaro-Winkler street and city, exact postcode with term frequencies, exact strong
identifiers; blocking rules like ours (names, names + birth date or postcode, birth date +
postcode or street, street + postcode, email, phone); the prior from deterministic rules
(recall 0.9, as Splink's FEBRL examples), u by random sampling, m by EM over two blocking
rules; links and clusters at match probability 0.5, the threshold our engine uses.
"""

from __future__ import annotations

import argparse
import logging
import time

from pyspark.sql import functions as F

from bench.identity import truth_of
from spark_jobs.identity.datasets import FEBRL, truth_frame, write_febrl
from spark_jobs.identity.persons import SOURCES, person_records
from spark_jobs.identity.probabilistic import DEFAULT_THRESHOLD
from spark_jobs.identity.scoring import score
from spark_jobs.reporting import configure_logging
from spark_jobs.settings import Settings

COLUMNS = ("first_name", "last_name", "birth_date", "email", "phone", "address_line", "city", "postcode")
IDENTIFIERS = ("email_hash", "crm_contact_id", "loyalty_card_id")


def splink_settings(present: set[str]):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons = {
        "first_name": cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        "last_name": cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
        "birth_date": cl.DateOfBirthComparison("birth_date", input_is_string=False),
        "email": cl.EmailComparison("email"),
        "phone": cl.ExactMatch("phone"),
        "address_line": cl.JaroWinklerAtThresholds("address_line", [0.9, 0.8]),
        "city": cl.JaroWinklerAtThresholds("city", [0.9]),
        "postcode": cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        **{k: cl.ExactMatch(k) for k in IDENTIFIERS},
    }
    rules = [
        ("first_name", "last_name"),
        ("last_name", "birth_date"),
        ("first_name", "birth_date"),
        ("first_name", "postcode"),
        ("last_name", "postcode"),
        ("birth_date", "postcode"),
        ("birth_date", "address_line"),
        ("address_line", "postcode"),
        ("email",),
        ("phone",),
        *[(k,) for k in IDENTIFIERS],
    ]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[c for name, c in comparisons.items() if name in present],
        blocking_rules_to_generate_predictions=[block_on(*r) for r in rules if set(r) <= present],
        retain_matching_columns=False,
    )


def _records(spark, args, home):
    if args.dataset:
        from spark_jobs.identity.__main__ import read_people
        from spark_jobs.identity.records import load_mapping, standard_records

        dataset = write_febrl(args.dataset, home / "bench" / args.dataset)
        records = standard_records(read_people(spark, dataset.people), load_mapping(dataset.mapping))
        return records.select("record_id", *COLUMNS), truth_frame(spark, dataset)
    folder = home / "bench" / f"identity-{args.customers}"
    warehouse = folder / "warehouse" / "bronze.db"
    if not warehouse.is_dir():
        raise SystemExit(f"{warehouse} not found: run ./cdp bench-identity --customers {args.customers} first")
    tables = {
        name: spark.read.format("delta").load(str(warehouse / name)) for name in SOURCES if (warehouse / name).is_dir()
    }
    records = person_records(tables).select(
        "record_id",
        *COLUMNS,
        F.coalesce("email_sha256", F.sha2("email", 256)).alias("email_hash"),
        "crm_contact_id",
        "loyalty_card_id",
    )
    return records, truth_of(spark, folder / "truth")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=FEBRL)
    parser.add_argument("--customers", type=int, default=10_000, help="the sample the identity benchmark made")
    args = parser.parse_args(argv)
    configure_logging(logging.WARNING)
    from splink import Linker, SparkAPI, block_on
    from splink.backends.spark import similarity_jar_location

    from devstack.memory import PeakMemorySampler
    from spark_jobs.spark import build_session, quiet, spark_conf

    settings = Settings.from_env()
    home = settings.home
    work = home / "bench" / "splink"
    delta_jars = spark_conf(settings).get("spark.jars")  # resolved Delta jars, when a run remembered them
    with PeakMemorySampler() as memory:
        spark = build_session(
            settings,
            "cdp-splink-comparison",
            overrides={
                "spark.sql.catalogImplementation": "in-memory",
                "spark.ui.enabled": "false",
                "spark.jars": ",".join(j for j in (delta_jars, similarity_jar_location()) if j),
                "spark.sql.warehouse.dir": (work / "warehouse").as_uri(),
            },
        )
        quiet(spark)
        spark.sparkContext.setCheckpointDir(str(work / "checkpoints"))
        started = time.monotonic()
        records, truth = _records(spark, args, home)
        records = records.cache()
        n_records = records.count()
        present = {
            c for c in records.columns if c != "record_id" and records.where(F.col(c).isNotNull()).limit(1).count()
        }
        linker = Linker(
            SparkAPI(spark_session=spark, break_lineage_method="checkpoint").register(records), splink_settings(present)
        )
        deterministic = [
            " and ".join(f"l.{c} = r.{c}" for c in rule)
            for rule in (
                ("first_name", "birth_date"),
                ("last_name", "birth_date"),
                ("first_name", "last_name"),
                ("email",),
            )
            if set(rule) <= present
        ]
        linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.9)
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
        trained = time.monotonic() - started
        predictions = linker.inference.predict(threshold_match_probability=DEFAULT_THRESHOLD)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, DEFAULT_THRESHOLD)
        predicted = (
            clusters.as_spark_dataframe()
            .select("record_id", F.col("cluster_id").cast("string").alias("customer_id"))
            .cache()
        )
        predicted.count()
        elapsed = time.monotonic() - started
        scores = score(predicted, truth)
        spark.stop()

    import splink

    print(
        f"\nSplink {splink.__version__} (Spark backend) on {args.dataset or f'sample-{args.customers}'}: "
        f"records {n_records}, threshold {DEFAULT_THRESHOLD}"
    )
    for name, value in scores.as_dict().items():
        print(f"    {name:<28}{value:.4f}" if isinstance(value, float) else f"    {name:<28}{value}")
    print(f"  training {trained:.1f} s, total {elapsed:.1f} s, peak memory {memory.peak_bytes / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
