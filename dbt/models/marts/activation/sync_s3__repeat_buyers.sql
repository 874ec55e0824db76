{#- Repeat buyers for customer-match files on S3 (activation/s3_repeat_buyers, mirror mode):
    customers with at least var('repeat_buyer_min_orders') completed orders and an email. The
    sync hashes the email and sends only customers who granted ad_targeting. -#}
with customers as (
    select * from {{ ref('dim_customers') }}
),

audience as (
    select
        customer_id,
        email,
        order_count,
        total_spend,
        {{ activation_suppression_reason('none') }} as suppression_reason
    from customers
    where
        order_count >= {{ var('repeat_buyer_min_orders') }}
        and email is not null
)

select * from audience
