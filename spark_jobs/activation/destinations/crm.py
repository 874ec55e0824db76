"""A CRM with a Salesforce-style REST API (sObject Collections).

Upsert: ``PATCH /services/data/<v>/composite/sobjects/<Object>/<ExternalIdField>`` with up to 200
records and ``allOrNone: false``; the response has one result per record, in order. Remove:
``DELETE /services/data/<v>/composite/sobjects?ids=...`` with the CRM ids the upserts returned
(kept in the sync state). A record that is already gone counts as removed.

    destination: {type: crm, object: Contact, base_url_env: CDP_CRM_BASE_URL, token_env: CDP_CRM_TOKEN}

Authentication: a bearer token from ``token_env``, or OAuth 2.0 (``auth: {type:
oauth_client_credentials | oauth_refresh_token, ...}``, see oauth.py), refreshed once on a 401.

The org's API budget is shared with every other integration. Each answer's ``Sforce-Limit-Info:
api-usage=<used>/<daily limit>`` is read: past ``slow_down_at`` of the limit (default 0.9) the
sync slows to ``near_limit_requests_per_second`` (default 1) and warns; past ``stop_at``
(default 0.95) it sends nothing more this run: the records left fail with the reason and are
planned again by the next run, and the rest of the budget is left to the others.
"""

from __future__ import annotations

import logging

from spark_jobs.activation.credentials import credential
from spark_jobs.activation.destinations.base import (
    DELIVERY_ERRORS,
    Change,
    Destination,
    HttpApi,
    Outcome,
    delivery_error,
)
from spark_jobs.activation.destinations.oauth import oauth_auth

log = logging.getLogger(__name__)

ALREADY_GONE = {"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"}
# Salesforce answers an exhausted API budget or too many concurrent requests with this 403
# (not 429), and no Retry-After: back off and retry.
LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
# Record-level status codes (Salesforce's StatusCode) that refuse the record for its content:
# the same record is refused again, so it is not resent until it changes.
REFUSED_FOR_CONTENT = {
    "REQUIRED_FIELD_MISSING",
    "INVALID_EMAIL_ADDRESS",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "FIELD_INTEGRITY_EXCEPTION",
    "STRING_TOO_LONG",
    "INVALID_TYPE_ON_FIELD_IN_RECORD",
    "NUMBER_OUTSIDE_VALID_RANGE",
    "DUPLICATE_VALUE",
    "DUPLICATES_DETECTED",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
}
SLOW_DOWN_AT, STOP_AT = 0.9, 0.95  # shares of the org's daily API requests (Sforce-Limit-Info)


def limit_exceeded(response) -> bool:
    return response.status_code == 403 and _error_code(response) == LIMIT_EXCEEDED


def api_usage(response) -> tuple[int, int] | None:
    """(used, limit) from ``Sforce-Limit-Info: api-usage=25/5000``."""
    for part in response.headers.get("Sforce-Limit-Info", "").split(","):
        name, _, value = part.strip().partition("=")
        used, _, limit = value.partition("/")
        if name == "api-usage" and used.isdigit() and limit.isdigit():
            return int(used), int(limit)
    return None


class CrmDestination(Destination):
    default_batch_size = 200  # the sObject Collections limit

    def __init__(self, sync, run_id, settings) -> None:
        super().__init__(sync, run_id, settings)
        self.object = self.config.get("object", "Contact")
        self.root = f"/services/data/{self.config.get('api_version', 'v61.0')}/composite/sobjects"
        base_url = credential(self.config.get("base_url_env", "CDP_CRM_BASE_URL"))
        if self.config.get("auth"):
            where = f"sync '{sync.name}' destination"
            options = {"auth": oauth_auth(self.config["auth"], base_url, where)}
        else:
            token = credential(self.config.get("token_env", "CDP_CRM_TOKEN"))
            options = {"headers": {"Authorization": f"Bearer {token}"}}
        self.api = HttpApi.for_destination(base_url, self, throttled=limit_exceeded, **options)
        self.slow_down_at = float(self.config.get("slow_down_at", SLOW_DOWN_AT))
        self.stop_at = float(self.config.get("stop_at", STOP_AT))
        self.near_limit_rate = float(self.config.get("near_limit_requests_per_second", 1))
        self.usage: tuple[int, int] | None = None

    def _note_usage(self, response) -> None:
        """Keep the org's API usage from every answer (the sync log reports the last); slow
        down past ``slow_down_at`` of the daily limit."""
        usage = api_usage(response)
        if usage is None:
            return
        used, limit = usage
        if limit and used >= self.slow_down_at * limit and self.api.rate_per_second > self.near_limit_rate:
            log.warning("the CRM's daily API requests are at %d of %d", used, limit)
            self.api.slow_down(self.near_limit_rate)
        self.usage = usage

    def _budget_spent(self, changes: list[Change]) -> list[Outcome] | None:
        """Failed outcomes when the org's usage passed ``stop_at``: not one more request."""
        if self.usage and self.usage[1] and self.usage[0] >= self.stop_at * self.usage[1]:
            used, limit = self.usage
            return self.failed(changes, f"not sent: the CRM's daily API requests are at {used} of {limit}")
        return None

    def upsert(self, changes: list[Change]) -> list[Outcome]:
        spent = self._budget_spent(changes)
        if spent:
            return spent
        records = [{"attributes": {"type": self.object}, **c.fields, self.sync.destination_key: c.key} for c in changes]
        try:
            response = self.api.request(
                "PATCH",
                f"{self.root}/{self.object}/{self.sync.destination_key}",
                json={"allOrNone": False, "records": records},
            )
        except DELIVERY_ERRORS as error:
            return self.failed(changes, delivery_error(error))
        self._note_usage(response)
        if response.status_code != 200:
            return self.failed(changes, f"HTTP {response.status_code}: {_error_code(response)}")
        results = response.json()
        return [
            Outcome(c.key, True, r.get("id"))
            if r.get("success")
            else Outcome(c.key, False, c.destination_id, _errors(r), permanent=_refused_for_content(r))
            for c, r in zip(changes, results, strict=True)
        ]

    def remove(self, changes: list[Change]) -> list[Outcome]:
        known = [c for c in changes if c.destination_id]
        outcomes = [Outcome(c.key, True) for c in changes if not c.destination_id]  # never created
        if not known:
            return outcomes
        spent = self._budget_spent(known)
        if spent:
            return outcomes + spent
        try:
            response = self.api.request(
                "DELETE", self.root, params={"ids": ",".join(c.destination_id for c in known), "allOrNone": "false"}
            )
        except DELIVERY_ERRORS as error:
            return outcomes + self.failed(known, delivery_error(error))
        self._note_usage(response)
        if response.status_code != 200:
            return outcomes + self.failed(known, f"HTTP {response.status_code}: {_error_code(response)}")
        for change, result in zip(known, response.json(), strict=True):
            codes = {e.get("statusCode") for e in result.get("errors", [])}
            gone = result.get("success") or (codes and codes <= ALREADY_GONE)
            outcomes.append(
                Outcome(change.key, True)
                if gone
                else Outcome(change.key, False, change.destination_id, _errors(result))
            )
        return outcomes

    def close(self) -> dict:
        self.api.close()
        usage = {"api_usage": f"{self.usage[0]}/{self.usage[1]}"} if self.usage else {}
        return {"retries": self.api.retries, **usage}


def _refused_for_content(result: dict) -> bool:
    codes = {e.get("statusCode") for e in result.get("errors", [])}
    return bool(codes) and codes <= REFUSED_FOR_CONTENT


def _errors(result: dict) -> str:
    return "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors", [])) or "rejected"


def _error_code(response) -> str:
    try:
        body = response.json()
        first = body[0] if isinstance(body, list) and body else body
        return str(first.get("errorCode") or first.get("message") or "")[:200]
    except (ValueError, AttributeError):
        return response.reason_phrase
