"""Activation: gold audiences -> downstream channels as incremental, consent-aware syncs.

``sync.py`` is the job; ``syncs/*.yml`` declare the syncs (parsed by ``definitions.py``);
``engine.py`` plans what changed and reconciles what was sent; ``destinations/`` holds one
class per channel (CRM, email platform, webhook, S3 ad audiences; ``s3.py`` uploads their
files); ``credentials.py`` reads secrets; ``normalise.py`` hashes for ad platforms.
"""
