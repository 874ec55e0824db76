"""A generic webhook: batches of change events as JSON, signed with HMAC-SHA256.

    POST <url>   {"sync": ..., "run_id": ..., "events": [{"event_id", "op", "type", "key", "data"}]}

``type`` is ``record.upsert`` or ``record.remove``, and ``customer.erased`` for the remove of a
person who asked to be erased (the receiver must delete whatever it holds about them).
    X-CDP-Timestamp: <unix seconds>
    X-CDP-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>
    Idempotency-Key: <SHA-256 of the batch's event ids>

``event_id`` is the same for the same change in every run (sync, key, operation, row hash), so
a receiver that drops event ids it has seen applies a change once even when a crash made us send
it again. The batch goes to exactly the configured URL (path and query string as given). Any 2xx
accepts the batch; 429/5xx/timeouts are retried; 401/403 stop the run (a wrong secret: every
batch would be refused); any other 4xx refuses the batch for what is in it, so it is split in
halves and sent again until the refused events are alone: one bad event is rejected alone, and
not sent again until it changes.

    destination: {type: webhook, url_env: CDP_WEBHOOK_URL, secret_env: CDP_WEBHOOK_SECRET}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from spark_jobs.activation.credentials import credential
from spark_jobs.activation.destinations.base import (
    DELIVERY_ERRORS,
    Change,
    Destination,
    HttpApi,
    Outcome,
    delivery_error,
)

ERASED_EVENT = "customer.erased"  # the remove of an erased person: the receiver deletes what it holds


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookDestination(Destination):
    default_batch_size = 100

    def __init__(self, sync, run_id, settings) -> None:
        super().__init__(sync, run_id, settings)
        self.url = credential(self.config.get("url_env", "CDP_WEBHOOK_URL"))
        self._secret = credential(self.config.get("secret_env", "CDP_WEBHOOK_SECRET"))
        self.api = HttpApi.for_destination("", self)  # no base URL: httpx would add a "/" to it

    def _post(self, op: str, changes: list[Change]) -> list[Outcome]:
        events = [
            {
                "event_id": c.event_id,
                "op": op,
                "type": ERASED_EVENT if op == "remove" and c.reason == "erased" else f"record.{op}",
                "key": c.key,
                "data": c.fields if op == "upsert" else None,
            }
            for c in changes
        ]
        body = json.dumps(
            {"sync": self.sync.name, "run_id": self.run_id, "events": events}, separators=(",", ":"), default=str
        ).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-CDP-Timestamp": timestamp,
            "X-CDP-Signature": signature(self._secret, timestamp, body),
            "Idempotency-Key": hashlib.sha256("".join(e["event_id"] for e in events).encode()).hexdigest(),
        }
        try:
            response = self.api.request("POST", self.url, content=body, headers=headers)
        except DELIVERY_ERRORS as error:
            return self.failed(changes, delivery_error(error))
        if 200 <= response.status_code < 300:
            return [Outcome(c.key, True, c.key) for c in changes]
        refused = 400 <= response.status_code < 500  # 401/403 stopped the run in HttpApi
        if refused and len(changes) > 1:
            half = len(changes) // 2
            return self._post(op, changes[:half]) + self._post(op, changes[half:])
        error = f"HTTP {response.status_code}"
        return [Outcome(c.key, False, c.destination_id, error, permanent=refused) for c in changes]

    def upsert(self, changes: list[Change]) -> list[Outcome]:
        return self._post("upsert", changes)

    def remove(self, changes: list[Change]) -> list[Outcome]:
        return self._post("remove", changes)

    def close(self) -> dict:
        self.api.close()
        return {"retries": self.api.retries}
