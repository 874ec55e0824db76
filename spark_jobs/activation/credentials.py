"""Destination credentials: from an environment variable, or from AWS Secrets Manager.

A sync definition names the variable (``token_env: CDP_CRM_TOKEN``), never the value. If the
variable itself is unset but ``<NAME>_SECRET_ID`` is set, the secret string is read from AWS
Secrets Manager (``CDP_SECRETS_ENDPOINT_URL`` points boto3 at another endpoint, e.g. a local
one). Values are never logged: errors name the variable only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class MissingCredential(RuntimeError):
    pass


def credential(variable: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(variable, "").strip()
    if value:
        return value
    secret_id = env.get(f"{variable}_SECRET_ID", "").strip()
    if secret_id:
        import boto3

        client = boto3.client("secretsmanager", endpoint_url=env.get("CDP_SECRETS_ENDPOINT_URL") or None)
        return client.get_secret_value(SecretId=secret_id)["SecretString"]
    raise MissingCredential(f"set {variable} (or {variable}_SECRET_ID to read it from AWS Secrets Manager)")
