"""The charts of asset metadata: valid PNGs embedded as Markdown, typed as Markdown for Pipes."""

from __future__ import annotations

import pytest
from conftest import png_of

from spark_jobs import plots
from spark_jobs.reporting import loggable, to_pipes_metadata


@pytest.mark.parametrize(
    "chart",
    [
        lambda: plots.bars("Customers by number of records", {"1": 50, "2": 20, "3-5": 4}, "records", "customers"),
        lambda: plots.bars("Links by rule", {"exact_personal_id": 12, "fellegi_sunter": 5}, "links", horizontal=True),
        lambda: plots.histogram("Weights", {-1.0: 2, 0.0: 3, 0.5: 9, 7.5: 4}, 0.5, 0.0, "match weight"),
        lambda: plots.grouped_bars(
            "web_events: rows per delivery day",
            ["2025-12-30", "2025-12-31"],
            {"received": [10, 12], "accepted": [9, 12], "quarantined": [1, 0]},
        ),
        lambda: plots.lines("NPS by month", ["2025-10", "2025-11", "2025-12"], {"NPS": [12.5, None, 30.0]}),
    ],
)
def test_each_chart_is_a_small_valid_png_of_the_documented_size(chart):
    markdown = chart()
    assert isinstance(markdown, plots.Markdown)
    title, image, size = png_of(markdown)
    assert title and image.format == "PNG"
    assert image.size == (480, 224)
    assert size < 60_000, "a chart is kilobytes, not a screenshot"


def test_charts_go_to_dagster_as_markdown_and_to_the_log_by_name():
    chart = plots.bars("Links by rule", {"a": 1})
    metadata = {"records": 4, "links_by_rule": {"a": 1}, "chart_links": chart}
    assert to_pipes_metadata(metadata) == {
        "records": 4,
        "links_by_rule": {"raw_value": {"a": 1}, "type": "json"},
        "chart_links": {"raw_value": str(chart), "type": "md"},
    }
    assert loggable(metadata) == {"records": 4, "links_by_rule": {"a": 1}, "chart_links": "<chart>"}


def test_identity_charts_bin_the_accepted_fellegi_sunter_weights(spark):
    from spark_jobs.identity.resolve import identity_charts, match_weight_bins

    links = spark.createDataFrame(
        [("fellegi_sunter", 0.2), ("fellegi_sunter", 0.49), ("fellegi_sunter", 7.5), ("fellegi_sunter", -0.3),
         ("exact_personal_id", None), ("exact_shared_id_same_name", 3.0)],
        "rule string, match_weight double",
    )  # fmt: skip
    bins = match_weight_bins(links)
    assert bins == {"-0.5": 1, "0": 2, "7.5": 1}  # only the probabilistic links, 0.5 wide, lower edges
    charts = identity_charts(
        {"match_weight_bins": bins, "cluster_sizes": {"1": 3, "2": 1}, "links_by_rule": {"fellegi_sunter": 4}}
    )
    assert sorted(charts) == ["chart_cluster_sizes", "chart_links_by_rule", "chart_match_weights"]
    assert [png_of(chart)[0] for chart in charts.values()] == [
        "Accepted Fellegi-Sunter links by match weight",
        "Customers by number of records",
        "Links by rule",
    ]


def test_dbt_models_get_their_typed_columns_and_charts_and_a_failure_costs_only_the_metadata(fresh_database):
    """The dbt step's additions to a model's materialisation (dagster_project/defs/dbt/model_metadata.py),
    on tables of the unit session: columns with Spark's types, the row count, the funnel chart, nothing for a
    test's result, and a relation that cannot be read leaves the event as it was."""
    import dagster as dg

    from dagster_project.defs.dbt.model_metadata import with_model_metadata

    spark = fresh_database
    spark.createDataFrame(
        [("visit", 1, 10), ("cart", 2, 4), ("visit", 1, 5)],
        "stage string, stage_rank int, journeys_reached bigint",
    ).write.format("delta").saveAsTable("gold.fct_journey_funnel")
    events = [
        dg.Output(None, "funnel", metadata={"unique_id": "model.cdp.fct_journey_funnel"}),
        dg.AssetCheckResult(
            asset_key=["gold", "fct_journey_funnel"], passed=True, metadata={"unique_id": "test.cdp.t"}
        ),
        dg.Output(None, "gone", metadata={"unique_id": "model.cdp.gone"}),
    ]
    relations = {"model.cdp.fct_journey_funnel": "gold.fct_journey_funnel", "model.cdp.gone": "gold.gone"}
    tables = frozenset(relations)
    funnel, check, gone = with_model_metadata(iter(events), lambda: spark, relations, tables)

    columns = funnel.metadata["dagster/column_schema"].value.columns
    assert [(c.name, c.type) for c in columns] == [
        ("stage", "string"),
        ("stage_rank", "int"),
        ("journeys_reached", "bigint"),
    ]
    png_of(funnel.metadata["chart_funnel"].value)
    assert funnel.metadata["dagster/row_count"].value == 3
    assert check is events[1]
    assert gone.metadata == events[2].metadata  # logged, not raised


def test_the_segment_and_cx_charts_read_their_gold_tables(fresh_database):
    """The queries behind the segment-history and CX charts, on small tables of the gold models'
    shape: a chart when there are rows, none when the table is empty."""
    from datetime import date, datetime

    from dagster_project.defs.dbt.model_metadata import cx_metrics_chart, segment_history_chart, segment_members

    spark = fresh_database
    spark.createDataFrame(
        [("s1", "c1", "loyal", datetime(2025, 12, 1), None), ("s2", "c2", "lapsed", datetime(2025, 12, 1),
         datetime(2025, 12, 3)), ("s3", "c2", "loyal", datetime(2025, 12, 3), None)],
        "stay_id string, customer_id string, segment_name string, entered_at timestamp, left_at timestamp",
    ).write.format("delta").saveAsTable("gold.customer_segment_history")  # fmt: skip
    assert segment_members(spark) == {  # c2 left the lapsed buyers for the loyal ones on the 3rd
        (date(2025, 12, 1), "loyal"): 1,
        (date(2025, 12, 1), "lapsed"): 1,
        (date(2025, 12, 3), "loyal"): 2,
    }
    assert png_of(segment_history_chart(spark)["chart_segment_members"])[0] == "Members per segment"

    columns = (
        "period_month date, dimension string, dimension_value string, nps double, average_csat double, "
        "average_ces double"
    )
    spark.createDataFrame([], columns).write.format("delta").saveAsTable("gold.fct_cx_metrics")
    assert cx_metrics_chart(spark) == {}
    spark.createDataFrame(
        [(date(2025, 11, 1), "all", "all", 20.0, 4.1, 2.5), (date(2025, 12, 1), "all", "all", 35.5, None, 3.0),
         (date(2025, 12, 1), "segment", "loyal", 90.0, 5.0, 1.0)],
        columns,
    ).write.format("delta").mode("append").saveAsTable("gold.fct_cx_metrics")  # fmt: skip
    charts = cx_metrics_chart(spark)
    assert [png_of(charts[name])[0] for name in ("chart_nps", "chart_csat_ces")] == [
        "NPS by month",
        "CSAT (1-5) and CES (1-7) by month",
    ]
