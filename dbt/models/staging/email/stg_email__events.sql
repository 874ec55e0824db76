{#- email_standardised is the address as identity resolution standardises it, to attribute
    events through silver.identity_map.email_normalised. -#}
with source as (
    select * from {{ source('email', 'email_events') }}
),

renamed as (
    select
        event_id,
        campaign_id,
        nullif(lower(trim(email)), '') as email,
        {{ standardise_email('email') }} as email_standardised,
        lower(event_type) as event_type,
        nullif(trim(link_url), '') as link_url,
        nullif(trim(anonymous_id), '') as anonymous_id,
        event_ts as occurred_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
