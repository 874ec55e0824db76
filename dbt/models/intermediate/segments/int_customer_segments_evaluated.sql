{#- Who is in which segment today: every declared rule (vars.segments) evaluated on every
    customer. The snapshot snap_customer_segments keeps the history. -#}
with inputs as (
    select * from {{ ref('int_customers_profiled') }}
),

memberships as (
    {{ segment_memberships('inputs') }}
),

keyed as (
    select
        concat(segment_name, ':', customer_id) as membership_id,
        customer_id,
        segment_name
    from memberships
)

select * from keyed
