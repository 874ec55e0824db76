"""Incremental = full: re-linking only what changed gives the clusters a full run gives."""

from __future__ import annotations

import random

from spark_jobs.identity.incremental import changed_records, with_row_hash
from spark_jobs.identity.persons import identifiers
from spark_jobs.identity.records import standard_records
from spark_jobs.identity.resolution import resolve_records

MAPPING = {
    "record_id": "id",
    "first_name": "first",
    "last_name": "last",
    "dob": "dob",
    "email": "email",
    "phone": "phone",
    "address": "street",
    "postcode": "zip",
    "country": "country",
}
SCHEMA = (
    "id string, first string, last string, dob string, email string, phone string, street string, zip string, "
    "country string"
)
FIRST = ["Robert", "Bob", "Elizabeth", "Liz", "William", "Bill", "Anna", "Ana", "Jose", "José"]
LAST = ["Smith", "Smyth", "Garcia", "Müller", "Mueller", "Brown"]


def person(rng: random.Random, n: int) -> dict:
    return {
        "first": rng.choice(FIRST),
        "last": rng.choice(LAST),
        "dob": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "email": f"p{n}@example.com",
        "phone": f"+44 7700 9{n:05d}",
        "street": f"{rng.randint(1, 9)} High Street",
        "zip": f"N{rng.randint(1, 3)} 1AA",
        "country": "GB",
    }


def garble(rng: random.Random, record_id: str, p: dict) -> tuple:
    """One system's copy of a person: some fields missing or written another way."""
    row = dict(p)
    for field in ("dob", "email", "phone", "street", "zip"):
        if rng.random() < 0.35:
            row[field] = None
    if row["email"] and rng.random() < 0.3:
        row["email"] = row["email"].upper()
    if row["phone"] and rng.random() < 0.3:
        row["phone"] = "0" + row["phone"][4:]
    return (
        record_id,
        row["first"],
        row["last"],
        row["dob"],
        row["email"],
        row["phone"],
        row["street"],
        row["zip"],
        row["country"],
    )


def _partition(resolved) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for row in resolved.clusters.collect():
        groups.setdefault(row.component, set()).add(row.record_id)
    return {frozenset(g) for g in groups.values()}


def _standard(spark, rows):
    records = standard_records(spark.createDataFrame(rows, SCHEMA), MAPPING)
    return records, identifiers(records)


def test_incremental_run_gives_the_clusters_of_a_full_run(spark):
    rng = random.Random(4)
    people = [person(rng, n) for n in range(30)]
    day1 = [garble(rng, f"R{i:03d}", people[i % 30]) for i in range(70)]
    records1, ids1 = _standard(spark, day1)
    # Blocks of at most 3 records, so that day 2 pushes some over the limit and pulls others under.
    first = resolve_records(records1, ids1, max_block_size=3)

    # Day 2: new records (some of known people, some of new ones), edits, and deletions.
    people += [person(rng, n) for n in range(30, 36)]
    day2 = [row for row in day1 if row[0] not in {"R003", "R017", "R040"}]
    day2 = [
        garble(rng, row[0], people[int(row[0][1:]) % 30]) if row[0] in {"R005", "R021", "R033"} else row for row in day2
    ]
    day2 += [garble(rng, f"S{i:03d}", people[rng.randrange(36)]) for i in range(25)]
    records2, ids2 = _standard(spark, day2)

    incremental = resolve_records(records2, ids2, model=first.model, state=first.state, max_block_size=3)
    full = resolve_records(records2, ids2, model=first.model, max_block_size=3)

    assert incremental.changed == len(changed_records(with_row_hash(records2), first.state.records).collect())
    assert 25 + 3 <= incremental.changed <= 25 + 3 + 3  # new + deleted + the edits that changed a field
    assert _partition(incremental) == _partition(full)
    assert {(r.record_id, r.linked_to, r.rule) for r in incremental.links.collect()} == {
        (r.record_id, r.linked_to, r.rule) for r in full.links.collect()
    }
    assert len(_partition(full)) < len(day2), "the data must link, or the comparison proves nothing"
