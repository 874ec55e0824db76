"""Privacy: what the platform holds about a person (subject access); consent lives in dbt
(gold.customer_consent) and is enforced by the sync engine."""
