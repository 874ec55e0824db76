with source as (
    select * from {{ source('identity', 'anonymous_ids') }}
),

renamed as (
    select
        anonymous_id,
        customer_id
    from source
)

select * from renamed
