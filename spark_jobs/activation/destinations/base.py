"""The destination interface and the HTTP client every API destination shares.

HTTP goes through httpx; retries through tenacity (exponential backoff with jitter on 429, 5xx,
timeouts and dropped connections, honouring ``Retry-After``, and on whatever else the
destination's API documents as "slow down": Salesforce's 403 ``REQUEST_LIMIT_EXCEEDED``,
Mailchimp's bodiless 403); the request rate through pyrate-limiter. A 401, or a 403 that is not
throttling, refuses the credentials or the permission: no request of the run can succeed, so
it raises :class:`DestinationRefusedAccess` and the run stops (the engine keeps what was
accepted before). What a destination adds is only its API's request and response shapes.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from spark_jobs.activation.definitions import SyncDefinition

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 10
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request is noise; retries log here


@dataclass(frozen=True)
class Change:
    """One row to send: ``op`` is "upsert" or "remove"; ``fields`` are destination field names."""

    op: str
    key: str
    fields: dict[str, Any]
    destination_id: str | None = None  # what the destination called it last time (e.g. a CRM id)
    event_id: str = ""  # stable per change: the same change always has the same id
    reason: str | None = None  # why a remove: "left the audience" or the suppression reason


@dataclass(frozen=True)
class Outcome:
    key: str
    ok: bool
    destination_id: str | None = None
    error: str | None = None
    # Refused for what the record is (a required field, an invalid value, a compliance state):
    # sending the same record again gets the same answer. Otherwise a failure is retried next run.
    permanent: bool = False


class Destination(ABC):
    """Send changes; report one Outcome per change, in any order. A change the destination
    refused, or that could not be delivered after the retries, is an Outcome with ok=False.
    Subclasses implement upsert and remove; flush and close are optional."""

    default_batch_size = 100

    def __init__(self, sync: SyncDefinition, run_id: str, settings) -> None:
        self.sync, self.run_id, self.settings = sync, run_id, settings
        self.config = sync.destination
        self.batch_size = sync.batch_size or self.default_batch_size

    @abstractmethod
    def upsert(self, changes: list[Change]) -> list[Outcome]:
        """Insert or update these records at the destination."""

    @abstractmethod
    def remove(self, changes: list[Change]) -> list[Outcome]:
        """Remove these records (already gone counts as removed)."""

    def flush(self) -> None:  # noqa: B027 - optional hook: HTTP destinations have nothing to flush
        """Make everything sent so far durable at the destination (files: upload the part)."""

    def close(self) -> dict[str, Any]:
        """End of the run (files: the manifest); returns metadata for the sync log."""
        return {}

    def failed(self, changes: list[Change], error: str) -> list[Outcome]:
        return [Outcome(c.key, False, c.destination_id, error) for c in changes]


class DestinationRefusedAccess(RuntimeError):
    """401, or a 403 that is not throttling: a wrong, expired or revoked credential, or no
    permission. Fatal for the run (every other request would get the same answer)."""


class RetryableHttpError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code} from {response.request.method} {response.request.url.path}")
        self.status_code = response.status_code
        self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class HttpApi:
    """An httpx client with retries, backoff and a request-rate limit."""

    def __init__(
        self,
        base_url: str,
        *,
        rate_per_second: float,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout_s: float = 30.0,
        max_attempts: int = 6,
        max_wait_s: float = 60.0,
        throttled: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        # Requests go one at a time; the pool cap keeps any future concurrency within what the
        # APIs allow (Mailchimp: at most 10 simultaneous connections per user).
        self.client = httpx.Client(
            base_url=base_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
        )
        self.throttled = throttled or (lambda response: False)
        self.rate_per_second = rate_per_second
        self.limiter = _limiter(rate_per_second)
        self.max_attempts, self.max_wait_s = max_attempts, max_wait_s
        self._backoff = wait_exponential_jitter(initial=0.5, max=max_wait_s)
        self.retries = 0

    @classmethod
    def for_destination(cls, base_url: str, destination, default_timeout_s: float = 30, **options) -> HttpApi:
        """The client of a destination: its sync's request rate, and the ``timeout_seconds`` and
        ``max_attempts`` of its config (``default_timeout_s``, 6 attempts by default); ``options``:
        ``headers``, ``auth`` or ``throttled`` as for the constructor."""
        return cls(
            base_url,
            rate_per_second=destination.sync.rate_limit_per_second,
            timeout_s=float(destination.config.get("timeout_seconds", default_timeout_s)),
            max_attempts=int(destination.config.get("max_attempts", 6)),
            **options,
        )

    def slow_down(self, rate_per_second: float) -> None:
        """Send at most this many requests a second from now on (never faster than before)."""
        if rate_per_second < self.rate_per_second:
            log.warning("slowing down to %s request(s) a second", rate_per_second)
            self.limiter.close()
            self.rate_per_second, self.limiter = rate_per_second, _limiter(rate_per_second)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableHttpError) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait_s)
        return self._backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        log.warning(
            "retrying after %s (attempt %d of %d, waiting %.1f s)",
            state.outcome.exception(),
            state.attempt_number,
            self.max_attempts,
            state.next_action.sleep if state.next_action else 0,
        )

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """The response of the first attempt that is neither 429, 5xx, a refusal the API calls
        throttling, nor a transport error; raises the last error when every attempt failed, and
        :class:`DestinationRefusedAccess` on a 401 or a 403 that is not throttling."""
        retrying = Retrying(
            retry=retry_if_exception_type((RetryableHttpError, httpx.TransportError)),
            wait=self._wait,
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
            before_sleep=self._before_sleep,
        )
        for attempt in retrying:
            with attempt:
                self.limiter.try_acquire("requests")
                response = self.client.request(method, path, **kwargs)
                if response.status_code == 429 or response.status_code >= 500 or self.throttled(response):
                    raise RetryableHttpError(response)
                if response.status_code in (401, 403):
                    raise DestinationRefusedAccess(
                        f"HTTP {response.status_code} from {method} {response.request.url.path}: "
                        f"{_problem(response)} (check the destination's credentials and permissions)"
                    )
                return response
        raise AssertionError("unreachable: tenacity reraises the last error")

    def close(self) -> None:
        self.client.close()
        self.limiter.close()


def _limiter(rate_per_second: float) -> Limiter:
    rate = (
        Rate(int(rate_per_second), Duration.SECOND)
        if rate_per_second >= 1
        else Rate(1, int(Duration.SECOND / rate_per_second))
    )
    return Limiter(rate)


def _problem(response: httpx.Response) -> str:
    """The API's own short reason (an error code or title), never a header: no secrets."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return response.reason_phrase
    return str(first.get("errorCode") or first.get("title") or first.get("error") or response.reason_phrase)[:200]


# What a delivery can fail with, once the retries are spent: the records failed, the run goes on.
DELIVERY_ERRORS = (RetryableHttpError, httpx.HTTPError)


def delivery_error(error: Exception) -> str:
    """A short reason for the sync-errors table (never a header or a body: no secrets)."""
    if isinstance(error, RetryableHttpError):
        return f"gave up after retries: HTTP {error.status_code}"
    if isinstance(error, httpx.TimeoutException):
        return "gave up after retries: timeout"
    if isinstance(error, httpx.TransportError):
        return f"gave up after retries: {type(error).__name__}"
    return f"{type(error).__name__}: {error}"
