"""Destinations behind one interface (base.Destination); a new one is a small class."""

from __future__ import annotations

from spark_jobs.activation.definitions import SyncDefinition
from spark_jobs.activation.destinations.base import Change, Destination, DestinationRefusedAccess, Outcome
from spark_jobs.activation.destinations.crm import CrmDestination
from spark_jobs.activation.destinations.email_platform import EmailPlatformDestination
from spark_jobs.activation.destinations.s3_audience import S3AudienceDestination
from spark_jobs.activation.destinations.webhook import WebhookDestination

DESTINATIONS: dict[str, type[Destination]] = {
    "crm": CrmDestination,
    "email_platform": EmailPlatformDestination,
    "s3_audience": S3AudienceDestination,
    "webhook": WebhookDestination,
}


def open_destination(sync: SyncDefinition, run_id: str, settings) -> Destination:
    return DESTINATIONS[sync.destination_type](sync, run_id, settings)


__all__ = ["DESTINATIONS", "Change", "Destination", "DestinationRefusedAccess", "Outcome", "open_destination"]
