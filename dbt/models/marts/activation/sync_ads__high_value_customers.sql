{#- Ad audience of high-value customers (monetary score 4-5) for customer-match uploads
    (activation/ads_high_value_customers, mirror mode). The sync hashes email and phone. -#}
with customers as (
    select * from {{ ref('dim_customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

high_value as (
    select
        customers.customer_id,
        customers.email,
        customers.phone,
        customers.country,
        {{ activation_suppression_reason('none') }} as suppression_reason
    from customers
    inner join traits on customers.customer_id = traits.customer_id
    where
        traits.monetary_score >= {{ var('high_value_min_monetary_score') }}
        and (customers.email is not null or customers.phone is not null)
)

select * from high_value
