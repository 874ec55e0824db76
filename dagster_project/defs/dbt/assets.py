"""The dbt project (dbt-spark) as assets; dbt tests become asset checks."""

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, build_dbt_asset_selection, dbt_assets

from dagster_project.defs.dbt.model_metadata import with_model_metadata
from dagster_project.defs.dbt.project import dbt_executable, dbt_project, prepare_manifest
from spark_jobs.settings import Settings

# `dagster dev` re-parses; ./cdp and the tests call prepare_manifest() first. A clean checkout
# has no manifest until the first parse: parse here rather than fail to load the code location.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    prepare_manifest()


class LakehouseDbtTranslator(DagsterDbtTranslator):
    """Asset key = [schema, name] for models and sources alike, so dbt sources line up with
    the Spark assets that write them (bronze/crm_contacts, silver/identity_map)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["schema"]

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        """A table also depends directly on the sources it reads through views. A job that
        leaves the views out (cdp_daily) orders its steps by the links among its own assets
        only: without these, it ran dbt before ingestion and identity resolution."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        if _is_view(manifest, unique_id):
            return spec
        linked = {dep.asset_key for dep in spec.deps}
        through_views = [
            self.get_asset_key(manifest["sources"][source_id])
            for source_id in _sources_read_through_views(manifest, unique_id)
        ]
        new_deps = sorted((key for key in set(through_views) if key not in linked), key=str)
        return spec.merge_attributes(deps=new_deps) if new_deps else spec

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project
    ) -> dg.AssetCheckSpec | None:
        """dbt's generic tests carry no description: say in words what each one checks."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        test = manifest["nodes"].get(unique_id, {})
        return spec._replace(description=describe_dbt_test(test.get("test_metadata") or {}, test.get("name", "")))


def describe_dbt_test(test_metadata: Mapping[str, Any], test_name: str) -> str:
    """One line of what a generic dbt test checks, from its name and arguments."""
    kwargs = test_metadata.get("kwargs") or {}
    column = kwargs.get("column_name")
    name = test_metadata.get("name")
    if name == "not_null":
        return f"{column} is never null"
    if name == "unique":
        return f"{column} is unique"
    if name == "primary_key":
        return f"{column} is the primary key: never null, never twice"
    if name == "unique_combination_of_columns":
        return f"one row per {', '.join(kwargs.get('columns') or [])}"
    if name == "accepted_values":
        return f"{column} is one of {', '.join(map(str, kwargs.get('values') or []))} (or null)"
    if name == "relationships":
        to = str(kwargs.get("to", "")).removeprefix("ref(").removesuffix(")").strip("'\"")
        return f"every {column} is a {kwargs.get('field')} of {to} (or null)"
    if name == "between":
        return f"{column} is between {kwargs.get('min_value')} and {kwargs.get('max_value')} (or null)"
    return f"dbt test {name or test_name}" + (f" on {column}" if column else "")


def _is_view(manifest: Mapping[str, Any], unique_id: str) -> bool:
    return manifest["nodes"].get(unique_id, {}).get("config", {}).get("materialized") == "view"


def _sources_read_through_views(manifest: Mapping[str, Any], unique_id: str) -> set[str]:
    """Unique ids of the sources the node's parent views read, through chains of views."""
    sources: set[str] = set()
    seen: set[str] = set()
    to_visit = [
        parent
        for parent in manifest["nodes"].get(unique_id, {}).get("depends_on", {}).get("nodes", [])
        if _is_view(manifest, parent)
    ]
    while to_visit:
        view_id = to_visit.pop()
        if view_id in seen:
            continue
        seen.add(view_id)
        for parent in manifest["nodes"][view_id]["depends_on"]["nodes"]:
            if parent in manifest["sources"]:
                sources.add(parent)
            elif _is_view(manifest, parent):
                to_visit.append(parent)
    return sources


# The scoring job (Spark MLlib) reads fct_orders and dbt models read its scores, so the dbt project
# is two assets definitions: fct_orders with everything it reads, then the rest. (One subsettable
# definition would also do, but Dagster then cuts it at every Spark asset, into four dbt runs.)
UP_TO_ORDERS = "+fct_orders"


KEPT_DBT_RUNS = 20


def remove_all_but_newest(folder: Path, keep: int) -> None:
    """Remove every entry of ``folder`` but the ``keep`` most recently modified."""
    entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def invocation_target_path(context: dg.AssetExecutionContext) -> Path:
    """A target folder of this invocation's own under the state folder (dagster-dbt's default
    puts one per invocation into dbt/target and never removes them: about 6 MB each). The
    oldest beyond the newest KEPT_DBT_RUNS are removed. (dagster-dbt copies the project's
    partial-parse file in, so dbt does not parse the whole project again.)"""
    runs = Settings.from_env().dbt_runs_dir
    runs.mkdir(parents=True, exist_ok=True)
    remove_all_but_newest(runs, KEPT_DBT_RUNS - 1)
    return runs / f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"


def built_relations() -> tuple[dict[str, str], frozenset[str]]:
    """unique id -> relation name of every model, seed and snapshot of the dbt project, and
    the unique ids of those that are tables (not views)."""
    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    built = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot") and node.get("relation_name")
    }
    tables = frozenset(u for u, node in built.items() if node.get("config", {}).get("materialized") != "view")
    return {unique_id: node["relation_name"] for unique_id, node in built.items()}, tables


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # dbt's unit tests check SQL logic on fixed rows, not the data: they run in CI
    # (tests/e2e/test_pipeline.py::test_dbt_unit_tests_pass), not in every pipeline run.
    args = ["build", "--exclude-resource-type", "unit_test"]
    events = dbt.cli(args, context=context, target_path=invocation_target_path(context)).stream()
    spark_remote = Settings.from_env().spark_remote
    if not spark_remote:
        # Without the service, dbt's adapter here would start a Spark of its own while dbt's holds
        # the embedded metastore: no row counts, column types or charts then.
        yield from events
        return

    # Every model's columns with their types, each table's row count and the charts of a few
    # models, asked of the service as a Spark Connect client. (dagster-dbt's fetch_column_metadata
    # also asks for the relations of dbt's tests, which do not exist: an error logged per test.)
    def connect():
        from pyspark.sql import SparkSession

        return SparkSession.builder.remote(spark_remote).getOrCreate()

    yield from with_model_metadata(events, connect, *built_relations())


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=UP_TO_ORDERS,
    dagster_dbt_translator=LakehouseDbtTranslator(),
)
def cdp_dbt_orders(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """fct_orders and the staging and intermediate models it reads."""
    yield from _build(context, dbt)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=UP_TO_ORDERS,
    dagster_dbt_translator=LakehouseDbtTranslator(),
)
def cdp_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Every other model, seed and snapshot: the customer view, traits (with the scores),
    segments, journeys and the sync models."""
    yield from _build(context, dbt)


DBT_ASSETS = [cdp_dbt_orders, cdp_dbt_models]


def dbt_nodes_new_data_leaves_unchanged() -> dg.AssetSelection:
    """The dbt nodes a day of new data does not change, with their tests (asset checks): the
    views (stored queries: rebuilt only to change their SQL) and the nodes no source feeds (the
    sentiment seed, dim_segments from the dbt vars), which change only with the code."""
    selections = [
        build_dbt_asset_selection([assets], dbt_select="config.materialized:view")
        | build_dbt_asset_selection([assets], dbt_exclude="source:*+")
        for assets in DBT_ASSETS
    ]
    return selections[0] | selections[1]


defs = dg.Definitions(
    assets=DBT_ASSETS,
    resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())},
)
