with source as (
    select * from {{ source('identity', 'household_members') }}
),

renamed as (
    select
        household_id,
        customer_id,
        relationship
    from source
)

select * from renamed
