with orders as (
    select * from {{ ref('stg_shop__orders') }}
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
        orders.currency,
        orders.total_amount,
        orders.status
    from orders
    inner join identity_map
        on orders.order_id = identity_map.source_record_id
)

select * from attributed
