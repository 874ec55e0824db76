{#- platform web/ios/android -> channel web/app. -#}
with source as (
    select * from {{ source('web', 'web_events') }}
),

renamed as (
    select
        event_id,
        anonymous_id,
        nullif(trim(user_id), '') as crm_contact_id,
        session_id,
        lower(event_type) as event_type,
        lower(platform) as platform,
        case when lower(platform) = 'web' then 'web' else 'app' end as channel,
        page_url,
        nullif(trim(referrer), '') as referrer,
        coalesce(lower(device_type), 'unknown') as device_type,
        nullif(trim(ip_city), '') as city,
        upper(nullif(trim(ip_country), '')) as country,
        event_ts as occurred_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
