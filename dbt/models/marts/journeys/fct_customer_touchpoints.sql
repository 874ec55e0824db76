{#- Every interaction across web, app, email, store, support, survey and social, attributed to
    its customer: through the attribution key's customer (attributed_by identity_map, login or
    email), else through the visitor's stitched anonymous id (anonymous_id). Activity nobody can
    be attributed yet keeps customer_id null: a later identity run may attribute it.

    Incremental (Delta MERGE on touchpoint_id). A run processes
    1. the source rows ingested after the newest ingestion the table has seen, per source (a
       batch's ingested_at is when it started; Dagster runs dbt after ingestion commits), and
    2. the rows already in the table whose attribution changed since: their attribution key or
       anonymous id now leads to another customer (a merge retired an id, a visitor was
       stitched, a record was re-assigned, an address became one customer's).
    A full refresh computes the same table from scratch. -#}
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

previous_keys as (
    {#- What each key attributed to when its rows were last processed (null: nobody). -#}
    select distinct
        attribution_key,
        case when attributed_by in ('identity_map', 'login', 'email') then customer_id end as customer_id
    from {{ this }}
    where attribution_key is not null
),

changed_keys as (
    select previous_keys.attribution_key
    from previous_keys
    left join attribution_keys
        on previous_keys.attribution_key = attribution_keys.attribution_key
    where not (previous_keys.customer_id <=> attribution_keys.customer_id)
),

previous_anonymous_ids as (
    {#- Only rows the anonymous id attributed (or failed to): their key attributed nobody. -#}
    select distinct
        anonymous_id,
        case when attributed_by = 'anonymous_id' then customer_id end as customer_id
    from {{ this }}
    where
        anonymous_id is not null
        and (attributed_by is null or attributed_by = 'anonymous_id')
),

changed_anonymous_ids as (
    select previous_anonymous_ids.anonymous_id
    from previous_anonymous_ids
    left join anonymous_ids
        on previous_anonymous_ids.anonymous_id = anonymous_ids.anonymous_id
    where not (previous_anonymous_ids.customer_id <=> anonymous_ids.customer_id)
),

reattributed as (
    {#- Two semi joins, not one on "key or anonymous id": an OR join condition cannot be hashed. -#}
    select {% for column in base_columns %}existing.{{ column }}{{ ', ' if not loop.last }}{% endfor %}  -- noqa: LT05
    from {{ this }} as existing
    left semi join changed_keys
        on existing.attribution_key = changed_keys.attribution_key
    union
    select {% for column in base_columns %}existing.{{ column }}{{ ', ' if not loop.last }}{% endfor %}  -- noqa: LT05
    from {{ this }} as existing
    left semi join changed_anonymous_ids
        on existing.anonymous_id = changed_anonymous_ids.anonymous_id
),

candidates as (
    select * from arrived
    union all
    select reattributed.*
    from reattributed
    left anti join arrived
        on reattributed.touchpoint_id = arrived.touchpoint_id
),
{% else %}
candidates as (
    select {{ base_columns | join(', ') }} from touchpoints
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
        candidates.ingested_at
    from candidates
    left join attribution_keys
        on candidates.attribution_key = attribution_keys.attribution_key
    left join anonymous_ids
        on candidates.anonymous_id = anonymous_ids.anonymous_id
)

select * from attributed
