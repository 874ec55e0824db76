"""Activation syncs against local stand-ins of the destination APIs (devstack/mock_apis.py)
and the local S3-compatible server: what is sent, what is not, and that failures lose and
duplicate nothing (the servers' contents are compared with the audience)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
import yaml

from devstack.mock_apis import Fault, MockApis
from devstack.s3_server import LOCAL_CREDENTIALS, LocalS3Server
from spark_jobs.activation.credentials import MissingCredential, credential
from spark_jobs.activation.definitions import PURPOSES, SYNCS_DIR, SyncDefinitionError, load_syncs, parse_sync
from spark_jobs.activation.destinations import Change, DestinationRefusedAccess, open_destination
from spark_jobs.activation.destinations.email_platform import subscriber_hash
from spark_jobs.activation.engine import (
    CONSENT_TABLE,
    ERRORS_TABLE,
    LINEAGE_TABLE,
    LOG_TABLE,
    MISSING_REQUIRED,
    PLANS_TABLE,
    STATE_TABLE,
    SUPPRESSIONS_TABLE,
    SyncModelError,
    SyncRun,
    ensure_tables,
)
from spark_jobs.activation.normalise import normalise_email, normalise_phone
from spark_jobs.parallel import completed
from spark_jobs.settings import REPO_ROOT, Settings
from spark_jobs.spark import table_names

AUDIENCE_SCHEMA = "customer_id string, email string, first_name string, suppression_reason string"


@pytest.fixture
def activation_db(spark):
    yield spark
    for table in table_names(spark, "activation") if spark.catalog.databaseExists("activation") else []:
        spark.sql(f"DROP TABLE IF EXISTS activation.{table}")
    for table in table_names(spark, "gold"):
        spark.sql(f"DROP TABLE IF EXISTS gold.{table}")
    spark.sql(f"DROP TABLE IF EXISTS {LINEAGE_TABLE}")
    spark.sql(f"DROP TABLE IF EXISTS {CONSENT_TABLE}")


@pytest.fixture
def apis(monkeypatch):
    with MockApis() as server:
        for key, value in server.environment().items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"CDP_HOME": str(tmp_path / "home")})


def audience(spark, model: str, rows: list[tuple], schema: str = AUDIENCE_SCHEMA, consent: bool = True) -> None:
    """The sync model, and (``consent``) a ledger that grants every purpose to its customers
    not in it yet."""
    frame = spark.createDataFrame(rows, schema)
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(f"gold.{model}")
    if consent:
        known = {r.customer_id for r in spark.table(CONSENT_TABLE).collect()} if ledger_exists(spark) else set()
        new = sorted({r.customer_id for r in frame.select("customer_id").collect()} - known)
        ledger(spark, [(customer, purpose, "granted") for customer in new for purpose in PURPOSES])


def ledger_exists(spark) -> bool:
    return spark.catalog.tableExists(CONSENT_TABLE)


def ledger(spark, rows: list[tuple], mode: str = "append") -> None:
    """Rows of gold.customer_consent: (customer_id, purpose, consent_status)."""
    full = [(c, p, status, status == "granted") for c, p, status in rows]
    spark.createDataFrame(
        full, "customer_id string, purpose string, consent_status string, is_granted boolean"
    ).write.format("delta").mode(mode).saveAsTable(CONSENT_TABLE)


def definition(**overrides):
    raw = {
        "name": "test_sync",
        "model": "sync_test__people",
        "purpose": "customer_service",
        "mode": "upsert",
        # A custom object: unlike Contact (tested on its own), it requires no LastName.
        "destination": {"type": "crm", "object": "CDP_Person__c", "max_attempts": 4, "timeout_seconds": 5},
        "identifier": {"source": "customer_id", "destination": "CDP_Customer_Id__c"},
        "fields": {"email": "Email", "first_name": "FirstName"},
        "rate_limit_per_second": 200,
    }
    return parse_sync({**raw, **overrides}, "test.yml")


def subscribers_sync(**overrides):
    """An email-platform sync of ``sync_test__subscribers`` (mirror, email and first name)."""
    raw = {
        "model": "sync_test__subscribers",
        "mode": "mirror",
        "destination": {"type": "email_platform", "list_id": "news"},
        "identifier": {"source": "customer_id", "destination": "email_address"},
        "fields": {"email": "email_address", "first_name": "FNAME"},
    }
    return definition(**{**raw, **overrides})


def run(spark, sync, settings, **kwargs) -> dict:
    return SyncRun(spark, sync, lambda s, run_id: open_destination(s, run_id, settings), **kwargs).run()


def reconciles(metrics: dict) -> bool:
    return metrics["planned"] == metrics["sent"] + metrics["skipped"] + metrics["failed"] + metrics["rejected"]


# --- definitions --------------------------------------------------------------------------------


def test_shipped_syncs_load_and_each_model_has_an_exposure():
    syncs = load_syncs()
    assert {s.name for s in syncs} == {
        "crm_customers",
        "email_subscribers",
        "ads_high_value_customers",
        "webhook_next_best_actions",
        "s3_repeat_buyers",
    }
    exposures = yaml.safe_load((REPO_ROOT / "dbt" / "models" / "marts" / "_marts__exposures.yml").read_text())
    exposed = {ref for e in exposures["exposures"] for ref in e["depends_on"]}
    assert {f"ref('{s.model}')" for s in syncs} <= exposed
    assert {s.destination_type for s in syncs} == {"crm", "email_platform", "s3_audience", "webhook"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mode": "replace"}, "mode must be one of ['upsert', 'mirror', 'append'], got 'replace'"),
        ({"model": "dim_customers"}, "must be a sync_<destination>__<object> model"),
        ({"destination": {"type": "fax"}}, "destination.type must be one of"),
        ({"identifier": {"source": "customer_id"}}, "identifier: 'destination' is required"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"token": "abc"}, "unknown setting(s) ['token']"),
        ({"purpose": None}, "'purpose' is required"),
        ({"purpose": "marketing"}, "purpose must be one of ['email_marketing',"),
        ({"mode": "append", "remove_on_suppression": True}, "remove_on_suppression needs mode upsert or mirror"),
        ({"mode": "mirror", "remove_on_suppression": False}, "a mirror sync always removes the suppressed"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_file_and_field(change, message):
    with pytest.raises(SyncDefinitionError) as error:
        definition(**change)
    assert message in str(error.value) and str(error.value).startswith("test.yml")


def test_two_syncs_with_one_name_are_refused(tmp_path):
    for file in ("a.yml", "b.yml"):
        (tmp_path / file).write_text((SYNCS_DIR / "crm_customers.yml").read_text())
    with pytest.raises(SyncDefinitionError, match=r"defined twice: \['crm_customers'\]"):
        load_syncs(tmp_path)


# --- normalisation and credentials --------------------------------------------------------------


def test_emails_and_phones_normalise_the_way_customer_match_requires():
    assert normalise_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    assert normalise_email("not-an-email") is None and normalise_email("a@b") is None
    assert normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalise_phone("+44 20 7946 0958", None, spec="meta") == "442079460958"
    assert normalise_phone("12", "GB") is None and normalise_phone("call me", "GB") is None


def test_credentials_come_from_the_environment_or_secrets_manager(tmp_path, monkeypatch):
    assert credential("CDP_TEST_TOKEN", {"CDP_TEST_TOKEN": "from-env"}) == "from-env"
    with pytest.raises(MissingCredential) as error:
        credential("CDP_TEST_TOKEN", {})
    assert "CDP_TEST_TOKEN_SECRET_ID" in str(error.value)
    with LocalS3Server(tmp_path / "moto") as server:  # moto serves Secrets Manager too
        for key, value in LOCAL_CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        import boto3

        boto3.client("secretsmanager", endpoint_url=server.endpoint_url).create_secret(
            Name="cdp/crm-token", SecretString="from-secrets-manager"
        )
        assert (
            credential(
                "CDP_TEST_TOKEN",
                {"CDP_TEST_TOKEN_SECRET_ID": "cdp/crm-token", "CDP_SECRETS_ENDPOINT_URL": server.endpoint_url},
            )
            == "from-secrets-manager"
        )


# --- CRM: upsert --------------------------------------------------------------------------------


def test_upsert_sends_everyone_eligible_once_then_only_what_changed(activation_db, apis, settings):
    spark = activation_db
    people = [
        ("c1", "ann@x.com", "Ann", None),
        ("c2", "bob@x.com", "Bob", None),
        ("c3", "cy@x.com", "Cy", None),
        ("c4", "not-an-email", "Dee", None),
    ]
    audience(spark, "sync_test__people", people)
    sync = definition()
    first = run(spark, sync, settings, run_id="run1")
    assert set(apis.state.crm) == {"c1", "c2", "c3"}
    assert apis.state.crm["c1"]["Email"] == "ann@x.com" and apis.state.crm["c1"]["FirstName"] == "Ann"
    assert (first["planned"], first["sent"], first["failed"], first["rejected"]) == (4, 3, 0, 1)
    assert first["status"] == "succeeded_with_rejections"
    errors = spark.table(ERRORS_TABLE).collect()
    assert [(e.record_key, e.error, e.kind) for e in errors] == [
        ("c4", "INVALID_EMAIL_ADDRESS: Email: invalid email address", "rejected")
    ]
    before = len(apis.state.requests)
    again = run(spark, sync, settings, run_id="run1b")  # a refused record is not resent unchanged
    assert (again["planned"], again["status"], len(apis.state.requests)) == (0, "succeeded", before)

    # c3 is erased, c2 renamed, c4's email fixed: only those three are planned; c3 is deleted.
    spark.sql(f"INSERT INTO {SUPPRESSIONS_TABLE} VALUES ('c3', 'erased', current_timestamp())")
    audience(
        spark,
        "sync_test__people",
        [people[0], ("c2", "bob@x.com", "Robert", None), people[2], ("c4", "dee@x.com", "Dee", None)],
    )
    before = len(apis.state.requests)
    second = run(spark, sync, settings, run_id="run2")
    assert sum(n for _, _, n in apis.state.requests[before:]) == 3  # c2, c4 and c3's deletion, nothing else
    assert (second["updated"], second["inserted"], second["removed"], second["failed"]) == (1, 1, 1, 0)
    assert apis.state.crm["c2"]["FirstName"] == "Robert" and apis.state.crm["c4"]["Email"] == "dee@x.com"
    assert "c3" not in apis.state.crm

    before = len(apis.state.requests)
    third = run(spark, sync, settings, run_id="run3")
    assert len(apis.state.requests) == before and third["planned"] == 0
    log = {r.run_id: r for r in spark.table(LOG_TABLE).collect()}
    assert all(r.planned == r.sent + r.skipped + r.failed + r.rejected for r in log.values())
    assert (log["run1"].rejected, log["run2"].removed, log["run3"].planned) == (1, 1, 0)


# --- email platform: mirror and consent ---------------------------------------------------------


def test_mirror_removes_who_left_or_lost_consent_and_adds_who_gave_it(activation_db, apis, settings):
    spark = activation_db
    schema = AUDIENCE_SCHEMA + ", segment_names array<string>"
    audience(
        spark,
        "sync_test__subscribers",
        [
            ("c1", "ann@x.com", "Ann", None, ["promoters"]),
            ("c2", "bob@x.com", "Bob", None, []),
            ("c3", "cy@x.com", "Cy", "unsubscribed", []),
        ],
        schema,
    )
    sync = subscribers_sync(fields={"email": "email_address", "first_name": "FNAME", "segment_names": "tags"})
    first = run(spark, sync, settings)
    assert {m["email_address"] for m in apis.state.esp.values()} == {"ann@x.com", "bob@x.com"}
    assert apis.state.esp[subscriber_hash("ann@x.com")]["tags"] == ["promoters"]
    assert apis.state.esp[subscriber_hash("ann@x.com")]["merge_fields"] == {"FNAME": "Ann"}
    assert first["skipped_by_reason"] == {"unsubscribed": 1} and reconciles(first)

    # Bob leaves the audience, Ann's address bounces, Cy subscribes again.
    audience(
        spark,
        "sync_test__subscribers",
        [("c1", "ann@x.com", "Ann", "bounced", ["promoters"]), ("c3", "cy@x.com", "Cy", None, [])],
        schema,
    )
    second = run(spark, sync, settings)
    assert {m["email_address"] for m in apis.state.esp.values()} == {"cy@x.com"}
    assert (second["removed"], second["inserted"], second["failed"]) == (2, 1, 0) and reconciles(second)
    states = {r.record_key: r.status for r in spark.table(STATE_TABLE).collect()}
    assert states == {"c1": "skipped", "c3": "synced"}  # Bob forgotten, Ann remembered as not sent


def test_two_syncs_side_by_side_each_keep_their_own_state_and_send_once(activation_db, apis, settings):
    """The activation step runs its syncs side by side (spark_jobs/activation/sync.py): two
    syncs sharing the state, plan, log and error tables must neither conflict nor see each
    other's rows, and a second side-by-side run sends nothing."""
    spark = activation_db
    people = [(f"c{i}", f"p{i}@x.com", f"P{i}", None) for i in range(1, 7)]
    audience(spark, "sync_test__people", people)
    audience(spark, "sync_test__subscribers", people[:4])
    crm, esp = definition(), subscribers_sync(name="test_subscribers")
    ensure_tables(spark)  # as the step does before it starts the syncs

    first = {sync.name: m for sync, m in completed(lambda sync: run(spark, sync, settings), [crm, esp], threads=2)}
    assert (first["test_sync"]["sent"], first["test_subscribers"]["sent"]) == (6, 4)
    assert all(reconciles(m) and m["status"] == "succeeded" for m in first.values())
    assert set(apis.state.crm) == {f"c{i}" for i in range(1, 7)}
    assert {m["email_address"] for m in apis.state.esp.values()} == {f"p{i}@x.com" for i in range(1, 5)}
    states = {(r.sync_name, r.record_key) for r in spark.table(STATE_TABLE).collect()}
    assert states == {("test_sync", f"c{i}") for i in range(1, 7)} | {
        ("test_subscribers", f"c{i}") for i in range(1, 5)
    }

    before = len(apis.state.requests)
    again = [m["planned"] for _, m in completed(lambda sync: run(spark, sync, settings), [crm, esp], threads=2)]
    assert again == [0, 0] and len(apis.state.requests) == before
    assert sorted(r.sync_name for r in spark.table(LOG_TABLE).collect()) == ["test_subscribers"] * 2 + ["test_sync"] * 2


def test_a_cleared_value_reaches_the_crm_as_null(activation_db, apis, settings):
    """The CRM keeps a field the request leaves out (Salesforce's semantics), so a phone the
    customer no longer has must be sent as null."""
    spark = activation_db
    schema = AUDIENCE_SCHEMA + ", phone string"
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None, "+442079460958")], schema)
    sync = definition(fields={"email": "Email", "first_name": "FirstName", "phone": "Phone"})
    run(spark, sync, settings)
    assert apis.state.crm["c1"]["Phone"] == "+442079460958"
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None, None)], schema)
    second = run(spark, sync, settings)
    assert (second["planned"], second["updated"]) == (1, 1)
    assert apis.state.crm["c1"]["Phone"] is None and apis.state.crm["c1"]["FirstName"] == "Ann"


def test_a_left_segments_tag_and_a_cleared_merge_field_leave_the_email_platform(activation_db, apis, settings):
    """Mailchimp's batch subscribe only adds tags and keeps merge fields it is not sent."""
    spark = activation_db
    schema = AUDIENCE_SCHEMA + ", segment_names array<string>"
    sync = subscribers_sync(fields={"email": "email_address", "first_name": "FNAME", "segment_names": "tags"})
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", "Ann", None, ["lapsed", "promoters"])], schema)
    run(spark, sync, settings)
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", None, None, ["promoters"])], schema)
    second = run(spark, sync, settings)
    member = apis.state.esp[subscriber_hash("ann@x.com")]
    assert (member["tags"], member["merge_fields"]) == (["promoters"], {"FNAME": ""})
    assert (second["updated"], second["failed"]) == (1, 0) and reconciles(second)


def test_an_opt_out_is_kept_an_erasure_deletes_and_only_leavers_are_archived(activation_db, apis, settings):
    spark = activation_db
    sync = subscribers_sync()
    people = [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None), ("c3", "cy@x.com", "Cy", None)]
    audience(spark, "sync_test__subscribers", people)
    run(spark, sync, settings)
    # Ann unsubscribes, Bob asks to be erased, Cy leaves the audience.
    spark.sql(f"INSERT INTO {SUPPRESSIONS_TABLE} VALUES ('c2', 'erased', current_timestamp())")
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", "Ann", "unsubscribed"), people[1]])
    second = run(spark, sync, settings)
    assert (second["removed"], second["failed"]) == (3, 0) and reconciles(second)
    ann, cy = subscriber_hash("ann@x.com"), subscriber_hash("cy@x.com")
    assert {h: m["status"] for h, m in apis.state.esp.items()} == {ann: "unsubscribed"}  # the opt-out stays
    assert set(apis.state.esp_archived) == {cy}  # Bob is gone for good, Cy only archived


def test_only_customers_with_consent_for_the_syncs_purpose_are_sent_and_withdrawals_leave(
    activation_db, apis, settings
):
    """The ledger decides per purpose: c1 granted ad targeting, c2 withdrew it, c3 was never
    asked, c4 is not in the ledger at all. A mirror sync for ad targeting sends c1 only; when
    c1 withdraws, c1 is unsubscribed at the platform (the opt-out is kept). A sync whose purpose
    nobody granted sends nobody."""
    spark = activation_db
    people = [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(1, 5)]
    audience(spark, "sync_test__subscribers", people, consent=False)
    ledger(
        spark,
        [
            ("c1", "ad_targeting", "granted"),
            ("c2", "ad_targeting", "withdrawn"),
            ("c3", "ad_targeting", "not_granted"),
            *[(c, "email_marketing", "granted") for c in ("c1", "c2", "c3")],
        ],
        mode="overwrite",
    )
    sync = subscribers_sync(purpose="ad_targeting")
    first = run(spark, sync, settings)
    assert {m["email_address"] for m in apis.state.esp.values()} == {"p1@x.com"}
    assert first["skipped_by_reason"] == {"consent_withdrawn": 1, "no_consent": 2} and reconciles(first)

    ledger(spark, [("c1", "ad_targeting", "withdrawn")], mode="overwrite")
    second = run(spark, sync, settings)
    assert second["removed"] == 1 and apis.state.esp[subscriber_hash("p1@x.com")]["status"] == "unsubscribed"

    nobody = run(spark, subscribers_sync(purpose="sms_marketing", name="test_sms"), settings)
    assert (nobody["sent"], nobody["skipped_by_reason"]) == (0, {"no_consent": 4})


def test_a_sync_refuses_to_run_without_the_consent_ledger(activation_db, apis, settings):
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None)], consent=False)
    with pytest.raises(SyncModelError, match=r"gold\.customer_consent does not exist"):
        run(spark, definition(), settings)
    assert not apis.state.crm


def test_an_erased_customer_and_a_merged_away_suppressed_id_leave_the_crm(activation_db, apis, settings):
    """A suppression names the id the customer had when it was asked for; identity may have
    merged that id into another since. The CRM (remove_on_suppression by default) deletes both;
    an upsert sync elsewhere keeps the suppressed but still deletes the erased."""
    spark = activation_db
    people = [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None), ("c3", "cy@x.com", "Cy", None)]
    audience(spark, "sync_test__people", people)
    audience(spark, "sync_test__subscribers", people)
    crm, esp = definition(), subscribers_sync(mode="upsert", name="test_esp")
    assert crm.remove_on_suppression and not esp.remove_on_suppression
    assert run(spark, crm, settings)["sent"] == 3 and run(spark, esp, settings)["sent"] == 3

    lineage = [("c1", "c1"), ("c2", "c2"), ("c3", "c3"), ("c2_old", "c2")]  # c2_old was merged into c2
    spark.createDataFrame(lineage, "customer_id string, current_customer_id string").write.format("delta").mode(
        "overwrite"
    ).saveAsTable(LINEAGE_TABLE)
    spark.sql(
        f"INSERT INTO {SUPPRESSIONS_TABLE} VALUES ('c1', 'erased', current_timestamp()), "
        "('c2_old', 'do_not_contact', current_timestamp())"
    )
    removed = run(spark, crm, settings)
    assert (removed["removed"], removed["sent"], removed["skipped"]) == (2, 2, 0) and reconciles(removed)
    assert set(apis.state.crm) == {"c3"}
    states = {r.record_key: r.status for r in spark.table(STATE_TABLE).where("sync_name = 'test_sync'").collect()}
    assert states == {"c1": "skipped", "c2": "skipped", "c3": "synced"}
    assert run(spark, crm, settings)["planned"] == 0  # removed once, not again

    kept = run(spark, esp, settings)
    assert (kept["removed"], kept["skipped_by_reason"]) == (1, {"do_not_contact": 1})
    assert {m["email_address"] for m in apis.state.esp.values()} == {"bob@x.com", "cy@x.com"}
    assert subscriber_hash("ann@x.com") not in apis.state.esp_archived  # deleted permanently


def test_an_erased_customer_already_gone_from_the_model_is_still_removed_and_only_that_is_sent(
    activation_db, apis, settings, monkeypatch
):
    """Erasure deletes the person from gold, so their record leaves every sync model; a sync
    that sent them (the CRM upserts: a record leaving its model is only forgotten) removes them
    all the same, and the webhook hears ``customer.erased``. An erasure's run of the syncs
    (``erasures_only``) sends that and nothing else, since no quality check passed for the rest."""
    spark = activation_db
    monkeypatch.setenv("CDP_WEBHOOK_URL", f"{apis.url}/hooks/cdp")
    people = [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None)]
    audience(spark, "sync_test__people", people)
    crm, hook = definition(), definition(name="test_hook", destination={"type": "webhook"}, mode="mirror")
    assert run(spark, crm, settings)["sent"] == 2 and run(spark, hook, settings)["sent"] == 2

    spark.sql(f"INSERT INTO {SUPPRESSIONS_TABLE} VALUES ('c1', 'erased', current_timestamp())")
    audience(spark, "sync_test__people", [("c2", "bob@x.com", "Bobby", None), ("c3", "cy@x.com", "Cy", None)])
    removed = run(spark, crm, settings, erasures_only=True)
    assert (removed["planned"], removed["removed"], removed["sent"]) == (1, 1, 1) and reconciles(removed)
    assert set(apis.state.crm) == {"c2"} and apis.state.crm["c2"]["FirstName"] == "Bob"  # Bobby, c3: not sent
    hooked = run(spark, hook, settings, erasures_only=True)
    assert (hooked["planned"], hooked["removed"]) == (1, 1)
    erased = [e for e in apis.state.webhook.values() if e["op"] == "remove"]
    assert [(e["key"], e["type"]) for e in erased] == [("c1", "customer.erased")]
    assert {e["type"] for e in apis.state.webhook.values() if e["op"] == "upsert"} == {"record.upsert"}

    after = run(spark, crm, settings)  # the pipeline's own run: the rest, and c1 not again
    assert (after["inserted"], after["updated"], after["removed"]) == (1, 1, 0)


def test_an_email_change_moves_the_member_and_leaves_no_second_subscriber(activation_db, apis, settings):
    spark = activation_db
    sync = subscribers_sync()
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", "Ann", None)])
    run(spark, sync, settings)
    audience(spark, "sync_test__subscribers", [("c1", "ann.lee@y.com", "Ann", None)])
    second = run(spark, sync, settings)
    assert (second["updated"], second["failed"]) == (1, 0)
    assert {m["email_address"]: m["status"] for m in apis.state.esp.values()} == {"ann.lee@y.com": "subscribed"}
    state = {r.record_key: r.destination_id for r in spark.table(STATE_TABLE).collect()}
    assert state == {"c1": subscriber_hash("ann.lee@y.com")}  # the next change goes to the moved member

    # Her next address is already a member, subscribed at the platform by other means: the
    # move is refused (Member Exists), so the old member is archived and the existing one updated.
    apis.state.esp[subscriber_hash("a@z.com")] = {
        "email_address": "a@z.com",
        "status": "subscribed",
        "merge_fields": {},
        "tags": [],
    }
    audience(spark, "sync_test__subscribers", [("c1", "a@z.com", "Ann", None)])
    third = run(spark, sync, settings)
    assert (third["updated"], third["failed"]) == (1, 0)
    assert {m["email_address"]: m["merge_fields"] for m in apis.state.esp.values()} == {"a@z.com": {"FNAME": "Ann"}}
    assert set(apis.state.esp_archived) == {subscriber_hash("ann.lee@y.com")}


def test_a_member_the_platform_neither_added_nor_updated_is_not_taken_as_sent(activation_db, apis, settings):
    """The batch answer lists new and updated members and errors; an error entry need not name
    an address. A member in none of the lists was not accepted."""
    spark = activation_db
    sync = subscribers_sync(mode="upsert", fields={"email": "email_address"})
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None)])
    answer = {"new_members": [{"email_address": "ann@x.com"}], "updated_members": [], "errors": [{"error": "?"}]}
    apis.inject(Fault("/3.0", status=200, body=answer))
    metrics = run(spark, sync, settings)
    assert (metrics["sent"], metrics["failed"]) == (1, 1)
    assert spark.table(ERRORS_TABLE).first().error == "not in the platform's new or updated members"


def test_a_contacts_required_last_name_falls_back_or_skips_as_declared(activation_db, apis, settings):
    """Salesforce refuses a Contact without LastName on every run; the definition declares what
    to do instead, and it is done before sending."""
    spark = activation_db
    schema = AUDIENCE_SCHEMA + ", last_name string"
    people = [("c1", "ann@x.com", "Ann", None, "Lee"), ("c2", "bob@x.com", "Bob", None, None)]
    audience(spark, "sync_test__people", people, schema)
    fields = {"email": "Email", "first_name": "FirstName", "last_name": "LastName"}
    contact = {"type": "crm", "object": "Contact"}
    undeclared = run(spark, definition(name="undeclared", destination=contact, fields=fields), settings)
    assert (undeclared["sent"], undeclared["rejected"]) == (1, 1)  # what the API does without a declaration
    apis.state.crm.clear()

    fallback = definition(
        name="fallback", destination=contact, fields=fields, required_fields={"LastName": "[not provided]"}
    )
    first = run(spark, fallback, settings)
    assert (first["sent"], first["rejected"], first["status"]) == (2, 0, "succeeded")
    assert apis.state.crm["c2"]["LastName"] == "[not provided]" and apis.state.crm["c1"]["LastName"] == "Lee"
    apis.state.crm.clear()

    skip = definition(name="skip", destination=contact, fields=fields, required_fields={"LastName": None})
    skipped = run(spark, skip, settings)
    assert (skipped["sent"], skipped["skipped_by_reason"], set(apis.state.crm)) == (1, {MISSING_REQUIRED: 1}, {"c1"})
    assert run(spark, skip, settings)["planned"] == 0  # not planned again until it changes


def test_upsert_and_append_never_remove(activation_db, apis, settings):
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None)])
    append = definition(mode="append")
    run(spark, append, settings)
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Annie", None), ("c3", "cy@x.com", "Cy", None)])
    second = run(spark, append, settings)
    assert set(apis.state.crm) == {"c1", "c2", "c3"} and apis.state.crm["c1"]["FirstName"] == "Ann"
    assert (second["inserted"], second["updated"], second["removed"]) == (1, 0, 0)


# --- failures -----------------------------------------------------------------------------------


def test_429_500_timeouts_and_a_crash_mid_batch_lose_and_duplicate_nothing(activation_db, apis, settings):
    spark = activation_db
    people = [(f"c{i:02d}", f"p{i}@x.com", f"P{i}", None) for i in range(12)]
    audience(spark, "sync_test__people", people)
    sync = definition(
        mode="mirror",
        batch_size=5,
        destination={"type": "webhook", "timeout_seconds": 0.5},
        fields={"email": "email", "first_name": "first_name"},
    )
    apis.inject(
        Fault("/hooks", status=429, retry_after=0.2),
        Fault("/hooks", status=500),
        Fault("/hooks", delay_s=1.0, status=200, crash_after=99),  # slower than the client's timeout
        Fault("/hooks", crash_after=3),
    )  # 3 events applied, then the connection drops
    metrics = run(spark, sync, settings)
    assert (metrics["sent"], metrics["failed"], metrics["retries"]) == (12, 0, 4) and reconciles(metrics)
    applied = {e["key"]: e["data"] for e in apis.state.webhook.values()}
    assert applied == {key: {"email": email, "first_name": name} for key, email, name, _ in people}
    # The timed-out and the crashed requests reached the server, so some events arrived twice;
    # each was applied once (stable event ids), and no event is missing.
    assert len(apis.state.webhook) == 12 and max(apis.state.webhook_received.values()) == 3
    assert sum(apis.state.webhook_received.values()) == 12 + 5 + 3


def test_undeliverable_records_are_recorded_and_sent_by_the_next_run(activation_db, apis, settings):
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None)])
    sync = definition(batch_size=1, destination={"type": "crm", "object": "CDP_Person__c", "max_attempts": 2})
    apis.inject(Fault("/services", status=503, times=2))  # the first record's request fails twice: give up
    first = run(spark, sync, settings)
    assert (first["sent"], first["failed"]) == (1, 1) and len(apis.state.crm) == 1
    failed_key = spark.table(ERRORS_TABLE).first()
    assert failed_key.error == "gave up after retries: HTTP 503"
    second = run(spark, sync, settings)
    assert (second["planned"], second["sent"]) == (1, 1) and set(apis.state.crm) == {"c1", "c2"}


def test_documented_throttling_is_retried_and_the_crms_api_budget_is_reported(activation_db, apis, settings):
    """Salesforce signals an exhausted budget with 403 REQUEST_LIMIT_EXCEEDED, Mailchimp can
    throttle with a 403 that has no body: both are retried. A 403 with Mailchimp's problem
    document is a refusal of access, not throttling: it stops the run."""
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None)])
    limit = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    apis.inject(Fault("/services", status=403, body=limit))
    crm = run(spark, definition(), settings)
    assert (crm["sent"], crm["failed"], crm["retries"]) == (2, 0, 1) and set(apis.state.crm) == {"c1", "c2"}
    assert crm["api_usage"] == "1/15000"  # Sforce-Limit-Info of the last answer

    sync = subscribers_sync(
        mode="upsert",
        destination={"type": "email_platform", "list_id": "news", "max_attempts": 3},
        fields={"email": "email_address"},
    )
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", "Ann", None)])
    apis.inject(Fault("/3.0", status=403, body=b""))
    throttled = run(spark, sync, settings)
    assert (throttled["sent"], throttled["retries"]) == (1, 1) and len(apis.state.esp) == 1
    audience(spark, "sync_test__subscribers", [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", None)])
    apis.inject(Fault("/3.0", status=403, body={"title": "Forbidden", "status": 403, "detail": "list is locked"}))
    with pytest.raises(DestinationRefusedAccess, match=r"HTTP 403 from POST /3\.0/lists/news: Forbidden"):
        run(spark, sync, settings)
    assert len(apis.state.esp) == 1


def test_the_webhook_posts_to_the_exact_url_and_one_refused_event_fails_alone(
    activation_db, apis, settings, monkeypatch
):
    spark = activation_db
    monkeypatch.setenv("CDP_WEBHOOK_URL", f"{apis.url}/hooks/cdp?token=abc")
    people = [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(5)] + [("c9", "not-an-email", "Bad", None)]
    audience(spark, "sync_test__people", people)
    metrics = run(spark, definition(destination={"type": "webhook"}, fields={"email": "email"}), settings)
    assert (metrics["sent"], metrics["failed"], metrics["rejected"], metrics["retries"]) == (5, 0, 1, 0)
    assert reconciles(metrics)
    assert {e["key"] for e in apis.state.webhook.values()} == {"c0", "c1", "c2", "c3", "c4"}
    assert set(apis.state.webhook_targets) == {"/hooks/cdp?token=abc"}
    errors = [(e.record_key, e.error, e.kind) for e in spark.table(ERRORS_TABLE).collect()]
    assert errors == [("c9", "HTTP 422", "rejected")]


class CrashAfter:
    """A destination that dies (like the process would) after delivering ``batches`` batches."""

    def __init__(self, inner, batches: int) -> None:
        self.inner, self.left = inner, batches
        self.batch_size = inner.batch_size

    def upsert(self, changes):
        if self.left == 0:
            raise KeyboardInterrupt("killed mid-sync")
        self.left -= 1
        return self.inner.upsert(changes)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_crash_mid_sync_then_a_rerun_apply_each_change_exactly_once(activation_db, apis, settings):
    spark = activation_db
    people = [(f"c{i:02d}", f"p{i}@x.com", f"P{i}", None) for i in range(10)]
    audience(spark, "sync_test__people", people)
    sync = definition(batch_size=2, destination={"type": "webhook"}, fields={"email": "email"})
    crashing = SyncRun(
        spark,
        sync,
        lambda s, run_id: CrashAfter(open_destination(s, run_id, settings), 3),
        checkpoint_rows=4,
        run_id="crashed",
    )
    with pytest.raises(KeyboardInterrupt):
        crashing.run()
    # Two batches were checkpointed, the third delivered but not: the re-run sends it again.
    assert spark.table(STATE_TABLE).count() == 4
    rerun = run(spark, sync, settings, run_id="rerun")
    assert rerun["planned"] == 6 and rerun["sent"] == 6
    assert {e["key"] for e in apis.state.webhook.values()} == {p[0] for p in people}
    assert sorted(apis.state.webhook_received.values()) == [1] * 8 + [2] * 2  # the uncheckpointed batch, applied once
    statuses = {r.run_id: r.status for r in spark.table(LOG_TABLE).collect()}
    assert statuses == {"crashed": "failed", "rerun": "succeeded"}


def test_a_webhook_signed_with_the_wrong_secret_stops_the_run_without_retrying(
    activation_db, apis, settings, monkeypatch
):
    spark = activation_db
    audience(spark, "sync_test__people", [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(3)])
    monkeypatch.setenv("CDP_WEBHOOK_SECRET", "not-the-shared-secret")
    with pytest.raises(DestinationRefusedAccess, match="HTTP 401 from POST /hooks/cdp: bad signature"):
        run(spark, definition(destination={"type": "webhook"}, batch_size=1), settings)
    assert len(apis.state.webhook_targets) == 1 and not apis.state.webhook  # one refusal: no retry, no next batch
    assert [(r.status, r.sent) for r in spark.table(LOG_TABLE).collect()] == [("failed", 0)]
    assert "bad signature" in spark.table(LOG_TABLE).first().error


def crm_oauth_sync(grant: str = "oauth_client_credentials", **overrides):
    destination = {"type": "crm", "object": "CDP_Person__c", "auth": {"type": grant}, "max_attempts": 2}
    return definition(destination=destination, **overrides)


class BeforeBatch:
    """A destination that calls ``action`` before delivering its batch number ``batch`` (from 1)."""

    def __init__(self, inner, batch: int, action) -> None:
        self.inner, self.batch_size, self.at, self.action, self.batches = inner, inner.batch_size, batch, action, 0

    def upsert(self, changes):
        self.batches += 1
        if self.batches == self.at:
            self.action()
        return self.inner.upsert(changes)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_an_expired_oauth_token_is_fetched_again_once(activation_db, apis, settings, monkeypatch):
    spark = activation_db
    monkeypatch.delenv("CDP_CRM_TOKEN")  # OAuth only: the static token is not what gets through
    audience(spark, "sync_test__people", [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(3)])
    for grant in ("oauth_client_credentials", "oauth_refresh_token"):
        issued_before = apis.state.crm_tokens_issued
        sync = crm_oauth_sync(grant, batch_size=1, name=f"test_{grant}")
        metrics = SyncRun(
            spark, sync, lambda s, run_id: BeforeBatch(open_destination(s, run_id, settings), 2, apis.expire_crm_tokens)
        ).run()
        # A token for the run; the session expires before the second request, which is refused
        # (401): a new token, once, and that request and the third go through with it.
        assert (metrics["sent"], metrics["failed"], metrics["retries"]) == (3, 0, 0)
        assert apis.state.crm_tokens_issued - issued_before == 2
    assert set(apis.state.crm) == {"c0", "c1", "c2"}


def test_a_refused_grant_stops_the_run_keeping_what_was_accepted_and_naming_no_secret(
    activation_db, apis, settings, monkeypatch
):
    spark = activation_db
    people = [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(4)]
    audience(spark, "sync_test__people", people)

    def revoke() -> None:  # the refresh token is revoked, and the session times out
        apis.credentials["CDP_CRM_REFRESH_TOKEN"] = "revoked"
        apis.expire_crm_tokens()

    sync = crm_oauth_sync("oauth_refresh_token", batch_size=2)
    revoked = SyncRun(spark, sync, lambda s, run_id: BeforeBatch(open_destination(s, run_id, settings), 2, revoke))
    with pytest.raises(DestinationRefusedAccess) as refused:
        revoked.run()
    assert "refused the refresh_token grant: HTTP 400 invalid_grant" in str(refused.value)
    assert "CDP_CRM_REFRESH_TOKEN" in str(refused.value) and "local-crm" not in str(refused.value)
    assert len(apis.state.crm) == 2  # the first batch was accepted ...
    state = {r.record_key: r.status for r in spark.table(STATE_TABLE).collect()}
    assert state == dict.fromkeys(apis.state.crm, "synced")  # ... and the state says so
    assert spark.table(LOG_TABLE).first().status == "failed"

    apis.credentials["CDP_CRM_REFRESH_TOKEN"] = "local-crm-refresh-token"
    rerun = run(spark, sync, settings)
    assert (rerun["planned"], rerun["sent"]) == (2, 2) and set(apis.state.crm) == {p[0] for p in people}


def test_the_crm_slows_down_near_the_orgs_api_limit_and_stops_before_it(activation_db, apis, settings):
    """Sforce-Limit-Info: past 90 % of the daily requests one request a second (here 2), past
    95 % nothing more; what is left fails with the reason and goes with the next run."""
    import time

    spark = activation_db
    audience(spark, "sync_test__people", [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(10)])
    apis.crm_daily_limit, apis.state.crm_api_calls = 100, 88
    sync = definition(
        batch_size=1,
        destination={"type": "crm", "object": "CDP_Person__c", "near_limit_requests_per_second": 2},
    )
    destination = open_destination(sync, "r", settings)
    stamps = []
    for i in range(10):
        stamps.append(time.monotonic())
        destination.upsert([Change("upsert", f"c{i}", {"Email": f"p{i}@x.com"})])
    assert apis.state.crm_api_calls == 95  # requests 1-7 sent, usage 89..95; then none
    assert stamps[7] - stamps[2] >= 1.5  # requests 3-7 at 2 a second (at 200 before): 2 full waits
    assert stamps[2] - stamps[0] < 0.5
    metrics = run(spark, sync, settings)  # its first answer says 96 of 100: one request, no more
    assert (metrics["sent"], metrics["failed"], metrics["api_usage"]) == (1, 9, "96/100")
    errors = {e.error for e in spark.table(ERRORS_TABLE).collect()}
    assert errors == {"not sent: the CRM's daily API requests are at 96 of 100"}


def test_requests_keep_to_the_rate_limit(activation_db, apis, settings):
    import time

    spark = activation_db
    audience(spark, "sync_test__people", [(f"c{i}", f"p{i}@x.com", "P", None) for i in range(11)])
    destination = open_destination(definition(batch_size=1, rate_limit_per_second=5), "r", settings)
    started = time.monotonic()
    for i in range(11):
        destination.api.request("DELETE", "/services/data/v61.0/composite/sobjects", params={"ids": f"x{i}"})
    assert time.monotonic() - started >= 1.9  # 11 requests at 5 a second: two full waits


def test_dry_run_plans_and_logs_but_sends_and_remembers_nothing(activation_db, apis, settings):
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None), ("c2", "bob@x.com", "Bob", "no_consent")])
    metrics = run(spark, definition(), settings, dry_run=True, run_id="dry")
    assert apis.state.requests == [] and spark.table(STATE_TABLE).count() == 0
    assert metrics["planned_by_op"] == {"insert": 1, "skip": 1} and metrics["status"] == "dry_run"
    plan = {(r.op, r.record_key, r.reason) for r in spark.table(PLANS_TABLE).collect()}
    assert plan == {("insert", "c1", None), ("skip", "c2", "no_consent")}
    assert spark.table(LOG_TABLE).first().dry_run is True


# --- ad-audience files on S3 ----------------------------------------------------------------------


def _csv(client, key: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(client.get_object(Bucket="exports", Key=key)["Body"].read().decode())))


def test_ad_audience_files_are_hashed_guarded_atomic_and_listed_in_a_manifest(activation_db, s3, tmp_path):
    spark = activation_db
    settings = Settings.from_env(
        {
            "CDP_HOME": str(tmp_path / "home"),
            "CDP_S3_ENDPOINT_URL": s3.endpoint_url,
            "CDP_EXPORT_BUCKET": "exports",
            "CDP_EXPORT_PREFIX": "aud",
        }
    )
    schema = "customer_id string, email string, phone string, country string, suppression_reason string"
    audience(
        spark,
        "sync_test__ads",
        [
            ("c1", "  Ann.Lee@Example.COM ", "020 7946 0958", "GB", None),
            ("c2", "bob@x.com", None, '=HYPERLINK("x")', None),
            ("c3", "cy@x.com", None, "FR", "unsubscribed"),
        ],
        schema,
    )
    sync = definition(
        model="sync_test__ads",
        mode="mirror",
        destination={"type": "s3_audience", "region_field": "Country", "hashed": {"Email": "email", "Phone": "phone"}},
        identifier={"source": "customer_id", "destination": "customer_id"},
        fields={"email": "Email", "phone": "Phone", "country": "Country"},
    )
    first = run(spark, sync, settings, run_id="r1")
    client = s3.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="exports")["Contents"])
    assert keys == ["aud/ad_audiences/test_sync/r1/add-00001.csv", "aud/ad_audiences/test_sync/r1/manifest.json"]
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert sorted(_csv(client, keys[0]), key=lambda r: r["Country"]) == [
        {"Email": sha("bob@x.com"), "Phone": "", "Country": '\'=HYPERLINK("x")'},
        {"Email": sha("ann.lee@example.com"), "Phone": sha("+442079460958"), "Country": "GB"},
    ]
    manifest = json.loads(client.get_object(Bucket="exports", Key=keys[1])["Body"].read())
    body = client.get_object(Bucket="exports", Key=keys[0])["Body"].read()
    assert manifest["files"] == [{"key": keys[0], "op": "add", "rows": 2, "sha256": hashlib.sha256(body).hexdigest()}]
    assert (first["skipped_by_reason"], manifest["rows_added"]) == ({"unsubscribed": 1}, 2)

    # Ann unsubscribes: the next run's folder holds one removal, with the values that were sent.
    audience(
        spark,
        "sync_test__ads",
        [
            ("c1", "ann.lee@example.com", "020 7946 0958", "GB", "unsubscribed"),
            ("c2", "bob@x.com", None, '=HYPERLINK("x")', None),
        ],
        schema,
    )
    second = run(spark, sync, settings, run_id="r2")
    assert _csv(client, "aud/ad_audiences/test_sync/r2/remove-00001.csv") == [
        {"Email": sha("ann.lee@example.com"), "Phone": sha("+442079460958"), "Country": "GB"}
    ]
    assert second["removed"] == 1 and second["sent"] == 1
    assert not [o for o in client.list_objects_v2(Bucket="exports")["Contents"] if ".tmp-" in o["Key"]]


def test_a_model_without_a_mapped_column_or_suppression_reason_is_refused_by_name(activation_db, apis, settings):
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com")], "customer_id string, email string")
    with pytest.raises(
        SyncModelError,
        match=r"gold.sync_test__people lacks column\(s\) \['first_name', "
        r"'suppression_reason'\] that sync 'test_sync' needs",
    ):
        run(spark, definition(), settings)
    assert apis.state.requests == []


def test_a_model_with_two_rows_for_one_identifier_is_refused(activation_db, apis, settings):
    spark = activation_db
    audience(spark, "sync_test__people", [("c1", "ann@x.com", "Ann", None), ("c1", "ann2@x.com", "Ann", None)])
    with pytest.raises(SyncModelError, match="more than one row for some customer_id"):
        run(spark, definition(), settings)
    assert apis.state.requests == []
