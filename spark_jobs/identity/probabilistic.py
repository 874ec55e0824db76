"""Probabilistic matching (Fellegi-Sunter) for records that share no strong identifier.

1. **Blocking**: candidate pairs are the records that share at least one blocking key
   (:data:`BLOCKING_RULES`, a union chosen so that nearly every true pair shares one even
   with a typo, a swap, a move or a changed email). A key held by more than
   ``max_block_size`` records is skipped, so the pairs grow about linearly with the records.
2. **Comparison**: every pair gets a graded level per comparison (comparisons.py).
3. **Estimation**, with the same defaults for every data set:
   - u (how often two *different* people reach each level) from random pairs of records;
   - m (how often the *same* person does) and the prior (the chance that two random records
     are one person) by EM over the candidate pairs' level patterns, with u held fixed; the
     prior counts the expected matches among the candidate pairs against all pairs.
4. **Scoring**: a pair's match weight is the log2 prior odds plus, per comparison, log2(m/u)
   of its level, with a term-frequency adjustment on exact first names, surnames and
   postcodes (agreeing on a rare value is stronger evidence than on a common one). Its match
   probability is 1 / (1 + 2^-weight); pairs at or above the threshold are links.

The household guard is part of the evidence, not a veto: a pair that shares a home (the
same street, email or phone) is scored on its person fields (names, birth date) against
what *different people sharing a home* look like, learned from the data (see Model). A
household shares a surname and an address, so agreeing on them proves little there, and a
different first name or birth date weighs heavily; a typo in a name does not.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.identity.comparisons import (
    COMPARISONS,
    HOME_LEVELS,
    HOME_SCORED,
    HOME_UNSCORED,
    LEVELS,
    NEUTRAL_LEVELS,
    TF_FIELDS,
    compare,
    home_column,
    level,
    shares_home,
    with_sides,
)

FIELDS = COMPARISONS  # the evidence columns gamma_<field>
MODEL_VERSION = 2
DEFAULT_THRESHOLD = 0.5
RANDOM_PAIRS = 1_000_000

# Blocking rules: a pair is a candidate when it shares one key of one rule. A key is a tuple of
# SQL expressions over the standardised records; a rule may give a record several keys (its
# first name's and its surname's), so that swapped names still share one. Names block by
# soundex, streets without spaces, so that a typo in one of them does not lose the pair.
_SOUNDS = ("soundex(first_name)", "soundex(last_name)")
_STREET = "replace(address_line, ' ', '')"
BLOCKING_RULES: dict[str, tuple[tuple[str, ...], ...]] = {
    "names": (("least(first_name, last_name)", "greatest(first_name, last_name)"),),
    "name_sounds_year": (
        (f"least({_SOUNDS[0]}, {_SOUNDS[1]})", f"greatest({_SOUNDS[0]}, {_SOUNDS[1]})", "year(birth_date)"),
    ),
    "name_dob": tuple((sound, "birth_date") for sound in _SOUNDS),
    "name_postcode": tuple((sound, "postcode") for sound in _SOUNDS),
    "name_street": tuple((sound, _STREET) for sound in _SOUNDS),
    "name_city": tuple((sound, "city") for sound in _SOUNDS),
    "dob_postcode": (("birth_date", "postcode"),),
    "dob_street": (("birth_date", _STREET),),
    "dob_city": (("birth_date", "city"),),
    "street_postcode": ((_STREET, "postcode"),),
    "street_city": ((_STREET, "city"),),
    "email": (("email",),),
    "email_local_part": (("substring_index(email, '@', 1)",),),
    "phone": (("phone",),),
    "phone_last_7": (("substring(phone, -7, 7)",),),
}


def comparable(records: DataFrame) -> DataFrame:
    """The records Fellegi-Sunter compares: those with a name (first or last) and at least one
    more field to compare. A record with an email or a phone alone (an order, a ticket) is
    linked by the deterministic rules only."""
    return records.where(
        "(first_name IS NOT NULL OR last_name IS NOT NULL) AND (birth_date IS NOT NULL "
        "OR address_line IS NOT NULL OR postcode IS NOT NULL OR email IS NOT NULL OR phone IS NOT NULL)"
    )


def block_keys(records: DataFrame, rules: dict[str, tuple[tuple[str, ...], ...]] | None = None) -> DataFrame:
    """``(record_id, block)``: one row per blocking key a record has (``<rule>\\x01<values>``);
    a key with an empty part is no key. All keys come from one pass over the records (an array
    of keys, exploded), not from a union of one scan per key: the union made every plan that
    reads the keys one branch per key wide (19 today), and planning it cost seconds even on a
    handful of records."""
    keys = []
    for name, rule_keys in (rules or BLOCKING_RULES).items():
        for key in rule_keys:
            parts = [F.expr(e).cast("string") for e in key]
            complete = F.greatest(F.lit(0), *[F.when(p.isNull() | (p == ""), 1) for p in parts]) == 0
            keys.append(F.when(complete, F.concat_ws("\u0001", F.lit(name), *parts)))
    return records.select("record_id", F.explode(F.array(*keys)).alias("block")).where("block IS NOT NULL").distinct()


def rule_of(block: Column) -> Column:
    return F.substring_index(block, "\u0001", 1)


def small_blocks(keys: DataFrame, max_block_size: int) -> DataFrame:
    """``(block)`` of the blocks with at most ``max_block_size`` records."""
    return keys.groupBy("block").count().where(F.col("count") <= max_block_size).select("block")


def pairs_by_rule(
    records: DataFrame, max_block_size: int = 50, only_blocks: DataFrame | None = None, keys: DataFrame | None = None
) -> DataFrame:
    """``(id_l, id_r, rule)``: every candidate pair once per rule that proposes it (``keys``:
    the records' :func:`block_keys`, when the caller has them already)."""
    if keys is None:
        keys = block_keys(records).localCheckpoint(eager=True)  # read three times below
    small = small_blocks(keys, max_block_size)
    if only_blocks is not None:
        small = small.join(only_blocks, "block", "left_semi")
    keyed = keys.join(small, "block", "left_semi")
    return (
        keyed.alias("l")
        .join(keyed.alias("r"), "block")
        .where(F.col("l.record_id") < F.col("r.record_id"))
        .select(
            F.col("l.record_id").alias("id_l"),
            F.col("r.record_id").alias("id_r"),
            rule_of(F.col("block")).alias("rule"),
        )
        .distinct()
    )


def candidate_pairs(
    records: DataFrame, max_block_size: int = 50, only_blocks: DataFrame | None = None, keys: DataFrame | None = None
) -> DataFrame:
    """Distinct ``(id_l, id_r)`` with id_l < id_r that share at least one small blocking key
    (only the keys in ``only_blocks(block)``, when given)."""
    return pairs_by_rule(records, max_block_size, only_blocks, keys).select("id_l", "id_r").distinct()


def random_pairs(records: DataFrame, target: int = RANDOM_PAIRS, seed: int = 42) -> DataFrame:
    """About ``target`` pairs ``(id_l, id_r)`` of two different records drawn at random (with
    replacement; all pairs when there are fewer than ``target``)."""
    n = records.count()
    spark = records.sparkSession
    indexed = (
        records.select("record_id")
        .withColumn("i", F.row_number().over(Window.orderBy("record_id")) - 1)
        .localCheckpoint(eager=True)
    )
    if n * (n - 1) / 2 <= target:
        left, right = (
            indexed.select(F.col("record_id").alias("id_l"), F.col("i").alias("il")),
            indexed.select(F.col("record_id").alias("id_r"), F.col("i").alias("ir")),
        )
        return left.crossJoin(right).where("il < ir").select("id_l", "id_r")
    draws = (
        spark.range(target)
        .select(
            F.floor(F.rand(seed) * n).cast("long").alias("il"), F.floor(F.rand(seed + 1) * n).cast("long").alias("ir")
        )
        .where("il <> ir")
    )
    return (
        draws.join(indexed.select(F.col("i").alias("il"), F.col("record_id").alias("id_l")), "il")
        .join(indexed.select(F.col("i").alias("ir"), F.col("record_id").alias("id_r")), "ir")
        .select("id_l", "id_r")
    )


def term_frequencies(records: DataFrame) -> dict[str, dict[str, float]]:
    """Per term-frequency field, each value's share of the records that have the field."""
    out = {}
    for name, column in TF_FIELDS.items():
        rows = records.where(F.col(column).isNotNull()).groupBy(column).count().collect()
        total = sum(r["count"] for r in rows)
        out[name] = {r[column]: r["count"] / total for r in rows} if total else {}
    return out


def _log2_odds(p: float) -> float:
    return math.log2(p / (1 - p))


@dataclass(frozen=True)
class Model:
    """m and u per comparison and level, the priors, and the term frequencies of the run that
    estimated them (so an incremental run scores exactly as that full run would).

    Two contexts. A pair that shares a home (comparisons.shares_home: the same street, email
    or phone) is scored against ``home_prior`` (the share of matches among such pairs), with
    ``home_u`` for the person fields (how often *different* people who share a home agree: a
    household shares a surname, twins a birth date). Any other pair is scored against
    ``prior`` and ``u`` from random pairs. Both are learned by EM.
    """

    m: dict[str, dict[int, float]]
    u: dict[str, dict[int, float]]
    prior: float  # P(two random records are one person)
    home_prior: float = 0.5  # P(one person | the pair shares a home)
    home_u: dict[str, dict[int, float]] = field(default_factory=dict)
    iterations: int = 0
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    version: int = MODEL_VERSION

    def weight(self, comparison: str, lv: int, home: bool = False) -> float:
        u = self.home_u if home else self.u
        return math.log2(self.m[comparison][lv] / u[comparison][lv])

    def pattern_weight(self, pattern: dict[str, int | None]) -> float:
        """log2 prior odds + the weights of the pattern's levels in its context (no
        term-frequency adjustment: that needs the values, see :func:`score_pairs`). In the
        home context (the same street, email or phone) the person fields (HOME_SCORED) are
        scored against ``home_prior`` and how different people of one home look; what makes it
        a home counts through the prior, the location not at all (an address differing while
        the email agrees is a move). A neutral level (a surname changed at marriage) counts
        for nothing: the fields that define it carry the evidence."""
        home = shares_home(pattern)
        total = _log2_odds(self.home_prior if home else self.prior)
        for comparison in COMPARISONS:
            lv = pattern.get(comparison)
            if (
                lv is None
                or LEVELS[comparison][lv] in NEUTRAL_LEVELS.get(comparison, ())
                or (home and (comparison in HOME_UNSCORED or LEVELS[comparison][lv] in HOME_LEVELS.get(comparison, ())))
            ):
                continue
            total += self.weight(comparison, lv, home and comparison in HOME_SCORED)
        return total

    def tf_adjustment(self, name: str, value: str | None) -> float:
        """log2(sum of squared frequencies / frequency of this value): > 0 for a rare value."""
        table = self.tf.get(name) or {}
        if value is None or not table:
            return 0.0
        floor = min(table.values())
        return math.log2(sum(f * f for f in table.values()) / max(table.get(value, floor), floor))

    def levels_table(self) -> list[dict]:
        """One row per comparison and level: m, u, weight (and u and weight among pairs that share a home)."""
        rows = []
        for c in COMPARISONS:
            for lv in range(len(LEVELS[c])):
                row = {
                    "comparison": c,
                    "level": lv,
                    "name": LEVELS[c][lv],
                    "m": self.m[c][lv],
                    "u": self.u[c][lv],
                    "weight": self.weight(c, lv),
                }
                if c in HOME_SCORED:
                    row.update(home_u=self.home_u[c][lv], home_weight=self.weight(c, lv, home=True))
                rows.append(row)
        return rows

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Model | None:
        """The model, or None for one an older version of the engine wrote (it must be re-estimated)."""
        raw = json.loads(text)
        if raw.get("version") != MODEL_VERSION:
            return None
        levels = lambda table: {c: {int(lv): p for lv, p in by_level.items()} for c, by_level in table.items()}  # noqa: E731
        return cls(
            levels(raw["m"]),
            levels(raw["u"]),
            raw["prior"],
            raw["home_prior"],
            levels(raw["home_u"]),
            raw["iterations"],
            raw["tf"],
            raw["version"],
        )


Pattern = tuple[dict[str, int | None], int]


def pattern_counts(compared: DataFrame) -> list[Pattern]:
    rows = compared.groupBy(*[f"gamma_{c}" for c in COMPARISONS]).count().collect()
    return [({c: row[f"gamma_{c}"] for c in COMPARISONS}, row["count"]) for row in rows]


def u_from_random_pairs(compared: DataFrame) -> dict[str, dict[int, float]]:
    """u per comparison and level: each level's share among random pairs that have both values.
    A level no random pair reached gets half a pair's share (never zero)."""
    counts = {c: dict.fromkeys(range(len(LEVELS[c])), 0) for c in COMPARISONS}
    for pattern, count in pattern_counts(compared):
        for c, lv in pattern.items():
            if lv is not None:
                counts[c][lv] += count
    u = {}
    for c, by_level in counts.items():
        total = sum(by_level.values())
        u[c] = {lv: (n if n else 0.5) / max(total, 1) for lv, n in by_level.items()}
    return u


def _initial_m(comparison: str) -> dict[int, float]:
    """Agreement likelier for matches: the exact level 0.8, the rest shared out."""
    top = len(LEVELS[comparison]) - 1
    return {lv: 0.8 if lv == top else 0.2 / top for lv in range(top + 1)}


# Different people who share a home agree on a field by chance (random-pair u) or because
# they are one household (a share ``rho`` of them): then the field looks like a copy of the
# other's, with the recording errors of one person's two records (m). rho is learned by EM,
# at most HOUSEHOLD_AGREEMENT_CAP for first names and birth dates (juniors, twins): a household
# is not a set of namesakes born on one day. Surnames, shared by families, have no cap.
HOUSEHOLD_AGREEMENT_CAP = {"first_name": 0.05, "birth_date": 0.05, "last_name": 1.0}


def home_u(
    u: dict[str, dict[int, float]], m: dict[str, dict[int, float]], rho: dict[str, float]
) -> dict[str, dict[int, float]]:
    """u among different people sharing a home: (1 - rho) x random-pair u + rho x m."""
    return {c: {lv: (1 - rho[c]) * u[c][lv] + rho[c] * m[c][lv] for lv in u[c]} for c in HOME_SCORED}


def estimate(
    patterns: list[Pattern],
    u: dict[str, dict[int, float]],
    total_pairs: float,
    max_iterations: int = 200,
    tolerance: float = 1e-5,
) -> Model:
    """EM over the candidate pairs' ``(levels, count)``: m per comparison and level, the prior
    (expected matches among the candidates / all ``total_pairs``), and among the pairs that
    share a home their share of matches and how often different people there agree as a
    household (rho, see :func:`home_u`). u from random pairs stays fixed."""
    prior = min(max(sum(n for _, n in patterns) / total_pairs * 0.1, 1e-12), 0.5)
    m = {c: _initial_m(c) for c in COMPARISONS}
    # rho starts high (its cap; a surname at one half), so EM shrinks a share from above.
    home_prior, rho = 0.5, {c: min(HOUSEHOLD_AGREEMENT_CAP[c], 0.5) for c in HOME_SCORED}
    floor = 1e-6
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - returned after the loop
        model = Model(m, u, prior, home_prior, home_u(u, m, rho))
        m_counts = {c: dict.fromkeys(m[c], floor) for c in COMPARISONS}
        agreeing = dict.fromkeys(HOME_SCORED, 0.0)
        known = dict.fromkeys(HOME_SCORED, 0.0)
        matches = home_matches = home_pairs = 0.0
        for pattern, count in patterns:
            p = _probability(model.pattern_weight(pattern))
            matches += p * count
            for c, lv in pattern.items():
                if lv is not None:
                    m_counts[c][lv] += p * count
            if shares_home(pattern):
                home_pairs += count
                home_matches += p * count
                for c in HOME_SCORED:
                    lv = pattern.get(c)
                    if lv is not None:  # the chance this non-match agrees as a household, not by chance
                        household = rho[c] * m[c][lv] / model.home_u[c][lv]
                        known[c] += (1 - p) * count
                        agreeing[c] += (1 - p) * count * household
        new_m = {c: {lv: n / sum(by.values()) for lv, n in by.items()} for c, by in m_counts.items()}
        new_rho = {c: min(agreeing[c] / known[c] if known[c] else 0.0, HOUSEHOLD_AGREEMENT_CAP[c]) for c in HOME_SCORED}
        new_prior = min(max(matches / total_pairs, 1e-12), 0.5)
        new_home_prior = min(max(home_matches / home_pairs, 1e-6), 1 - 1e-6) if home_pairs else home_prior
        change = max(
            abs(math.log(new_prior / prior)),
            abs(new_home_prior - home_prior),
            *(abs(new_m[c][lv] - m[c][lv]) for c in COMPARISONS for lv in m[c]),
            *(abs(new_rho[c] - rho[c]) for c in HOME_SCORED),
        )
        m, prior, home_prior, rho = new_m, new_prior, new_home_prior, new_rho
        if change < tolerance:
            break
    return Model(m, u, prior, home_prior, home_u(u, m, rho), iteration)


def _probability(weight: float) -> float:
    return 1 / (1 + 2**-weight) if weight > -1000 else 0.0


def fit(records: DataFrame, compared: DataFrame, random_pair_target: int = RANDOM_PAIRS, seed: int = 42) -> Model:
    """Estimate the model on ``records`` (comparable) from their ``compared`` candidate pairs."""
    n = records.count()
    u = u_from_random_pairs(compare(with_sides(random_pairs(records, random_pair_target, seed), records)))
    model = estimate(pattern_counts(compared), u, max(n * (n - 1) / 2, 1))
    return replace(model, tf=term_frequencies(records))


def _pattern_key(columns: list[Column]) -> Column:
    return F.concat_ws("|", *[F.coalesce(c.cast("string"), F.lit("-")) for c in columns])


def score_pairs(compared: DataFrame, model: Model) -> DataFrame:
    """Adds ``match_weight`` and ``match_probability`` to compared pairs: the pattern's weight
    (Model.pattern_weight, one definition for estimation and scoring) plus the term-frequency
    adjustments of its exact first name, surname and postcode."""
    spark = compared.sparkSession
    gammas = [F.col(f"gamma_{c}") for c in COMPARISONS]
    keyed = compared.withColumn("_pattern", _pattern_key(gammas))
    patterns = keyed.select("_pattern", *gammas).dropDuplicates(["_pattern"]).collect()
    table = [(row["_pattern"], model.pattern_weight({c: row[f"gamma_{c}"] for c in COMPARISONS})) for row in patterns]
    weights = spark.createDataFrame(table, "_pattern string, _weight double")
    scored = keyed.join(F.broadcast(weights), "_pattern", "left").withColumn("_home", home_column())
    adjustments = {
        "first_name": (F.col("gamma_first_name") == level("first_name", "exact"), F.col("given_name_l")),
        "last_name": (
            (F.col("gamma_last_name") == level("last_name", "exact")) & ~F.col("names_swapped") & ~F.col("_home"),
            F.col("last_name_l"),
        ),
        "postcode": (
            (F.col("postcode_l") == F.col("postcode_r"))
            & ~F.col("_home")
            & F.col("gamma_location").isin(
                level("location", "address"), level("location", "street"), level("location", "postcode")
            ),
            F.col("postcode_l"),
        ),
    }
    weight = F.col("_weight")
    for name, (applies, value) in adjustments.items():
        lookup = _tf_lookup(spark, model, name)
        if lookup is None:
            continue
        table, unseen = lookup
        scored = scored.join(F.broadcast(table), value == table[f"_tf_{name}_value"], "left")
        adjustment = F.coalesce(F.col(f"_tf_{name}"), F.lit(unseen))
        weight = weight + F.when(F.coalesce(applies, F.lit(False)), adjustment).otherwise(F.lit(0.0))
    return (
        scored.withColumn("match_weight", weight)
        .withColumn("match_probability", 1 / (1 + F.pow(F.lit(2.0), -F.col("match_weight"))))
        .drop("_pattern", "_weight", "_home", *[c for name in TF_FIELDS for c in (f"_tf_{name}_value", f"_tf_{name}")])
    )


def _tf_lookup(spark, model: Model, name: str) -> tuple[DataFrame, float] | None:
    """``(value -> adjustment table, the adjustment of a value the table lacks)``, or None."""
    values = model.tf.get(name) or {}
    if not values:
        return None
    rows = [(v, model.tf_adjustment(name, v)) for v in values]
    table = spark.createDataFrame(rows, f"_tf_{name}_value string, _tf_{name} double")
    return table, model.tf_adjustment(name, "\u0000unseen")


def probabilistic_links(
    records: DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    max_block_size: int = 50,
    model: Model | None = None,
    pairs: DataFrame | None = None,
) -> tuple[DataFrame, Model]:
    """Links ``(record_id, linked_to, rule, match_weight, match_probability, gamma_*, names_swapped)``
    at or above ``threshold``, and the model: ``model`` when given (an incremental run keeps
    the weights of the last full run), else estimated on these records. ``pairs(id_l, id_r)``
    restricts the comparison to those candidates (default: every candidate pair)."""
    pairs = pairs if pairs is not None else candidate_pairs(records, max_block_size)
    compared = compare(with_sides(pairs, records)).localCheckpoint(eager=True)  # compared once: fit and score
    model = model or fit(records, compared)
    scored = score_pairs(compared, model)
    links = scored.where(F.col("match_probability") >= threshold)
    return links.select(
        F.col("id_r").alias("record_id"),
        F.col("id_l").alias("linked_to"),
        F.lit("fellegi_sunter").alias("rule"),
        "match_weight",
        "match_probability",
        *[f"gamma_{c}" for c in COMPARISONS],
        "names_swapped",
    ), model
