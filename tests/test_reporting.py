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


class RecordingHandler:
    """The two calls a Pipes message reader makes on the orchestrator's handler."""

    def __init__(self) -> None:
        self.messages, self.errors = [], []

    def handle_message(self, message: dict) -> None:
        self.messages.append(message)

    def report_pipes_framework_exception(self, origin: str, exc_info) -> None:
        self.errors.append(f"{origin}: {exc_info[1]!r}")


def test_the_steps_message_reader_waits_for_a_line_the_job_is_still_writing(tmp_path):
    """A message with a chart is tens of KB, and the reader can reach the end of the file while
    the job is still writing it: Dagster's own file reader then parses half a line, and its
    thread dies with every later message of the step. Ours parses a line once it is whole."""
    import json
    import threading
    import time

    from dagster_project.pipes import WholeLinesFileMessageReader

    chart = {"method": "report_asset_materialization", "params": {"png": "A" * 50_000}}
    line = json.dumps(chart) + "\n"
    path = tmp_path / "messages"
    handler = RecordingHandler()

    def job() -> None:
        with path.open("a", encoding="utf-8") as messages:
            messages.write(line[:1000])  # the first pages of the message...
            messages.flush()
            time.sleep(0.5)  # ...while the reader tails the file
            messages.write(line[1000:] + json.dumps({"method": "closed"}) + "\n")

    with WholeLinesFileMessageReader(str(path), cleanup_file=False).read_messages(handler):
        writer = threading.Thread(target=job)
        writer.start()
        writer.join()
    assert handler.errors == []
    assert handler.messages == [chart, {"method": "closed"}]
