"""dbt macros that mirror a Spark job's logic, checked against it on the same inputs; and our own
generic dbt tests, on rows that must pass and rows that must fail."""

from __future__ import annotations

import jinja2
from pyspark.sql import functions as F

from spark_jobs.identity import standardise as std
from spark_jobs.settings import REPO_ROOT

AWKWARD_EMAILS = [
    "  Ann.Lee+News@GoogleMail.com ",
    "a.n.n@gmail.com",
    "bob+x@outlook.com",
    "bob+x@example.com",
    "b.o.b@example.co.uk",
    "+tag@gmail.com",
    "..@gmail.com",
    "no-at-sign",
    "two@@example.com",
    "x@nodot",
    "",
    None,
    "ZOË@Example.com",
    "me+a+b@icloud.com",
    "first.last@proton.me",
] + [f"some.one+tag@{domain}" for domain in std.PLUS_TAG_DOMAINS]


def _render(source: str, name: str, arguments: str) -> str:
    """Render ``name(arguments)`` after the Jinja ``source`` that defines it (plain Jinja only)."""
    return jinja2.Environment().from_string(f"{source}{{{{ {name}({arguments}) }}}}").render()


def render_macro(name: str, *args: str) -> str:
    """Render a dbt macro that uses only plain Jinja (no dbt context) to SQL."""
    source = (REPO_ROOT / "dbt" / "macros" / f"{name}.sql").read_text(encoding="utf-8")
    return _render(source, name, ", ".join(repr(a) for a in args))


def render_generic_test(name: str, **kwargs: str) -> str:
    """Render a generic dbt test of dbt/tests/generic (plain Jinja inside `{% test %}`) to SQL."""
    source = (REPO_ROOT / "dbt" / "tests" / "generic" / f"{name}.sql").read_text(encoding="utf-8")
    source = source.replace("{% test ", "{% macro ").replace("{% endtest %}", "{% endmacro %}")
    return _render(source, name, ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))


def test_primary_key_test_finds_duplicate_and_null_keys_only(spark):
    spark.createDataFrame(
        [("a", 1), ("b", 2), ("b", 3), (None, 4), ("c", 5)], "k string, v int"
    ).createOrReplaceTempView("keys_with_faults")
    spark.createDataFrame([("a", 1), ("b", 2)], "k string, v int").createOrReplaceTempView("keys_clean")
    failures = spark.sql(render_generic_test("primary_key", model="keys_with_faults", column_name="k")).collect()
    assert {(r.key_value, r.rows_with_key) for r in failures} == {("b", 2), (None, 1)}
    assert spark.sql(render_generic_test("primary_key", model="keys_clean", column_name="k")).collect() == []


def test_standardise_email_macro_equals_the_identity_standardiser(spark):
    emails = spark.createDataFrame([(i, e) for i, e in enumerate(AWKWARD_EMAILS)], "i int, email string")
    by_macro = emails.select("i", F.expr(render_macro("standardise_email", "email")).alias("value"))
    by_python = emails.select("i", std.email(F.col("email")).alias("value"))
    macro_values = {r.i: r.value for r in by_macro.collect()}
    assert macro_values == {r.i: r.value for r in by_python.collect()}
    assert macro_values[0] == "annlee@gmail.com" and macro_values[3] == "bob+x@example.com"
    assert macro_values[7] is None and macro_values[11] is None
