{#- Every purchase, online (shop orders, their newest status) and in store (POS transactions),
    one row per order. customer_id is null for a store purchase without a loyalty card: it is an
    anonymous transaction, not a customer. total_amount is in the reporting currency, converted
    at the rate of the order's date (int_exchange_rates_daily); original_total_amount and
    original_currency are what was paid.

    Incremental (Delta MERGE on order_id). A run processes the orders whose order row or order
    lines were ingested after the newest ingestion the table has seen (per source), and
    the orders already in the table whose customer changed in the identity map since (merges,
    splits) or whose exchange rate changed since (a rate delivered late or corrected). A full
    refresh computes the same table from scratch. -#}
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

{% if is_incremental() %}
reassigned as (
    {#- Orders whose customer in the identity map is no longer the one stored. -#}
    select existing.order_id
    from {{ this }} as existing
    left join identity_map
        on existing.source_table = identity_map.source_table
        and existing.order_id = identity_map.source_record_id
    where not (existing.customer_id <=> identity_map.customer_id)
),

rate_changed as (
    {#- Orders converted at a rate that is no longer the rate of their day. -#}
    select existing.order_id
    from {{ this }} as existing
    left join rates
        on existing.original_currency = rates.currency
        and existing.order_date = rates.rate_on
    where not (existing.exchange_rate <=> {{ reporting_exchange_rate('existing.original_currency') }})
),

candidates as (
    {{ rows_arrived_since_last_run('orders') }}
    union
    select orders.*
    from orders
    left semi join reassigned
        on orders.order_id = reassigned.order_id
    union
    select orders.*
    from orders
    left semi join rate_changed
        on orders.order_id = rate_changed.order_id
),
{% else %}
candidates as (
    select * from orders
),
{% endif %}

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
    from candidates as orders
    left join identity_map
        on orders.source_table = identity_map.source_table
        and orders.order_id = identity_map.source_record_id
    left join rates
        on orders.currency = rates.currency
        and cast(orders.ordered_at as date) = rates.rate_on
)

select * from attributed
