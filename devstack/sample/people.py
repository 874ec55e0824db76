"""The hidden population behind the sample sources, and the ways silos garble it.

A :class:`Person` is the truth; every source system sees a *variant* of them: a nickname or
a typo in the name, an old email, the phone in another format, an address before the move
or written with abbreviations. People live in households (same address, often the same
surname): household members are different people and must never be merged.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date

UK_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a UK postcode's inward code uses

FIRST_NAMES = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Ava",
    "William",
    "Mia",
    "Benjamin",
    "Evelyn",
    "Lucas",
    "Harper",
    "Henry",
    "Camila",
    "Theodore",
    "Robert",
    "Elizabeth",
    "Katherine",
    "Michael",
    "Zoë",
    "José",
    "Chloé",
    "Søren",
    "Aoife",
    "Mateus",
    "Margaret",
    "Richard",
    "Jennifer",
    "Thomas",
    "Daniel",
    "Alexander",
    "Charlotte",
    "Joseph",
    "Anthony",
    "Patricia",
    "Susan",
    "Christopher",
    "Rebecca",
    "Samuel",
    "Victoria",
    "Nicholas",
    "Jonathan",
    "Frederick",
]
NICKNAMES = {
    "Robert": ["Bob", "Rob", "Bobby"],
    "Elizabeth": ["Liz", "Beth", "Lizzie"],
    "William": ["Bill", "Will"],
    "Katherine": ["Kate", "Kathy"],
    "Michael": ["Mike", "Mick"],
    "James": ["Jim", "Jimmy"],
    "Benjamin": ["Ben"],
    "Theodore": ["Ted", "Theo"],
    "Isabella": ["Bella", "Izzy"],
    "Olivia": ["Liv"],
    "Margaret": ["Maggie", "Peggy"],
    "Richard": ["Rick", "Dick"],
    "Jennifer": ["Jen", "Jenny"],
    "Thomas": ["Tom"],
    "Daniel": ["Dan", "Danny"],
    "Alexander": ["Alex"],
    "Charlotte": ["Charlie"],
    "Joseph": ["Joe"],
    "Anthony": ["Tony"],
    "Patricia": ["Pat", "Trish"],
    "Susan": ["Sue"],
    "Christopher": ["Chris"],
    "Rebecca": ["Becky"],
    "Samuel": ["Sam"],
    "Victoria": ["Vicky"],
    "Nicholas": ["Nick"],
    "Jonathan": ["Jon"],
    "Frederick": ["Fred"],
}
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "O'Brien",
    "Müller",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Silva",
    "Jensen",
    "Jackson",
    "White",
    "Harris",
    "Martin",
    "Thompson",
    "Clarke",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
]
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "example.org"]
STREETS = [
    "High",
    "Church",
    "Station",
    "Victoria",
    "Park",
    "Mill",
    "Green",
    "Manor",
    "Kings",
    "Queens",
    "North",
    "South",
    "West",
    "London",
    "Albert",
    "Grange",
    "Springfield",
    "Windsor",
    "York",
    "Oak",
]
STREET_TYPES = [("Street", "St"), ("Road", "Rd"), ("Avenue", "Ave"), ("Lane", "Ln"), ("Drive", "Dr")]


@dataclass(frozen=True)
class Place:
    city: str
    region: str
    country: str
    calling_code: str
    postcode_prefix: str
    latitude: float
    longitude: float


PLACES = [
    Place("London", "Greater London", "GB", "44", "N1", 51.5072, -0.1276),
    Place("Manchester", "Greater Manchester", "GB", "44", "M1", 53.4808, -2.2426),
    Place("Leeds", "West Yorkshire", "GB", "44", "LS1", 53.8008, -1.5491),
    Place("Bristol", "South West", "GB", "44", "BS1", 51.4545, -2.5879),
    Place("Dublin", "Leinster", "IE", "353", "D02", 53.3498, -6.2603),
    Place("Berlin", "Berlin", "DE", "49", "101", 52.5200, 13.4050),
    Place("Paris", "Île-de-France", "FR", "33", "750", 48.8566, 2.3522),
    Place("New York", "NY", "US", "1", "100", 40.7128, -74.0060),
    Place("Austin", "TX", "US", "1", "787", 30.2672, -97.7431),
]


@dataclass(frozen=True)
class Address:
    number: int
    street: str
    street_type: int  # index into STREET_TYPES
    unit: int | None
    place: Place
    postcode: str

    def render(self, rng: random.Random) -> str:
        """As a person or clerk writes it: full or abbreviated street type, unit in front or behind."""
        long_type, short_type = STREET_TYPES[self.street_type]
        street = f"{self.number} {self.street} {short_type if rng.random() < 0.4 else long_type}"
        if self.unit is None:
            return street
        return f"Flat {self.unit}, {street}" if rng.random() < 0.5 else f"{street} Apt {self.unit}"


@dataclass
class Person:
    person_id: str
    household_id: str
    first_name: str
    last_name: str
    birth_date: date
    email: str
    old_email: str | None
    phone_national: str  # digits after the country code
    address: Address
    old_address: Address | None
    loyalty_card_id: str | None
    handle: str | None
    anonymous_ids: list[str] = field(default_factory=list)

    @property
    def place(self) -> Place:
        return self.address.place


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _email(rng: random.Random, first: str, last: str, n: int) -> str:
    local = ascii_fold(f"{first}.{last}").lower().replace("'", "").replace(" ", "")
    style = rng.random()
    if style < 0.3:
        local = local.replace(".", "")
    elif style < 0.5:
        local = f"{local[0]}{local.split('.')[-1]}"
    return f"{local}{n}@{rng.choice(EMAIL_DOMAINS)}"


def _address(rng: random.Random, place: Place | None = None) -> Address:
    place = place or rng.choice(PLACES)
    postcode = (
        f"{place.postcode_prefix}{rng.randint(0, 9)}"
        if place.country in ("US", "DE", "FR")
        else f"{place.postcode_prefix} {rng.randint(1, 9)}"
        + rng.choice(UK_INWARD_LETTERS)
        + rng.choice(UK_INWARD_LETTERS)
    )
    return Address(
        rng.randint(1, 250),
        rng.choice(STREETS),
        rng.randrange(len(STREET_TYPES)),
        rng.randint(1, 12) if rng.random() < 0.2 else None,
        place,
        postcode,
    )


def make_population(rng: random.Random, count: int) -> list[Person]:
    """``count`` people; about 45% share a household with one to three others."""
    people: list[Person] = []
    household = 0
    while len(people) < count:
        household += 1
        size = 1 if rng.random() < 0.55 else rng.choice([2, 2, 2, 3, 3, 4])
        size = min(size, count - len(people))
        address = _address(rng)
        family_name = rng.choice(LAST_NAMES)
        for member in range(size):
            i = len(people)
            last = family_name if member == 0 or rng.random() < 0.75 else rng.choice(LAST_NAMES)
            first = rng.choice(FIRST_NAMES)
            email = _email(rng, first, last, i)
            moved = rng.random() < 0.25
            people.append(
                Person(
                    person_id=f"P{i:07d}",
                    household_id=f"H{household:07d}",
                    first_name=first,
                    last_name=last,
                    birth_date=date(rng.randint(1945, 2006), rng.randint(1, 12), rng.randint(1, 28)),
                    email=email,
                    old_email=_email(rng, first, last, i + 7_000_000) if rng.random() < 0.25 else None,
                    phone_national=f"7{rng.randint(100, 999)}{rng.randint(100000, 999999)}",
                    address=address,
                    old_address=_address(rng) if moved else None,
                    loyalty_card_id=f"L{i:09d}" if rng.random() < 0.35 else None,
                    handle=f"@{ascii_fold(first).lower()}_{i}" if rng.random() < 0.05 else None,
                )
            )
    return people


# --- how systems garble a person --------------------------------------------------------


def typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 2)
    if rng.random() < 0.5:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # swap two letters
    return text[:i] + text[i + 1 :]  # drop one


def first_name_variant(rng: random.Random, person: Person) -> str:
    roll = rng.random()
    if roll < 0.12 and person.first_name in NICKNAMES:
        return rng.choice(NICKNAMES[person.first_name])
    if roll < 0.17:
        return typo(rng, person.first_name)
    if roll < 0.22:
        return ascii_fold(person.first_name).upper()
    return person.first_name


def last_name_variant(rng: random.Random, person: Person) -> str:
    roll = rng.random()
    if roll < 0.04:
        return typo(rng, person.last_name)
    if roll < 0.10:
        return ascii_fold(person.last_name).lower()
    return person.last_name


def email_variant(rng: random.Random, person: Person, old_share: float = 0.3) -> str:
    """The address a system holds: sometimes the old one, in another case, gmail dots or +tags."""
    email = person.old_email if person.old_email and rng.random() < old_share else person.email
    roll = rng.random()
    local, domain = email.split("@")
    if roll < 0.08:
        return email.upper()
    if roll < 0.13:
        return f"  {email.capitalize()} "
    if roll < 0.18 and domain == "gmail.com":
        return f"{local}+shop@{domain}"
    return email


def phone_variant(rng: random.Random, person: Person) -> str:
    """E.164, national with a trunk 0, spaced, dashed or bracketed: the same number."""
    cc, n = person.place.calling_code, person.phone_national
    style = rng.randrange(5)
    if cc == "33":
        n = n[:9]  # French numbers have 9 digits after +33 (10 would not parse)
    if cc == "1":
        n = f"512{n[-7:]}"
        return [
            f"+1 {n[:3]}-{n[3:6]}-{n[6:]}",
            f"({n[:3]}) {n[3:6]}-{n[6:]}",
            f"{n[:3]}.{n[3:6]}.{n[6:]}",
            f"+1{n}",
            f"1-{n[:3]}-{n[3:6]}-{n[6:]}",
        ][style]
    return [f"+{cc} {n[:4]} {n[4:]}", f"0{n[:4]} {n[4:]}", f"+{cc}{n}", f"00{cc} {n}", f"(0{n[:4]}) {n[4:7]}-{n[7:]}"][
        style
    ]


def address_variant(rng: random.Random, person: Person, old_share: float = 0.3) -> Address:
    return person.old_address if person.old_address and rng.random() < old_share else person.address
