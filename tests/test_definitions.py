"""The Dagster definitions load, the dbt project parses, and the graph is wired as designed."""

from datetime import UTC

import dagster as dg
import pytest

from dagster_project.defs.dbt.project import dbt_project, prepare_manifest


@pytest.fixture(scope="module")
def manifest(defs) -> dict:
    import json

    return json.loads(dbt_project.manifest_path.read_text())


@pytest.fixture(scope="module")
def defs():
    """The local code location (the sample in front of bronze), which ./cdp run executes."""
    prepare_manifest()  # dbt parse: fails the test if the dbt project does not parse
    from devstack.definitions import defs

    return defs


def test_production_has_no_sample_generator_and_bronze_starts_the_graph(defs):
    from dagster_project.definitions import defs as production

    graph = production.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert not any(key.startswith("landing/") for key in keys)
    bronze = [key for key in graph.get_all_asset_keys() if key.path[0] == "bronze"]
    assert len(bronze) == 14 and all(not graph.get(key).parent_keys for key in bronze)
    for job in ("cdp_main", "cdp_daily"):
        selected = production.resolve_job_def(job).asset_layer.selected_asset_keys
        assert dg.AssetKey(["bronze", "crm_contacts"]) in selected
        assert dg.AssetKey(["landing", "sample_sources"]) not in selected
    # the local code location: the same graph, with the sample in front of every bronze asset
    local_graph = defs.resolve_asset_graph()
    assert all(local_graph.get(key).parent_keys == {dg.AssetKey(["landing", "sample_sources"])} for key in bronze)
    assert set(local_graph.get_all_asset_keys()) - set(graph.get_all_asset_keys()) == {
        dg.AssetKey(["landing", "sample_sources"])
    }


def test_dbt_project_parses_into_the_expected_models(manifest):
    models = {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert {
        "stg_crm__contacts",
        "stg_shop__orders",
        "stg_identity__identity_map",
        "dim_customers",
        "sync_s3__repeat_buyers",
    } <= set(models)
    assert models["dim_customers"]["schema"] == "gold"
    assert models["dim_customers"]["config"]["file_format"] == "delta"
    assert models["stg_crm__contacts"]["config"]["materialized"] == "view"
    # Every gold table is read by a declared consumer (a BI dashboard or an activation output).
    exposed = {ref for exposure in manifest["exposures"].values() for ref in exposure["depends_on"]["nodes"]}
    gold = {node["unique_id"] for node in models.values() if node["schema"] == "gold"}
    assert gold <= exposed, f"gold models without an exposure: {sorted(gold - exposed)}"


def test_every_layer_is_an_asset_wired_source_to_export(defs):
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "landing/sample_sources",
        "bronze/crm_contacts",
        "bronze/shop_orders",
        "silver/identity_map",
        "staging/stg_crm__contacts",
        "gold/dim_customers",
        "gold/sync_s3__repeat_buyers",
        "activation/s3_repeat_buyers",
    } <= keys

    def upstream(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}

    # dbt sources resolve to the Spark assets that write them, so Dagster orders the steps.
    assert upstream("staging/stg_crm__contacts") == {"bronze/crm_contacts"}
    assert upstream("staging/stg_identity__identity_map") == {"silver/identity_map"}
    # The MLlib scores sit between fct_orders (what a purchase is) and the dbt models that read them.
    assert upstream("staging/stg_ml__customer_scores") == {"silver/customer_scores"}
    assert upstream("silver/customer_scores") == {"gold/fct_orders"}
    assert upstream("activation/s3_repeat_buyers") == {
        "gold/sync_s3__repeat_buyers",
        "gold/dim_customers",
        "gold/customer_consent",
    }
    # One asset per sync definition, downstream of its model and of the gated dim_customers.
    assert upstream("activation/crm_customers") == {
        "gold/sync_crm__customers",
        "gold/dim_customers",
        "gold/customer_consent",
    }
    assert upstream("activation/ads_high_value_customers") == {
        "gold/sync_ads__high_value_customers",
        "gold/dim_customers",
        "gold/customer_consent",
    }


def test_great_expectations_check_blocks_and_main_job_covers_everything(defs):
    check_key = dg.AssetCheckKey(dg.AssetKey(["gold", "dim_customers"]), "great_expectations")
    check_spec = defs.resolve_asset_graph().get_check_spec(check_key)
    assert check_spec.blocking
    job = defs.resolve_job_def("cdp_main")
    assert dg.AssetKey(["activation", "s3_repeat_buyers"]) in job.asset_layer.selected_asset_keys
    assert check_key in job.asset_layer.asset_graph.asset_check_keys
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    assert schedules["sync_crm_customers"] == "0 6 * * *"
    # Retention deletes old landing files and rows: its own daily job, never part of a pipeline run.
    retention = dg.AssetKey(["privacy", "retention_log"])
    assert retention not in job.asset_layer.selected_asset_keys
    assert retention not in defs.resolve_job_def("cdp_daily").asset_layer.selected_asset_keys
    assert defs.resolve_job_def("cdp_retention").asset_layer.selected_asset_keys == {retention}
    assert schedules["cdp_retention_daily"] == "30 4 * * *"
    # Erasure is part of every run, after bronze and before identity resolves anyone.
    erasure = dg.AssetKey(["privacy", "erasure_log"])
    graph = defs.resolve_asset_graph()
    assert erasure in job.asset_layer.selected_asset_keys
    assert erasure in defs.resolve_job_def("cdp_daily").asset_layer.selected_asset_keys
    assert dg.AssetKey(["bronze", "erasure_requests"]) in graph.get(erasure).parent_keys
    assert erasure in graph.get(dg.AssetKey(["silver", "identity_map"])).parent_keys
    assert defs.resolve_job_def("cdp_erasure").asset_layer.selected_asset_keys == {
        erasure,
        dg.AssetKey(["bronze", "erasure_requests"]),
    }


def test_daily_job_is_the_main_job_without_what_new_data_leaves_unchanged(defs, manifest):
    """The daily schedule runs cdp_daily: every asset and check of cdp_main except the dbt views,
    the dbt nodes no source feeds (they change only with the code) and their tests; the weekly
    schedule runs cdp_main on the one day the daily one does not."""
    nodes = manifest["nodes"]

    def fed_by_a_source(unique_id: str) -> bool:
        parents = nodes[unique_id]["depends_on"].get("nodes", [])
        return any(p.startswith("source.") or (p in nodes and fed_by_a_source(p)) for p in parents)

    left_out = {
        unique_id
        for unique_id, n in nodes.items()
        if n["resource_type"] in ("model", "seed", "snapshot")
        and (n["config"]["materialized"] == "view" or not fed_by_a_source(unique_id))
    }
    assert {"seed.cdp.sentiment_lexicon", "model.cdp.dim_segments"} <= left_out
    assert "model.cdp.dim_customers" not in left_out
    left_out_keys = {dg.AssetKey([nodes[n]["schema"], nodes[n]["name"]]) for n in left_out}
    main, daily = defs.resolve_job_def("cdp_main"), defs.resolve_job_def("cdp_daily")
    assert main.asset_layer.selected_asset_keys - daily.asset_layer.selected_asset_keys == left_out_keys
    assert dg.AssetKey(["gold", "fct_orders"]) in daily.asset_layer.selected_asset_keys

    daily_checks = daily.asset_layer.asset_graph.asset_check_keys
    assert {key.asset_key for key in daily_checks}.isdisjoint(left_out_keys)
    attached = [
        n["attached_node"] for n in nodes.values() if n["resource_type"] == "test" and n.get("attached_node") in nodes
    ]
    on_left_out = [node for node in attached if node in left_out]
    on_daily = {dg.AssetKey([nodes[n]["schema"], nodes[n]["name"]]) for n in attached if n not in left_out}
    assert on_daily <= {key.asset_key for key in daily_checks}
    assert len(main.asset_layer.asset_graph.asset_check_keys) - len(daily_checks) == len(on_left_out) > 0
    assert dg.AssetCheckKey(dg.AssetKey(["gold", "dim_customers"]), "great_expectations") in daily_checks

    schedules = {s.name: s for s in defs.schedules}
    assert (schedules["cdp_main_daily"].job_name, schedules["cdp_main_daily"].cron_schedule) == (
        "cdp_daily",
        "0 3 * * 1-6",
    )
    assert (schedules["cdp_main_weekly"].job_name, schedules["cdp_main_weekly"].cron_schedule) == (
        "cdp_main",
        "0 3 * * 0",
    )


def test_both_jobs_run_dbt_after_the_spark_steps_that_write_its_sources(defs):
    """The dbt tables read bronze and silver through views, which cdp_daily leaves out; the
    tables' direct links to those sources keep its steps in pipeline order (it ran dbt first).
    The scores split dbt in two: fct_orders and what it reads, the scoring job, the rest."""
    from dagster._core.execution.api import create_execution_plan

    for job_name in ("cdp_main", "cdp_daily"):
        plan = create_execution_plan(defs.resolve_job_def(job_name))
        steps = [step.key for step in plan.get_steps_to_execute_in_topo_order()]
        assert [step for step in steps if "dbt" in step] == ["cdp_dbt_orders", "cdp_dbt_models"], (job_name, steps)
        order = [
            steps.index(step)
            for step in (
                "identity_resolution",
                "cdp_dbt_orders",
                "silver__customer_scores",
                "cdp_dbt_models",
                "gold_great_expectations",
                "activation",
            )
        ]
        assert order == sorted(order), (job_name, steps)
        assert max(steps.index(writer) for writer in ("bronze_events", "bronze_ingest")) < order[0], (job_name, steps)


def test_a_failing_blocking_check_stops_the_syncs_downstream():
    """Dagster's blocking semantics with our activation multi-asset: dim_customers' blocking
    check fails, so no sync runs (and the syncs' Spark job is never launched)."""
    from dagster_project.defs.activation.assets import activation

    @dg.asset(
        key=["gold", "dim_customers"],
        check_specs=[dg.AssetCheckSpec("great_expectations", asset=["gold", "dim_customers"], blocking=True)],
    )
    def dim_customers():
        yield dg.Output(None)
        yield dg.AssetCheckResult(passed=False, check_name="great_expectations")

    from dagster_project.resources import CdpSettingsResource

    models = [dg.AssetSpec(key) for key in activation.dependency_keys if key.path[-1] != "dim_customers"]
    result = dg.materialize(
        [dim_customers, activation, *models],
        raise_on_error=False,
        selection=dg.AssetSelection.assets(dim_customers, activation),
        resources={"pipes": dg.PipesSubprocessClient(), "cdp_settings": CdpSettingsResource()},
    )
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"gold/dim_customers"}
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    failed = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert (started, failed) == ({"gold__dim_customers"}, {"gold__dim_customers"})  # activation never started


@pytest.mark.parametrize("module", ["dagster_project.definitions", "devstack.definitions"])
def test_code_location_loads_the_way_dagster_dev_loads_it(tmp_path, module):
    """`dagster dev` refuses a module with more than one Definitions object at module scope."""
    import subprocess
    import sys
    from pathlib import Path

    prepare_manifest()
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", module],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_event_sources_have_daily_partitions_and_the_schedule_covers_yesterday_and_today(defs):
    from datetime import datetime

    graph = defs.resolve_asset_graph()
    partitions = {
        key.path[-1]: graph.get(key).partitions_def for key in graph.get_all_asset_keys() if key.path[0] == "bronze"
    }
    assert {name for name, p in partitions.items() if p is not None} == {
        "web_events",
        "email_events",
        "social_mentions",
        "survey_responses",
        "consent_events",
        "pos_transactions",
        "shop_order_lines",
    }
    assert isinstance(partitions["web_events"], dg.DailyPartitionsDefinition)
    assert partitions["crm_contacts"] is None and partitions["shop_orders"] is None

    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 1, 2, 3, tzinfo=UTC)
        )
        [request] = defs.resolve_schedule_def("cdp_main_daily").evaluate_tick(context).run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2026-01-01",
        "2026-01-02",
    )


def test_steps_run_side_by_side_only_as_clients_of_one_spark_service_or_a_shared_metastore(monkeypatch, tmp_path):
    """The executor is chosen when a run starts, from the run's environment (a code location
    loaded without the service, then run with it, must still run steps in parallel)."""
    from dagster._core.executor.in_process import InProcessExecutor
    from dagster._core.executor.multiprocess import MultiprocessExecutor

    from dagster_project.definitions import cdp_steps_executor

    base = {
        "CDP_HOME": str(tmp_path),
        "CDP_SPARK_REMOTE": "",
        "CDP_HIVE_METASTORE_URIS": "",
        "CDP_MAX_PARALLEL_STEPS": "2",
    }
    cases = [
        ({}, InProcessExecutor),  # each step its own Spark, one Derby metastore: one at a time
        ({"CDP_SPARK_REMOTE": "sc://localhost:15002"}, MultiprocessExecutor),
        ({"CDP_HIVE_METASTORE_URIS": "thrift://metastore:9083"}, MultiprocessExecutor),
        ({"CDP_SPARK_REMOTE": "sc://localhost:15002", "CDP_MAX_PARALLEL_STEPS": "1"}, InProcessExecutor),
    ]
    for change, kind in cases:
        for key, value in {**base, **change}.items():
            monkeypatch.setenv(key, value)
        executor = cdp_steps_executor.executor_creation_fn(None)
        assert type(executor) is kind, change
        if kind is MultiprocessExecutor:
            assert executor._max_concurrent == 2


def test_each_dbt_invocation_writes_under_the_state_folder_and_old_ones_are_removed(defs, tmp_path, monkeypatch):
    """dagster-dbt's default target folder per invocation (dbt/target/<op>-<run>-<id>) is never
    removed: 93 of them held 530 MB after a day of work here."""
    import os

    from dagster_project.defs.dbt import assets

    monkeypatch.setenv("CDP_HOME", str(tmp_path))
    runs = tmp_path / "dbt-runs"
    runs.mkdir()
    for i in range(25):
        (runs / f"old-{i:02d}").mkdir()
        (runs / f"old-{i:02d}" / "run_results.json").write_text("{}")
        os.utime(runs / f"old-{i:02d}", (1_000_000 + i, 1_000_000 + i))

    class Context:  # what invocation_target_path reads of Dagster's context
        class op_execution_context:
            class op:
                name = "cdp_dbt_models"

        class run:
            run_id = "f57f82b4-0314-41e8-b536-00fe35a27af7"

    target = assets.invocation_target_path(Context())
    assert target.parent == runs and target.name.startswith("cdp_dbt_models-f57f82b4-")
    kept = sorted(p.name for p in runs.iterdir())
    assert kept == [f"old-{i:02d}" for i in range(25 - assets.KEPT_DBT_RUNS + 1, 25)]


def test_every_check_says_what_it_checks(defs):
    """dbt's generic tests come without a description; the UI shows one for each check."""
    graph = defs.resolve_asset_graph()
    described = {key.to_user_string(): graph.get_check_spec(key).description for key in graph.asset_check_keys}
    assert [key for key, description in described.items() if not description] == []
    assert (
        described["gold/customer_segments:relationships_customer_segments_customer_id__customer_id__ref_dim_customers_"]
        == "every customer_id is a customer_id of dim_customers (or null)"
    )
    assert described["gold/customer_consent:unique_combination_of_columns_customer_consent_customer_id__purpose"] == (
        "one row per customer_id, purpose"
    )
    assert described["gold/fct_cx_metrics:between_fct_cx_metrics_nps__100___100"] == (
        "nps is between -100 and 100 (or null)"
    )
