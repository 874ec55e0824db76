with source as (
    select * from {{ source('vendor', 'enrichment_demographics') }}
),

renamed as (
    select
        vendor_record_id,
        nullif(lower(trim(email_sha256)), '') as email_sha256,
        nullif(trim(street), '') as street,
        nullif(upper(trim(postcode)), '') as postcode,
        age_band,
        nullif(trim(household_income_band), '') as household_income_band,
        is_homeowner,
        children_count,
        delivered_on
    from source
)

select * from renamed
