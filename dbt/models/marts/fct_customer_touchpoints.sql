{#- Every interaction attributed to a customer, across web, app, email, store, support, survey
    and social, with device and location where the source has them. Activity of anonymous
    visitors appears once they are stitched (attributed_by = anonymous_id). -#}
with touchpoints as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

attributed as (
    select
        touchpoint_id,
        customer_id,
        occurred_at,
        cast(occurred_at as date) as occurred_on,
        channel,
        touchpoint_type,
        touchpoint_detail,
        device_type,
        city,
        country,
        session_id,
        attributed_by,
        source_table,
        source_record_id
    from touchpoints
    where customer_id is not null
)

select * from attributed
