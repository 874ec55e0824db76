with orders as (
    select * from {{ ref('int_orders_attributed') }}
),

aggregated as (
    select
        customer_id,
        count_if(status = 'completed') as order_count,
        cast(coalesce(sum(case when status = 'completed' then total_amount end), 0) as decimal(14, 2))
            as total_spend,
        min(case when status = 'completed' then ordered_at end) as first_order_at,
        max(case when status = 'completed' then ordered_at end) as last_order_at
    from orders
    group by customer_id
)

select * from aggregated
