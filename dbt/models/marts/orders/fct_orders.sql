{#- Every purchase, online (shop orders, their newest status) and in store (POS transactions),
    one row per order. customer_id is null for a store purchase without a loyalty card: it is an
    anonymous transaction, not a customer. total_amount is in the reporting currency, converted
    at the rate of the order's date (int_exchange_rates_daily); original_total_amount and
    original_currency are what was paid.

    Incremental (Delta MERGE on order_id). A run processes the orders whose order row or order
    lines were ingested after the newest ingestion the table has seen (per source), and
    the orders already in the table whose customer changed in the identity map since (merges,
    splits) or whose exchange rate changed since (a rate delivered late or corrected): the
    table is read once, each stored order attributed and converted again from its own columns
    and kept when the outcome differs. A full refresh computes the same table from scratch. -#}
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
arrived as (
    {{ rows_arrived_since_last_run('orders') }}
),

stored as (
    {#- The orders the table holds (but those arriving again), in the shape of `orders`, with
        the customer and rate they were given. -#}
    select
        existing.order_id,
        existing.source_table,
        existing.channel,
        existing.ordered_at,
        existing.original_currency as currency,
        existing.original_total_amount as total_amount,
        existing.status,
        existing.item_count,
        existing.line_count,
        existing.store_id,
        existing.shipping_postcode,
        existing.ingested_at,
        false as is_new,
        existing.customer_id as stored_customer_id,
        existing.exchange_rate as stored_exchange_rate,
        existing.exchange_rate_date as stored_exchange_rate_date
    from {{ this }} as existing
    left anti join arrived
        on existing.order_id = arrived.order_id
),

candidates as (
    select
        arrived.*,
        true as is_new,
        cast(null as string) as stored_customer_id,
        cast(null as decimal(18, 8)) as stored_exchange_rate,
        cast(null as date) as stored_exchange_rate_date
    from arrived
    union all
    select * from stored
),
{% else %}
candidates as (
    select *, true as is_new from orders
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
        orders.ingested_at,
        orders.is_new{% if is_incremental() %},
        orders.stored_customer_id,
        orders.stored_exchange_rate,
        orders.stored_exchange_rate_date{% endif %}
    from candidates as orders
    left join identity_map
        on orders.source_table = identity_map.source_table
        and orders.order_id = identity_map.source_record_id
    left join rates
        on orders.currency = rates.currency
        and cast(orders.ordered_at as date) = rates.rate_on
)

select
    order_id, customer_id, source_table, channel, ordered_at, order_date, original_currency,
    original_total_amount, reporting_currency, exchange_rate, exchange_rate_date, total_amount, status,
    item_count, line_count, store_id, shipping_postcode, ingested_at
from attributed
{%- if is_incremental() %}
where
    is_new
    or not (customer_id <=> stored_customer_id)
    or not (exchange_rate <=> stored_exchange_rate)
    or not (exchange_rate_date <=> stored_exchange_rate_date)
{%- endif %}
