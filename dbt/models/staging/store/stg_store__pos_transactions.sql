with source as (
    select * from {{ source('store', 'pos_transactions') }}
),

renamed as (
    select
        transaction_id,
        store_id,
        nullif(trim(loyalty_card_id), '') as loyalty_card_id,
        transaction_ts as transacted_at,
        cast(total_amount as decimal(12, 2)) as total_amount,
        upper(currency) as currency,
        lower(payment_method) as payment_method,
        item_count,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
