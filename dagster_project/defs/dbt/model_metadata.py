"""What the dbt step adds to each model's materialisation once dbt has built it, asked of the
Spark service as a Spark Connect client (the step holds no JVM):

- the columns with their Spark types (``dagster/column_schema``), for tables and views, and
  the row count of tables (``dagster/row_count``);
- charts of a few models, one small aggregate query each, plotted by spark_jobs/plots.py:
  gold/customer_segment_history (members per segment on each of the newest 30 days a stay began
  or ended), gold/fct_journey_funnel (journeys that reached each stage), gold/fct_cx_metrics
  (NPS, and CSAT and CES, by month, all customers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import dagster as dg

from spark_jobs import plots

log = logging.getLogger(__name__)

Charts = dict[str, plots.Markdown]


def segment_members(spark) -> dict[tuple, int]:
    """(day, segment) -> members at the end of the day, on each of the newest 30 days a stay in
    gold.customer_segment_history began or ended."""
    rows = spark.sql("""
        with stays as (
            select segment_name, cast(entered_at as date) as entered_on, cast(left_at as date) as left_on
            from gold.customer_segment_history
        ),
        days as (
            select day from (
                select entered_on as day from stays union select left_on from stays where left_on is not null
            ) order by day desc limit 30
        )
        select days.day, stays.segment_name, count(*) as members
        from days
        inner join stays on stays.entered_on <= days.day and (stays.left_on is null or stays.left_on > days.day)
        group by days.day, stays.segment_name
    """).collect()
    return {(r.day, r.segment_name): r.members for r in rows}


def segment_history_chart(spark) -> Charts:
    members = segment_members(spark)
    if not members:
        return {}
    days = sorted({day for day, _ in members})
    segments = sorted({segment for _, segment in members})
    chart = plots.lines(
        "Members per segment",
        [d.isoformat() for d in days],
        {s: [members.get((d, s), 0) for d in days] for s in segments},
        "customers",
    )
    return {"chart_segment_members": chart} if chart else {}


def journey_funnel_chart(spark) -> Charts:
    rows = spark.sql("""
        select stage, stage_rank, sum(journeys_reached) as reached
        from gold.fct_journey_funnel group by stage, stage_rank order by stage_rank
    """).collect()
    if not rows:
        return {}
    chart = plots.bars("Journeys reaching each stage", {r.stage: r.reached for r in rows}, "journeys", horizontal=True)
    return {"chart_funnel": chart} if chart else {}


def cx_metrics_chart(spark) -> Charts:
    rows = spark.sql("""
        select period_month, nps, average_csat, average_ces from gold.fct_cx_metrics
        where dimension = 'all' order by period_month
    """).collect()
    if not rows:
        return {}
    months = [r.period_month.strftime("%Y-%m") for r in rows]
    as_float = lambda v: None if v is None else float(v)  # noqa: E731
    charts = {
        "chart_nps": plots.lines("NPS by month", months, {"NPS": [as_float(r.nps) for r in rows]}, "NPS"),
        "chart_csat_ces": plots.lines(
            "CSAT (1-5) and CES (1-7) by month",
            months,
            {"CSAT": [as_float(r.average_csat) for r in rows], "CES": [as_float(r.average_ces) for r in rows]},
            "mean score",
        ),
    }
    return {name: chart for name, chart in charts.items() if chart}


CHARTS: dict[str, Callable] = {
    "customer_segment_history": segment_history_chart,
    "fct_journey_funnel": journey_funnel_chart,
    "fct_cx_metrics": cx_metrics_chart,
}


def column_schema(spark, relation: str) -> dict:
    """``dagster/column_schema`` of a table or view: its columns with Spark's type names."""
    schema = spark.table(relation).schema
    columns = [dg.TableColumn(name=f.name, type=f.dataType.simpleString()) for f in schema.fields]
    return {"dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns))}


def row_count(spark, relation: str) -> dict:
    """``dagster/row_count`` of a table (Delta answers a plain count from its log's statistics)."""
    return {"dagster/row_count": dg.MetadataValue.int(spark.table(relation).count())}


def with_model_metadata(
    events: Iterator, spark: Callable, relations: dict[str, str], tables: frozenset[str] = frozenset()
) -> Iterator:
    """The dbt step's events, with the columns of every model, seed and snapshot built
    (``relations``: unique id -> relation name), the row count of those that are ``tables`` (unique
    ids; a view is not counted: that would run its whole query) and the charts of the CHARTS
    models, asked of the session ``spark()`` returns (made once, at the first model). What
    cannot be fetched is logged and left out: it never fails the build.

    (Not dagster-dbt's ``fetch_row_counts()``: its event loop polls without pause while dbt
    runs, which kept a core busy for the whole dbt step, and it opens dbt's adapter beside.)"""
    session = None
    for event in events:
        unique_id = _unique_id(event)
        if unique_id in relations:
            added: dict = {}
            try:
                session = session or spark()
                added |= column_schema(session, relations[unique_id])
                if unique_id in tables:
                    added |= row_count(session, relations[unique_id])
                model = unique_id.split(".")[-1]
                if model in CHARTS:
                    added |= {k: dg.MetadataValue.md(v) for k, v in CHARTS[model](session).items()}
            except Exception:
                log.warning("no column schema or chart for %s", unique_id, exc_info=True)
            if added:
                event = event.with_metadata({**event.metadata, **added})
        yield event


def _unique_id(event) -> str | None:
    if not isinstance(event, (dg.Output, dg.AssetMaterialization)):
        return None
    unique_id = event.metadata.get("unique_id")
    text = getattr(unique_id, "text", unique_id)
    return text if isinstance(text, str) else None
