"""The sample landing zone: deterministic, idempotent on disk, and as messy as real silos."""

import csv
import gzip
import json
from collections import defaultdict

import pytest

from devstack.sample.generate import generate

SOURCES = {
    "crm_contacts",
    "shop_orders",
    "shop_order_lines",
    "pos_transactions",
    "support_tickets",
    "web_events",
    "email_events",
    "survey_responses",
    "consent_events",
    "enrichment_demographics",
    "social_mentions",
    "postal_codes",
    "exchange_rates",
}


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    generate(tmp_path / "a" / "landing", tmp_path / "a" / "truth", customers=80, seed=3, days=3)
    generate(tmp_path / "b" / "landing", tmp_path / "b" / "truth", customers=80, seed=3, days=3)
    generate(tmp_path / "c" / "landing", tmp_path / "c" / "truth", customers=80, seed=4, days=3)
    a, b, c = (_files(tmp_path / x / "landing") for x in "abc")
    assert a == b
    assert a != c


def test_regenerating_leaves_unchanged_files_untouched(tmp_path):
    """The ingestion job keys files on (path, size, mtime): a re-run must not look like new data."""
    landing = tmp_path / "landing"
    generate(landing, tmp_path / "truth", customers=40, seed=1, days=2)
    before = {p: p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file()}
    generate(landing, tmp_path / "truth", customers=40, seed=1, days=2)
    assert {p: p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file()} == before
    assert not list(landing.rglob(".*")), "no temporary files left behind"


def test_a_withheld_last_day_is_delivered_later_without_touching_the_earlier_files(tmp_path):
    """How an incremental run is tested: the same zone, its last day arriving a run later."""
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    generate(landing, truth, customers=40, seed=1, days=3, withhold_last_days=1)
    assert sorted({p.parent.name for p in landing.rglob("*") if p.is_file()}) == ["2025-12-29", "2025-12-30"]
    first = json.loads((truth / "manifest.json").read_text())
    assert (first["days"], first["withheld_days"]) == (["2025-12-29", "2025-12-30"], ["2025-12-31"])
    delivered = {p: p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file()}
    # The manifest counts what was delivered: the lines actually in the orders' files.
    lines = sum(1 for p in (landing / "shop" / "orders").rglob("*.jsonl") for _ in p.open())
    assert first["sources"]["shop_orders"]["rows"] == lines

    generate(landing, truth, customers=40, seed=1, days=3)
    after = {p: p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if p in delivered} == delivered, "earlier files untouched"
    assert {p.parent.name for p in set(after) - set(delivered)} == {"2025-12-31"}
    full = tmp_path / "full"
    generate(full, tmp_path / "full-truth", customers=40, seed=1, days=3)
    assert _files(landing) == _files(full), "same files as a zone generated in one go"
    with pytest.raises(ValueError, match="withhold"):
        generate(landing, truth, customers=40, seed=1, days=3, withhold_last_days=3)


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("zone")
    return generate(root / "landing", root / "truth", customers=1500, seed=7, days=4)


def test_every_source_is_delivered_daily_in_dated_folders(zone):
    assert set(zone.sources) == SOURCES
    web = sorted(p.parent.name for p in (zone.landing_dir / "web" / "events").rglob("*.jsonl.gz"))
    assert web == ["2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31"]
    with gzip.open(next((zone.landing_dir / "web" / "events").rglob("*.gz")), "rt") as fh:
        first = json.loads(fh.readline())
    assert {"anonymous_id", "user_id", "device_type", "user_agent", "ip_city", "event_ts"} <= set(first)
    header = next(csv.reader((zone.landing_dir / "vendor" / "demographics").rglob("*.csv").__next__().open()))
    assert header[:2] == ["REC_ID", "EMAIL_SHA256"], "the vendor keeps its own naming style"


def test_crm_is_a_change_feed_with_updates_deletes_and_late_changes(zone):
    rows = [
        (p.parent.name, r)
        for p in sorted((zone.landing_dir / "crm" / "contacts").rglob("*.csv"))
        for r in csv.DictReader(p.open(encoding="utf-8"))
    ]
    ops = {r["op"] for _, r in rows}
    assert {"I", "U", "D"} <= ops
    late = [r for day, r in rows if r["op"] == "U" and r["change_ts"][:10] < day]
    assert late, "some changes are delivered after a later-dated file"


def test_truth_has_households_and_people_disagree_across_silos(zone):
    people = list(csv.DictReader((zone.truth_dir / "people.csv").open(encoding="utf-8")))
    households = defaultdict(list)
    for person in people:
        households[person["household_id"]].append(person)
    shared = [h for h in households.values() if len(h) > 1]
    assert shared and any(len({p["last_name"] for p in h}) == 1 for h in shared)
    assert zone.households == len(households) < len(people)

    truth = {
        (r["source_table"], r["source_record_id"]): r["person_id"]
        for r in csv.DictReader((zone.truth_dir / "source_records.csv").open(encoding="utf-8"))
    }
    canonical = {p["person_id"]: p["email"] for p in people}
    orders = [
        json.loads(line)
        for p in (zone.landing_dir / "shop" / "orders").rglob("*.jsonl")
        for line in p.open(encoding="utf-8")
        if not line.startswith('{"order_id": "BAD')
    ]
    differing = [
        o for o in orders if o["customer_email"].strip().lower() != canonical[truth[("shop_orders", o["order_id"])]]
    ]
    assert len(differing) > len(orders) * 0.05, "orders carry old, re-cased or tagged emails"
    phones = {
        r["phone"]
        for p in (zone.landing_dir / "crm" / "contacts").rglob("*.csv")
        for r in csv.DictReader(p.open(encoding="utf-8"))
        if r["phone"]
    }
    assert any(x.startswith("+") for x in phones) and any(x.startswith("0") for x in phones)


def test_manifest_counts_rows_and_deliberately_broken_ones(zone):
    manifest = json.loads((zone.truth_dir / "manifest.json").read_text())["sources"]
    lines = sum(1 for p in (zone.landing_dir / "shop" / "orders").rglob("*.jsonl") for _ in p.open())
    assert manifest["shop_orders"]["rows"] == lines
    broken = sum(
        1
        for p in (zone.landing_dir / "shop" / "orders").rglob("*.jsonl")
        for line in p.open()
        if line.startswith('{"order_id": "BAD')
    )
    assert manifest["shop_orders"]["bad_rows"] == broken > 0


def test_rejects_an_empty_population(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path / "landing", tmp_path / "truth", customers=0, seed=1)
