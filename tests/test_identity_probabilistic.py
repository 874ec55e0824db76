"""Fellegi-Sunter: EM recovers known m/u, comparisons get the right levels, households stay apart."""

from __future__ import annotations

import itertools
import math
from datetime import date

import pytest

from spark_jobs.identity.probabilistic import FIELDS, Model, comparison_levels, estimate, score_pairs


def test_em_recovers_the_m_and_u_probabilities_from_pattern_counts():
    # Expected pattern counts from known parameters: 10% of 100,000 candidate pairs match.
    m_true = {f: {0: 0.05, 1: 0.15, 2: 0.80} for f in FIELDS}
    u_true = {f: {0: 0.85, 1: 0.10, 2: 0.05} for f in FIELDS}
    patterns = []
    for levels in itertools.product((0, 1, 2), repeat=len(FIELDS)):
        p_m = math.prod(m_true[f][lv] for f, lv in zip(FIELDS, levels))
        p_u = math.prod(u_true[f][lv] for f, lv in zip(FIELDS, levels))
        patterns.append((dict(zip(FIELDS, levels)), round(100_000 * (0.1 * p_m + 0.9 * p_u))))
    model = estimate(patterns, max_iterations=500)
    assert model.match_share == pytest.approx(0.1, abs=0.01)
    for f in FIELDS:
        for level in (0, 1, 2):
            assert model.m[f][level] == pytest.approx(m_true[f][level], abs=0.02)
            assert model.u[f][level] == pytest.approx(u_true[f][level], abs=0.02)


PAIR = ("id_l string, id_r string, first_name_l string, first_name_r string, last_name_l string, "
        "last_name_r string, birth_date_l date, birth_date_r date, email_l string, email_r string, "
        "phone_l string, phone_r string, address_l string, address_r string, postcode_l string, postcode_r string")


def test_comparison_levels(spark):
    pairs = spark.createDataFrame([
        ("a", "b", "robert", "robert", "smith", "smyth", date(1980, 3, 4), date(1980, 4, 3),
         "bob@x.com", "bob@y.com", "+441", None, "12 high street", "12 high stret", "N11AA", "N11AA"),
        ("c", "d", "anna", "jonas", "smith", "smith", date(1970, 1, 2), date(2001, 5, 6),
         "a@x.com", "j@x.com", "+442", "+442", "5 kings road", "5 kings road", "N11AA", "N11AA"),
    ], PAIR)
    rows = {r.id_l: r for r in comparison_levels(pairs).collect()}
    a = rows["a"]
    assert (a.gamma_first_name, a.gamma_last_name, a.gamma_birth_date, a.gamma_email, a.gamma_phone,
            a.gamma_address) == (2, 1, 1, 1, None, 1)
    c = rows["c"]
    assert (c.gamma_first_name, c.gamma_last_name, c.gamma_birth_date, c.gamma_phone, c.gamma_address) == (0, 2, 0, 2, 2)


def test_weights_follow_the_model_and_a_household_scores_low(spark):
    model = Model(m={f: {0: 0.05, 1: 0.15, 2: 0.80} for f in FIELDS},
                  u={f: {0: 0.85, 1: 0.10, 2: 0.05} for f in FIELDS}, match_share=0.1, iterations=1)
    levels = spark.createDataFrame([("dup", 2, 1, 2, None, 2, 2), ("household", 0, 2, 0, 0, 2, 2)],
                                   "id_l string, " + ", ".join(f"gamma_{f} int" for f in FIELDS))
    scored = {r.id_l: r for r in score_pairs(levels, model).collect()}
    prior = math.log2(0.1 / 0.9)
    assert scored["dup"].match_weight == pytest.approx(prior + 4 * math.log2(16) + math.log2(1.5))
    assert scored["dup"].match_probability > 0.99
    assert scored["household"].match_probability < 0.5  # far below the 0.99 threshold
