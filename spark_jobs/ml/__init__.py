"""Predictive scores with Spark MLlib: ``customer_scores.py`` trains and applies the churn and
value models and writes ``silver.customer_scores``."""
