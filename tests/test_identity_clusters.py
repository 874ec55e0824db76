"""Connected components of record links: exact components, isolated records, chains, guards."""

from __future__ import annotations

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_jobs.identity.clusters import (
    ComponentsDidNotConverge,
    connected_components,
    oversized_components,
)


def _graph(spark, ids, links):
    nodes = spark.createDataFrame([(i,) for i in ids], "id string")
    edges = spark.createDataFrame(links, "src string, dst string")
    return nodes, edges


def test_components_are_labelled_by_their_smallest_id(spark):
    nodes, edges = _graph(
        spark, ["a", "b", "c", "d", "e", "f"], [("c", "b"), ("b", "a"), ("e", "d"), ("d", "d"), ("x", "f")]
    )  # self-link, unknown node
    assertDataFrameEqual(
        connected_components(nodes, edges),
        [
            Row(id="a", component="a"),
            Row(id="b", component="a"),
            Row(id="c", component="a"),
            Row(id="d", component="d"),
            Row(id="e", component="d"),
            Row(id="f", component="f"),
        ],
    )


def test_a_long_chain_and_a_star_converge_to_one_component(spark):
    chain = [f"n{i:02d}" for i in range(12)]
    links = [(chain[i + 1], chain[i]) for i in range(len(chain) - 1)] + [("hub", f"s{i}") for i in range(5)]
    nodes, edges = _graph(spark, chain + ["hub"] + [f"s{i}" for i in range(5)], links)
    components = {r.id: r.component for r in connected_components(nodes, edges).collect()}
    assert {components[n] for n in chain} == {"n00"}
    assert {components[n] for n in ["hub"] + [f"s{i}" for i in range(5)]} == {"hub"}


def test_too_long_a_chain_is_an_error_not_a_wrong_answer(spark):
    chain = [f"n{i}" for i in range(6)]
    nodes, edges = _graph(spark, chain, [(chain[i], chain[i + 1]) for i in range(5)])
    with pytest.raises(ComponentsDidNotConverge, match="after 2 rounds"):
        connected_components(nodes, edges, max_rounds=2)


def test_oversized_components_are_flagged(spark):
    nodes, edges = _graph(spark, ["a", "b", "c", "d"], [("a", "b"), ("b", "c")])
    assertDataFrameEqual(
        oversized_components(connected_components(nodes, edges), limit=2), [Row(component="a", size=3)]
    )
