with source as (
    select * from {{ source('identity', 'identity_map') }}
),

renamed as (
    select
        source_table,
        source_record_id,
        customer_id,
        match_rule,
        email_normalised,
        phone_e164
    from source
)

select * from renamed
