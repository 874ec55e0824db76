"""Deterministic sample landing zone: CRM contacts (CSV) and e-commerce orders (JSON lines).

The same person shows up in both systems with the inconsistencies real silos have: the shop
receives the email typed at checkout (mixed case, stray spaces), some buyers check out as
guests and never reach the CRM, and a few people were entered into the CRM twice. The hidden
truth (which source record belongs to which person) is written to a separate file so identity
resolution can be scored against it.

Pure Python on purpose: it is the stand-in for the source systems, not part of the platform.

    python -m spark_jobs.landing.generate --customers 1000 --seed 7 --out .cdp/landing
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

log = logging.getLogger(__name__)

# Fixed reference date: the same seed gives the same files on any day.
REFERENCE_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Isabella", "James",
    "Ava", "William", "Mia", "Benjamin", "Evelyn", "Lucas", "Harper", "Henry", "Camila", "Theodore",
    "Robert", "Elizabeth", "Katherine", "Michael", "Zoë", "José", "Chloé", "Søren", "Aoife", "Mateus",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "O'Brien", "Müller", "Nguyen", "Kowalski", "Rossi", "Dubois", "Silva", "Jensen",
]
CITIES = [("London", "GB"), ("Manchester", "GB"), ("Dublin", "IE"), ("Berlin", "DE"), ("Paris", "FR"),
          ("Lisbon", "PT"), ("Madrid", "ES"), ("Amsterdam", "NL"), ("New York", "US"), ("Austin", "US")]
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "example.org"]
ORDER_STATUSES = ["completed"] * 8 + ["cancelled", "refunded"]

CONTACT_FIELDS = ["contact_id", "first_name", "last_name", "email", "phone", "city", "country",
                  "created_at", "updated_at"]


@dataclass(frozen=True)
class Person:
    person_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    city: str
    country: str


@dataclass(frozen=True)
class LandingZone:
    """What the generator wrote, for logs and tests."""

    contacts_file: Path
    orders_file: Path
    truth_file: Path
    contacts: int
    orders: int


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _make_people(rng: random.Random, count: int) -> list[Person]:
    people = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        local = ascii_name.lower().replace("'", "").replace(" ", "")
        email = f"{local}{i}@{rng.choice(EMAIL_DOMAINS)}"
        phone = f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}"
        city, country = rng.choice(CITIES)
        people.append(Person(f"P{i:07d}", first, last, email, phone, city, country))
    return people


def _as_typed_at_checkout(rng: random.Random, email: str) -> str:
    """Emails as customers type them: sometimes capitalised, sometimes with stray spaces."""
    variant = rng.random()
    if variant < 0.15:
        return email.upper()
    if variant < 0.30:
        return f"  {email.capitalize()} "
    return email


def generate(out_dir: Path, truth_dir: Path, customers: int, seed: int) -> LandingZone:
    if customers < 1:
        raise ValueError(f"--customers must be at least 1, got {customers}")
    rng = random.Random(seed)
    people = _make_people(rng, customers)

    contacts_dir = out_dir / "crm" / "contacts"
    orders_dir = out_dir / "shop" / "orders"
    for folder in (contacts_dir, orders_dir, truth_dir):
        folder.mkdir(parents=True, exist_ok=True)
    contacts_file = contacts_dir / "contacts_0001.csv"
    orders_file = orders_dir / "orders_0001.jsonl"
    truth_file = truth_dir / "source_records.csv"

    truth_rows: list[tuple[str, str, str]] = []
    contact_ids: dict[str, list[str]] = {}
    n_contacts = 0
    with contacts_file.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CONTACT_FIELDS)
        writer.writeheader()
        for person in people:
            if rng.random() < 0.10:  # guest buyer: never in the CRM
                continue
            copies = 2 if rng.random() < 0.05 else 1  # entered twice by different agents
            for copy in range(copies):
                n_contacts += 1
                contact_id = f"C{n_contacts:07d}"
                created = REFERENCE_TIME - timedelta(days=rng.randint(30, 900))
                updated = created + timedelta(days=rng.randint(0, 25), seconds=copy)
                writer.writerow({
                    "contact_id": contact_id,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    # the duplicate was keyed in with different capitalisation
                    "email": person.email if copy == 0 else person.email.title(),
                    "phone": person.phone if rng.random() > 0.1 else "",
                    "city": person.city,
                    "country": person.country,
                    "created_at": _iso(created),
                    "updated_at": _iso(updated),
                })
                contact_ids.setdefault(person.person_id, []).append(contact_id)
                truth_rows.append(("crm_contacts", contact_id, person.person_id))

    n_orders = 0
    with orders_file.open("w", encoding="utf-8") as fh:
        for person in people:
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 5])):
                n_orders += 1
                order_id = f"O{n_orders:08d}"
                known = contact_ids.get(person.person_id)
                logged_in = known is not None and rng.random() < 0.6
                order = {
                    "order_id": order_id,
                    "crm_contact_id": known[0] if logged_in else None,
                    "customer_email": _as_typed_at_checkout(rng, person.email),
                    "order_ts": _iso(REFERENCE_TIME - timedelta(minutes=rng.randint(0, 365 * 24 * 60))),
                    "currency": "GBP",
                    "total_amount": round(rng.uniform(5, 400), 2),
                    "status": rng.choice(ORDER_STATUSES),
                }
                fh.write(json.dumps(order) + "\n")
                truth_rows.append(("shop_orders", order_id, person.person_id))

    with truth_file.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source_table", "source_record_id", "person_id"])
        writer.writerows(truth_rows)

    zone = LandingZone(contacts_file, orders_file, truth_file, n_contacts, n_orders)
    log.info("landing zone for %d people written: %d contacts, %d orders -> %s",
             customers, n_contacts, n_orders, out_dir)
    return zone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True, help="landing zone root")
    parser.add_argument("--truth-dir", type=Path, help="where the hidden truth goes; default <out>/../truth")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    generate(args.out, args.truth_dir or args.out.parent / "truth", args.customers, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
