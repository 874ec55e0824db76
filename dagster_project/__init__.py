"""The Dagster project: ``definitions.py`` is the deployed code location; ``defs/<domain>/``
holds each stage's assets, checks, schedules and sensors (``ingest``, ``identity``, ``ml``,
``dbt``, ``quality``, ``activation``); ``resources.py`` runs a Spark job through Pipes. The
local code location with the sample generator is ``devstack/definitions.py``."""
