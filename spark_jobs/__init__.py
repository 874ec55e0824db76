"""The platform's Spark jobs: each stage is a package with a job module run as
``python -m spark_jobs.<stage>.<job>`` (spark-submit on a cluster), pure transforms beside it.

- ``ingest/``: landing files -> bronze Delta tables, by source contract (``bronze.py``);
- ``identity/``: bronze person records -> persistent customer ids, households, evidence (``resolve.py``);
- ``ml/``: churn risk and predicted value with Spark MLlib (``customer_scores.py``);
- ``quality/``: Great Expectations on the gold tables (``gold.py``);
- ``activation/``: gold audiences -> CRM, email platform, webhook, S3 (``sync.py``).

Shared by all: ``settings.py`` (every setting, from ``CDP_*`` variables), ``spark.py`` (the one
Spark configuration), ``reporting.py`` (results to Dagster through Pipes, or to the log),
``jobspec.py`` (the outputs and checks a job declares to the orchestrator). The gold tables
are dbt models (``dbt/``), not Spark jobs.
"""

import os as _os

if _os.environ.get("CDP_SPARK_REMOTE", "").strip():
    # A job that runs as a Spark Connect client (the Spark service) must create its Python UDFs
    # as Connect UDFs, and the job modules create them at import: say so before they load.
    _os.environ.setdefault("SPARK_CONNECT_MODE_ENABLED", "1")
