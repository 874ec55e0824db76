"""Sample source systems: writes a deterministic landing zone (stand-in for real deliveries)."""

from urllib.parse import urlparse

import dagster as dg

from dagster_project.resources import CdpSettingsResource
from devstack.sample.generate import generate

SAMPLE_SOURCES_KEY = dg.AssetKey(["landing", "sample_sources"])


class SampleSourcesConfig(dg.Config):
    customers: int = 1000
    seed: int = 7
    days: int = 7
    # Deliver only the earlier days (the rest "arrive" when generated again with 0): how the
    # benchmark and the tests exercise an incremental run.
    withhold_last_days: int = 0


@dg.asset(
    key=SAMPLE_SOURCES_KEY,
    group_name="landing",
    kinds={"python"},
    description="Deterministic deliveries of every sample source (CRM CDC, orders, POS, support, "
    "clickstream, email, surveys, vendor enrichment, social, postal codes).",
)
def sample_sources(config: SampleSourcesConfig, cdp_settings: CdpSettingsResource) -> dg.MaterializeResult:
    settings = cdp_settings.settings()
    zone = generate(
        settings.landing_dir,
        settings.home / "truth",
        config.customers,
        config.seed,
        config.days,
        config.withhold_last_days,
    )
    delivered = deliver(settings) if settings.landing_url else 0
    return dg.MaterializeResult(
        metadata={
            "customers": config.customers,
            "seed": config.seed,
            "days": config.days,
            "withheld_days": config.withhold_last_days,
            "households": zone.households,
            "landing_dir": str(settings.landing_dir),
            "landing_url": settings.landing_url or str(settings.landing_dir),
            "files_delivered_to_landing_url": delivered,
            **{f"{name}_rows": summary["rows"] for name, summary in zone.sources.items()},
        }
    )


def deliver(settings) -> int:
    """Upload the sample files to the landing zone on S3 (``CDP_LANDING_URL``), as a source
    system would deliver them: only the files not delivered yet (same key and size), so a
    delivered file keeps its modification time and is not taken for a re-delivery."""
    import boto3

    parsed = urlparse(settings.landing_url)
    if parsed.scheme not in ("s3", "s3a"):
        raise ValueError(f"CDP_LANDING_URL {settings.landing_url!r}: the sample delivers to s3a:// prefixes only")
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    present = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        present |= {item["Key"]: item["Size"] for item in page.get("Contents", [])}
    delivered = 0
    for path in sorted(p for p in settings.landing_dir.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(settings.landing_dir).as_posix()}"
        if present.get(key) != path.stat().st_size:
            s3.upload_file(str(path), bucket, key)
            delivered += 1
    return delivered


defs = dg.Definitions(assets=[sample_sources])
