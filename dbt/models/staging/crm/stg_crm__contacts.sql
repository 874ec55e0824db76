{#- Current CRM contacts: bronze keeps the latest change per contact, deletes as tombstones. -#}
with source as (
    select * from {{ source('crm', 'crm_contacts') }}
),

current_contacts as (
    select * from source
    where not _is_deleted
),

renamed as (
    select
        contact_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        birth_date,
        nullif(trim(street), '') as street,
        nullif(trim(city), '') as city,
        nullif(upper(trim(postcode)), '') as postcode,
        upper(nullif(trim(country), '')) as country,
        nullif(trim(loyalty_card_id), '') as loyalty_card_id,
        created_at,
        change_ts as updated_at,
        _batch_id as ingestion_batch_id
    from current_contacts
)

select * from renamed
