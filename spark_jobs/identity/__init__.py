"""Identity resolution: person records of every source -> persistent customer ids.

``resolve.py`` is the job (silver tables); ``__main__.py`` the standalone CLI on any CSV.
The steps: ``persons.py``/``records.py`` (records in one shape), ``standardise.py``,
``links.py`` (shared strong identifiers), ``probabilistic.py`` with ``comparisons.py``
(Fellegi-Sunter), ``unnamed.py``, ``clusters.py`` and ``cluster_check.py``, ``resolution.py``
(links -> clusters, steward directives, the size guard), ``persistent_ids.py``,
``incremental.py``, ``households.py``. ``scoring.py`` and ``datasets.py`` score a resolution on
known truth (the benchmarks in ``bench/`` use them).
"""
