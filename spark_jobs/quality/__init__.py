"""Data quality: ``gold.py`` validates the gold tables with Great Expectations; the check on
``dim_customers`` blocks every export downstream."""
