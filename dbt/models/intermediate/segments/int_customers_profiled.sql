{#- What segment rules (vars.segments) can test: one row per customer with every trait and the
    consent and place of the golden record. -#}
with traits as (
    select * from {{ ref('customer_traits') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

inputs as (
    select
        traits.*,
        customers.country,
        customers.email_subscription_status,
        customers.email_deliverable
    from traits
    inner join customers
        on traits.customer_id = customers.customer_id
)

select * from inputs
