with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

rates as (
    select * from {{ ref('int_exchange_rates_daily') }}
),

identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
    where source_table = 'shop_orders'
),

attributed as (
    select
        orders.order_id,
        identity_map.customer_id,
        orders.ordered_at,
        orders.currency as original_currency,
        orders.total_amount as original_total_amount,
        {{ to_reporting_currency('orders.total_amount', 'orders.currency') }} as total_amount,
        orders.status
    from orders
    inner join identity_map
        on orders.order_id = identity_map.source_record_id
    left join rates
        on orders.currency = rates.currency
        and cast(orders.ordered_at as date) = rates.rate_on
)

select * from attributed
