"""What a Spark job promises the orchestrator, declared once beside the job: the module to run,
the tables it writes and the checks it reports. The job reports under these names; Dagster
builds its assets, asset checks and Pipes call from the same objects, so a renamed table or
check cannot drift between the two."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    table: str  # schema.name, e.g. silver.identity_map
    description: str

    @property
    def asset(self) -> str:
        """The asset path the job reports under (``silver/identity_map``)."""
        return self.table.replace(".", "/")


@dataclass(frozen=True)
class Check:
    name: str
    asset: str  # the asset path it checks (``silver/identity_map``)
    description: str
    blocking: bool = False


@dataclass(frozen=True)
class JobSpec:
    module: str  # run as ``python -m <module>`` (spark-submit: the module's file)
    outputs: tuple[Output, ...]
    checks: tuple[Check, ...] = ()
