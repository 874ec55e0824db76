"""Deterministic links: records that share a strong identifier, with the evidence.

Identifiers come in long form, ``(record_id, kind, value)``, already standardised. Two kinds
of identifier behave differently:

- *personal* ones (a CRM contact id carried by an order, a loyalty card, a logged-in user id,
  a social handle on one platform, any ``identifier_<name>`` a user's mapping declares)
  belong to one person: every record that carries the value is linked;
- *shareable* ones (email, phone, a vendor's hashed email) are personal in most cases, but
  a household can share a landline or a family mailbox. Sharing one is never enough on its
  own: records are linked only when their first names agree (after nickname standardisation)
  and their birth dates do not contradict. A record without a first name (an order with only an email) is linked
  only if everyone named on that email or phone has the same first name. Otherwise it is
  ambiguous and left to the probabilistic stage.

Each group of records that may be linked is joined as a star to its smallest record id, so
a value shared by n records gives n - 1 links, not n² pairs.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

PERSONAL_KINDS = ("crm_contact_id", "loyalty_card_id", "user_id", "social_handle")
IDENTIFIER_PREFIX = "identifier_"  # a user's own personal identifiers (records.py): personal too
SHAREABLE_KINDS = ("email", "phone", "email_sha256")


def _star(rows: DataFrame, group: list[str], rule: str) -> DataFrame:
    """Link every record of a group to the group's smallest record id."""
    anchor = F.min("record_id").over(Window.partitionBy(*group))
    return (
        rows.withColumn("linked_to", anchor)
        .where(F.col("record_id") != F.col("linked_to"))
        .select("record_id", "linked_to", F.lit(rule).alias("rule"), "kind", "value")
    )


def deterministic_links(identifiers: DataFrame, people: DataFrame) -> DataFrame:
    """``identifiers(record_id, kind, value)`` and ``people(record_id, first_name, birth_date)``
    -> links ``(record_id, linked_to, rule, kind, value)``: the record is the same person as
    ``linked_to`` because of ``rule`` on the identifier ``value``. Each (kind, value) group is
    decided on its own records alone, so a group can be re-decided without the others."""
    personal_kind = F.col("kind").isin(*PERSONAL_KINDS) | F.col("kind").startswith(IDENTIFIER_PREFIX)
    unknown = (
        identifiers.where(~personal_kind & ~F.col("kind").isin(*SHAREABLE_KINDS)).select("kind").distinct().collect()
    )
    if unknown:
        raise ValueError(
            f"unknown identifier kind(s) {sorted(r.kind for r in unknown)}; "
            f"known: {PERSONAL_KINDS + SHAREABLE_KINDS} and {IDENTIFIER_PREFIX}<name>"
        )
    ids = identifiers.where(F.col("value").isNotNull()).select("record_id", "kind", "value").distinct()

    personal = _star(ids.where(personal_kind), ["kind", "value"], "exact_personal_id")

    shared = ids.where(F.col("kind").isin(*SHAREABLE_KINDS)).join(
        people.select("record_id", "first_name", "birth_date"), "record_id", "left"
    )
    by_value = Window.partitionBy("kind", "value")
    by_name = Window.partitionBy("kind", "value", "first_name")
    shared = shared.withColumn("names", F.size(F.collect_set("first_name").over(by_value))).withColumn(
        "dobs", F.size(F.collect_set("birth_date").over(by_name))
    )
    # Named records: same value and first name, and at most one birth date among them (if
    # two differ, only the records that agree on it are linked: a father and son, both John).
    named = shared.where(F.col("first_name").isNotNull())
    same_name = _star(named.where("dobs <= 1"), ["kind", "value", "first_name"], "exact_shared_id_same_name")
    same_name_and_dob = _star(
        named.where("dobs > 1 AND birth_date IS NOT NULL"),
        ["kind", "value", "first_name", "birth_date"],
        "exact_shared_id_same_name_dob",
    )
    # Unnamed records join the only person named on the value (anchored at a named record, so
    # they land in that person's component), or each other when nobody is named.
    named_dobs = F.coalesce(F.max(F.when(F.col("first_name").isNotNull(), F.col("dobs"))).over(by_value), F.lit(0))
    unambiguous = shared.withColumn("named_dobs", named_dobs).where("names <= 1 AND named_dobs <= 1")
    named_id = F.when(F.col("first_name").isNotNull(), F.col("record_id"))
    anchor = F.coalesce(F.min(named_id).over(by_value), F.min("record_id").over(by_value))
    unnamed = (
        unambiguous.withColumn("linked_to", anchor)
        .where(F.col("first_name").isNull() & (F.col("record_id") != F.col("linked_to")))
        .select("record_id", "linked_to", F.lit("exact_shared_id_unnamed").alias("rule"), "kind", "value")
    )
    return personal.unionByName(same_name).unionByName(same_name_and_dob).unionByName(unnamed)
