{#- Every purchase, online (shop orders, their newest status) and in store (POS transactions),
    one row per order. customer_id is null for a store purchase without a loyalty card. -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

order_lines as (
    select
        order_id,
        sum(quantity) as item_count,
        count(*) as line_count
    from {{ ref('stg_shop__order_lines') }}
    group by order_id
),

online as (
    select
        orders.order_id,
        'shop_orders' as source_table,
        orders.channel,
        orders.ordered_at,
        orders.currency,
        orders.total_amount,
        orders.status,
        order_lines.item_count,
        order_lines.line_count,
        cast(null as string) as store_id,
        orders.shipping_postcode
    from {{ ref('stg_shop__orders') }} as orders
    left join order_lines
        on orders.order_id = order_lines.order_id
),

store as (
    select
        transaction_id as order_id,
        'pos_transactions' as source_table,
        'store' as channel,
        transacted_at as ordered_at,
        currency,
        total_amount,
        'completed' as status,
        cast(item_count as bigint) as item_count,
        cast(null as bigint) as line_count,
        store_id,
        cast(null as string) as shipping_postcode
    from {{ ref('stg_store__pos_transactions') }}
),

orders as (
    select * from online
    union all
    select * from store
),

attributed as (
    select
        orders.order_id,
        identity_map.customer_id,
        orders.source_table,
        orders.channel,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.currency,
        orders.total_amount,
        orders.status,
        orders.item_count,
        orders.line_count,
        orders.store_id,
        orders.shipping_postcode
    from orders
    left join identity_map
        on orders.source_table = identity_map.source_table
        and orders.order_id = identity_map.source_record_id
)

select * from attributed
