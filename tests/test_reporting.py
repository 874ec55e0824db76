"""Job results reach Dagster through a real Pipes session, and a failing blocking check
reported that way stops the assets downstream."""

import sys

import dagster as dg

from spark_jobs.reporting import LogReporter, to_pipes_metadata

REPORT_FAILED_CHECK = """
from spark_jobs.reporting import open_reporter
with open_reporter() as reporter:
    assert reporter.to_dagster
    reporter.checked("gold/table", "quality", False,
                     {"failed_expectations": ["email format"], "email format": {"unexpected_count": 1}, "rows": 3})
"""


def test_nested_metadata_is_declared_as_json():
    assert to_pipes_metadata({"rows": 3, "failed": ["a"], "detail": {"n": 1}}) == {
        "rows": 3,
        "failed": {"raw_value": ["a"], "type": "json"},
        "detail": {"raw_value": {"n": 1}, "type": "json"},
    }


def test_failed_check_reported_through_pipes_blocks_downstream_assets():
    @dg.asset(key=["gold", "table"])
    def table() -> None:
        return None

    @dg.asset_check(asset=table, name="quality", blocking=True)
    def quality(context: dg.AssetCheckExecutionContext, pipes: dg.PipesSubprocessClient) -> dg.AssetCheckResult:
        return pipes.run(
            context=context.op_execution_context, command=[sys.executable, "-c", REPORT_FAILED_CHECK]
        ).get_asset_check_result()

    @dg.asset(key=["activation", "export"], deps=[table])
    def export() -> None:
        return None

    # An instance held here: materialize's ephemeral one can be garbage-collected while the Pipes
    # session still refers to it weakly ("undefined DagsterInstance weakref", seen under xdist).
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [table, quality, export],
            resources={"pipes": dg.PipesSubprocessClient()},
            raise_on_error=False,
            instance=instance,
        )

    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["failed_expectations"].value == ["email format"]
    assert evaluation.metadata["rows"].value == 3
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"gold/table"}


def test_outside_dagster_results_go_to_the_log(caplog):
    with caplog.at_level("INFO"):
        LogReporter().checked("gold/table", "quality", False, {"rows": 3})
    assert "check quality on gold/table FAILED" in caplog.text
    assert not LogReporter.to_dagster
