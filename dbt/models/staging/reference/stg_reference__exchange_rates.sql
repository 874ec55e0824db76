with source as (
    select * from {{ source('reference', 'exchange_rates') }}
),

renamed as (
    select
        rate_date,
        upper(trim(base_currency)) as base_currency,
        upper(trim(quote_currency)) as quote_currency,
        cast(rate as decimal(18, 8)) as rate
    from source
)

select * from renamed
