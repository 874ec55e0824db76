{#- NPS, CSAT and CES by month, overall and by segment (current membership), journey entry
    channel, journey stage and survey touchpoint (relationship, post_purchase, support). NPS =
    % promoters - % detractors of the NPS answers; CSAT (1-5) and CES (1-7) are means. A
    response counts in every segment of its customer. -#}
with responses as (
    select
        responses.response_id,
        responses.survey_type,
        responses.score,
        responses.nps_category,
        responses.touchpoint as survey_touchpoint,
        date_trunc('month', responses.submitted_at) as period_month,
        identity_map.customer_id
    from {{ ref('stg_surveys__responses') }} as responses
    left join {{ ref('int_identity_map_resolved') }} as identity_map
        on identity_map.source_table = 'survey_responses'
        and responses.response_id = identity_map.source_record_id
),

journeys as (
    select touchpoints.source_record_id, journey.entry_channel, journey.journey_stage
    from {{ ref('fct_customer_journey') }} as journey
    inner join {{ ref('fct_customer_touchpoints') }} as touchpoints
        on journey.touchpoint_id = touchpoints.touchpoint_id
    where touchpoints.source_table = 'survey_responses'
),

segments as (
    select * from {{ ref('customer_segments') }}
),

dimensioned as (
    select responses.*, 'all' as dimension, 'all' as dimension_value
    from responses
    union all
    select responses.*, 'segment', segments.segment_name
    from responses
    inner join segments on responses.customer_id = segments.customer_id
    union all
    select responses.*, 'channel', coalesce(journeys.entry_channel, 'unknown')
    from responses
    left join journeys on responses.response_id = journeys.source_record_id
    union all
    select responses.*, 'journey_stage', coalesce(journeys.journey_stage, 'unknown')
    from responses
    left join journeys on responses.response_id = journeys.source_record_id
    union all
    select responses.*, 'survey_touchpoint', survey_touchpoint
    from responses
),

metrics as (
    select
        cast(period_month as date) as period_month,
        dimension,
        dimension_value,
        count(case when survey_type = 'NPS' then 1 end) as nps_responses,
        round(100.0 * (
            count(case when nps_category = 'promoter' then 1 end)
            - count(case when nps_category = 'detractor' then 1 end)
        )
        / nullif(count(case when survey_type = 'NPS' then 1 end), 0), 1) as nps,
        count(case when survey_type = 'CSAT' then 1 end) as csat_responses,
        round(avg(case when survey_type = 'CSAT' then score end), 2) as average_csat,
        count(case when survey_type = 'CES' then 1 end) as ces_responses,
        round(avg(case when survey_type = 'CES' then score end), 2) as average_ces
    from dimensioned
    group by cast(period_month as date), dimension, dimension_value
)

select * from metrics
