"""What sqlfluff's jinja templater needs to render this dbt project without a warehouse.

sqlfluff's dbt built-ins make ``var()`` a placeholder string, which the macros that loop over
the declared segments, survivorship rules and journey stages cannot use. These give the real
vars from dbt_project.yml (the reporting currency at its env_var default), the
``exceptions``/``modules``/``model`` objects the macros call, so every model is linted as dbt
renders it. dbt itself never imports this package (see .sqlfluff).
"""

import re
from pathlib import Path
from types import SimpleNamespace

import yaml

_PROJECT = yaml.safe_load((Path(__file__).parent.parent / "dbt_project.yml").read_text())
_VARS = {**_PROJECT.get("vars", {}), "reporting_currency": "EUR"}  # its env_var() default


def var(name, default=None):
    return _VARS.get(name, default)


def _raise_compiler_error(message):
    raise ValueError(message)


exceptions = SimpleNamespace(raise_compiler_error=_raise_compiler_error)
modules = SimpleNamespace(re=re)
model = SimpleNamespace(resource_type="model")
