with source as (
    select * from {{ source('identity', 'customer_id_lineage') }}
),

renamed as (
    select
        customer_id,
        current_customer_id
    from source
)

select * from renamed
