"""Customer-match normalisation and hashing for ad-audience files.

The rules are the ad platforms' (Google Ads Customer Match, Meta custom audiences): an email is
trimmed and lower-cased; a phone is parsed with libphonenumber and written in E.164 (Google keeps
the leading ``+``, Meta wants digits only); both are then SHA-256 hashed, hex-encoded. A value
that does not normalise (no ``@``, an unparseable phone) is left out rather than hashed wrong.
"""

from __future__ import annotations

import hashlib

import phonenumbers

HASH_SPECS = ("google", "meta")


def normalise_email(value: str | None) -> str | None:
    if value is None:
        return None
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    return email if local and domain and "." in domain and " " not in email else None


def normalise_phone(value: str | None, default_region: str | None = None, spec: str = "google") -> str | None:
    if not value or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if spec == "google" else e164.lstrip("+")


def sha256_hex(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()
