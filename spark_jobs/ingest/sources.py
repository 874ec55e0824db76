"""Registry of source entities: where each lands, its format, declared schema and keys.

A source entity becomes a bronze table ``bronze.<name>``. Adding a source means adding an
entry here, not writing a job (#3 grows this into full contracts).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType


@dataclass(frozen=True)
class SourceEntity:
    name: str                      # bronze table name
    landing_subdir: str            # folder under the landing root
    file_format: str               # "csv" or "json" (JSON lines)
    schema: StructType             # declared columns and types; extra file columns are ignored
    primary_key: tuple[str, ...]
    version_column: str            # the newest value of this column wins when a key repeats

    @property
    def table(self) -> str:
        return f"bronze.{self.name}"


def _fields(*specs: tuple[str, object]) -> StructType:
    return StructType([StructField(name, dtype, nullable=True) for name, dtype in specs])


CRM_CONTACTS = SourceEntity(
    name="crm_contacts",
    landing_subdir="crm/contacts",
    file_format="csv",
    schema=_fields(
        ("contact_id", StringType()), ("first_name", StringType()), ("last_name", StringType()),
        ("email", StringType()), ("phone", StringType()), ("city", StringType()),
        ("country", StringType()), ("created_at", TimestampType()), ("updated_at", TimestampType()),
    ),
    primary_key=("contact_id",),
    version_column="updated_at",
)

SHOP_ORDERS = SourceEntity(
    name="shop_orders",
    landing_subdir="shop/orders",
    file_format="json",
    schema=_fields(
        ("order_id", StringType()), ("crm_contact_id", StringType()), ("customer_email", StringType()),
        ("order_ts", TimestampType()), ("currency", StringType()), ("total_amount", DoubleType()),
        ("status", StringType()),
    ),
    primary_key=("order_id",),
    version_column="order_ts",
)

SOURCES: dict[str, SourceEntity] = {entity.name: entity for entity in (CRM_CONTACTS, SHOP_ORDERS)}


def get_source(name: str) -> SourceEntity:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source entity {name!r}; known: {sorted(SOURCES)}") from None
