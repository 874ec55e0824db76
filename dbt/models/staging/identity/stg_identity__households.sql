with source as (
    select * from {{ source('identity', 'households') }}
),

renamed as (
    select
        household_id,
        address_line,
        address_unit,
        postcode,
        members as member_count,
        vendor_record_ids
    from source
)

select * from renamed
