"""Probabilistic matching (Fellegi-Sunter) for records that share no strong identifier.

1. **Blocking**: candidate pairs are records that agree on at least one blocking key (e.g.
   last name and birth date). Keys held by more than ``max_block_size`` records are
   skipped, so the work grows about linearly with the records, never with all pairs.
2. **Comparison**: each field of a pair gets a level, 2 = agrees, 1 = nearly agrees (an edit
   or two, a nickname, a swapped day and month), 0 = disagrees, null = a side is missing
   (no evidence either way).
3. **Estimation**: pairs are reduced to counts per pattern of levels (a few hundred
   patterns). EM on those counts estimates, per field and level, m = P(level | same person)
   and u = P(level | different people), and the share of matches. The weights come from
   the data, not from a hand-tuned table.
4. **Scoring**: a pair's match weight is the sum of log2(m/u) over its known fields plus the
   prior. Pairs above the threshold probability are links, with their levels as evidence.

A household guard runs after the scoring: a pair whose first names and birth dates both
disagree is never a link, whatever the address and surname say.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

BLOCKING_KEYS: dict[str, list[str]] = {
    "last_name_dob": ["last_name", "birth_date"],
    "first_name_dob": ["first_name", "birth_date"],
    "names_postcode": ["first_name", "last_name", "postcode"],
    "phone_last_name": ["phone", "last_name"],
}
FIELDS = ("first_name", "last_name", "birth_date", "email", "phone", "address")


def _near_text(left: Column, right: Column, max_edits: int) -> Column:
    return F.levenshtein(left, right) <= F.lit(max_edits)


def comparison_levels(pairs: DataFrame) -> DataFrame:
    """Adds ``gamma_<field>`` (2/1/0/null) for a frame of ``<field>_l`` / ``<field>_r`` columns."""
    def level(field: str, near: Column | None) -> Column:
        left, right = F.col(f"{field}_l"), F.col(f"{field}_r")
        out = F.when(left.isNull() | right.isNull(), F.lit(None)).when(left == right, F.lit(2))
        if near is not None:
            out = out.when(near, F.lit(1))
        return out.otherwise(F.lit(0)).cast("int").alias(f"gamma_{field}")

    dob_l, dob_r = F.col("birth_date_l"), F.col("birth_date_r")
    dob_near = ((F.year(dob_l) == F.year(dob_r))
                & (((F.month(dob_l) == F.dayofmonth(dob_r)) & (F.dayofmonth(dob_l) == F.month(dob_r)))
                   | (F.month(dob_l) == F.month(dob_r)) | (F.dayofmonth(dob_l) == F.dayofmonth(dob_r)))) \
        | ((F.month(dob_l) == F.month(dob_r)) & (F.dayofmonth(dob_l) == F.dayofmonth(dob_r)))
    email_near = F.substring_index(F.col("email_l"), "@", 1) == F.substring_index(F.col("email_r"), "@", 1)
    address_near = F.col("postcode_l") == F.col("postcode_r")
    return pairs.select(
        "*",
        level("first_name", _near_text(F.col("first_name_l"), F.col("first_name_r"), 1)),
        level("last_name", _near_text(F.col("last_name_l"), F.col("last_name_r"), 1)),
        level("birth_date", dob_near),
        level("email", email_near),
        level("phone", None),
        level("address", address_near & _near_text(F.col("address_l"), F.col("address_r"), 2)),
    )


def comparable(records: DataFrame) -> DataFrame:
    """The records Fellegi-Sunter compares: those with a first and a last name."""
    return records.where("first_name IS NOT NULL AND last_name IS NOT NULL")


def block_keys(records: DataFrame) -> DataFrame:
    """``(record_id, block)``: one row per blocking key a record has (``<name>:<values>``)."""
    frames = [records.where(" AND ".join(f"{k} IS NOT NULL" for k in keys)).select(
        "record_id", F.concat_ws("\u0001", F.lit(name), *[F.col(k).cast("string") for k in keys]).alias("block"))
        for name, keys in BLOCKING_KEYS.items()]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def small_blocks(keys: DataFrame, max_block_size: int) -> DataFrame:
    """``(block)`` of the blocks with at most ``max_block_size`` records."""
    return keys.groupBy("block").count().where(F.col("count") <= max_block_size).select("block")


def candidate_pairs(records: DataFrame, max_block_size: int = 50, only_blocks: DataFrame | None = None) -> DataFrame:
    """Distinct ``(id_l, id_r)`` with id_l < id_r that share at least one blocking key of at
    most ``max_block_size`` records (only the keys in ``only_blocks(block)``, when given)."""
    keys = block_keys(records)
    small = small_blocks(keys, max_block_size)
    if only_blocks is not None:
        small = small.join(only_blocks, "block", "left_semi")
    keyed = keys.join(small, "block", "left_semi")
    return keyed.alias("l").join(keyed.alias("r"), "block").where(F.col("l.record_id") < F.col("r.record_id")) \
        .select(F.col("l.record_id").alias("id_l"), F.col("r.record_id").alias("id_r")).distinct()


def with_sides(pairs: DataFrame, records: DataFrame) -> DataFrame:
    """The fields of both records of each pair, as ``<field>_l`` and ``<field>_r``."""
    columns = ["first_name", "last_name", "birth_date", "email", "phone", "address", "postcode"]
    side = records.select("record_id", *[F.col("address_line").alias(c) if c == "address" else c for c in columns])
    left = side.select(F.col("record_id").alias("id_l"), *[F.col(c).alias(f"{c}_l") for c in columns])
    right = side.select(F.col("record_id").alias("id_r"), *[F.col(c).alias(f"{c}_r") for c in columns])
    return pairs.join(left, "id_l").join(right, "id_r")


@dataclass(frozen=True)
class Model:
    """m and u per field and level, and the prior share of matches among candidate pairs."""

    m: dict[str, dict[int, float]]
    u: dict[str, dict[int, float]]
    match_share: float
    iterations: int

    def weight(self, field: str, level: int) -> float:
        return math.log2(self.m[field][level] / self.u[field][level])

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Model:
        raw = json.loads(text)
        levels = lambda table: {f: {int(lv): p for lv, p in by_level.items()} for f, by_level in table.items()}  # noqa: E731
        return cls(levels(raw["m"]), levels(raw["u"]), raw["match_share"], raw["iterations"])


def estimate(patterns: list[tuple[dict[str, int | None], int]], fields=FIELDS, max_iterations: int = 100,
             tolerance: float = 1e-6) -> Model:
    """EM over ``(levels by field, number of pairs)``. Missing levels carry no evidence."""
    levels = (0, 1, 2)
    # Start: agreement is likelier for matches; a small share of candidate pairs are matches.
    m = {f: {0: 0.1, 1: 0.2, 2: 0.7} for f in fields}
    u = {f: {0: 0.8, 1: 0.15, 2: 0.05} for f in fields}
    share = 0.1
    floor = 1e-6
    for iteration in range(1, max_iterations + 1):
        m_counts = {f: {lv: floor for lv in levels} for f in fields}
        u_counts = {f: {lv: floor for lv in levels} for f in fields}
        matches = total = 0.0
        for pattern, count in patterns:
            log_m = math.log(share)
            log_u = math.log(1 - share)
            for f in fields:
                lv = pattern.get(f)
                if lv is not None:
                    log_m += math.log(m[f][lv])
                    log_u += math.log(u[f][lv])
            p = 1 / (1 + math.exp(log_u - log_m)) if log_u - log_m < 700 else 0.0
            matches += p * count
            total += count
            for f in fields:
                lv = pattern.get(f)
                if lv is not None:
                    m_counts[f][lv] += p * count
                    u_counts[f][lv] += (1 - p) * count
        new_m = {f: {lv: c / sum(m_counts[f].values()) for lv, c in m_counts[f].items()} for f in fields}
        new_u = {f: {lv: c / sum(u_counts[f].values()) for lv, c in u_counts[f].items()} for f in fields}
        new_share = min(max(matches / total, floor), 1 - floor) if total else share
        change = max(abs(new_share - share), *(abs(new_m[f][lv] - m[f][lv]) for f in fields for lv in levels))
        m, u, share = new_m, new_u, new_share
        if change < tolerance:
            break
    return Model(m, u, share, iteration)


def pattern_counts(compared: DataFrame) -> list[tuple[dict[str, int | None], int]]:
    rows = compared.groupBy(*[f"gamma_{f}" for f in FIELDS]).count().collect()
    return [({f: row[f"gamma_{f}"] for f in FIELDS}, row["count"]) for row in rows]


def score_pairs(compared: DataFrame, model: Model) -> DataFrame:
    """Adds ``match_weight`` and ``match_probability`` to compared pairs."""
    prior = math.log2(model.match_share / (1 - model.match_share))
    weight = F.lit(prior)
    for f in FIELDS:
        gamma = F.col(f"gamma_{f}")
        term = F.when(gamma == 0, F.lit(model.weight(f, 0))).when(gamma == 1, F.lit(model.weight(f, 1))) \
            .when(gamma == 2, F.lit(model.weight(f, 2))).otherwise(F.lit(0.0))
        weight = weight + term
    return compared.withColumn("match_weight", weight) \
        .withColumn("match_probability", 1 / (1 + F.pow(F.lit(2.0), -F.col("match_weight"))))


def probabilistic_links(records: DataFrame, threshold: float = 0.99, max_block_size: int = 50,
                        model: Model | None = None, pairs: DataFrame | None = None) -> tuple[DataFrame, Model]:
    """Links ``(record_id, linked_to, rule, match_weight, match_probability, gamma_*)`` above
    ``threshold``, and the model: ``model`` when given (an incremental run keeps the weights
    of the last full run), else estimated on these records. ``pairs(id_l, id_r)`` restricts
    the comparison to those candidates (default: every candidate pair). ``records`` needs
    record_id, first_name, last_name, birth_date, email, phone, address_line and postcode."""
    pairs = pairs if pairs is not None else candidate_pairs(records, max_block_size)
    compared = comparison_levels(with_sides(pairs, records)).cache()
    model = model or estimate(pattern_counts(compared))
    scored = score_pairs(compared, model)
    household_guard = ~((F.col("gamma_first_name") == 0) & (F.col("gamma_birth_date") == 0))
    links = scored.where((F.col("match_probability") >= threshold) & F.coalesce(household_guard, F.lit(True)))
    return links.select(
        F.col("id_r").alias("record_id"), F.col("id_l").alias("linked_to"), F.lit("fellegi_sunter").alias("rule"),
        "match_weight", "match_probability", *[f"gamma_{f}" for f in FIELDS],
    ), model
