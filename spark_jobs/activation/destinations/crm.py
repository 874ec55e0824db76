"""A CRM with a Salesforce-style REST API (sObject Collections).

Upsert: ``PATCH /services/data/<v>/composite/sobjects/<Object>/<ExternalIdField>`` with up to 200
records and ``allOrNone: false``; the response has one result per record, in order. Remove:
``DELETE /services/data/<v>/composite/sobjects?ids=...`` with the CRM ids the upserts returned
(kept in the sync state). A record that is already gone counts as removed.

    destination: {type: crm, object: Contact, base_url_env: CDP_CRM_BASE_URL, token_env: CDP_CRM_TOKEN}
"""

from __future__ import annotations

from spark_jobs.activation.credentials import credential
from spark_jobs.activation.destinations.base import Change, Destination, HttpApi, Outcome, delivery_error

ALREADY_GONE = {"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"}


class CrmDestination(Destination):
    default_batch_size = 200  # the sObject Collections limit

    def __init__(self, sync, run_id, settings) -> None:
        super().__init__(sync, run_id, settings)
        self.object = self.config.get("object", "Contact")
        self.root = f"/services/data/{self.config.get('api_version', 'v61.0')}/composite/sobjects"
        token = credential(self.config.get("token_env", "CDP_CRM_TOKEN"))
        self.api = HttpApi.for_destination(
            credential(self.config.get("base_url_env", "CDP_CRM_BASE_URL")),
            self,
            headers={"Authorization": f"Bearer {token}"},
        )

    def upsert(self, changes: list[Change]) -> list[Outcome]:
        records = [{"attributes": {"type": self.object}, **c.fields, self.sync.destination_key: c.key} for c in changes]
        try:
            response = self.api.request(
                "PATCH",
                f"{self.root}/{self.object}/{self.sync.destination_key}",
                json={"allOrNone": False, "records": records},
            )
        except Exception as error:
            return self.failed(changes, delivery_error(error))
        if response.status_code != 200:
            return self.failed(changes, f"HTTP {response.status_code}: {_error_code(response)}")
        results = response.json()
        return [
            Outcome(c.key, True, r.get("id"))
            if r.get("success")
            else Outcome(c.key, False, c.destination_id, _errors(r))
            for c, r in zip(changes, results, strict=True)
        ]

    def remove(self, changes: list[Change]) -> list[Outcome]:
        known = [c for c in changes if c.destination_id]
        outcomes = [Outcome(c.key, True) for c in changes if not c.destination_id]  # never created
        if not known:
            return outcomes
        try:
            response = self.api.request(
                "DELETE", self.root, params={"ids": ",".join(c.destination_id for c in known), "allOrNone": "false"}
            )
        except Exception as error:
            return outcomes + self.failed(known, delivery_error(error))
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
        return {"retries": self.api.retries}


def _errors(result: dict) -> str:
    return "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors", [])) or "rejected"


def _error_code(response) -> str:
    try:
        body = response.json()
        first = body[0] if isinstance(body, list) and body else body
        return str(first.get("errorCode") or first.get("message") or "")[:200]
    except (ValueError, AttributeError):
        return response.reason_phrase
