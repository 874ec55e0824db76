import csv
import json

import pytest

from spark_jobs.landing.generate import generate


def _read(zone):
    contacts = list(csv.DictReader(zone.contacts_file.open(encoding="utf-8")))
    orders = [json.loads(line) for line in zone.orders_file.open(encoding="utf-8")]
    truth = list(csv.DictReader(zone.truth_file.open(encoding="utf-8")))
    return contacts, orders, truth


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a = generate(tmp_path / "a" / "landing", tmp_path / "a" / "truth", customers=50, seed=3)
    b = generate(tmp_path / "b" / "landing", tmp_path / "b" / "truth", customers=50, seed=3)
    c = generate(tmp_path / "c" / "landing", tmp_path / "c" / "truth", customers=50, seed=4)
    assert a.contacts_file.read_bytes() == b.contacts_file.read_bytes()
    assert a.orders_file.read_bytes() == b.orders_file.read_bytes()
    assert a.orders_file.read_bytes() != c.orders_file.read_bytes()


def test_truth_names_every_record_once_and_silos_disagree_like_real_ones(tmp_path):
    zone = generate(tmp_path / "landing", tmp_path / "truth", customers=300, seed=7)
    contacts, orders, truth = _read(zone)
    truth_keys = [(row["source_table"], row["source_record_id"]) for row in truth]
    expected = [("crm_contacts", c["contact_id"]) for c in contacts] + [("shop_orders", o["order_id"]) for o in orders]
    assert sorted(truth_keys) == sorted(expected)
    assert (zone.contacts, zone.orders) == (len(contacts), len(orders))

    person_of = {(r["source_table"], r["source_record_id"]): r["person_id"] for r in truth}
    crm_people = {person_of[("crm_contacts", c["contact_id"])] for c in contacts}
    order_people = {person_of[("shop_orders", o["order_id"])] for o in orders}
    assert order_people - crm_people, "expected guest buyers who never reached the CRM"
    assert len(contacts) > len(crm_people), "expected people entered into the CRM twice"
    assert any(o["customer_email"] != o["customer_email"].strip().lower() for o in orders), \
        "expected emails typed with other case or stray spaces at checkout"
    assert all(c["email"].isascii() for c in contacts)


def test_rejects_an_empty_population(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path / "landing", tmp_path / "truth", customers=0, seed=1)
