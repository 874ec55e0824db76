"""Identity resolution: person records of every source -> persistent customer ids.

``resolve.py`` is the job (silver tables); ``__main__.py`` the standalone CLI on any CSV.
The steps: ``persons.py``/``records.py`` (records in one shape), ``standardise.py``,
``links.py`` (shared strong identifiers), ``probabilistic.py`` with ``comparisons.py``
(Fellegi-Sunter), ``unnamed.py``, ``clusters.py`` and ``cluster_check.py``, ``resolution.py``
(links -> clusters, steward directives, the size guard), ``persistent_ids.py``,
``incremental.py``, ``households.py``. ``scoring.py`` and ``datasets.py`` score a resolution on
known truth (the benchmarks in ``bench/`` use them).
"""

import os as _os

if _os.environ.get("CDP_SPARK_REMOTE", "").strip():
    # Over Spark Connect, protobuf's C backend (upb) refuses the identity job's plans, nested
    # deeper than its limit of 100, when pyspark copies one into a command ("Error parsing
    # message with type 'spark.connect.Relation'" at a localCheckpoint). The pure-Python backend
    # has no such limit; it costs client CPU (about 10 s per ingestion run, so only this stage
    # uses it). It must be chosen before protobuf is imported, hence here.
    _os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
