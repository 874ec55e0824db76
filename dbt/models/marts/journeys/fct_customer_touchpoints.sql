{#- Every interaction across web, app, email, store, support, survey and social, attributed to
    its customer: through the attribution key's customer (attributed_by identity_map, login or
    email), else through the visitor's stitched anonymous id (anonymous_id). Activity nobody can
    be attributed yet keeps customer_id null: a later identity run may attribute it.

    Incremental (Delta MERGE on touchpoint_id). A run processes
    1. the source rows ingested after the newest ingestion the table has seen, per source (a
       batch's ingested_at is when it started; Dagster runs dbt after ingestion commits), and
    2. the rows already in the table whose attribution changed since: attributed again, their
       attribution key or anonymous id now leads to another customer, or to none (a merge
       retired an id, a visitor was stitched, a record was re-assigned, an address became one
       customer's).
    The table is read once for 2: each stored row is attributed again from its own columns and
    kept when the outcome differs. (Finding the changed keys first read the table four times
    and cost more than a full rebuild.) A full refresh computes the same table from scratch. -#}
with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
),

attribution_keys as (
    select * from {{ ref('int_touchpoint_attribution_keys') }}
),

anonymous_ids as (
    select * from {{ ref('stg_identity__anonymous_ids') }}
),

{% set base_columns = [
    'touchpoint_id', 'occurred_at', 'channel', 'touchpoint_type', 'touchpoint_detail', 'device_type',
    'city', 'country', 'session_id', 'anonymous_id', 'attribution_key', 'source_table',
    'source_record_id', 'ingested_at'] %}

{% if is_incremental() %}
arrived as (
    {{ rows_arrived_since_last_run('touchpoints', base_columns) }}
),

stored as (
    {#- The rows the table holds (but those arriving again), with what they were attributed to. -#}
    select
        {% for column in base_columns %}existing.{{ column }}, {% endfor %}false as is_new,  -- noqa: LT02, LT05
        existing.customer_id as stored_customer_id,
        existing.attributed_by as stored_attributed_by
    from {{ this }} as existing
    left anti join arrived
        on existing.touchpoint_id = arrived.touchpoint_id
),

candidates as (
    select
        arrived.*,
        true as is_new,
        cast(null as string) as stored_customer_id,
        cast(null as string) as stored_attributed_by
    from arrived
    union all
    select * from stored
),
{% else %}
candidates as (
    select {{ base_columns | join(', ') }}, true as is_new from touchpoints
),
{% endif %}

attributed as (
    select
        candidates.touchpoint_id,
        coalesce(attribution_keys.customer_id, anonymous_ids.customer_id) as customer_id,
        candidates.occurred_at,
        cast(candidates.occurred_at as date) as occurred_on,
        candidates.channel,
        candidates.touchpoint_type,
        candidates.touchpoint_detail,
        candidates.device_type,
        candidates.city,
        candidates.country,
        candidates.session_id,
        case
            when attribution_keys.customer_id is not null
                then
                    case candidates.source_table
                        when 'web_events' then 'login'
                        when 'email_events' then 'email'
                        else 'identity_map'
                    end
            when anonymous_ids.customer_id is not null then 'anonymous_id'
        end as attributed_by,
        candidates.anonymous_id,
        candidates.attribution_key,
        candidates.source_table,
        candidates.source_record_id,
        candidates.ingested_at,
        candidates.is_new{% if is_incremental() %},
        candidates.stored_customer_id,
        candidates.stored_attributed_by{% endif %}
    from candidates
    left join attribution_keys
        on candidates.attribution_key = attribution_keys.attribution_key
    left join anonymous_ids
        on candidates.anonymous_id = anonymous_ids.anonymous_id
)

select
    touchpoint_id, customer_id, occurred_at, occurred_on, channel, touchpoint_type, touchpoint_detail,
    device_type, city, country, session_id, attributed_by, anonymous_id, attribution_key, source_table,
    source_record_id, ingested_at
from attributed
{%- if is_incremental() %}
where
    is_new
    or not (customer_id <=> stored_customer_id)
    or not (attributed_by <=> stored_attributed_by)
{%- endif %}
