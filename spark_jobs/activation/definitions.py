"""Sync definitions: one YAML file per sync, so adding a sync is configuration, not code.

    name: crm_customers                  # unique; the Dagster asset is activation/<name>
    model: sync_crm__customers           # the gold dbt model the rows come from (it has an exposure)
    purpose: customer_service            # what the data is used for: only customers whose consent
                                         #   for it is granted are sent (gold.customer_consent)
    destination:
      type: crm                          # crm | email_platform | s3_audience | webhook
      ...                                # the destination's own settings (see destinations/)
    identifier: {source: customer_id, destination: CDP_Customer_Id__c}
    fields: {email: Email, first_name: FirstName}   # model column -> destination field
    required_fields:                     # destination fields the API requires, checked before sending:
      LastName: "[not provided]"         #   sent as this value when empty, or, with null,
      Email: null                        #   the row is skipped ("missing_required_field")
    mode: upsert                         # upsert | mirror | append
    remove_on_suppression: true          # upsert: remove a record once suppressed (default:
                                         #   true for the CRM; mirror always removes, append never)
    schedule: "0 6 * * *"                # cron, UTC; optional
    batch_size: 200                      # records per request (default: the destination's)
    rate_limit_per_second: 10            # requests per second to this destination

Settings that are secrets never appear here: a destination names the environment variable
that holds them (``token_env: CDP_CRM_TOKEN``), see credentials.py.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Beside the engine, as package data: a cluster that runs the job gets them with the code.
SYNCS_DIR = Path(__file__).parent / "syncs"
MODES = ("upsert", "mirror", "append")
DESTINATION_TYPES = ("crm", "email_platform", "s3_audience", "webhook")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# The purposes of the consent ledger (dbt_project.yml vars.consent_purposes, gold.customer_consent).
PURPOSES = (
    "email_marketing",
    "sms_marketing",
    "phone_marketing",
    "postal_marketing",
    "ad_targeting",
    "personalisation",
    "profiling",
    "customer_service",
)


class SyncDefinitionError(ValueError):
    """A sync definition that cannot be run as written (the message names the file and field)."""


@dataclass(frozen=True)
class SyncDefinition:
    name: str
    model: str
    purpose: str
    destination_type: str
    destination: dict[str, Any]
    source_key: str
    destination_key: str
    fields: dict[str, str]
    mode: str
    schedule: str | None = None
    batch_size: int | None = None
    rate_limit_per_second: float = 10.0
    description: str = ""
    required_fields: dict[str, str | None] = field(default_factory=dict)  # destination field -> fallback
    remove_on_suppression: bool = False  # upsert mode: a record suppressed after it was sent is removed
    path: Path | None = field(default=None, compare=False)

    @property
    def table(self) -> str:
        return f"gold.{self.model}"

    @property
    def asset_key(self) -> list[str]:
        return ["activation", self.name]

    @property
    def source_columns(self) -> list[str]:
        """The model columns a sync reads: its key, then the mapped fields (key first, once)."""
        return [self.source_key, *[c for c in self.fields if c != self.source_key]]


def _require(raw: dict, key: str, where: str, kind: type = str):
    if key not in raw or raw[key] in (None, ""):
        raise SyncDefinitionError(f"{where}: '{key}' is required")
    if not isinstance(raw[key], kind):
        raise SyncDefinitionError(f"{where}: '{key}' must be a {kind.__name__}, got {type(raw[key]).__name__}")
    return raw[key]


def parse_sync(raw: Any, where: str) -> SyncDefinition:
    """Validate one definition; every problem is reported with the file and the field."""
    if not isinstance(raw, dict):
        raise SyncDefinitionError(f"{where}: a sync definition is a mapping of settings")
    unknown = set(raw) - {
        "name",
        "model",
        "purpose",
        "destination",
        "identifier",
        "fields",
        "mode",
        "schedule",
        "batch_size",
        "rate_limit_per_second",
        "description",
        "required_fields",
        "remove_on_suppression",
    }
    if unknown:
        raise SyncDefinitionError(f"{where}: unknown setting(s) {sorted(unknown)}")
    name = _require(raw, "name", where)
    if not NAME.match(name):
        raise SyncDefinitionError(f"{where}: name '{name}' must be lower_snake_case (letters, digits, _)")
    model = _require(raw, "model", where)
    if not model.startswith("sync_"):
        raise SyncDefinitionError(f"{where}: model '{model}' must be a sync_<destination>__<object> model")
    purpose = _require(raw, "purpose", where)
    if purpose not in PURPOSES:
        raise SyncDefinitionError(f"{where}: purpose must be one of {list(PURPOSES)}, got {purpose!r}")
    destination = dict(_require(raw, "destination", where, dict))
    destination_type = destination.pop("type", None)
    if destination_type not in DESTINATION_TYPES:
        raise SyncDefinitionError(
            f"{where}: destination.type must be one of {list(DESTINATION_TYPES)}, got {destination_type!r}"
        )
    identifier = _require(raw, "identifier", where, dict)
    fields_ = _require(raw, "fields", where, dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in fields_.items()):
        raise SyncDefinitionError(f"{where}: fields map model columns to destination field names (strings)")
    mode = raw.get("mode", "upsert")
    if mode not in MODES:
        raise SyncDefinitionError(f"{where}: mode must be one of {list(MODES)}, got {mode!r}")
    batch_size = raw.get("batch_size")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise SyncDefinitionError(f"{where}: batch_size must be a positive integer")
    rate = raw.get("rate_limit_per_second", 10)
    if not isinstance(rate, (int, float)) or rate <= 0:
        raise SyncDefinitionError(f"{where}: rate_limit_per_second must be a positive number")
    required = raw.get("required_fields") or {}
    if not isinstance(required, dict) or not all(v is None or isinstance(v, str) for v in required.values()):
        raise SyncDefinitionError(f"{where}: required_fields maps destination fields to a fallback text or null")
    unmapped = sorted(set(required) - set(fields_.values()))
    if unmapped:
        raise SyncDefinitionError(f"{where}: required_fields {unmapped} are not destination fields of 'fields'")
    # A CRM keeps a record of everyone it was sent; once someone is suppressed (erased, on the
    # suppression list) that record has to go too. Other upsert destinations keep theirs unless
    # the definition says so; mirror mode removes the suppressed, append mode never removes.
    remove_on_suppression = raw.get("remove_on_suppression", destination_type == "crm" and mode != "append")
    if not isinstance(remove_on_suppression, bool):
        raise SyncDefinitionError(f"{where}: remove_on_suppression must be true or false")
    if remove_on_suppression and mode == "append":
        raise SyncDefinitionError(f"{where}: remove_on_suppression needs mode upsert or mirror (append never removes)")
    if mode == "mirror" and raw.get("remove_on_suppression") is False:
        raise SyncDefinitionError(f"{where}: a mirror sync always removes the suppressed (use mode upsert)")
    return SyncDefinition(
        name=name,
        model=model,
        purpose=purpose,
        destination_type=destination_type,
        destination=destination,
        source_key=_require(identifier, "source", f"{where}: identifier"),
        destination_key=_require(identifier, "destination", f"{where}: identifier"),
        fields=dict(fields_),
        mode=mode,
        schedule=raw.get("schedule"),
        batch_size=batch_size,
        rate_limit_per_second=float(rate),
        description=str(raw.get("description", "")).strip(),
        required_fields=dict(required),
        remove_on_suppression=remove_on_suppression or mode == "mirror",
    )


def load_syncs(directory: Path = SYNCS_DIR) -> list[SyncDefinition]:
    """Every ``*.yml`` in ``directory``, sorted by name; names must be unique."""
    syncs = []
    for path in sorted(directory.glob("*.yml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise SyncDefinitionError(f"{path.name}: not valid YAML: {error}") from error
        syncs.append(dataclasses.replace(parse_sync(raw, path.name), path=path))
    names = [s.name for s in syncs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SyncDefinitionError(f"{directory}: sync name(s) defined twice: {duplicates}")
    return sorted(syncs, key=lambda s: s.name)


def sync_by_name(name: str, directory: Path = SYNCS_DIR) -> SyncDefinition:
    syncs = {s.name: s for s in load_syncs(directory)}
    if name not in syncs:
        raise SyncDefinitionError(f"no sync named '{name}' in {directory} (known: {sorted(syncs)})")
    return syncs[name]
