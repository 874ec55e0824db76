{#- One row per customer in at least one segment: the names of their segments today, sorted.
    What the next best action rules test (array_contains(segments, ...)) and what the CRM and
    email syncs send. -#}
with memberships as (
    select * from {{ ref('int_customer_segments_evaluated') }}
),

lists as (
    select
        customer_id,
        array_sort(collect_set(segment_name)) as segment_names
    from memberships
    group by customer_id
)

select * from lists
