with source as (
    select * from {{ source('reference', 'postal_codes') }}
),

renamed as (
    select
        upper(trim(country)) as country,
        upper(trim(postcode)) as postcode,
        city,
        region,
        latitude,
        longitude
    from source
)

select * from renamed
