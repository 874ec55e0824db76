"""The local code location of ``./cdp run`` and ``./cdp dev``: the platform's definitions with
the sample generator (``landing/sample_sources``) writing the landing zone in front of bronze.
Production loads ``dagster_project.definitions``, where deliveries arrive from outside."""

from dagster_project.definitions import build_definitions
from devstack import sample_asset as landing

defs = build_definitions(landing.defs, bronze_deps=[landing.SAMPLE_SOURCES_KEY])
