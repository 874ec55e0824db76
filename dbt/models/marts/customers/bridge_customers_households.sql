{#- Customer -> household, with the relationship the data shows (family: shares a surname with
    another member; co_resident; only_member). A household is never a customer. -#}
with members as (
    select * from {{ ref('stg_identity__household_members') }}
),

customers as (
    select customer_id from {{ ref('dim_customers') }}
),

bridge as (
    select
        members.household_id,
        members.customer_id,
        members.relationship
    from members
    inner join customers
        on members.customer_id = customers.customer_id
)

select * from bridge
