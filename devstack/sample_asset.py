"""Sample source systems: writes a deterministic landing zone (stand-in for real deliveries)."""

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
    return dg.MaterializeResult(
        metadata={
            "customers": config.customers,
            "seed": config.seed,
            "days": config.days,
            "withheld_days": config.withhold_last_days,
            "households": zone.households,
            "landing_dir": str(settings.landing_dir),
            **{f"{name}_rows": summary["rows"] for name, summary in zone.sources.items()},
        }
    )


defs = dg.Definitions(assets=[sample_sources])
