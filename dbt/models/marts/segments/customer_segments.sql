{#- Current segment members, with when they entered (the run that first saw them in the
    segment, this stay). History: customer_segment_history. -#}
with history as (
    select * from {{ ref('snap_customer_segments') }}
),

segments as (
    select * from {{ ref('dim_segments') }}
),

current_members as (
    select
        history.customer_id,
        history.segment_name,
        history.dbt_valid_from as entered_at
    from history
    inner join segments
        on history.segment_name = segments.segment_name
    where history.dbt_valid_to is null
)

select * from current_members
