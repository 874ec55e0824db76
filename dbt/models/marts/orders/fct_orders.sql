{#- Every purchase, online (shop orders, their newest status) and in store (POS transactions),
    one row per order. customer_id is null for a store purchase without a loyalty card: it is an
    anonymous transaction, not a customer. total_amount is in the reporting currency, converted
    at the rate of the order's date (int_exchange_rates_daily); original_total_amount and
    original_currency are what was paid.

    A table rebuilt by every run, so an order follows its record's customer in the identity map
    (merges, splits) and the rate of its day (a rate delivered late or corrected) at once. -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

rates as (
    select * from {{ ref('int_exchange_rates_daily') }}
),

order_lines as (
    select
        order_id,
        sum(quantity) as item_count,
        count(*) as line_count,
        max(ingested_at) as ingested_at
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
        orders.shipping_postcode,
        greatest(orders.ingested_at, coalesce(order_lines.ingested_at, orders.ingested_at)) as ingested_at
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
        cast(null as string) as shipping_postcode,
        ingested_at
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
        orders.currency as original_currency,
        orders.total_amount as original_total_amount,
        '{{ var("reporting_currency") | upper }}' as reporting_currency,
        {{ reporting_exchange_rate('orders.currency') }} as exchange_rate,
        rates.rate_date as exchange_rate_date,
        {{ to_reporting_currency('orders.total_amount', 'orders.currency') }} as total_amount,
        orders.status,
        orders.item_count,
        orders.line_count,
        orders.store_id,
        orders.shipping_postcode,
        orders.ingested_at
    from orders
    left join identity_map
        on orders.source_table = identity_map.source_table
        and orders.order_id = identity_map.source_record_id
    left join rates
        on orders.currency = rates.currency
        and cast(orders.ordered_at as date) = rates.rate_on
)

select * from attributed
