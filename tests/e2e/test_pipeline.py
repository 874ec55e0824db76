"""The whole Dagster job on a small generated data set, as `./cdp run` runs it.

The expected gold values are computed here in plain Python from the landing files alone,
independently of the pipeline's Spark and SQL code; the expected ingestion counts come from
the generator's manifest (rows written and rows broken on purpose, per source).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from conftest import png_of, report_failure
from dagster import AssetCheckKey, AssetKey, AssetSelection

from devstack.runner import SAMPLE_DAYS, local_stack, run_main_job, service_beeline
from devstack.sample.generate import delivery_days
from spark_jobs.activation.normalise import normalise_email, sha256_hex
from spark_jobs.service import Service, spark_home
from spark_jobs.settings import REPO_ROOT, Settings

# One xdist worker runs the whole module: its tests share the runs of its module-scoped fixtures.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

CUSTOMERS, SEED = 60, 11
# Every run of this module is a client of one Spark service for its home, on free ports.
SERVICE_PORTS = {"CDP_CONNECT_PORT": "0", "CDP_SQL_PORT": "0"}
DBT_DIR = Path(__file__).parents[2] / "dbt"


def dbt_manifest(home: Path) -> dict:
    """The manifest of the home's newest dbt invocation (each run's dbt steps write their own
    target folder). Not dbt/target's: every run parses the project into it first, and another
    test worker's run rewrote it while this one read it (a cut JSON file)."""
    runs = Settings.from_env({"CDP_HOME": str(home)}).dbt_runs_dir
    manifests = sorted(runs.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    assert manifests, f"no dbt invocation under {runs}"
    return json.loads(manifests[-1].read_text())


def _ts(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def current_orders(landing: Path) -> list[dict]:
    """The newest version (updated_at, then later file) of every parseable order."""
    latest: dict[str, tuple] = {}
    for path in sorted((landing / "shop" / "orders").rglob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            try:
                order = json.loads(line)
            except json.JSONDecodeError:
                continue
            key = (_ts(order["updated_at"]), path.as_posix())
            if order["order_id"] not in latest or key > latest[order["order_id"]][0]:
                latest[order["order_id"]] = (key, order)
    return [order for _, order in latest.values()]


REPORTING_CURRENCY = "EUR"  # the default
CENT, RATE_DIGITS = Decimal("0.01"), Decimal("0.00000001")


def euro_rates(landing: Path) -> dict[tuple[str, date], Decimal]:
    """(currency, day) -> units of that currency per euro, as published (valid rows only)."""
    rates = {}
    for path in sorted((landing / "reference" / "exchange_rates").rglob("*.csv")):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            try:
                rates[(row["quote_currency"], date.fromisoformat(row["rate_date"]))] = Decimal(row["rate"])
            except ArithmeticError:
                continue  # 'N/A': quarantined by the contract
    return rates


def to_reporting(amount: str | float, currency: str, day: date, rates: dict[tuple[str, date], Decimal]) -> Decimal:
    """The documented conversion: the rate published on the day or the last business day within
    7 days before, crossed through the euro, rounded to 8 decimals; the amount rounded half up."""
    value = Decimal(str(amount))
    if currency == REPORTING_CURRENCY:
        return value.quantize(CENT, ROUND_HALF_UP)
    published = max(d for (c, d) in rates if c == currency and day - timedelta(days=7) <= d <= day)
    per_euro = lambda code: Decimal(1) if code == "EUR" else rates[(code, published)]  # noqa: E731
    rate = (per_euro(REPORTING_CURRENCY) / per_euro(currency)).quantize(RATE_DIGITS, ROUND_HALF_UP)
    return (value * rate).quantize(CENT, ROUND_HALF_UP)


def expected_customers(landing: Path, identity: dict[tuple[str, str], str]) -> dict[str, tuple[int, Decimal]]:
    """customer_id -> (completed orders, spend in the reporting currency): every customer of the
    identity map, with the orders of the raw files (upsert semantics) attributed by the map."""
    orders, spend, rates = defaultdict(int), defaultdict(Decimal), euro_rates(landing)
    for customer in identity.values():
        orders[customer] += 0
    for order in current_orders(landing):
        customer = identity[("shop_orders", order["order_id"])]
        if order["status"] == "completed":
            orders[customer] += 1
            spend[customer] += to_reporting(
                order["total_amount"], order["currency"], _ts(order["order_ts"]).date(), rates
            )
    return {c: (orders[c], spend[c].quantize(CENT)) for c in orders}


def store_purchases(landing: Path) -> list[dict]:
    """Every parseable POS transaction of the landing files."""
    rows = []
    for path in sorted((landing / "store" / "transactions").rglob("*.csv")):
        rows += [r for r in csv.DictReader(path.open(encoding="utf-8")) if not r["transaction_id"].startswith("BAD")]
    return rows


def truth_pairs(truth: Path, identity: dict[tuple[str, str], str]) -> tuple[int, int, int, int]:
    """(true pairs, predicted pairs, correct pairs, pairs of two people of one household merged)
    over the records the generator recorded a person for."""
    people = {r["person_id"]: r["household_id"] for r in csv.DictReader((truth / "people.csv").open())}
    records = [
        (identity[(r["source_table"], r["source_record_id"])], r["person_id"])
        for r in csv.DictReader((truth / "source_records.csv").open())
        if (r["source_table"], r["source_record_id"]) in identity
    ]
    pairs = lambda counts: sum(n * (n - 1) // 2 for n in counts.values())  # noqa: E731
    by = lambda key: Counter(key(c, p) for c, p in records)  # noqa: E731
    household_cells = pairs(by(lambda c, p: (c, people[p])))
    correct = pairs(by(lambda c, p: (c, p)))
    return pairs(by(lambda c, p: p)), pairs(by(lambda c, p: c)), correct, household_cells - correct


def run_pipeline(home: Path, asset_selection=None, asset_check_selection=None, blocked_on_purpose=False):
    """Run the main job with its own CDP_HOME, local S3 and local destination APIs; return
    (result, the rows of the repeat-buyers files this run added, or None). A failed run is
    reported at the end of the output, unless the test made it fail (``blocked_on_purpose``)."""
    environ = {
        **os.environ,
        "CDP_HOME": str(home),
        "CDP_LOCAL_S3": "true",
        "CDP_LOCAL_S3_PORT": "0",
        "CDP_SPARK_SHUFFLE_PARTITIONS": "2",
        **SERVICE_PORTS,
    }  # small data: 2 tasks per shuffle, as in the unit tests
    with local_stack(environ) as settings:
        result = run_main_job(CUSTOMERS, SEED, asset_selection, asset_check_selection=asset_check_selection)
        if not result.success and not blocked_on_purpose:
            report_failure(f"pipeline run in {home.name}", failed_steps(result))
        import boto3

        client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
        run_ids = [
            r["run_id"]
            for r in sync_log_rows(home)
            if r["sync_name"] == "s3_repeat_buyers" and r["status"] == "succeeded" and r["sent"] > 0
        ]
        added = None
        if run_ids:  # the newest run that sent something: its manifest lists its files
            prefix = f"{settings.export_prefix.strip('/')}/ad_audiences/s3_repeat_buyers/{run_ids[-1]}"
            read = lambda key: client.get_object(Bucket=settings.export_bucket, Key=key)["Body"].read().decode()  # noqa: E731
            manifest = json.loads(read(f"{prefix}/manifest.json"))
            added = [
                row
                for f in manifest["files"]
                if f["op"] == "add"
                for row in csv.DictReader(io.StringIO(read(f["key"])))
            ]
    return result, added


def sync_log_rows(home: Path) -> list[dict]:
    """activation.sync_log in run order, read with delta-rs (no Spark session needed here)."""
    from deltalake import DeltaTable

    path = home / "lakehouse" / "activation.db" / "sync_log"
    if not (path / "_delta_log").is_dir():  # no sync ran (yet)
        return []
    return sorted(DeltaTable(str(path)).to_pyarrow_table().to_pylist(), key=lambda r: r["started_at"])


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def failed_steps(result) -> str:
    """Each failed step with the end of its error, for an assertion message: a failed run
    otherwise says only ``assert False`` and the step's log is in a temporary Dagster home."""
    reports = []
    for event in result.get_step_failure_events():
        reports.append(f"--- {event.step_key}:\n{error_report(event.step_failure_data.error)}")
    return "\n".join(reports) or "no step failed (a resource or the run itself did)"


def error_report(error) -> str:
    """The messages of an error and of its causes (dbt's errors are in the message), then the
    end of the innermost stack: the message first, since CI shows only part of the output."""
    if error is None:
        return "(no error recorded)"
    chain, seen = [], error
    while seen is not None:
        chain.append(seen)
        seen = seen.cause or seen.context
    messages = "\ncaused by ".join(e.message.strip()[:2500] for e in chain)
    return f"{messages}\n  ...\n{''.join(chain[-1].stack)[-800:]}"


def checks_but_dbt_tests() -> list[AssetCheckKey]:
    """Every check of the main job except dbt's tests (161 queries, half the dbt step): for the
    runs that test something else (the rerun after an erasure, the run on S3). The first run
    runs them all; ingestion's, identity's, the scores' and the GE checks that gate the
    exports run here too."""
    from dagster_project.defs.dbt.assets import DBT_ASSETS
    from devstack.definitions import defs

    dbt_tests = {key for assets in DBT_ASSETS for key in assets.check_keys}
    return sorted(set(defs.resolve_asset_graph().asset_check_keys) - dbt_tests)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("e2e-home")
    yield home
    Service(Settings.from_env({"CDP_HOME": str(home)})).stop()


def service_of(home: Path) -> Service:
    service = Service(Settings.from_env({"CDP_HOME": str(home)})).adopt_running()
    assert service.is_up(), "the runs of this module leave their Spark service running"
    return service


@pytest.fixture(scope="module")
def first_run(home):
    return run_pipeline(home)


def test_main_job_builds_gold_and_exports_the_audience(first_run, home, spark):
    result, added = first_run
    assert result.success, failed_steps(result)
    assert {
        "bronze/crm_contacts",
        "bronze/shop_orders",
        "silver/identity_map",
        "gold/dim_customers",
        "gold/sync_s3__repeat_buyers",
        "activation/s3_repeat_buyers",
    } <= materialized(result)
    checks = {(c.asset_check_key.to_user_string(), c.passed) for c in result.get_asset_check_evaluations()}
    assert {
        (f"gold/{table}:great_expectations", True)
        for table in ("dim_customers", "fct_orders", "fct_customer_touchpoints")
    } <= checks

    # Read the Delta tables by path with another Spark session (no shared metastore needed).
    identity = {
        (r.source_table, r.source_record_id): r.customer_id
        for r in spark.read.format("delta").load(str(home / "lakehouse" / "silver.db" / "identity_map")).collect()
    }
    expected = expected_customers(home / "landing", identity)
    gold = spark.read.format("delta").load(str(home / "lakehouse" / "gold.db" / "dim_customers"))
    actual = {r.customer_id: (r.order_count, r.total_spend) for r in gold.collect()}
    assert gold.count() == len(actual), "one row per customer"
    assert actual == expected

    # The repeat-buyers files: the hashed emails of customers with two or more completed orders
    # who granted ad targeting, once each, and no clear-text address.
    emails = {r.customer_id: r.email for r in gold.collect()}
    consent = spark.read.format("delta").load(str(home / "lakehouse" / "gold.db" / "customer_consent"))
    targeted = {r.customer_id for r in consent.where("purpose = 'ad_targeting' and is_granted").collect()}
    expected_audience = {c for c, (orders, _) in expected.items() if orders >= 2 and emails[c] and c in targeted}
    assert expected_audience and len(expected_audience) < len([c for c, (o, _) in expected.items() if o >= 2])
    assert sorted(r["Email"] for r in added) == sorted(
        sha256_hex(normalise_email(emails[c])) for c in expected_audience
    )
    assert not any("@" in value for r in added for value in r.values())


def test_the_run_is_listed_under_its_job_and_code_location(first_run, home):
    """The Dagster UI of `./cdp dev` (code location `devstack.definitions`, one repository) lists a
    job's runs by job name and the repository label tag: the run of `./cdp run` must carry both,
    or the job page and the timeline say "no runs"."""
    import dagster as dg
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    result, _ = first_run
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        listed = instance.get_runs(
            dg.RunsFilter(job_name="cdp_main", tags={REPOSITORY_LABEL_TAG: "__repository__@devstack.definitions"})
        )
        assert result.run_id in {run.run_id for run in listed}
        run = instance.get_run_by_id(result.run_id)
    assert run.remote_job_origin.location_name == "devstack.definitions"
    assert run.status == dg.DagsterRunStatus.SUCCESS

    # The sample is too small to evaluate a churn model: the check says so, as a pass, not a red
    # failure of a successful run; a real verdict would be a warning, never an error.
    evaluations = result.get_asset_check_evaluations()
    (churn,) = [c for c in evaluations if c.asset_check_key.name == "churn_model_beats_recency"]
    assert churn.passed and churn.severity == dg.AssetCheckSeverity.WARN
    assert churn.metadata["outcome"].value == "not enough data"


CHARTS = {
    "silver/identity_map": ["chart_match_weights", "chart_cluster_sizes", "chart_links_by_rule"],
    "bronze/crm_contacts": ["chart_deliveries"],
    "bronze/web_events": ["chart_deliveries"],
    "gold/customer_segment_history": ["chart_segment_members"],
    "gold/fct_journey_funnel": ["chart_funnel"],
}


def test_assets_carry_their_charts_row_counts_and_typed_columns(first_run, home, spark):
    """What the UI shows on an asset's page: the charts are valid PNGs; every dbt table's row
    count is the table's and its columns are the table's, with Spark's types."""
    result, _ = first_run
    metadata = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    for asset, charts in CHARTS.items():
        for name in charts:
            png_of(metadata[asset][name].value)
    # The sample has no valid survey response (see the reconciliation test): no CX chart to draw.
    assert not [key for key in metadata["gold/fct_cx_metrics"] if key.startswith("chart_")]

    models = [n for n in dbt_manifest(home)["nodes"].values() if n["resource_type"] == "model"]
    tables = [n for n in models if n["config"]["materialized"] != "view"]
    assert len(tables) >= 20
    for node in tables:
        asset = f"{node['schema']}/{node['name']}"
        table = spark.read.format("delta").load(str(home / "lakehouse" / f"{node['schema']}.db" / node["name"]))
        assert metadata[asset]["dagster/row_count"].value == table.count(), asset
        columns = metadata[asset]["dagster/column_schema"].value.columns
        assert [(c.name, c.type) for c in columns] == [(f.name, f.dataType.simpleString()) for f in table.schema], asset
    views = [n for n in models if n["config"]["materialized"] == "view"]
    for node in views:  # a view is not counted (that would run its query), but its columns are typed
        columns = metadata[f"{node['schema']}/{node['name']}"]["dagster/column_schema"].value.columns
        assert columns and all(c.type for c in columns), node["name"]


def test_anonymous_store_purchases_stay_anonymous_and_amounts_are_in_one_currency(first_run, home, spark):
    """A store purchase without a loyalty card is no customer: not in the identity map, null in
    fct_orders, absent from every customer-level table. Every amount in fct_orders is the paid
    amount at its day's rate (recomputed here from the landing files)."""
    lakehouse = home / "lakehouse"
    table = lambda schema, name: spark.read.format("delta").load(str(lakehouse / f"{schema}.db" / name))  # noqa: E731
    pos = store_purchases(home / "landing")
    cardless = {r["transaction_id"] for r in pos if not r["loyalty_card_id"].strip()}
    assert cardless, "the sample has cardless store purchases"
    mapped = {
        r.source_record_id for r in table("silver", "identity_map").where("source_table = 'pos_transactions'").collect()
    }
    assert mapped == {r["transaction_id"] for r in pos} - cardless

    orders = {r.order_id: r for r in table("gold", "fct_orders").collect()}
    assert {o for o in cardless if orders[o].customer_id is not None} == set()
    customers = {r.customer_id for r in table("gold", "dim_customers").collect()}
    assert customers == set(table("silver", "identity_map").select("customer_id").distinct().toPandas()["customer_id"])
    for name in ("customer_traits", "customer_segments", "customer_next_best_action"):
        assert {r.customer_id for r in table("gold", name).select("customer_id").collect()} <= customers, name
    traits = table("gold", "customer_traits")
    assert traits.count() == len(customers)

    rates = euro_rates(home / "landing")
    paid = {r["transaction_id"]: (r["total_amount"], r["currency"], _ts(r["transaction_ts"]).date()) for r in pos}
    paid.update(
        {
            o["order_id"]: (o["total_amount"], o["currency"], _ts(o["order_ts"]).date())
            for o in current_orders(home / "landing")
        }
    )
    assert {o: (r.original_currency, r.reporting_currency, r.total_amount) for o, r in orders.items()} == {
        o: (currency, REPORTING_CURRENCY, to_reporting(amount, currency, day, rates))
        for o, (amount, currency, day) in paid.items()
    }
    assert {r.original_currency for r in orders.values()} >= {"GBP", "EUR", "USD"}
    # The RFM population is every customer with a completed purchase, no more.
    buyers = {r.customer_id for r in orders.values() if r.status == "completed" and r.customer_id}
    assert {r.customer_id for r in traits.where("monetary_score is not null").collect()} == buyers


SYNCS = [
    f"activation/{name}"
    for name in (
        "crm_customers",
        "email_subscribers",
        "ads_high_value_customers",
        "webhook_next_best_actions",
        "s3_repeat_buyers",
    )
]


def test_every_sync_sends_its_eligible_audience_and_reconciles(first_run, home, spark):
    """What the local CRM, email platform and webhook hold after the first run (their state is
    saved under CDP_HOME/mock-apis) is exactly each sync model's eligible rows."""
    result, _ = first_run
    assert set(SYNCS) <= materialized(result)
    gold = lambda table: spark.read.format("delta").load(str(home / "lakehouse" / "gold.db" / table))  # noqa: E731
    held = json.loads((home / "mock-apis" / "state.json").read_text())

    crm = {r.customer_id for r in gold("sync_crm__customers").collect()}
    assert set(held["crm"]) == crm and len(crm) > 0
    eligible = gold("sync_email__subscribers").where("suppression_reason is null").collect()
    assert {m["email_address"] for m in held["esp"].values()} == {r.email for r in eligible}
    # Next best actions serve personalisation: whoever withdrew it is not sent.
    consent = gold("customer_consent")
    assert consent.count() == 8 * gold("dim_customers").count()  # every customer x purpose
    personalised = {r.customer_id for r in consent.where("purpose = 'personalisation' and is_granted").collect()}
    actions = {r.customer_id: r.next_best_action for r in gold("sync_webhook__next_best_actions").collect()}
    sent_actions = {e["key"]: e["data"]["action"] for e in held["webhook"].values()}
    assert sent_actions == {c: a for c, a in actions.items() if c in personalised}
    assert sent_actions

    log = spark.read.format("delta").load(str(home / "lakehouse" / "activation.db" / "sync_log")).collect()
    assert {r.sync_name for r in log} == {key.removeprefix("activation/") for key in SYNCS}
    for row in log:
        assert (row.status, row.failed, row.planned) == ("succeeded", 0, row.sent + row.skipped), row.sync_name
    email = next(r for r in log if r.sync_name == "email_subscribers")
    assert email.sent == len(eligible) and email.skipped == gold("sync_email__subscribers").count() - len(eligible)


def test_every_gold_table_is_built_and_every_column_documented(first_run, home, spark):
    manifest = dbt_manifest(home)
    marts = {
        n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "gold"
    }
    assert {
        "dim_customers",
        "dim_customer_id_lineage",
        "dim_households",
        "bridge_customers_households",
        "fct_orders",
        "fct_customer_touchpoints",
    } <= set(marts)
    for name, node in marts.items():
        assert node["description"], f"{name} has no description"
        columns = set(spark.read.format("delta").load(str(home / "lakehouse" / "gold.db" / name)).columns)
        documented = {c for c, doc in node["columns"].items() if doc.get("description")}
        assert columns == documented, f"{name}: undocumented {columns - documented}, stale {documented - columns}"


def test_golden_records_of_hand_checked_customers(first_run, home, spark):
    """Values read off the landing files of seed 11 by hand (grep the contact id and email):
    C00000041 and C00000042 are one Robert Nelson; his address opened an email on 2025-12-27.
    C00000047's address unsubscribed on 2025-12-31. C00000044's bounced after her last click."""
    lakehouse = home / "lakehouse"
    identity = spark.read.format("delta").load(str(lakehouse / "silver.db" / "identity_map"))
    customer_of = {r.source_record_id: r.customer_id for r in identity.where("source_table = 'crm_contacts'").collect()}
    gold = {
        r.customer_id: r
        for r in spark.read.format("delta").load(str(lakehouse / "gold.db" / "dim_customers")).collect()
    }

    robert = gold[customer_of["C00000041"]]
    assert customer_of["C00000042"] == robert.customer_id and robert.crm_contact_count == 2
    # Every record has the same verified email: the newest record wins, his latest order.
    assert (robert.email, robert.email_source) == ("robert.nelson44@icloud.com", "shop_orders")
    assert (robert.first_name, robert.last_name, robert.phone) == ("Robert", "Nelson", "+33773983004")
    assert robert.birth_date == date(1965, 1, 2)  # only the older contact has one
    assert (robert.street, robert.postcode, robert.country) == ("239 North Ln", "7504", "FR")  # newer contact
    assert (robert.order_count, robert.total_spend) == (2, Decimal("492.85"))  # O000000080 + O000000081
    zoe = gold[customer_of["C00000038"]]  # Zoë Nelson, same address: a household, two customers
    assert zoe.customer_id != robert.customer_id
    assert zoe.household_id == robert.household_id and robert.household_relationship == "family"

    matus = gold[customer_of["C00000047"]]
    assert (matus.email_subscription_status, matus.email_subscription_changed_at) == (
        "unsubscribed",
        datetime(2025, 12, 31, 17, 31, 55),
    )
    assert (matus.email, matus.phone, matus.email_deliverable) == ("mateusmiller49@gmail.com", "+447275384369", True)

    isabella = gold[customer_of["C00000044"]]
    assert (isabella.email_subscription_status, isabella.email_deliverable) == ("subscribed", False)
    assert (isabella.email, isabella.email_source, isabella.phone) == (
        "inelson46@gmail.com",
        "shop_orders",
        "+497788665702",
    )


def test_identity_resolution_finds_the_generators_people(first_run, home, spark):
    identity = {
        (r.source_table, r.source_record_id): r.customer_id
        for r in spark.read.format("delta").load(str(home / "lakehouse" / "silver.db" / "identity_map")).collect()
    }
    true_pairs, predicted, correct, household_merged = truth_pairs(home / "truth", identity)
    assert household_merged == 0, "two people of one household were made one customer"
    assert correct / predicted >= 0.99, f"pairwise precision {correct / predicted:.4f}"
    assert correct / true_pairs >= 0.85, f"pairwise recall {correct / true_pairs:.4f}"
    checks = {(c.asset_check_key.to_user_string(), c.passed) for c in first_run[0].get_asset_check_evaluations()}
    assert {
        ("silver/identity_map:mapped_exactly_once", True),
        ("silver/identity_map:no_oversized_customer", True),
    } <= checks


def test_every_source_reconciles_exactly_with_what_was_delivered(first_run, home):
    result, _ = first_run
    manifest = json.loads((home / "truth" / "manifest.json").read_text())["sources"]
    ingested = {
        e.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "bronze"
    }
    assert set(ingested) == set(manifest) | {"erasure_requests"}  # the sample asks for no erasure
    assert (ingested["erasure_requests"]["files"], ingested["erasure_requests"]["received"]) == (0, 0)
    for source, delivered in manifest.items():
        stats = ingested[source]
        assert (stats["files"], stats["failed_files"]) == (delivered["files"], 0), source
        assert stats["received"] == delivered["rows"], source
        assert stats["quarantined"] == delivered["bad_rows"], source
        assert stats["accepted"] == delivered["rows"] - delivered["bad_rows"], source
    checks = {(c.asset_check_key.to_user_string(), c.passed) for c in result.get_asset_check_evaluations()}
    assert {(f"bronze/{source}:reconciliation", True) for source in manifest} <= checks
    # Event sources are partitioned by delivery day; the run covered every day of the sample.
    web_partitions = {
        e.materialization.partition
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "bronze/web_events"
    }
    assert web_partitions == {day.isoformat() for day in delivery_days(SAMPLE_DAYS)}


LATE_ORDER = {
    "order_id": "O999999901",
    "crm_contact_id": "C00000041",
    "customer_email": "robert.nelson44@icloud.com",
    "order_ts": "2025-12-31T23:10:00Z",
    "channel": "web",
    "currency": "EUR",
    "total_amount": 61.5,
    "status": "completed",
    "shipping_postcode": "7504",
    "updated_at": "2025-12-31T23:10:00Z",
}
FACT_TABLES = ("fct_orders", "fct_customer_touchpoints", "fct_customer_journey")
FACTS = [AssetKey(["gold", table]) for table in FACT_TABLES]
SEGMENTS = [AssetKey(["gold", "customer_segment_history"]), AssetKey(["gold", "customer_segments"])]
DIM_CUSTOMERS_GE = AssetCheckKey(AssetKey(["gold", "dim_customers"]), "great_expectations")


def robert_customer_id(home: Path, spark) -> str:
    """Robert Nelson (CRM contact C00000041), whose late order the daily run brings in."""
    return (
        spark.read.format("delta")
        .load(str(home / "lakehouse" / "silver.db" / "identity_map"))
        .where("source_table = 'crm_contacts' and source_record_id = 'C00000041'")
        .first()
        .customer_id
    )


def run_dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The dbt CLI against the e2e lakehouse, as the Dagster run uses it; results go to
    <home>/dbt-target so the project's own target (and its manifest) stays untouched."""
    environ = {
        **os.environ,
        "CDP_HOME": str(home),
        "CDP_LOCAL_S3": "false",
        "CDP_SPARK_SHUFFLE_PARTITIONS": "2",
        **SERVICE_PORTS,
    }
    with local_stack(environ):
        dbt = Path(sys.executable).parent / "dbt"
        return subprocess.run(
            [str(dbt), *args, "--target-path", str(home / "dbt-target")],
            cwd=DBT_DIR,
            env=dict(os.environ),
            capture_output=True,
            text=True,
        )


def test_dbt_unit_tests_pass(first_run, home):
    """The dbt unit tests (survivorship, segment, journey rules...) stay out of the pipeline's
    builds, as dbt advises for production; CI runs every one of them here."""
    manifest = dbt_manifest(home)
    unit_tests = set(manifest["unit_tests"])
    completed = run_dbt(home, "test", "--select", "test_type:unit")
    assert completed.returncode == 0, completed.stdout[-3000:]
    results = json.loads((home / "dbt-target" / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in results if r["status"] == "pass"} == unit_tests
    assert len(unit_tests) >= 10


def daily_run_selections(home: Path) -> tuple[list[AssetKey], list[AssetKey]]:
    """What the export and the facts depend on in the daily job (cdp_daily: no dbt views), as
    two runs: the changed sources and identity resolution, then the dbt tables, the check that
    gates the export, and the export. Left out: the sources that did not change (they would list
    their landing folders and find nothing new), the ML scores and the dbt tests (they all ran
    in the first run; this run is about the late order reaching the facts and the blocking check). Two runs,
    so that the ingestion's own assertions come before gold's."""
    from dagster_project.definitions import DAILY_JOB_NAME
    from devstack.definitions import defs

    daily = defs.resolve_job_def(DAILY_JOB_NAME).asset_layer.selected_asset_keys
    changed_sources = {AssetKey(["bronze", "crm_contacts"]), AssetKey(["bronze", "shop_orders"])}
    # The identity job writes all its silver tables at once, so all of them are selected.
    needed = AssetSelection.assets(
        AssetKey(["activation", "s3_repeat_buyers"]), *SEGMENTS, *FACTS
    ).upstream() | AssetSelection.key_prefixes(["silver"])
    keys = [
        key
        for key in needed.resolve(defs.resolve_asset_graph())
        if key.path[0] not in ("landing", "bronze") or key in changed_sources
    ]
    keys = [key for key in keys if key in daily and key != AssetKey(["silver", "customer_scores"])]
    upstream = [key for key in keys if key.path[0] in ("bronze", "silver")]
    return upstream, [key for key in keys if key not in upstream]


CRM_HEADER = (
    "op,change_ts,contact_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,"
    "loyalty_card_id,created_at\n"
)
MALFORMED_CONTACT = "C9999999,Mal,Formed,not-an-email,,,,London,,GB,,2025-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def second_run(first_run, home):
    """A later run after a malformed CRM contact and a late order of Robert Nelson arrived: the
    export must be blocked, the facts take the order, and
    Robert (a lapsed buyer until then) leaves the lapsed buyers. Returns the result of the run
    that builds gold and exports, and the export."""
    (home / "landing" / "crm" / "contacts" / "contacts_9999.csv").write_text(
        CRM_HEADER + "I,2025-01-02T00:00:00Z," + MALFORMED_CONTACT + "\n", encoding="utf-8"
    )
    (home / "landing" / "shop" / "orders" / "2025-12-31" / "orders_20251231_002.jsonl").write_text(
        json.dumps(LATE_ORDER) + "\n", encoding="utf-8"
    )
    upstream, gold = daily_run_selections(home)
    with BiReader(service_of(home), BI_TABLES) as reader:  # a BI tool queries while the runs write
        ingested, _ = run_pipeline(home, upstream)
        assert ingested.success
        assert {"bronze/crm_contacts", "bronze/shop_orders", "silver/identity_map"} <= materialized(ingested)
        result = run_pipeline(home, gold, asset_check_selection=[DIM_CUSTOMERS_GE], blocked_on_purpose=True)
    BI_OBSERVATIONS[home] = reader.observations
    return result


def test_failing_quality_check_blocks_the_export(first_run, second_run):
    _, exported_before = first_run
    result, exported_after = second_run
    evaluations = {c.asset_check_key.to_user_string(): c for c in result.get_asset_check_evaluations()}
    assert set(evaluations) == {DIM_CUSTOMERS_GE.to_user_string()}, "only the selected check ran, no dbt test"
    ge = evaluations["gold/dim_customers:great_expectations"]
    assert not ge.passed
    assert ge.metadata["failed_expectations"].value == ["expect_column_values_to_match_regex(email)"]
    assert "gold/dim_customers" in materialized(result), "the bad row did reach gold..."
    assert not [key for key in materialized(result) if key.startswith("activation/")], "...but must not be exported"
    assert not result.success
    assert exported_after == exported_before


def test_the_daily_run_rebuilds_the_facts_with_the_late_order(second_run, home, spark):
    """The second run rebuilt the facts (tables, no MERGE) and they hold Robert's late order,
    attributed to him and converted; his journey ends with it."""
    assert {f"gold/{table}" for table in FACT_TABLES} <= materialized(second_run[0])
    gold = home / "lakehouse" / "gold.db"
    for table in FACT_TABLES:
        latest = spark.sql(f"DESCRIBE HISTORY delta.`{gold / table}` LIMIT 1").first()
        assert latest.operation == "CREATE OR REPLACE TABLE AS SELECT", f"{table}: {latest.operation}"
        assert latest.version > 0, f"{table}: the first run's version was replaced, not a new table"
    robert = robert_customer_id(home, spark)
    order = spark.read.format("delta").load(str(gold / "fct_orders")).where("order_id = 'O999999901'").first()
    assert (order.customer_id, order.total_amount, order.status) == (robert, Decimal("61.50"), "completed")
    touchpoint = (
        spark.read.format("delta")
        .load(str(gold / "fct_customer_touchpoints"))
        .where("source_record_id = 'O999999901'")
        .first()
    )
    assert touchpoint.customer_id == robert
    step = (
        spark.read.format("delta")
        .load(str(gold / "fct_customer_journey"))
        .where(f"touchpoint_id = '{touchpoint.touchpoint_id}'")
        .first()
    )
    assert (step.customer_id, step.step_stage, step.is_converted) == (robert, "purchase", True)


def test_segment_history_shows_who_left_a_segment_and_when(first_run, second_run, home, spark):
    """Robert Nelson's late order ends his stay among the lapsed buyers (last purchase 414 days
    before the data's newest day); every other membership carries on from the first run."""
    gold = home / "lakehouse" / "gold.db"
    read = lambda table: spark.read.format("delta").load(str(gold / table)).collect()  # noqa: E731
    robert = robert_customer_id(home, spark)
    stays, members = read("customer_segment_history"), read("customer_segments")

    lapsed = [s for s in stays if (s.customer_id, s.segment_name) == (robert, "lapsed_buyers")]
    assert len(lapsed) == 1 and lapsed[0].left_at is not None and lapsed[0].entered_at < lapsed[0].left_at
    assert (robert, "lapsed_buyers") not in {(m.customer_id, m.segment_name) for m in members}
    # The open stays are today's members, who entered when a run first saw them.
    assert {(s.customer_id, s.segment_name, s.entered_at) for s in stays if s.left_at is None} == {
        (m.customer_id, m.segment_name, m.entered_at) for m in members
    }
    first_run_entries = {s.entered_at for s in stays if s.entered_at < lapsed[0].left_at}
    assert len(first_run_entries) == 1, "every stay but a new one started in the first run"


SNAPSHOT_COLUMNS = [
    "membership_id",
    "customer_id",
    "segment_name",
    "dbt_scd_id",
    "dbt_updated_at",
    "dbt_valid_from",
    "dbt_valid_to",
]


def test_a_third_snapshot_run_on_unchanged_segments_changes_nothing(second_run, home, spark):
    """The snapshot's MERGE must not add dbt's staging columns (dbt_change_type, dbt_unique_key)
    to the table, or the run after it fails on an ambiguous dbt_unique_key: the pipeline would
    break on its third day. Nothing changed since the second run, so no stay opens or closes."""
    path = str(home / "lakehouse" / "snapshots.db" / "snap_customer_segments")

    def stays():
        snapshot = spark.read.format("delta").load(path)
        return snapshot.columns, {tuple(row) for row in snapshot.collect()}

    columns, before = stays()
    assert columns == SNAPSHOT_COLUMNS
    completed = run_dbt(home, "snapshot")
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert stays() == (SNAPSHOT_COLUMNS, before)


BI_TABLES = ("gold.dim_customers", "gold.customer_segments")
BI_OBSERVATIONS: dict[Path, list[tuple[str, int]]] = {}


class BiReader:
    """What a BI tool does: queries over JDBC (pyhive through SQLAlchemy, Superset's path) in a
    loop, here while the pipeline writes; records (table, row count) or the error."""

    def __init__(self, service: Service, tables: tuple[str, ...]):
        import threading

        self.url = f"hive://cdp@{service.settings.service_host}:{service.settings.sql_port}/gold"
        self.tables, self.observations, self.errors = tables, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        while not self.stop.is_set():
            for table in self.tables:
                try:
                    with engine.connect() as connection:
                        count = connection.execute(sa.text(f"select count(*) from {table}")).scalar()
                    self.observations.append((table, int(count)))
                except Exception as error:
                    self.errors.append(f"{table}: {error}")
            self.stop.wait(0.5)

    def __enter__(self) -> BiReader:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.errors, self.errors[:5]


def test_bi_tools_see_only_committed_snapshots_while_a_run_writes(second_run, home, spark):
    """Every count a JDBC client saw during the daily runs is the count of a committed version
    of the table (never a half-written state), and the reader saw the runs' new versions."""
    observations = BI_OBSERVATIONS[home]
    for table in BI_TABLES:
        path = str(home / "lakehouse" / table.replace(".", ".db/"))
        versions = [r.version for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
        committed = {spark.read.format("delta").option("versionAsOf", v).load(path).count() for v in versions}
        seen = [count for name, count in observations if name == table]
        assert len(seen) >= 5, f"{table}: only {len(seen)} queries during the runs"
        assert set(seen) <= committed, f"{table}: saw {sorted(set(seen) - committed)}, committed {sorted(committed)}"


def test_beeline_and_sqlalchemy_query_the_gold_tables(first_run, home):
    """The SQL endpoint as BI tools and `./cdp sql` use it: a point query by customer id."""
    import sqlalchemy as sa

    service = service_of(home)
    engine = sa.create_engine(f"hive://cdp@{service.settings.service_host}:{service.settings.sql_port}/gold")
    with engine.connect() as connection:
        member = connection.execute(
            sa.text("select customer_id, segment_name from gold.customer_segments order by customer_id limit 1")
        ).one()
        email = connection.execute(
            sa.text("select email from gold.dim_customers where customer_id = :id"), {"id": member.customer_id}
        ).scalar()
    assert email == delta_rs_email(home, member.customer_id)
    # beeline from the pyspark wheel, on the running service of this home.
    query = f"select segment_name from gold.customer_segments where customer_id = '{member.customer_id}'"
    completed = subprocess.run(
        [*service_beeline(service), "--silent=true", "--outputformat=csv2", "-e", query],
        capture_output=True, text=True, env={**os.environ, "SPARK_HOME": str(spark_home())},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert member.segment_name in completed.stdout.splitlines(), completed.stdout[-2000:]


def cdp_sql(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devstack.runner", "sql", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "CDP_HOME": str(home)},
    )  # fmt: skip


def test_cdp_sql_prints_the_result_its_row_count_and_nothing_else(first_run, home, spark):
    """`./cdp sql`: a table of the first --limit rows (20 by default) and the row count, CSV and
    JSON of every row for scripts with the count on stderr, a server error in one line."""
    gold = spark.read.format("delta").load(str(home / "lakehouse" / "gold.db" / "dim_customers"))
    expected = sorted((r.customer_id, r.order_count) for r in gold.collect())
    query = "select customer_id, order_count from gold.dim_customers order by customer_id"

    table = cdp_sql(home, query)
    assert table.returncode == 0 and table.stderr == "", table.stderr[-2000:]
    lines = table.stdout.splitlines()  # border, header, border, 20 rows, border, count
    assert [cell.strip() for cell in lines[1].strip("|").split("|")] == ["customer_id", "order_count"]
    shown = [tuple(cell.strip() for cell in line.strip("|").split("|")) for line in lines[3:-2]]
    assert shown == [(c, str(n)) for c, n in expected[:20]]
    assert lines[-1] == f"(20 of {len(expected)} rows shown; --limit N for more, --limit 0 for all)"

    as_json = cdp_sql(home, query, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    assert [tuple(json.loads(line).values()) for line in as_json.stdout.splitlines()] == expected
    assert as_json.stderr.strip() == f"({len(expected)} rows)"

    as_csv = cdp_sql(home, query, "--format", "csv", "--limit", "3")
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["customer_id", "order_count"],
        *([c, str(n)] for c, n in expected[:3]),
    ]
    assert as_csv.stderr.strip() == f"(3 of {len(expected)} rows shown; --limit N for more, --limit 0 for all)"

    wrong = cdp_sql(home, "select nope from gold.dim_customers")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith("cdp sql: ") and "nope" in wrong.stderr and len(wrong.stderr.splitlines()) == 1


def test_a_subject_access_export_lists_every_source_record_of_a_merged_customer(first_run, home, spark, tmp_path):
    """`./cdp export-subject --email`: the customer with records in the most sources, found by
    their golden email, comes with every record identity resolution gave them, each with its
    bronze row."""
    from pyspark.sql import functions as F

    lakehouse = home / "lakehouse"
    identity = spark.read.format("delta").load(str(lakehouse / "silver.db" / "identity_map"))
    merged = (
        identity.groupBy("customer_id")
        .agg(F.countDistinct("source_table").alias("sources"), F.count(F.lit(1)).alias("records"))
        .orderBy(F.desc("sources"), F.desc("records"), "customer_id")
        .first()
    )
    assert merged.records >= 3 and merged.sources >= 2
    gold = spark.read.format("delta").load(str(lakehouse / "gold.db" / "dim_customers"))
    email = gold.where(F.col("customer_id") == merged.customer_id).first().email
    output = tmp_path / "subject.json"
    completed = subprocess.run(
        [sys.executable, "-m", "devstack.runner", "export-subject", "--email", email, "--output", str(output),
         "--request-id", "DSR-E2E"],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "CDP_HOME": str(home)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert email not in completed.stdout + completed.stderr  # the log says how much, never what
    document = json.loads(output.read_text(encoding="utf-8"))
    customer = next(c for c in document["customers"] if c["customer_id"] == merged.customer_id)
    expected = {
        (r.source_table, r.source_record_id)
        for r in identity.where(F.col("customer_id") == merged.customer_id).collect()
    }
    assert {(r["source"], r["record_id"]) for r in customer["source_records"]} == expected
    assert all(r["record"] is not None for r in customer["source_records"])
    assert customer["golden_record"][0]["email"] == email and len(customer["consent"]) == 8
    assert document["request"]["request_id"] == "DSR-E2E"


def delta_rs_email(home: Path, customer_id: str) -> str | None:
    """The customer's email in gold.dim_customers as its Delta files say (read without the service)."""
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    files = DeltaTable(str(home / "lakehouse" / "gold.db" / "dim_customers")).to_pyarrow_dataset()
    match = files.to_table(columns=["email"], filter=ds.field("customer_id") == customer_id)
    return match["email"][0].as_py() if match.num_rows else None


def test_every_gold_table_is_readable_by_delta_rs(first_run, home, spark):
    """BI tools and notebooks read gold with Delta readers other than Spark (delta-rs: pandas,
    Polars, DuckDB): no deletion vectors or other reader features they lack, no Spark-only types."""
    from deltalake import DeltaTable

    gold = home / "lakehouse" / "gold.db"
    tables = sorted(path for path in gold.iterdir() if path.is_dir())
    assert len(tables) >= 18
    for path in tables:
        assert (path / "_delta_log").is_dir(), f"{path.name} is not a Delta table"
        rows = DeltaTable(str(path)).to_pyarrow_dataset().count_rows()
        assert rows == spark.read.format("delta").load(str(path)).count(), path.name


# --- erasure: the last tests of the module (they delete a customer the tests above check) ---


def _erasure_subject(home: Path, spark) -> dict:
    """The merged customer (records in 2+ sources, 3+ records) sent to the most destinations, whose
    surname no other customer's record has (so that finding their name means finding them)."""
    from pyspark.sql import functions as F

    lakehouse = home / "lakehouse"
    table = lambda db, name: spark.read.format("delta").load(str(lakehouse / f"{db}.db" / name))  # noqa: E731
    identity, records = table("silver", "identity_map"), table("silver", "_identity_records")
    synced = (
        table("activation", "sync_state")
        .where(F.col("status") == "synced")
        .groupBy(F.col("record_key").alias("customer_id"))
        .agg(F.countDistinct("sync_name").alias("syncs"))
    )
    named = records.join(identity, ["source_table", "source_record_id"]).where(
        F.col("first_name").isNotNull() & F.col("last_name").isNotNull()
    )
    surname = F.lower("last_name")
    owners = named.groupBy(surname.alias("surname")).agg(F.countDistinct("customer_id").alias("owners"))
    unique_names = named.withColumn("surname", surname).join(owners.where("owners = 1"), "surname")
    candidates = (
        identity.groupBy("customer_id")
        .agg(F.countDistinct("source_table").alias("sources"), F.count(F.lit(1)).alias("records"))
        .where("sources >= 2 AND records >= 3")
        .join(synced, "customer_id")
        .join(unique_names.select("customer_id").distinct(), "customer_id")
        .orderBy(F.desc("syncs"), F.desc("records"), "customer_id")
    )
    chosen = candidates.first()
    assert chosen is not None and chosen.syncs >= 4, "the sample has a merged customer sent to 4+ destinations"
    mine = records.join(
        identity.where(F.col("customer_id") == chosen.customer_id), ["source_table", "source_record_id"]
    )
    rows = mine.collect()
    emails = {v.lower() for r in rows for v in (r.email_raw, r.email) if v}
    phones = {r.phone for r in rows if r.phone}
    crm_phones = table("bronze", "crm_contacts").where(
        F.col("contact_id").isin([r.source_record_id for r in rows if r.source_table == "crm_contacts"])
    )
    phones |= {r.phone for r in crm_phones.collect() if r.phone}
    named_row = next(r for r in rows if r.first_name and r.last_name)
    return {
        "customer_id": chosen.customer_id,
        "syncs": chosen.syncs,
        "records": {(r.source_table, r.source_record_id) for r in rows},
        "email": sorted(emails)[0],
        "strings": sorted(emails | phones),
        "name": (named_row.first_name.lower(), named_row.last_name.lower()),
    }


def _rows_holding(lakehouse: Path, subject: dict) -> dict[str, int]:
    """Every Delta table in the lakehouse, every column: rows that hold one of the person's
    emails or phones, or both their first and last name. Read with delta-rs, a reader
    independent of the pipeline's Spark (and without a Spark query per table, which cost minutes
    on two busy cores)."""
    from deltalake import DeltaTable

    strings = [s.lower() for s in subject["strings"]]
    names = [re.compile(rf"\b{re.escape(word)}\b") for word in subject["name"]]
    found = {}
    for log_dir in sorted(lakehouse.glob("*.db/*/_delta_log")):
        count = 0
        for row in DeltaTable(str(log_dir.parent)).to_pyarrow_table().to_pylist():
            text = "\u0001".join(str(value) for value in row.values() if value is not None).lower()
            if any(s in text for s in strings) or all(name.search(text) for name in names):
                count += 1
        if count:
            found[f"{log_dir.parent.parent.name}/{log_dir.parent.name}"] = count
    return found


def _parquet_files_holding(lakehouse: Path, subject: dict) -> list[str]:
    """Data files (and change-data files) under the lakehouse, read value by value, that hold
    the person's emails or phones: what is physically on disk, whatever version uses it."""
    import pyarrow.parquet as pq

    hits = []
    for path in sorted(lakehouse.rglob("*.parquet")):
        if "_delta_log" in path.parts:
            continue
        text = json.dumps(pq.read_table(path).to_pylist(), default=str).lower()
        if any(s.lower() in text for s in subject["strings"]):
            hits.append(str(path.relative_to(lakehouse)))
    return hits


def _landed_files_holding(home: Path, subject: dict) -> list[Path]:
    import gzip

    hits = []
    for path in sorted((home / "landing").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8", "replace").lower()
            if any(s.lower() in text for s in subject["strings"]):
                hits.append(path)
    return hits


ERASURE_REQUEST = "DSR-E2E-ERASE"


@pytest.fixture(scope="module")
def erased(second_run, home, spark):
    """`./cdp erase --email` of a merged customer every destination has, purged at once
    (--purge-after-hours 0). Returns the subject, the erasure's output and the landed files
    that held the person before (their original bytes, to deliver again)."""
    subject = _erasure_subject(home, spark)
    originals = {path: path.read_bytes() for path in _landed_files_holding(home, subject)}
    assert originals, "the person's records came from landed files"
    assert _rows_holding(home / "lakehouse", subject), "the scan finds the person before the erasure"
    completed = subprocess.run(
        [sys.executable, "-m", "devstack.runner", "erase", "--email", subject["email"],
         "--request-id", ERASURE_REQUEST, "--purge-after-hours", "0"],
        capture_output=True, text=True, cwd=REPO_ROOT,
        env={**os.environ, "CDP_HOME": str(home), "CDP_LOCAL_S3_PORT": "0", **SERVICE_PORTS},
    )  # fmt: skip
    return subject, completed, originals


def test_erasure_removes_a_merged_customer_from_every_table_file_and_destination(erased, home, spark):
    from deltalake import DeltaTable

    subject, completed, _ = erased
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = (completed.stdout + completed.stderr).lower()
    assert not [s for s in subject["strings"] if s.lower() in output], "the log names no identifier"

    lakehouse = home / "lakehouse"
    assert _rows_holding(lakehouse, subject) == {}
    assert _parquet_files_holding(lakehouse, subject) == [], "the purge left files that hold the person"
    assert _landed_files_holding(home, subject) == []

    apis = json.loads((home / "mock-apis" / "state.json").read_text(encoding="utf-8"))
    assert subject["customer_id"] not in json.dumps(apis["crm"]) + json.dumps(apis["esp"])
    assert not [s for s in subject["strings"] if s.lower() in json.dumps(apis["crm"] | apis["esp"]).lower()]
    erased_events = [e for e in apis["webhook"].values() if e.get("type") == "customer.erased"]
    assert [e["key"] for e in erased_events] == [subject["customer_id"]]
    hashed = sha256_hex(normalise_email(subject["email"]))
    audience_files = [p for p in (home / "s3").rglob("*.csv") if hashed in p.read_text(encoding="utf-8")]
    assert audience_files and all(p.name.startswith("remove-") for p in audience_files), audience_files

    log_rows = DeltaTable(str(lakehouse / "privacy.db" / "erasure_log")).to_pyarrow_table().to_pylist()
    (entry,) = [r for r in log_rows if r["request_id"] == ERASURE_REQUEST]
    assert entry["status"] == "completed" and entry["purged_at"] is not None
    assert entry["source_records"] == len(subject["records"])
    deleted = dict(entry["rows_deleted"])
    assert deleted["silver.identity_map"] == len(subject["records"])
    assert deleted["gold.dim_customers"] == 1
    assert set(dict(entry["destinations"]).values()) == {"removed"} and len(entry["destinations"]) == subject["syncs"]
    assert "@" not in json.dumps(entry, default=str), "the erasure log holds no personal data"


def test_a_redelivery_and_a_rerun_do_not_bring_an_erased_customer_back(erased, home, spark):
    """The landed files as they were before the erasure come again under new names, and the
    whole pipeline runs: ingestion drops the person's rows (counted as erased), so identity,
    gold and the destinations never see them again."""
    from deltalake import DeltaTable

    subject, completed, originals = erased
    assert completed.returncode == 0, completed.stderr[-3000:]
    for path, data in originals.items():
        path.with_name(f"redelivered_{path.name}").write_bytes(data)
    # The CRM deletes the malformed contact of the second run, so the GE gate passes and the
    # syncs run: the destinations are written to and must still not get the person back.
    (home / "landing" / "crm" / "contacts" / "contacts_9999_delete.csv").write_text(
        CRM_HEADER + "D,2025-01-03T00:00:00Z," + MALFORMED_CONTACT + "\n", encoding="utf-8"
    )
    synced_before = len(sync_log_rows(home))
    result, _ = run_pipeline(home, asset_check_selection=checks_but_dbt_tests())
    assert result.success, failed_steps(result)
    assert {"bronze/crm_contacts", "silver/identity_map", "gold/dim_customers", *SYNCS} <= materialized(result)
    # Every sync reached its destination (this run's, not an earlier run's stand-ins).
    rerun_syncs = sync_log_rows(home)[synced_before:]
    assert sorted(r["sync_name"] for r in rerun_syncs) == sorted(key.removeprefix("activation/") for key in SYNCS)
    assert {(r["sync_name"], r["status"], r["failed"]) for r in rerun_syncs} == {
        (r["sync_name"], "succeeded", 0) for r in rerun_syncs
    }, rerun_syncs

    assert _rows_holding(home / "lakehouse", subject) == {}
    ingestion = DeltaTable(str(home / "lakehouse" / "bronze.db" / "_ingestion_log")).to_pyarrow_table().to_pylist()
    erased_rows = Counter()
    for row in ingestion:
        erased_rows[row["entity"]] += row.get("erased") or 0
    assert sum(erased_rows.values()) >= len(originals), erased_rows  # at least a row per file that held them
    for row in ingestion:
        if row.get("erased") is not None:
            assert row["received"] == row["accepted"] + row["quarantined"] + row["erased"], row
    apis = json.loads((home / "mock-apis" / "state.json").read_text(encoding="utf-8"))
    assert subject["customer_id"] not in json.dumps(apis["crm"]) + json.dumps(apis["esp"])
    assert not [s for s in subject["strings"] if s.lower() in json.dumps(apis["crm"] | apis["esp"]).lower()]
