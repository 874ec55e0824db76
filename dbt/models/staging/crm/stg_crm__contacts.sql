with source as (
    select * from {{ source('crm', 'crm_contacts') }}
),

renamed as (
    select
        contact_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(city), '') as city,
        upper(nullif(trim(country), '')) as country,
        created_at,
        updated_at,
        _batch_id as ingestion_batch_id
    from source
)

select * from renamed
