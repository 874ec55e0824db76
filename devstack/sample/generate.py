"""Deterministic sample landing zone: every source a real company has, garbled like real silos.

Sources (contract in spark_jobs/ingest/contracts/<name>.yml; folder under the landing root):
  internal     crm/contacts (CDC CSV), shop/orders + shop/order_lines (JSON lines),
               store/transactions (CSV), support/tickets (JSON lines), web/events (JSON lines, gzip),
               email/events (CSV), surveys/responses (JSON lines)
  third party  vendor/demographics (CSV, vendor column names)
  external     social/mentions (JSON lines), reference/postal_codes (CSV),
               reference/exchange_rates (CSV, euro reference rates on business days)

Files are delivered daily into ``YYYY-MM-DD`` folders over ``--days`` days ending on
REFERENCE_DATE; the first delivery also carries each system's history. A small share of
deliberately broken rows (corrupt lines, bad values) exercises the quarantine; their number
per source is in ``truth/manifest.json``. The hidden truth (which person, and which household,
every record belongs to) goes to ``truth/`` for scoring identity resolution.

Pure Python and streaming (one day of one source in memory at a time): it stands in for the
source systems and is not part of the platform.

    python -m devstack.sample.generate --customers 100000 --seed 7 --out .cdp/landing
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from devstack.sample.deliveries import Deliveries
from devstack.sample.people import (
    PLACES,
    Person,
    address_variant,
    email_variant,
    first_name_variant,
    last_name_variant,
    make_population,
    phone_variant,
)
from spark_jobs.reporting import configure_logging

log = logging.getLogger(__name__)

# Fixed reference date: the same seed gives the same files on any day.
REFERENCE_DATE = date(2025, 12, 31)
CRM_HEADER = [
    "op",
    "change_ts",
    "contact_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "street",
    "city",
    "postcode",
    "country",
    "loyalty_card_id",
    "created_at",
]
CATALOGUE = [
    ("SKU-TEE", "Organic tee", "apparel", 19.0),
    ("SKU-HOOD", "Hoodie", "apparel", 49.0),
    ("SKU-MUG", "Mug", "home", 9.5),
    ("SKU-LAMP", "Desk lamp", "home", 39.0),
    ("SKU-BUDS", "Earbuds", "electronics", 79.0),
    ("SKU-CHRG", "Charger", "electronics", 24.0),
    ("SKU-BOOK", "Cookbook", "books", 22.0),
    ("SKU-SOCK", "Socks 3-pack", "apparel", 12.0),
]
PAGES = ["/", "/new", "/sale", "/c/apparel", "/c/home", "/c/electronics", "/p/SKU-TEE", "/p/SKU-BUDS", "/search"]
USER_AGENTS = {
    "web": [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
        "Mozilla/5.0 (Macintosh) Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    ],
    "ios": ["ShopApp/5.2 (iPhone; iOS 18.1)", "ShopApp/5.2 (iPad; iOS 18.0)"],
    "android": ["ShopApp/5.2 (Linux; Android 15; Pixel 8)", "ShopApp/5.1 (Linux; Android 14; SM-S918B)"],
}
COMMENTS = [
    "",
    "",
    "Quick delivery, thanks!",
    "Support took too long to reply.",
    "Love the app.",
    "Checkout kept failing on my phone",
    "Great value",
    "The parcel arrived damaged",
    "😀 brilliant",
]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(day: date, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))


@dataclass(frozen=True)
class LandingZone:
    """What the generator wrote, for logs and tests."""

    landing_dir: Path
    truth_dir: Path
    sources: dict[str, dict[str, int]]  # source -> files, rows, bad_rows
    people: int
    households: int

    def rows(self, source: str) -> int:
        return self.sources[source]["rows"]


class Truth:
    """Streams the hidden truth: person of every person-bearing record, people, anonymous ids."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self._fh = (folder / "source_records.csv").open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(["source_table", "source_record_id", "person_id"])

    def record(self, source: str, record_id: str, person: Person) -> None:
        self._writer.writerow([source, record_id, person.person_id])

    def close(self) -> None:
        self._fh.close()


@dataclass
class Contact:
    contact_id: str
    person: Person
    duplicate: bool


def delivery_days(days: int) -> list[date]:
    """The delivery dates (landing folders) of a zone generated with ``--days days``."""
    if not 1 <= days <= 366:
        raise ValueError(f"--days must be between 1 and 366, got {days}")
    return [REFERENCE_DATE - timedelta(days=days - 1 - i) for i in range(days)]


class Generator:
    def __init__(self, landing: Path, truth_dir: Path, customers: int, seed: int, days: int):
        if customers < 1:
            raise ValueError(f"--customers must be at least 1, got {customers}")
        self.landing, self.truth_dir, self.seed = landing, truth_dir, seed
        self.days = delivery_days(days)
        self.people = make_population(self.rng("people"), customers)
        self.truth = Truth(truth_dir)
        self.contacts: list[Contact] = []
        self.contact_of: dict[str, str] = {}  # person_id -> first contact id
        self.sources: dict[str, Deliveries] = {}

    def rng(self, name: str, day: date | None = None) -> random.Random:
        return random.Random(f"{self.seed}:{name}:{day or ''}")

    def deliveries(self, name: str, subdir: str, stem: str) -> Deliveries:
        self.sources[name] = Deliveries(self.landing, subdir, stem)
        return self.sources[name]

    # --- CRM: CDC change records ----------------------------------------------------------
    def crm(self) -> None:
        rng, out = self.rng("crm"), self.deliveries("crm_contacts", "crm/contacts", "contacts_changes")
        for person in self.people:
            if rng.random() < 0.12:  # never reached the CRM (guest buyers, walk-ins)
                continue
            copies = 2 if rng.random() < 0.05 else 1  # entered twice by different agents
            for copy in range(copies):
                contact = Contact(f"C{len(self.contacts) + 1:08d}", person, duplicate=copy > 0)
                self.contacts.append(contact)
                self.contact_of.setdefault(person.person_id, contact.contact_id)
                self.truth.record("crm_contacts", contact.contact_id, person)

        changes: dict[date, list[list]] = {d: [] for d in self.days}
        first_day = self.days[0]
        for contact in self.contacts:
            p = contact.person
            created = _at(first_day, rng) - timedelta(days=rng.randint(1, 1500))
            # The CRM first holds what the person gave back then: old email, old address.
            email = (p.old_email or p.email) if not contact.duplicate else email_variant(rng, p)
            address = p.old_address or p.address
            row = self._crm_row(rng, "I", created, contact, email, address, created)
            changes[first_day].append(row)
            if (p.old_email or p.old_address) and rng.random() < 0.6:  # they told us about the change
                day = rng.choice(self.days)
                change_ts = _at(day, rng)
                late = rng.random() < 0.15 and day != self.days[-1]  # delivered a day late
                changes[day + timedelta(days=1) if late else day].append(
                    self._crm_row(rng, "U", change_ts, contact, p.email, p.address, created)
                )
            if rng.random() < 0.005:
                day = rng.choice(self.days[1:] or self.days)
                changes[day].append(self._crm_row(rng, "D", _at(day, rng), contact, email, address, created))
        for day in self.days:
            rows = changes[day]
            bad = [["U", "yesterday", f"C{9 * 10**7 + i}"] + [""] * 11 for i in range(len(rows) // 500)]
            bad += [["I", _ts(_at(day, rng)), ""] + ["Nobody"] + [""] * 10 for _ in range(len(rows) // 700)]
            out.write_csv(day, CRM_HEADER, rows + bad, bad_rows=len(bad))

    def _crm_row(self, rng, op, change_ts, contact: Contact, email, address, created) -> list:
        p = contact.person
        drop = rng.random
        return [
            op,
            _ts(change_ts),
            contact.contact_id,
            first_name_variant(rng, p),
            last_name_variant(rng, p),
            email.strip().lower() if drop() > 0.03 else "",
            phone_variant(rng, p) if drop() > 0.1 else "",
            p.birth_date.isoformat() if drop() > 0.3 else "",
            address.render(rng),
            address.place.city,
            address.postcode,
            address.place.country,
            p.loyalty_card_id or "",
            _ts(created),
        ]

    # --- e-commerce: orders (upserted) and order lines (events) ---------------------------
    def shop(self) -> None:
        rng = self.rng("shop")
        orders_out = self.deliveries("shop_orders", "shop/orders", "orders")
        lines_out = self.deliveries("shop_order_lines", "shop/order_lines", "order_lines")
        n = 0
        redeliveries: dict[date, list[dict]] = {d: [] for d in self.days}
        for i, day in enumerate(self.days):
            orders, lines = [], []
            for person in self.people:
                history = rng.choice([0, 0, 1, 1, 1, 2, 2, 3, 4, 6]) if i == 0 else 0
                count = history + (1 if rng.random() < 0.01 else 0)
                for k in range(count):
                    n += 1
                    placed = _at(day, rng) - (timedelta(days=rng.randint(1, 720)) if k < history else timedelta())
                    order = self._order(rng, f"O{n:09d}", person, placed)
                    orders.append(order)
                    self.truth.record("shop_orders", order["order_id"], person)
                    for line_number in range(1, rng.randint(1, 4) + 1):
                        sku, name, category, price = rng.choice(CATALOGUE)
                        lines.append(
                            {
                                "order_id": order["order_id"],
                                "line_number": line_number,
                                "sku": sku,
                                "product_name": name,
                                "category": category,
                                "quantity": rng.choice([1, 1, 1, 2, 3]),
                                "unit_price": price,
                                "order_ts": order["order_ts"],
                            }
                        )
                    if order["status"] == "completed" and rng.random() < 0.05:  # refunded later
                        later = self.days[rng.randrange(i, len(self.days))]
                        refunded_at = max(_at(later, rng), placed + timedelta(hours=1))
                        redeliveries[later].append({**order, "status": "refunded", "updated_at": _ts(refunded_at)})
            orders += redeliveries[day]
            bad = [f'{{"order_id": "BAD{n}{j}", "total_amount": ' for j in range(len(orders) // 1000)]
            orders_out.write_jsonl(day, orders + bad)
            lines_out.write_jsonl(day, lines)

    def _order(self, rng, order_id: str, person: Person, placed: datetime) -> dict:
        contact = self.contact_of.get(person.person_id)
        return {
            "order_id": order_id,
            "crm_contact_id": contact if contact and rng.random() < 0.6 else None,
            "customer_email": email_variant(rng, person),
            "order_ts": _ts(placed),
            "channel": rng.choice(["web", "web", "app"]),
            "currency": {"GB": "GBP", "IE": "EUR", "DE": "EUR", "FR": "EUR", "US": "USD"}[person.place.country],
            "total_amount": round(rng.uniform(5, 400), 2),
            "status": rng.choice(["completed"] * 8 + ["cancelled", "pending"]),
            "shipping_postcode": address_variant(rng, person).postcode if rng.random() < 0.9 else None,
            "updated_at": _ts(placed),
        }

    # --- stores: point-of-sale transactions -----------------------------------------------
    def pos(self) -> None:
        out = self.deliveries("pos_transactions", "store/transactions", "pos")
        header = [
            "transaction_id",
            "store_id",
            "loyalty_card_id",
            "transaction_ts",
            "total_amount",
            "currency",
            "payment_method",
            "item_count",
        ]
        card_holders = [p for p in self.people if p.loyalty_card_id]
        for day in self.days:
            rng, rows = self.rng("pos", day), []
            for person in card_holders:
                if rng.random() < 0.03:
                    rows.append(self._pos_row(rng, day, len(rows), person))
            for _ in range(max(1, len(self.people) // 200)):  # shoppers without a card
                rows.append(self._pos_row(rng, day, len(rows), None))
            bad = [
                [f"BAD{day:%Y%m%d}{j}", "S001", "", _ts(_at(day, rng)), "12,50", "GBP", "card", "1"]
                for j in range(len(rows) // 1000)
            ]
            out.write_csv(day, header, rows + bad, bad_rows=len(bad))

    def _pos_row(self, rng, day: date, index: int, person: Person | None) -> list:
        transaction_id = f"T{day:%Y%m%d}{index:07d}"
        if person:
            self.truth.record("pos_transactions", transaction_id, person)
        return [
            transaction_id,
            f"S{rng.randint(1, 40):03d}",
            person.loyalty_card_id if person else "",
            _ts(_at(day, rng)),
            f"{rng.uniform(2, 150):.2f}",
            "GBP",
            rng.choice(["card", "card", "cash", "mobile"]),
            rng.randint(1, 9),
        ]

    # --- support tickets (re-delivered when resolved) -------------------------------------
    def support(self) -> None:
        out = self.deliveries("support_tickets", "support/tickets", "tickets")
        n = 0
        resolved_later: dict[date, list[dict]] = {d: [] for d in self.days}
        for i, day in enumerate(self.days):
            rng, tickets = self.rng("support", day), []
            for person in self.people:
                if rng.random() >= 0.004:
                    continue
                n += 1
                created = _at(day, rng)
                contact = self.contact_of.get(person.person_id)
                ticket = {
                    "ticket_id": f"TK{n:08d}",
                    "crm_contact_id": contact if contact and rng.random() < 0.5 else None,
                    "customer_email": email_variant(rng, person),
                    "channel": rng.choice(["email", "phone", "chat", "web_form"]),
                    "category": rng.choice(["delivery", "returns", "billing", "product", "account"]),
                    "priority": rng.choice(["low", "normal", "normal", "high", "urgent"]),
                    "status": "open",
                    "created_at": _ts(created),
                    "first_response_at": None,
                    "resolved_at": None,
                    "updated_at": _ts(created),
                }
                tickets.append(ticket)
                self.truth.record("support_tickets", ticket["ticket_id"], person)
                responded = created + timedelta(minutes=rng.randint(5, 60 * 30))
                resolved = responded + timedelta(minutes=rng.randint(10, 60 * 72))
                solved = {
                    **ticket,
                    "status": "solved",
                    "first_response_at": _ts(responded),
                    "resolved_at": _ts(resolved),
                    "updated_at": _ts(resolved),
                }
                later = min(i + (resolved.date() - day).days, len(self.days) - 1)
                resolved_later[self.days[later]].append(solved)
            out.write_jsonl(day, tickets + resolved_later[day])

    # --- web and app clickstream ----------------------------------------------------------
    def web(self) -> None:
        out = self.deliveries("web_events", "web/events", "clickstream")
        with (self.truth_dir / "anonymous_ids.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["anonymous_id", "person_id"])
            rng = self.rng("devices")
            for person in self.people:
                person.anonymous_ids = [f"anon-{rng.getrandbits(64):016x}" for _ in range(rng.choice([1, 1, 2, 3]))]
                writer.writerows([a, person.person_id] for a in person.anonymous_ids)
        for day in self.days:
            rng, events = self.rng("web", day), []
            for person in self.people:
                if rng.random() < 0.15:
                    contact = self.contact_of.get(person.person_id)
                    user_id = contact if contact and rng.random() < 0.5 else None
                    self._session(
                        rng,
                        day,
                        events,
                        rng.choice(person.anonymous_ids),
                        user_id,
                        person.place.city,
                        person.place.country,
                    )
            for _ in range(len(self.people) // 10):  # visitors we never get to know
                place = rng.choice(PLACES)
                self._session(rng, day, events, f"anon-{rng.getrandbits(64):016x}", None, place.city, place.country)
            events += ['{"event_id": "broken' for _ in range(len(events) // 2000)]
            out.write_jsonl(day, events, compress=True)

    def _session(self, rng, day, events: list, anonymous_id: str, user_id: str | None, city: str, country: str):
        platform = rng.choice(["web", "web", "ios", "android"])
        device = "desktop" if platform == "web" and rng.random() < 0.6 else rng.choice(["mobile", "tablet"])
        session_id = f"s-{rng.getrandbits(48):012x}"
        moment = _at(day, rng)
        kinds = ["app_open"] if platform != "web" else []
        kinds += ["login"] if user_id else []
        kinds += rng.choices(["page_view", "product_view", "search", "add_to_cart"], [5, 3, 1, 1], k=rng.randint(2, 8))
        if "add_to_cart" in kinds and rng.random() < 0.3:
            kinds += ["checkout", "purchase"]
        for kind in kinds:
            moment += timedelta(seconds=rng.randint(3, 240))
            events.append(
                {
                    "event_id": f"e-{rng.getrandbits(64):016x}",
                    "anonymous_id": anonymous_id,
                    "user_id": user_id if kind != "app_open" or user_id else None,
                    "session_id": session_id,
                    "event_type": kind,
                    "platform": platform,
                    "page_url": f"https://shop.example.com{rng.choice(PAGES)}" if platform == "web" else None,
                    "referrer": rng.choice([None, "https://www.google.com/", "https://t.co/x", "email"]),
                    "device_type": device,
                    "user_agent": rng.choice(USER_AGENTS[platform]),
                    "ip_city": city if rng.random() < 0.85 else rng.choice(PLACES).city,
                    "ip_country": country,
                    "event_ts": _ts(moment),
                }
            )

    # --- email engagement -----------------------------------------------------------------
    def email(self) -> None:
        out = self.deliveries("email_events", "email/events", "esp_events")
        header = ["event_id", "campaign_id", "email", "event_type", "link_url", "anonymous_id", "event_ts"]
        subscribed = {p.person_id for p in self.people if self.rng("optin").random() < 0.8}
        n = 0
        for i, day in enumerate(self.days):
            rng, rows = self.rng("email", day), []
            if i % 2:
                out.write_csv(day, header, [])
                continue
            campaign = f"CMP-{day:%Y%m%d}"
            for person in self.people:
                if person.person_id not in subscribed:
                    continue
                address = person.old_email if person.old_email and rng.random() < 0.2 else person.email
                sent = _at(day, rng)
                n += 1
                rows.append([f"EV{n:010d}", campaign, address, "send", "", "", _ts(sent)])
                roll = rng.random()
                if roll < 0.01:
                    n += 1
                    rows.append([f"EV{n:010d}", campaign, address, "bounce", "", "", _ts(sent + timedelta(seconds=30))])
                    continue
                if roll < 0.30:
                    n += 1
                    opened = sent + timedelta(minutes=rng.randint(1, 600))
                    rows.append([f"EV{n:010d}", campaign, address, "open", "", "", _ts(opened)])
                    if roll < 0.10:
                        n += 1
                        rows.append(
                            [
                                f"EV{n:010d}",
                                campaign,
                                address,
                                "click",
                                f"https://shop.example.com/{campaign}",
                                person.anonymous_ids[0],
                                _ts(opened + timedelta(seconds=rng.randint(2, 300))),
                            ]
                        )
                    if roll < 0.013:
                        n += 1
                        rows.append(
                            [
                                f"EV{n:010d}",
                                campaign,
                                address,
                                "unsubscribe",
                                "",
                                "",
                                _ts(opened + timedelta(minutes=2)),
                            ]
                        )
                        subscribed.discard(person.person_id)
            bad = [[f"BADEV{day:%Y%m%d}{j}", campaign, "", "send", "", "", _ts(sent)] for j in range(len(rows) // 2000)]
            out.write_csv(day, header, rows + bad, bad_rows=len(bad))

    # --- surveys: NPS, CSAT, CES ----------------------------------------------------------
    def surveys(self) -> None:
        out = self.deliveries("survey_responses", "surveys/responses", "responses")
        ranges = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}
        n = 0
        for day in self.days:
            rng, responses = self.rng("surveys", day), []
            for person in self.people:
                if rng.random() >= 0.005:
                    continue
                n += 1
                kind = rng.choice(list(ranges))
                contact = self.contact_of.get(person.person_id)
                response = {
                    "response_id": f"R{n:08d}",
                    "survey_type": kind,
                    "score": rng.randint(*ranges[kind]),
                    "respondent_email": email_variant(rng, person) if rng.random() < 0.8 else None,
                    "crm_contact_id": contact if contact and rng.random() < 0.5 else None,
                    "touchpoint": rng.choice(["relationship", "post_purchase", "support"]),
                    "comment": rng.choice(COMMENTS) or None,
                    "submitted_at": _ts(_at(day, rng)),
                }
                responses.append(response)
                self.truth.record("survey_responses", response["response_id"], person)
            bad = [
                json.dumps(
                    {
                        "response_id": f"RBAD{day:%Y%m%d}{j}",
                        "survey_type": "NPS",
                        "score": 11,
                        "submitted_at": _ts(_at(day, rng)),
                    }
                )
                for j in range(max(1, len(responses) // 300))
            ]
            out.write_jsonl(day, responses + bad)

    # --- consent: a consent-management platform and a preference centre -----------------------
    def consent(self) -> None:
        """The first delivery is the consent platform's initial export (ad targeting asked at
        sign-up, so about half granted it); later days carry the changes people make: a
        withdrawal, a grant again, the same choice from two systems at different times."""
        out = self.deliveries("consent_events", "consent/events", "consent")
        sources = {"cmp": "consent_platform", "prefs": "preference_centre"}
        n = 0

        def event(rng, person: Person, day: date, purpose: str, status: str, source: str) -> dict:
            nonlocal n
            n += 1
            contact = self.contact_of.get(person.person_id)
            use_contact = contact is not None and rng.random() < 0.3
            return {
                "event_id": f"CE{n:09d}",
                "email": None if use_contact else email_variant(rng, person),
                "crm_contact_id": contact if use_contact else None,
                "purpose": purpose,
                "status": status,
                "legal_basis": "consent",
                "channel": rng.choice(["web_form", "app", "email_link"]),
                "source_system": sources[source],
                "occurred_at": _ts(_at(day, rng)),
            }

        for i, day in enumerate(self.days):
            rng, events = self.rng("consent", day), []
            for person in self.people:
                if i == 0:
                    if rng.random() < 0.5:
                        events.append(event(rng, person, day, "ad_targeting", "granted", "cmp"))
                    continue
                roll = rng.random()
                if roll < 0.01:
                    purpose = rng.choice(["ad_targeting", "personalisation", "profiling", "sms_marketing"])
                    events.append(event(rng, person, day, purpose, "withdrawn", rng.choice(list(sources))))
                elif roll < 0.02:
                    events.append(event(rng, person, day, "ad_targeting", "granted", rng.choice(list(sources))))
            bad = [
                json.dumps(
                    {
                        "event_id": f"CEBAD{day:%Y%m%d}{j}",
                        "purpose": "ad_targeting",
                        "status": "granted",
                        "source_system": "consent_platform",
                        "occurred_at": _ts(_at(day, rng)),
                    }
                )
                for j in range(max(1, len(events) // 500))
            ]
            out.write_jsonl(day, events + bad)

    # --- third-party enrichment -----------------------------------------------------------
    def enrichment(self) -> None:
        rng, out = self.rng("vendor"), self.deliveries("enrichment_demographics", "vendor/demographics", "demographics")
        header = [
            "REC_ID",
            "EMAIL_SHA256",
            "ADDR_LINE_1",
            "POST_CD",
            "AGE_BAND",
            "HH_INCOME_BAND",
            "HOMEOWNER_FLG",
            "NUM_CHILDREN",
            "DELIVERY_DT",
        ]
        day, rows = self.days[0], []
        for person in self.people:
            if rng.random() >= 0.6:
                continue
            age = REFERENCE_DATE.year - person.birth_date.year
            band = next(
                b
                for limit, b in [
                    (24, "18-24"),
                    (34, "25-34"),
                    (44, "35-44"),
                    (54, "45-54"),
                    (64, "55-64"),
                    (200, "65+"),
                ]
                if age <= limit
            )
            by_email = rng.random() < 0.7
            record_id = f"VX{len(rows) + 1:09d}"
            rows.append(
                [
                    record_id,
                    hashlib.sha256(person.email.encode()).hexdigest() if by_email else "",
                    "" if by_email else person.address.render(rng).upper(),
                    "" if by_email else person.address.postcode,
                    band,
                    rng.choice(["<25k", "25-50k", "50-75k", "75-100k", "100k+"]),
                    rng.choice(["Y", "N"]),
                    rng.choice([0, 0, 1, 2, 3]),
                    f"{day:%Y%m%d}",
                ]
            )
            self.truth.record("enrichment_demographics", record_id, person)
        out.write_csv(day, header, rows)

    # --- external: social mentions and postal reference -----------------------------------
    def social(self) -> None:
        out = self.deliveries("social_mentions", "social/mentions", "mentions")
        with_handles = [p for p in self.people if p.handle]
        texts = [
            "Loving my new hoodie from @shop",
            "@shop where is my parcel??",
            "Great support from @shop today",
            "Anyone else had issues with @shop checkout?",
            "@shop sale is on 🔥",
        ]
        n = 0
        for day in self.days:
            rng, mentions = self.rng("social", day), []
            for person in with_handles:
                if rng.random() < 0.1:
                    n += 1
                    mention = {
                        "mention_id": f"M{n:08d}",
                        "platform": rng.choice(["x", "instagram", "tiktok", "reddit"]),
                        "handle": person.handle,
                        "text": rng.choice(texts),
                        "linked_email": person.email if rng.random() < 0.2 else None,
                        "posted_at": _ts(_at(day, rng)),
                    }
                    mentions.append(mention)
                    self.truth.record("social_mentions", mention["mention_id"], person)
            for _ in range(max(1, len(self.people) // 500)):
                n += 1
                mentions.append(
                    {
                        "mention_id": f"M{n:08d}",
                        "platform": "x",
                        "handle": f"@fan{rng.randint(1, 10**6)}",
                        "text": rng.choice(texts),
                        "linked_email": None,
                        "posted_at": _ts(_at(day, rng)),
                    }
                )
            out.write_jsonl(day, mentions)

    def postal_codes(self) -> None:
        out = self.deliveries("postal_codes", "reference/postal_codes", "postal_codes")
        seen: dict[tuple[str, str], object] = {}
        for person in self.people:
            for address in (person.address, person.old_address):
                if address is not None:
                    seen.setdefault((address.place.country, address.postcode), address.place)
        rng = self.rng("postal")
        rows = [
            [
                country,
                postcode,
                place.city,
                place.region,
                round(place.latitude + rng.uniform(-0.05, 0.05), 5),
                round(place.longitude + rng.uniform(-0.05, 0.05), 5),
            ]
            for (country, postcode), place in sorted(seen.items())
        ]
        out.write_csv(self.days[0], ["country", "postcode", "city", "region", "latitude", "longitude"], rows)

    # Euro reference rates (1 EUR = rate units), one per business day, as central banks publish.
    RATES: ClassVar[dict[str, tuple[float, int]]] = {"GBP": (0.85, 5), "USD": (1.08, 4)}  # start, decimals
    RATE_HISTORY_DAYS = 740  # the oldest order is 720 days before the first delivery

    def exchange_rates(self) -> None:
        out = self.deliveries("exchange_rates", "reference/exchange_rates", "eurofxref")
        rng = self.rng("exchange_rates")
        level = {currency: start for currency, (start, _) in self.RATES.items()}
        first = self.days[0] - timedelta(days=self.RATE_HISTORY_DAYS)
        by_delivery: dict[date, list[list]] = {d: [] for d in self.days}
        for offset in range((self.days[-1] - first).days + 1):
            day = first + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for currency, (_, decimals) in self.RATES.items():
                level[currency] *= 1 + rng.gauss(0, 0.004)
                by_delivery[max(day, self.days[0])].append(
                    [day.isoformat(), "EUR", currency, f"{level[currency]:.{decimals}f}"]
                )
        header = ["rate_date", "base_currency", "quote_currency", "rate"]
        for day in self.days:
            bad = [[day.isoformat(), "EUR", "JPY", "N/A"]] if day == self.days[0] else []  # no rate that day
            out.write_csv(day, header, by_delivery[day] + bad, bad_rows=len(bad))

    def write_people(self) -> None:
        with (self.truth_dir / "people.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["person_id", "household_id", "first_name", "last_name", "birth_date", "email"])
            writer.writerows(
                [p.person_id, p.household_id, p.first_name, p.last_name, p.birth_date.isoformat(), p.email]
                for p in self.people
            )

    def run(self, withhold_last_days: int = 0) -> LandingZone:
        """Write every day's deliveries, then withhold the last ``withhold_last_days`` of them
        (they have not arrived yet; generating again without withholding delivers them and
        leaves the earlier files untouched)."""
        if not 0 <= withhold_last_days < len(self.days):
            raise ValueError(
                f"can withhold 0 to {len(self.days) - 1} of {len(self.days)} days, not {withhold_last_days}"
            )
        delivered = self.days[: len(self.days) - withhold_last_days]
        steps = [
            self.crm,
            self.shop,
            self.pos,
            self.support,
            self.web,
            self.email,
            self.surveys,
            self.consent,
            self.enrichment,
            self.social,
            self.postal_codes,
            self.exchange_rates,
            self.write_people,
        ]
        try:
            for step in steps:
                started = time.monotonic()
                step()
                log.info("generated %s in %.1fs", step.__name__, time.monotonic() - started)
        finally:
            self.truth.close()
        for deliveries in self.sources.values():
            deliveries.withhold_after(delivered[-1])
        sources = {name: d.summary(through=delivered[-1]) for name, d in self.sources.items()}
        (self.truth_dir / "manifest.json").write_text(
            json.dumps(
                {
                    "seed": self.seed,
                    "customers": len(self.people),
                    "days": [d.isoformat() for d in delivered],
                    "withheld_days": [d.isoformat() for d in self.days[len(delivered) :]],
                    "sources": sources,
                },
                indent=2,
            )
        )
        return LandingZone(
            self.landing, self.truth_dir, sources, len(self.people), len({p.household_id for p in self.people})
        )


def generate(
    out_dir: Path, truth_dir: Path, customers: int, seed: int, days: int = 7, withhold_last_days: int = 0
) -> LandingZone:
    zone = Generator(out_dir, truth_dir, customers, seed, days).run(withhold_last_days)
    log.info(
        "landing zone for %d people in %d households: %s -> %s",
        zone.people,
        zone.households,
        ", ".join(f"{k}={v['rows']}" for k, v in zone.sources.items()),
        out_dir,
    )
    return zone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=7, help=f"daily deliveries ending on {REFERENCE_DATE}")
    parser.add_argument("--out", type=Path, required=True, help="landing zone root")
    parser.add_argument(
        "--withhold-last-days",
        type=int,
        default=0,
        help="generate all days but deliver only the earlier ones (an incremental run's test)",
    )
    parser.add_argument("--truth-dir", type=Path, help="where the hidden truth goes; default <out>/../truth")
    args = parser.parse_args(argv)
    configure_logging()
    generate(
        args.out,
        args.truth_dir or args.out.parent / "truth",
        args.customers,
        args.seed,
        args.days,
        args.withhold_last_days,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
