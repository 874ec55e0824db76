{#- Every interaction across web, app, email, store, support, survey and social, attributed to
    its customer: through the attribution key's customer (attributed_by identity_map, login or
    email), else through the visitor's stitched anonymous id (anonymous_id). Activity nobody can
    be attributed yet keeps customer_id null: a later identity run may attribute it.

    A table rebuilt by every run, so a touchpoint follows its attribution at once: its key or
    anonymous id leads to another customer after a merge retired an id, a visitor was stitched, a
    record was re-assigned or an address became one customer's. -#}
with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
),

attribution_keys as (
    select * from {{ ref('int_touchpoint_attribution_keys') }}
),

anonymous_ids as (
    select * from {{ ref('stg_identity__anonymous_ids') }}
),

attributed as (
    select
        touchpoints.touchpoint_id,
        coalesce(attribution_keys.customer_id, anonymous_ids.customer_id) as customer_id,
        touchpoints.occurred_at,
        cast(touchpoints.occurred_at as date) as occurred_on,
        touchpoints.channel,
        touchpoints.touchpoint_type,
        touchpoints.touchpoint_detail,
        touchpoints.device_type,
        touchpoints.city,
        touchpoints.country,
        touchpoints.session_id,
        case
            when attribution_keys.customer_id is not null
                then
                    case touchpoints.source_table
                        when 'web_events' then 'login'
                        when 'email_events' then 'email'
                        else 'identity_map'
                    end
            when anonymous_ids.customer_id is not null then 'anonymous_id'
        end as attributed_by,
        touchpoints.anonymous_id,
        touchpoints.attribution_key,
        touchpoints.source_table,
        touchpoints.source_record_id,
        touchpoints.ingested_at
    from touchpoints
    left join attribution_keys
        on touchpoints.attribution_key = attribution_keys.attribution_key
    left join anonymous_ids
        on touchpoints.anonymous_id = anonymous_ids.anonymous_id
)

select * from attributed
