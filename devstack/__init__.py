"""The embedded default: everything ``./cdp run``, ``./cdp dev`` and the tests need to run the
platform on one machine, and nothing the platform needs in production (the built package does
not contain it).

- ``definitions.py``: the local Dagster code location, the platform's definitions with the
  sample generator (``sample_asset.py``) in front of bronze;
- ``runner.py``: ``./cdp run | dev | bench | sql``;
- ``sample/``: the deterministic sample deliveries of every source, with their hidden truth;
- ``s3_server.py``: the local S3-compatible server for exports;
- ``mock_apis.py``: local stand-ins of the CRM, email-platform and webhook APIs (SaaS we
  cannot reach), which can also fail (429, 500, timeouts);
- ``memory.py``: peak memory of a process tree, for the benchmarks.
"""
