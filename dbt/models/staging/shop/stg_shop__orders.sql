with source as (
    select * from {{ source('shop', 'shop_orders') }}
),

renamed as (
    select
        order_id,
        nullif(trim(crm_contact_id), '') as crm_contact_id,
        nullif(lower(trim(customer_email)), '') as customer_email,
        order_ts as ordered_at,
        lower(channel) as channel,
        upper(currency) as currency,
        cast(total_amount as decimal(12, 2)) as total_amount,
        lower(trim(status)) as status,
        nullif(upper(trim(shipping_postcode)), '') as shipping_postcode,
        updated_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
