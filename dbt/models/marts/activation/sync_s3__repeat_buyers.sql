{#- Audience for the ad-audience file on S3: customers with at least
    var('repeat_buyer_min_orders') completed orders and a usable email. -#}
with customers as (
    select * from {{ ref('dim_customers') }}
),

audience as (
    select
        customer_id,
        email,
        first_name,
        last_name,
        order_count,
        total_spend
    from customers
    where
        order_count >= {{ var('repeat_buyer_min_orders') }}
        and email is not null
)

select * from audience
