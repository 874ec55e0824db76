"""Benchmarks and comparisons: scripts that print figures (speed, memory, match quality) for
the platform's jobs. They are not tests and not part of the platform: the built package does
not contain them. Run them through ``./cdp bench-ingest|bench-identity|bench-activation``.

- ``ingest.py``: contract-checked ingestion against a plain read-and-append, and beside
  malformed files;
- ``identity.py``: identity resolution scored on the sample's hidden truth and on the public
  FEBRL sets, with ``splink_comparison.py`` (Splink on the same records, its own process);
- ``activation.py``: the sync engine against the local API stand-ins at volume;
- ``common.py``: their shared command line.
"""
