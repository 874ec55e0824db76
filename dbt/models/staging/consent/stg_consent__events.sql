{#- One row per consent event. email_standardised is the address as identity resolution
    standardises it; phone is matched as delivered (E.164). -#}
with source as (
    select * from {{ source('consent', 'consent_events') }}
),

renamed as (
    select
        event_id,
        {{ standardise_email('email') }} as email_standardised,
        nullif(trim(phone), '') as phone_e164,
        nullif(trim(crm_contact_id), '') as crm_contact_id,
        purpose,
        status,
        legal_basis,
        nullif(trim(channel), '') as channel,
        source_system,
        occurred_at
    from source
)

select * from renamed
