with source as (
    select * from {{ source('social', 'social_mentions') }}
),

renamed as (
    select
        mention_id,
        lower(platform) as platform,
        lower(trim(handle)) as handle,
        nullif(trim(text), '') as mention_text,
        nullif(lower(trim(linked_email)), '') as linked_email,
        posted_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
