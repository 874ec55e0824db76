"""Ingestion: landing files -> ``bronze.<source>`` Delta tables, checked against each source's
contract (``contracts/*.yml``, parsed by ``contracts.py``).

``bronze.py`` is the job (batches, bookkeeping tables, failure isolation, crash recovery);
``landing.py`` lists the landing zone; ``parse.py`` reads files as text and checks every row;
``apply.py`` applies accepted rows by the contract's kind (upsert, cdc, event).
"""
