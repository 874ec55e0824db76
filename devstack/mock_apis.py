"""Local stand-ins for the SaaS APIs that activation syncs to (not reachable from here).

One HTTP server on 127.0.0.1 serves the contracts the destinations speak:

- CRM, Salesforce-style: ``PATCH /services/data/<v>/composite/sobjects/<Object>/<ExtIdField>``
  (upsert up to 200 records, per-record results) and ``DELETE /services/data/<v>/composite/sobjects?ids=``;
  Bearer token: the static local one, or one from ``POST /services/oauth2/token`` (OAuth 2.0
  ``client_credentials`` or ``refresh_token`` grant, form-encoded, Salesforce's answers and
  errors; :meth:`MockApis.expire_crm_tokens` makes the issued ones expire, and a request with
  one is answered 401 ``INVALID_SESSION_ID``). A Contact without ``LastName`` is refused
  (REQUIRED_FIELD_MISSING), a record whose ``Email`` has no ``@`` too (INVALID_EMAIL_ADDRESS). As in
  Salesforce, a field the request leaves out keeps its value and null clears it, and every answer
  carries ``Sforce-Limit-Info: api-usage=<calls>/<daily limit>``.
- Email platform, Mailchimp-style: ``POST /3.0/lists/<id>`` (batch subscribe/update, up to 500),
  ``DELETE /3.0/lists/<id>/members/<md5>`` (archive); HTTP basic auth with the API key. As in
  Mailchimp, merge fields left out keep their values ("" clears one), and tags are only added
  unless the batch says ``sync_tags``.
- Webhook: ``POST /hooks/<name>``; the HMAC-SHA256 signature is verified, events are applied once
  per ``event_id`` (a repeated event is counted but not applied again); a batch with an event
  whose ``email`` is not an address is refused whole (422). It records the path and query string
  of every request.

It records what it receives and can be told to fail: :meth:`MockApis.inject` queues faults
(429 with Retry-After, 500, a 403 with the body an API sends when it throttles, a slow
response, or a crash half way through a batch: the first records are applied, then the
connection drops). The embedded default (``./cdp run``) runs it as a
process and keeps its state in a JSON file, like the local S3 server; tests run it in a thread.

    python -m devstack.mock_apis --port 4570 --state .cdp/mock-apis/state.json
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)

# Credentials of the local stand-ins only (never a real service's).
LOCAL_API_CREDENTIALS = {
    "CDP_CRM_TOKEN": "local-crm-token",
    "CDP_CRM_CLIENT_ID": "local-crm-client",
    "CDP_CRM_CLIENT_SECRET": "local-crm-client-secret",
    "CDP_CRM_REFRESH_TOKEN": "local-crm-refresh-token",
    "CDP_ESP_API_KEY": "local-esp-key",
    "CDP_WEBHOOK_SECRET": "local-webhook-secret",
}


@dataclass
class Fault:
    """Applied to the next ``times`` requests whose path starts with ``path_prefix``."""

    path_prefix: str = "/"
    status: int = 500
    retry_after: float | None = None
    delay_s: float = 0.0  # answer this late (a client timeout shorter than this fails)
    crash_after: int | None = None  # apply this many records of the batch, then drop the connection
    times: int = 1
    body: object = None  # the answer's JSON body (default {"message": "injected fault"}); b"" = no body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiState:
    crm: dict[str, dict] = field(default_factory=dict)  # external id -> record (with Id)
    esp: dict[str, dict] = field(default_factory=dict)  # subscriber hash -> member
    esp_archived: dict[str, dict] = field(default_factory=dict)  # archived members (kept by Mailchimp)
    webhook: dict[str, dict] = field(default_factory=dict)  # event id -> event
    webhook_received: Counter = field(default_factory=Counter)  # event id -> deliveries
    webhook_targets: list[str] = field(default_factory=list)  # path?query of every webhook request
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, records
    crm_api_calls: int = 0  # the org's API requests today (Sforce-Limit-Info)
    crm_tokens: set[str] = field(default_factory=set)  # OAuth access tokens issued and not expired
    crm_tokens_issued: int = 0

    def records_received(self, prefix: str) -> int:
        return sum(n for _, path, n in self.requests if path.startswith(prefix))


class MockApis:
    def __init__(
        self,
        port: int = 0,
        state_file: Path | None = None,
        credentials: dict[str, str] | None = None,
        record_requests: bool = True,
        crm_daily_limit: int = 15000,
    ) -> None:
        self.crm_daily_limit = crm_daily_limit
        self.credentials = {**LOCAL_API_CREDENTIALS, **(credentials or {})}
        self.state_file, self.record_requests = state_file, record_requests
        self.state = ApiState()
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._load()
        handler = type("Handler", (_Handler,), {"apis": self})
        self.server = _QuietServer(("127.0.0.1", port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def environment(self) -> dict[str, str]:
        """What the destinations read: base URLs and the local credentials."""
        return {
            "CDP_CRM_BASE_URL": self.url,
            "CDP_ESP_BASE_URL": self.url,
            "CDP_WEBHOOK_URL": f"{self.url}/hooks/cdp",
            **self.credentials,
        }

    def expire_crm_tokens(self) -> None:
        """Every OAuth access token issued so far expires (as a Salesforce session times out)."""
        with self.lock:
            self.state.crm_tokens.clear()

    def inject(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if path.startswith(fault.path_prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def start(self) -> MockApis:
        self._thread = threading.Thread(target=self.server.serve_forever, name="mock-apis", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._save()

    def __enter__(self) -> MockApis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _load(self) -> None:
        if self.state_file and self.state_file.is_file():
            raw = json.loads(self.state_file.read_text(encoding="utf-8"))
            self.state.crm, self.state.esp, self.state.webhook = raw["crm"], raw["esp"], raw["webhook"]

    def _save(self) -> None:
        if self.state_file:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(
                json.dumps({"crm": self.state.crm, "esp": self.state.esp, "webhook": self.state.webhook}),
                encoding="utf-8",
            )


class _Crash(Exception):
    pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (timeout) before we answered is expected here, not an error."""
        log.debug("client %s went away", client_address)


class _Handler(BaseHTTPRequestHandler):
    apis: MockApis
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args) -> None:  # quiet; the state records what matters
        log.debug(fmt, *args)

    def _reply(self, status: int, body=None, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        body = self._body()
        fault = self.apis.take_fault(url.path)
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault and fault.crash_after is None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            body = {"message": "injected fault"} if fault.body is None else fault.body
            return self._reply(fault.status, body, {**headers, **fault.headers})
        limit = fault.crash_after if fault else None
        try:
            if url.path == "/services/oauth2/token":
                self._crm_token(method, body)
            elif url.path.startswith("/services/data/"):
                self._crm(method, url, body, limit)
            elif url.path.startswith("/3.0/lists/"):
                self._esp(method, url, body, limit)
            elif url.path.startswith("/hooks/"):
                self._webhook(method, url, body, limit)
            else:
                self._reply(404, {"message": "no such API"})
        except _Crash:
            self.close_connection = True  # the client sees the connection drop mid-request

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _count(self, method: str, path: str, records: int) -> None:
        if self.apis.record_requests:
            with self.apis.lock:
                self.apis.state.requests.append((method, path, records))

    # --- CRM --------------------------------------------------------------------------------
    def _crm_reply(self, status: int, body) -> None:
        """Every answer reports the org's API usage, as Salesforce's Sforce-Limit-Info does."""
        usage = f"api-usage={self.apis.state.crm_api_calls}/{self.apis.crm_daily_limit}"
        self._reply(status, body, {"Sforce-Limit-Info": usage})

    def _crm_token(self, method: str, body: bytes) -> None:
        """Salesforce's token endpoint: client credentials, or a refresh token of the client."""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
        known = self.apis.credentials
        client_ok = (
            form.get("client_id") == known["CDP_CRM_CLIENT_ID"]
            and form.get("client_secret") == known["CDP_CRM_CLIENT_SECRET"]
        )
        if method != "POST" or form.get("grant_type") not in ("client_credentials", "refresh_token"):
            return self._reply(400, {"error": "unsupported_grant_type"})
        if not client_ok:
            return self._reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        if form["grant_type"] == "refresh_token" and form.get("refresh_token") != known["CDP_CRM_REFRESH_TOKEN"]:
            return self._reply(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
        with self.apis.lock:
            self.apis.state.crm_tokens_issued += 1
            token = f"00Dlocal!{self.apis.state.crm_tokens_issued}-{hashlib.sha1(body).hexdigest()[:12]}"
            self.apis.state.crm_tokens.add(token)
        self._reply(
            200,
            {
                "access_token": token,
                "instance_url": self.apis.url,
                "id": f"{self.apis.url}/id/00Dlocal/005local",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "local",
            },
        )

    def _crm(self, method: str, url, body: bytes, limit: int | None) -> None:
        presented = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if presented != self.apis.credentials["CDP_CRM_TOKEN"] and presented not in self.apis.state.crm_tokens:
            return self._crm_reply(401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}])
        state = self.apis.state
        with self.apis.lock:
            state.crm_api_calls += 1
        if method == "PATCH":
            external_field = url.path.rstrip("/").split("/")[-1]
            records = json.loads(body)["records"]
            if len(records) > 200:
                return self._crm_reply(400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": "more than 200 records"}])
            self._count(method, url.path, len(records))
            results = []
            for index, record in enumerate(records):
                if limit is not None and index >= limit:
                    raise _Crash
                key = str(record[external_field])
                merged = {**state.crm.get(key, {}), **record}
                if url.path.rstrip("/").split("/")[-2] == "Contact" and not merged.get("LastName"):
                    results.append(
                        {
                            "id": None,
                            "success": False,
                            "created": False,
                            "errors": [
                                {
                                    "statusCode": "REQUIRED_FIELD_MISSING",
                                    "message": "Required fields are missing: [LastName]",
                                    "fields": ["LastName"],
                                }
                            ],
                        }
                    )
                    continue
                if "Email" in record and record["Email"] and "@" not in record["Email"]:
                    results.append(
                        {
                            "id": None,
                            "success": False,
                            "created": False,
                            "errors": [
                                {
                                    "statusCode": "INVALID_EMAIL_ADDRESS",
                                    "message": "Email: invalid email address",
                                    "fields": ["Email"],
                                }
                            ],
                        }
                    )
                    continue
                with self.apis.lock:
                    existing = state.crm.get(key)
                    record_id = existing["Id"] if existing else "003" + hashlib.sha1(key.encode()).hexdigest()[:15]
                    # As Salesforce: a field absent from the request keeps its value; null clears it.
                    fields = {k: v for k, v in record.items() if k != "attributes"}
                    state.crm[key] = {**(existing or {}), **fields, "Id": record_id}
                results.append({"id": record_id, "success": True, "created": existing is None, "errors": []})
            return self._crm_reply(200, results)
        if method == "DELETE":
            ids = [i for i in parse_qs(url.query).get("ids", [""])[0].split(",") if i]
            self._count(method, url.path, len(ids))
            results = []
            with self.apis.lock:
                by_id = {r["Id"]: k for k, r in state.crm.items()}
                for record_id in ids:
                    if record_id in by_id:
                        del state.crm[by_id[record_id]]
                        results.append({"id": record_id, "success": True, "errors": []})
                    else:
                        results.append(
                            {
                                "id": record_id,
                                "success": False,
                                "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}],
                            }
                        )
            return self._crm_reply(200, results)
        return self._crm_reply(405, [{"errorCode": "METHOD_NOT_ALLOWED"}])

    # --- email platform -----------------------------------------------------------------------
    def _esp(self, method: str, url, body: bytes, limit: int | None) -> None:
        expected = base64.b64encode(f"cdp:{self.apis.credentials['CDP_ESP_API_KEY']}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            return self._reply(
                401, {"title": "API Key Invalid", "status": 401, "detail": "Your API key may be invalid"}
            )
        state = self.apis.state
        parts = url.path.strip("/").split("/")  # 3.0 lists <id> [members <hash>]
        if method == "POST" and len(parts) == 3:
            payload = json.loads(body)
            members = payload["members"]
            if len(members) > 500:
                return self._reply(400, {"title": "Invalid Resource", "detail": "more than 500 members"})
            self._count(method, url.path, len(members))
            created, updated, errors = [], [], []
            for index, member in enumerate(members):
                if limit is not None and index >= limit:
                    raise _Crash
                address = member["email_address"].strip().lower()
                if "@" not in address:
                    errors.append(
                        {
                            "email_address": member["email_address"],
                            "error": "invalid email address",
                            "error_code": "ERROR_GENERIC",
                        }
                    )
                    continue
                member_id = hashlib.md5(address.encode()).hexdigest()
                with self.apis.lock:
                    existing = state.esp.get(member_id) or state.esp_archived.pop(member_id, None)
                    exists = existing is not None
                    # As Mailchimp's batch subscribe: merge fields absent from the request keep
                    # their values ("" clears one); tags are only added, unless sync_tags.
                    tags = set(member.get("tags", []))
                    if not payload.get("sync_tags"):
                        tags |= set((existing or {}).get("tags", []))
                    state.esp[member_id] = {
                        "email_address": address,
                        "status": member.get("status", "subscribed"),
                        "merge_fields": {**(existing or {}).get("merge_fields", {}), **member.get("merge_fields", {})},
                        "tags": sorted(tags),
                    }
                (updated if exists else created).append({"email_address": address, "id": member_id})
            return self._reply(
                200,
                {
                    "new_members": created,
                    "updated_members": updated,
                    "errors": errors,
                    "total_created": len(created),
                    "total_updated": len(updated),
                    "error_count": len(errors),
                },
            )
        if method == "DELETE" and len(parts) == 5:  # archive
            self._count(method, url.path, 1)
            with self.apis.lock:
                removed = state.esp.pop(parts[4], None)
                if removed:
                    state.esp_archived[parts[4]] = removed
            return self._reply(204) if removed else self._reply(404, {"title": "Resource Not Found"})
        if method == "PATCH" and len(parts) == 5:  # update a member, e.g. its status
            self._count(method, url.path, 1)
            with self.apis.lock:
                member = state.esp.get(parts[4])
                if member is None:
                    return self._reply(404, {"title": "Resource Not Found", "status": 404})
                update = {k: v for k, v in json.loads(body).items() if k in ("status", "email_address")}
                if "email_address" in update:  # a new address: the member's id (its hash) follows it
                    update["email_address"] = update["email_address"].strip().lower()
                    new_id = hashlib.md5(update["email_address"].encode()).hexdigest()
                    if new_id != parts[4] and new_id in state.esp:
                        return self._reply(400, {"title": "Member Exists", "status": 400, "detail": "in use"})
                    state.esp[new_id] = {**state.esp.pop(parts[4]), **update}
                    return self._reply(200, {**state.esp[new_id], "id": new_id})
                member.update(update)
            return self._reply(200, member)
        if method == "POST" and parts[5:] == ["actions", "delete-permanent"]:
            self._count(method, url.path, 1)
            with self.apis.lock:
                removed = state.esp.pop(parts[4], None) or state.esp_archived.pop(parts[4], None)
            return self._reply(204) if removed else self._reply(404, {"title": "Resource Not Found"})
        return self._reply(405, {"title": "Method Not Allowed"})

    # --- webhook ------------------------------------------------------------------------------
    def _webhook(self, method: str, url, body: bytes, limit: int | None) -> None:
        secret = self.apis.credentials["CDP_WEBHOOK_SECRET"].encode()
        timestamp = self.headers.get("X-CDP-Timestamp", "")
        expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        state = self.apis.state
        with self.apis.lock:
            state.webhook_targets.append(self.path)  # path and query string, as received
        if method != "POST" or not hmac.compare_digest(expected, self.headers.get("X-CDP-Signature", "")):
            return self._reply(401, {"error": "bad signature"})
        events = json.loads(body)["events"]
        self._count(method, url.path, len(events))
        # A receiver validates the whole batch: an event with an email that is not one refuses it.
        for event in events:
            email = (event.get("data") or {}).get("email")
            if email is not None and "@" not in str(email):
                return self._reply(422, {"error": "invalid email", "event_id": event["event_id"]})
        for index, event in enumerate(events):
            if limit is not None and index >= limit:
                raise _Crash
            with self.apis.lock:
                state.webhook_received[event["event_id"]] += 1
                state.webhook.setdefault(event["event_id"], event)
        return self._reply(202, {"accepted": len(events)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local stand-ins for the CRM, email-platform and webhook APIs.")
    parser.add_argument("--port", type=int, default=4570)
    parser.add_argument("--state", type=Path, help="JSON file the state is loaded from and saved to on exit")
    args = parser.parse_args(argv)
    apis = MockApis(args.port, args.state, record_requests=False)
    print(f"mock APIs on {apis.url}", flush=True)
    try:
        apis.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        apis.server.server_close()
        apis._save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
