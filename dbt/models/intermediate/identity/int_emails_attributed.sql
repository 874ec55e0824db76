{#- Standardised email -> the one customer whose records carry it. An email shared by several
    customers (a family mailbox) attributes nothing: it would put one person's clicks on another. -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

emails as (
    select
        email_normalised as email_standardised,
        min(customer_id) as customer_id,
        count(distinct customer_id) as customer_count
    from identity_map
    where email_normalised is not null
    group by email_normalised
),

attributed as (
    select email_standardised, customer_id
    from emails
    where customer_count = 1
)

select * from attributed
