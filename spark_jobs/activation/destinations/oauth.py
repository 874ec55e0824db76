"""OAuth 2.0 bearer tokens for API destinations (RFC 6749), as an httpx auth flow.

Two grants:

- ``oauth_client_credentials``: server to server, with a client id and secret (Salesforce's
  "OAuth 2.0 client credentials flow" of a connected app, run as its integration user);
- ``oauth_refresh_token``: a refresh token granted once to the connected app, exchanged for
  access tokens (if the provider rotates it, the new one is used for the rest of the run).

The token is fetched before the first request and fetched again, once, when the API answers
401 (it expired or was revoked); the request is then sent again. A second 401 reaches the
client, which stops the run (:class:`~.base.DestinationRefusedAccess`). Tokens and secrets are
never logged; an error names the provider's ``error`` code and the variables to check.

    destination:
      auth:
        type: oauth_client_credentials       # or oauth_refresh_token
        token_url_env: CDP_CRM_TOKEN_URL     # optional; default: <base URL>/services/oauth2/token
        client_id_env: CDP_CRM_CLIENT_ID
        client_secret_env: CDP_CRM_CLIENT_SECRET
        refresh_token_env: CDP_CRM_REFRESH_TOKEN   # oauth_refresh_token only
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import httpx

from spark_jobs.activation.credentials import credential
from spark_jobs.activation.definitions import SyncDefinitionError
from spark_jobs.activation.destinations.base import DestinationRefusedAccess

log = logging.getLogger(__name__)

GRANTS = {"oauth_client_credentials": "client_credentials", "oauth_refresh_token": "refresh_token"}
DEFAULT_TOKEN_PATH = "/services/oauth2/token"  # Salesforce's, on the org's My Domain


class OAuthTokenAuth(httpx.Auth):
    requires_response_body = True  # the token endpoint's answer is read inside the flow

    def __init__(self, token_url: str, form: dict[str, str], variables: list[str]) -> None:
        self.token_url, self.form, self.variables = token_url, form, variables
        self.access_token: str | None = None
        self.fetches = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.access_token is None:
            yield from self._fetch_token()
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        response = yield request
        if response.status_code == 401:  # expired or revoked: a new token, once
            log.info("the API refused the access token (HTTP 401): fetching a new one")
            yield from self._fetch_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
            yield request

    def _fetch_token(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self.token_url, data=self.form, headers={"Accept": "application/json"})
        try:
            answer: Any = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
            code = answer.get("error", response.reason_phrase) if isinstance(answer, dict) else response.reason_phrase
            raise DestinationRefusedAccess(
                f"the token endpoint refused the {self.form['grant_type']} grant: HTTP {response.status_code} "
                f"{code} (check {', '.join(self.variables)})"
            )
        self.access_token = answer["access_token"]
        if answer.get("refresh_token") and "refresh_token" in self.form:  # rotated
            self.form["refresh_token"] = answer["refresh_token"]
        self.fetches += 1


def oauth_auth(settings: dict[str, Any], base_url: str, where: str) -> OAuthTokenAuth:
    """The auth flow an ``auth:`` block of a destination describes (see the module doc)."""
    kind = settings.get("type")
    if kind not in GRANTS:
        raise SyncDefinitionError(f"{where}: auth.type must be one of {sorted(GRANTS)}, got {kind!r}")
    names = {
        "client_id": settings.get("client_id_env", "CDP_CRM_CLIENT_ID"),
        "client_secret": settings.get("client_secret_env", "CDP_CRM_CLIENT_SECRET"),
    }
    if kind == "oauth_refresh_token":
        names["refresh_token"] = settings.get("refresh_token_env", "CDP_CRM_REFRESH_TOKEN")
    form = {"grant_type": GRANTS[kind], **{field: credential(variable) for field, variable in names.items()}}
    token_url = (
        credential(settings["token_url_env"])
        if settings.get("token_url_env")
        else base_url.rstrip("/") + DEFAULT_TOKEN_PATH
    )
    return OAuthTokenAuth(token_url, form, list(names.values()))
