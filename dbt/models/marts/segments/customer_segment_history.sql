{#- Every stay of a customer in a segment: entered_at, left_at (null while a member). -#}
with history as (
    select * from {{ ref('snap_customer_segments') }}
),

stays as (
    select
        dbt_scd_id as stay_id,
        customer_id,
        segment_name,
        dbt_valid_from as entered_at,
        dbt_valid_to as left_at
    from history
)

select * from stays
