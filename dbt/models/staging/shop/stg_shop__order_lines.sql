with source as (
    select * from {{ source('shop', 'shop_order_lines') }}
),

renamed as (
    select
        order_id,
        line_number,
        trim(sku) as sku,
        nullif(trim(product_name), '') as product_name,
        coalesce(nullif(lower(trim(category)), ''), 'unknown') as product_category,
        quantity,
        cast(unit_price as decimal(12, 2)) as unit_price,
        cast(quantity * unit_price as decimal(14, 2)) as line_amount,
        order_ts as ordered_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
