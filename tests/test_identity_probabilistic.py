"""Fellegi-Sunter: EM recovers m and the prior with u fixed, term frequencies by hand, the
home context, blocking and scoring."""

from __future__ import annotations

import itertools
import math

import pytest

from spark_jobs.identity.comparisons import COMPARISONS, LEVELS, level
from spark_jobs.identity.probabilistic import (
    HOUSEHOLD_AGREEMENT_CAP,
    Model,
    candidate_pairs,
    estimate,
    pairs_by_rule,
    score_pairs,
    term_frequencies,
)

PERSON = ("first_name", "birth_date")


def _uniform(comparison: str, top: float) -> dict[int, float]:
    n = len(LEVELS[comparison])
    return {lv: top if lv == n - 1 else (1 - top) / (n - 1) for lv in range(n)}


def test_em_recovers_m_and_the_prior_with_u_fixed():
    # Pairs compared on first name and birth date only (no location, email or phone: no home).
    m_true = {
        "first_name": {0: 0.05, 1: 0.01, 2: 0.04, 3: 0.10, 4: 0.02, 5: 0.08, 6: 0.70},
        "birth_date": {0: 0.03, 1: 0.01, 2: 0.01, 3: 0.05, 4: 0.90},
    }
    u = {c: _uniform(c, 0.002) for c in COMPARISONS}
    u["first_name"] = {0: 0.95, 1: 0.005, 2: 0.02, 3: 0.01, 4: 0.001, 5: 0.004, 6: 0.01}
    u["birth_date"] = {0: 0.97, 1: 0.02, 2: 0.0001, 3: 0.0049, 4: 0.005}
    total, prior = 1_000_000, 0.002
    patterns = []
    for first, dob in itertools.product(range(7), range(5)):
        p_m = m_true["first_name"][first] * m_true["birth_date"][dob]
        p_u = u["first_name"][first] * u["birth_date"][dob]
        pattern = dict.fromkeys(COMPARISONS) | {"first_name": first, "birth_date": dob}
        patterns.append((pattern, total * (prior * p_m + (1 - prior) * p_u)))
    model = estimate(patterns, u, total, max_iterations=2000, tolerance=1e-9)
    assert model.prior == pytest.approx(prior, rel=0.05)
    for c in PERSON:
        for lv, p in m_true[c].items():
            assert model.m[c][lv] == pytest.approx(p, abs=0.01), (c, LEVELS[c][lv])
    assert model.u == u, "u from random pairs is never re-estimated"


def _model(**changes) -> Model:
    m = {c: _uniform(c, 0.8) for c in COMPARISONS}
    u = {c: _uniform(c, 0.01) for c in COMPARISONS}
    home_u = {c: _uniform(c, 0.3) for c in ("first_name", "last_name", "birth_date")}
    return Model(m, u, prior=0.001, home_prior=0.4, home_u=home_u, **changes)


def test_a_pair_that_shares_a_home_is_scored_against_households():
    model = _model()
    exact = {c: len(LEVELS[c]) - 1 for c in COMPARISONS}
    elsewhere = exact | {"location": level("location", "different"), "email": None, "phone": None}
    at_home = exact | {"email": None, "phone": None}
    odds = lambda p: math.log2(p / (1 - p))  # noqa: E731
    assert model.pattern_weight(elsewhere) == pytest.approx(
        odds(0.001) + 3 * math.log2(0.8 / 0.01) + math.log2((0.2 / 5) / (0.99 / 5))
    )
    # At home the address is the context (home_prior), and the person fields count against home_u.
    assert model.pattern_weight(at_home) == pytest.approx(odds(0.4) + 3 * math.log2(0.8 / 0.3))
    # On a shared email, another address is a move: the location does not count; another phone
    # still does (family members have their own).
    moved = exact | {"location": level("location", "different"), "phone": None}
    assert model.pattern_weight(moved) == pytest.approx(model.pattern_weight(at_home))
    other_phone = exact | {"location": None, "phone": level("phone", "different")}
    assert model.pattern_weight(other_phone) == pytest.approx(
        odds(0.4) + 3 * math.log2(0.8 / 0.3) + math.log2((0.2 / 2) / (0.99 / 2))
    )


def test_term_frequencies_and_their_adjustment_by_hand(spark):
    records = spark.createDataFrame(
        [(f"r{i}", given, "smith", "N11AA") for i, given in enumerate(["anna", "anna", "anna", "zoe"])],
        "record_id string, given_name string, last_name string, postcode string",
    )
    tf = term_frequencies(records)
    assert tf == {"first_name": {"anna": 0.75, "zoe": 0.25}, "last_name": {"smith": 1.0}, "postcode": {"N11AA": 1.0}}
    model = _model(tf=tf)
    squares = 0.75**2 + 0.25**2
    assert model.tf_adjustment("first_name", "zoe") == pytest.approx(math.log2(squares / 0.25))  # rare: +1.32
    assert model.tf_adjustment("first_name", "anna") == pytest.approx(math.log2(squares / 0.75))  # common: -0.26
    assert model.tf_adjustment("first_name", "ulla") == pytest.approx(math.log2(squares / 0.25))  # unseen: rarest

    schema = (
        "id_l string, given_name_l string, last_name_l string, postcode_l string, postcode_r string, "
        "names_swapped boolean, " + ", ".join(f"gamma_{c} int" for c in COMPARISONS)
    )
    exact_first = [level("first_name", "exact") if c == "first_name" else None for c in COMPARISONS]
    pairs = spark.createDataFrame(
        [(given, given, "smith", None, None, False, *exact_first) for given in ("zoe", "anna")], schema
    )
    scored = {r.id_l: r.match_weight for r in score_pairs(pairs, model).collect()}
    base = math.log2(0.001 / 0.999) + math.log2(0.8 / 0.01)
    assert scored["zoe"] == pytest.approx(base + math.log2(squares / 0.25))
    assert scored["anna"] == pytest.approx(base + math.log2(squares / 0.75))


def test_blocking_finds_swapped_names_and_typos_and_skips_oversized_keys(spark):
    records = (
        spark.createDataFrame(
            [
                ("a", "john", "smith", "1980-01-02", None),
                ("b", "smith", "john", "1990-05-06", None),  # names swapped: the 'names' rule
                ("c", "jonh", "smyth", "1980-01-02", None),  # typos in both: soundex of a name + dob
                ("d", "zoe", "nguyen", None, "N11AA"),
                ("e", "zoe", "nguyen", None, "N11AA"),
            ],
            "record_id string, first_name string, last_name string, birth_date string, postcode string",
        )
        .selectExpr(
            "*",
            "CAST(birth_date AS date) AS dob",
            "NULL AS address_line",
            "NULL AS city",
            "NULL AS email",
            "NULL AS phone",
        )
        .drop("birth_date")
        .withColumnRenamed("dob", "birth_date")
    )
    rules = {(r.id_l, r.id_r, r.rule) for r in pairs_by_rule(records, max_block_size=10).collect()}
    assert ("a", "b", "names") in rules
    assert ("a", "c", "name_dob") in rules
    assert {(r.id_l, r.id_r) for r in candidate_pairs(records, 10).collect()} == {("a", "b"), ("a", "c"), ("d", "e")}
    # A key held by more records than the limit proposes nothing.
    assert ("d", "e") not in {(r.id_l, r.id_r) for r in candidate_pairs(records, max_block_size=1).collect()}


def test_household_agreement_is_capped_for_first_names_and_birth_dates():
    assert HOUSEHOLD_AGREEMENT_CAP["first_name"] <= 0.05 and HOUSEHOLD_AGREEMENT_CAP["birth_date"] <= 0.05
    assert HOUSEHOLD_AGREEMENT_CAP["last_name"] == 1.0


def test_a_model_of_an_older_engine_is_not_reused():
    assert Model.from_json('{"m": {}, "u": {}, "match_share": 0.1, "iterations": 3}') is None
    model = _model(tf={"first_name": {"anna": 1.0}})
    assert Model.from_json(model.to_json()) == model


def test_random_pairs_are_all_pairs_when_few_and_never_a_record_with_itself(spark):
    from spark_jobs.identity.probabilistic import random_pairs

    few = spark.createDataFrame([(f"r{i}",) for i in range(5)], "record_id string")
    pairs = {(r.id_l, r.id_r) for r in random_pairs(few, target=100).collect()}
    assert pairs == {(f"r{i}", f"r{j}") for i in range(5) for j in range(i + 1, 5)}
    many = spark.createDataFrame([(f"r{i:03d}",) for i in range(300)], "record_id string")
    drawn = random_pairs(many, target=2_000, seed=3).collect()
    assert 1_900 <= len(drawn) <= 2_000 and all(r.id_l != r.id_r for r in drawn)
    assert len({r.id_l for r in drawn}) > 250, "draws spread over the records"
