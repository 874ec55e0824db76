{#- NPS category by the standard bands: 9-10 promoter, 7-8 passive, 0-6 detractor. -#}
with source as (
    select * from {{ source('surveys', 'survey_responses') }}
),

renamed as (
    select
        response_id,
        upper(survey_type) as survey_type,
        score,
        case
            when upper(survey_type) <> 'NPS' then null
            when score >= 9 then 'promoter'
            when score >= 7 then 'passive'
            else 'detractor'
        end as nps_category,
        nullif(lower(trim(respondent_email)), '') as respondent_email,
        nullif(trim(crm_contact_id), '') as crm_contact_id,
        coalesce(lower(touchpoint), 'unknown') as touchpoint,
        nullif(trim(comment), '') as comment,
        submitted_at,
        _ingested_at as ingested_at  -- when the row (this version of it) reached bronze
    from source
)

select * from renamed
