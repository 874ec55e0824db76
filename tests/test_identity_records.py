"""Any table of people becomes standard records through a mapping, raw values kept."""

from __future__ import annotations

import re
from datetime import date

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_jobs.identity.records import MappingError, parse_mapping, standard_records

MAPPING = """
record_id: ID
full_name: Name
dob: Birthday
email: E-mail
phone: Tel
address: Street
city: Town
postcode: Zip
country: Country
"""


def test_a_users_file_is_standardised_with_its_raw_values_beside(spark):
    people = spark.createDataFrame(
        [
            (
                "1",
                "Bob  Smith",
                "04/03/1990",
                " Bob.Smith+x@Gmail.com",
                "(512) 555-0147",
                "12 Main St Apt 4",
                "Austin",
                "78701",
                "us",
            ),
            ("2", "Mary Ann O'Neil", "1985-12-01", "", "07700 900123", "Flat 2, 5 Kings Rd", "London", "n1 1aa", "GB"),
            ("3", "Cher", None, None, None, None, None, None, None),
        ],
        "ID string, Name string, Birthday string, `E-mail` string, Tel string, Street string, Town string, "
        "Zip string, Country string",
    )
    out = standard_records(people, parse_mapping(MAPPING), default_source="crm_export")
    assertDataFrameEqual(
        out.select(
            "record_id",
            "source",
            "first_name_raw",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "phone",
            "address_line",
            "address_unit",
            "city",
            "postcode",
            "country",
        ),
        [
            Row(
                record_id="1",
                source="crm_export",
                first_name_raw="Bob",
                first_name="robert",
                last_name="smith",
                birth_date=date(1990, 4, 3),
                email="bobsmith@gmail.com",
                phone="+15125550147",
                address_line="12 main street",
                address_unit="4",
                city="austin",
                postcode="78701",
                country="US",
            ),
            Row(
                record_id="2",
                source="crm_export",
                first_name_raw="Mary Ann",
                first_name="mary ann",
                last_name="oneil",
                birth_date=date(1985, 12, 1),
                email=None,
                phone="+447700900123",
                address_line="5 kings road",
                address_unit="2",
                city="london",
                postcode="N11AA",
                country="GB",
            ),
            Row(
                record_id="3",
                source="crm_export",
                first_name_raw=None,
                first_name=None,
                last_name="cher",
                birth_date=None,
                email=None,
                phone=None,
                address_line=None,
                address_unit=None,
                city=None,
                postcode=None,
                country=None,
            ),
        ],
    )
    assert out.where("record_id = '1'").first().email_raw == "Bob.Smith+x@Gmail.com"


@pytest.mark.parametrize(
    "text, message",
    [
        ("record_id: id\nshoe_size: s", "unknown field(s) ['shoe_size']"),
        ("email: e", "['record_id'] must be mapped"),
        ("- record_id", "one 'field: column' per line"),
    ],
)
def test_a_bad_mapping_is_refused_with_a_clear_error(text, message):
    with pytest.raises(MappingError, match=re.escape(message)):
        parse_mapping(text)


def test_a_mapped_column_missing_from_the_input_is_named(spark):
    people = spark.createDataFrame([("1", "a@b.com")], "id string, mail string")
    with pytest.raises(MappingError, match="field email is mapped to column 'email'"):
        standard_records(people, parse_mapping("record_id: id\nemail: email"))


def test_identifier_fields_are_mapped_and_a_bad_name_is_refused(spark):
    mapping = parse_mapping("record_id: id\nidentifier_passport: Passport\nidentifier_account_no: Acct\n")
    out = standard_records(
        spark.createDataFrame([("1", " X123 ", "")], "id string, Passport string, Acct string"), mapping
    )
    assert (out.first().identifier_passport, out.first().identifier_account_no) == ("X123", None)
    with pytest.raises(MappingError, match=re.escape("unknown field(s) ['identifier_Pass-No']")):
        parse_mapping("record_id: id\nidentifier_Pass-No: p\n")
