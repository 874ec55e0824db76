"""An email platform with a Mailchimp-style audience API.

Upsert: ``POST /3.0/lists/<list_id>`` (batch subscribe or update, up to 500 members) with the
member's merge fields and tags; the response lists new members, updated members and errors by
email address, and a member in none of them was not accepted. Remove depends on why: a person
who opted out is set to ``unsubscribed`` (``PATCH .../members/<md5(email)>``: archiving would
lose the opt-out, and a later import could subscribe them again); an erased person is deleted
permanently (``POST .../members/<md5>/actions/delete-permanent``); anyone else who left the
audience is archived (``DELETE .../members/<md5>``). A member that is already gone counts as
removed. Authentication is HTTP basic with the API key.

    destination: {type: email_platform, list_id: newsletter, base_url_env: CDP_ESP_BASE_URL,
                  api_key_env: CDP_ESP_API_KEY}
    fields: {email: email_address, first_name: FNAME, segments: tags}

The field mapped to ``email_address`` is the member's address, ``tags`` takes a list; every
other field is a merge field, and an empty one is sent as "" (a missing merge field means
"unchanged" to the API). Tags mirror the list: the batch is sent with ``sync_tags``, so a tag
the member no longer has (a segment they left) is removed, and so is any tag set by hand at the
platform; ``sync_tags: false`` in the destination only ever adds tags.
"""

from __future__ import annotations

import hashlib

from spark_jobs.activation.credentials import credential
from spark_jobs.activation.destinations.base import (
    DELIVERY_ERRORS,
    Change,
    Destination,
    HttpApi,
    Outcome,
    delivery_error,
)


def throttled(response) -> bool:
    """Mailchimp's throttling, besides 429: a 403 with no JSON problem document (its own 403s,
    such as a compliance state or a forbidden list, carry one)."""
    if response.status_code != 403:
        return False
    try:
        return not isinstance(response.json(), dict)
    except ValueError:
        return True


OPTED_OUT = {"unsubscribed", "no_consent", "consent_withdrawn"}  # reasons that are the person's own choice
ERASED = {"erased"}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


class EmailPlatformDestination(Destination):
    default_batch_size = 500  # the batch subscribe limit

    def __init__(self, sync, run_id, settings) -> None:
        super().__init__(sync, run_id, settings)
        self.list_id = self.config.get("list_id", "audience")
        self.sync_tags = bool(self.config.get("sync_tags", True))
        self.api = HttpApi.for_destination(
            credential(self.config.get("base_url_env", "CDP_ESP_BASE_URL")),
            self,
            default_timeout_s=120,  # Mailchimp's calls may take up to 120 s
            auth=("cdp", credential(self.config.get("api_key_env", "CDP_ESP_API_KEY"))),
            throttled=throttled,
        )

    def _member(self, change: Change) -> dict:
        fields = dict(change.fields)
        member = {"email_address": fields.pop("email_address"), "status": "subscribed", "status_if_new": "subscribed"}
        if "tags" in fields:
            member["tags"] = sorted(fields.pop("tags") or [])
        member["merge_fields"] = {k: ("" if v is None else v) for k, v in fields.items()}
        return member

    def _move_changed_addresses(self, changes: list[Change]) -> dict[str, Outcome]:
        """A member whose address changed since the last accepted send gets the new address
        (``PATCH`` of the old member), so that the batch updates that member instead of
        subscribing a second one and leaving the old address subscribed. When the new address is
        already a member (subscribed at the platform by other means), the old member is archived
        and the batch updates the existing one. A move the platform refuses otherwise fails that
        change; an old member already gone is no obstacle."""
        refused = {}
        for change in changes:
            new_id = subscriber_hash(change.fields["email_address"])
            if not change.destination_id or change.destination_id == new_id:
                continue
            try:
                response = self.api.request(
                    "PATCH",
                    f"/3.0/lists/{self.list_id}/members/{change.destination_id}",
                    json={"email_address": change.fields["email_address"]},
                )
            except DELIVERY_ERRORS as error:
                refused[change.key] = Outcome(change.key, False, change.destination_id, delivery_error(error))
                continue
            if _member_exists(response):
                old = f"/3.0/lists/{self.list_id}/members/{change.destination_id}"
                try:
                    response = self.api.request("DELETE", old)
                except DELIVERY_ERRORS as error:
                    refused[change.key] = Outcome(change.key, False, change.destination_id, delivery_error(error))
                    continue
                if response.status_code in (204, 404):
                    continue
            if response.status_code not in (200, 404):
                error = f"address change refused: HTTP {response.status_code}: {_detail(response)}"
                refused[change.key] = Outcome(change.key, False, change.destination_id, error)
        return refused

    def upsert(self, changes: list[Change]) -> list[Outcome]:
        refused = self._move_changed_addresses(changes)
        if refused:
            rest = [c for c in changes if c.key not in refused]
            return [*refused.values(), *(self.upsert(rest) if rest else [])]
        members = [self._member(c) for c in changes]
        try:
            response = self.api.request(
                "POST",
                f"/3.0/lists/{self.list_id}",
                json={"members": members, "update_existing": True, "sync_tags": self.sync_tags},
            )
        except DELIVERY_ERRORS as error:
            return self.failed(changes, delivery_error(error))
        if response.status_code != 200:
            return self.failed(changes, f"HTTP {response.status_code}: {_detail(response)}")
        body = response.json()
        # email_address is optional in an error entry: one without it names no member.
        errors = {
            str(e["email_address"]).strip().lower(): f"{e.get('error_code')}: {e.get('error')}"
            for e in body.get("errors", [])
            if e.get("email_address")
        }
        accepted = {
            str(m.get("email_address", "")).strip().lower()
            for m in [*body.get("new_members", []), *body.get("updated_members", [])]
        }
        outcomes = []
        for change, member in zip(changes, members, strict=True):
            address = member["email_address"].strip().lower()
            if address in accepted:
                outcomes.append(Outcome(change.key, True, subscriber_hash(address)))
            elif address in errors:  # refused for this member: an invalid address, a compliance state
                outcomes.append(Outcome(change.key, False, change.destination_id, errors[address], permanent=True))
            else:
                error = "not in the platform's new or updated members"
                outcomes.append(Outcome(change.key, False, change.destination_id, error))
        return outcomes

    def remove(self, changes: list[Change]) -> list[Outcome]:
        outcomes = []
        for change in changes:
            member_id = change.destination_id or (
                subscriber_hash(change.fields["email_address"]) if change.fields.get("email_address") else None
            )
            if member_id is None:
                outcomes.append(Outcome(change.key, True))
                continue
            member = f"/3.0/lists/{self.list_id}/members/{member_id}"
            try:
                if change.reason in OPTED_OUT:
                    response = self.api.request("PATCH", member, json={"status": "unsubscribed"})
                elif change.reason in ERASED:
                    response = self.api.request("POST", f"{member}/actions/delete-permanent")
                else:
                    response = self.api.request("DELETE", member)
            except DELIVERY_ERRORS as error:
                outcomes.append(Outcome(change.key, False, member_id, delivery_error(error)))
                continue
            ok = response.status_code in (200, 204, 404)
            outcomes.append(
                Outcome(change.key, ok, member_id, None if ok else f"HTTP {response.status_code}: {_detail(response)}")
            )
        return outcomes

    def close(self) -> dict:
        self.api.close()
        return {"retries": self.api.retries}


def _member_exists(response) -> bool:
    """The address is already a member: Mailchimp's problem title "Member Exists" (documented for
    adding one), or an "Invalid Resource" whose detail says so (what a change of address into an
    existing member's address is reported as is not documented: both are accepted)."""
    if response.status_code != 400:
        return False
    try:
        problem = response.json()
        return (
            problem.get("title") == "Member Exists" or "already a list member" in str(problem.get("detail", "")).lower()
        )
    except (ValueError, AttributeError):
        return False


def _detail(response) -> str:
    try:
        return str(response.json().get("detail") or response.json().get("title"))[:200]
    except (ValueError, AttributeError):
        return response.reason_phrase
