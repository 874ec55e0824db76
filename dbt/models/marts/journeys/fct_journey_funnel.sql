{#- The journey funnel by the day a journey started, its entry channel and the stage (vars.
    journey_stages, in funnel order): how many journeys reached the stage (their furthest stage
    is this one or a later one), how many dropped off there (it was their furthest and they did
    not convert), how many of them converted and how fast. -#}
with journey_steps as (
    select * from {{ ref('fct_customer_journey') }}
),

journeys as (
    select
        journey_id,
        cast(journey_started_at as date) as journey_started_on,
        entry_channel,
        journey_stage,
        {{ journey_stage_rank('journey_stage') }} as journey_stage_rank,
        is_converted,
        hours_to_convert
    from journey_steps
    where step_number = 1
),

stages as (
    {%- for stage in var('journey_stages') %}
    select '{{ stage }}' as stage, {{ loop.index }} as stage_rank
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
),

funnel as (
    select
        journeys.journey_started_on,
        journeys.entry_channel,
        stages.stage,
        stages.stage_rank,
        count(*) as journeys_reached,
        sum(case
            when journeys.journey_stage_rank = stages.stage_rank and not journeys.is_converted
                then 1
            else 0
        end) as journeys_dropped_off,
        sum(case when journeys.is_converted then 1 else 0 end) as journeys_converted,
        avg(journeys.hours_to_convert) as average_hours_to_convert
    from journeys
    inner join stages
        on journeys.journey_stage_rank >= stages.stage_rank
    group by journeys.journey_started_on, journeys.entry_channel, stages.stage, stages.stage_rank
)

select * from funnel
