with source as (
    select * from {{ source('support', 'support_tickets') }}
),

renamed as (
    select
        ticket_id,
        nullif(trim(crm_contact_id), '') as crm_contact_id,
        nullif(lower(trim(customer_email)), '') as customer_email,
        lower(channel) as channel,
        nullif(lower(trim(category)), '') as category,
        lower(priority) as priority,
        lower(status) as status,
        created_at,
        first_response_at,
        resolved_at,
        (unix_timestamp(resolved_at) - unix_timestamp(created_at)) / 3600.0 as resolution_hours,
        updated_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
