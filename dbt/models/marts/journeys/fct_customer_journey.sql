{#- Journeys: each person's touchpoints (the customer's, or an anonymous visitor's not attributed
    to anybody yet) cut into journeys and sessions, one row per step.

    A journey ends after a purchase (the next non-purchase step opens a new one: retention and
    advocacy after a purchase are a journey of their own) or after var('journey_gap_days')
    without a touchpoint. A session is a run of steps less than var('journey_session_gap_minutes')
    apart, whatever the channel: an email click that brings the customer back to the site
    continues the session. Each step has the stage of its touchpoint type (vars.journey_stages);
    the journey's stage is the furthest one it reached. A channel hop is a step on another
    channel than the step before. Time to convert runs from the first step to the first purchase
    step; the drop-off step is the last step of a journey without a purchase. -#}
with touchpoints as (
    select * from {{ ref('fct_customer_touchpoints') }}
    where customer_id is not null or anonymous_id is not null
),

steps as (
    select
        touchpoint_id,
        customer_id,
        anonymous_id,
        coalesce(customer_id, concat('anonymous:', anonymous_id)) as journey_actor,
        occurred_at,
        channel,
        touchpoint_type,
        device_type,
        {{ journey_stage('touchpoint_type') }} as step_stage
    from touchpoints
),

ordered as (
    select
        *,
        lag(occurred_at) over actor_steps as previous_occurred_at,
        lag(step_stage) over actor_steps as previous_stage,
        lag(channel) over actor_steps as previous_channel
    from steps
    window actor_steps as (partition by journey_actor order by occurred_at, touchpoint_id)
),

boundaries as (
    select
        *,
        case
            when previous_occurred_at is null then 1
            when
                unix_timestamp(occurred_at) - unix_timestamp(previous_occurred_at)
                > {{ var('journey_gap_days') }} * 86400 then 1
            when previous_stage = 'purchase' and coalesce(step_stage, '') <> 'purchase' then 1
            else 0
        end as starts_journey,
        case
            when previous_occurred_at is null then 1
            when
                unix_timestamp(occurred_at) - unix_timestamp(previous_occurred_at)
                > {{ var('journey_session_gap_minutes') }} * 60 then 1
            else 0
        end as starts_session
    from ordered
),

journey_numbered as (
    select
        *,
        sum(starts_journey) over (
            partition by journey_actor order by occurred_at, touchpoint_id
            rows between unbounded preceding and current row
        ) as journey_number
    from boundaries
),

step_numbered as (
    select
        *,
        row_number() over journey_steps as step_number,
        sum(greatest(starts_session, starts_journey)) over (
            partition by journey_actor, journey_number order by occurred_at, touchpoint_id
            rows between unbounded preceding and current row
        ) as session_number
    from journey_numbered
    window journey_steps as (partition by journey_actor, journey_number order by occurred_at, touchpoint_id)
),

journeys as (
    select
        journey_actor,
        journey_number,
        min_by(touchpoint_id, step_number) as first_touchpoint_id,
        min(occurred_at) as journey_started_at,
        max(occurred_at) as journey_ended_at,
        count(*) as journey_step_count,
        max(session_number) as journey_session_count,
        min_by(channel, step_number) as entry_channel,
        sum(case when step_number > 1 and channel <> previous_channel then 1 else 0 end) as journey_channel_hops,
        max({{ journey_stage_rank('step_stage') }}) as furthest_stage_rank,
        min(case when step_stage = 'purchase' then occurred_at end) as converted_at,
        max(step_number) as last_step_number
    from step_numbered
    group by journey_actor, journey_number
),

journey_steps as (
    select
        md5(concat(journeys.journey_actor, '|', journeys.first_touchpoint_id)) as journey_id,
        step_numbered.step_number,
        step_numbered.touchpoint_id,
        step_numbered.customer_id,
        step_numbered.anonymous_id,
        step_numbered.occurred_at,
        step_numbered.session_number,
        step_numbered.channel,
        step_numbered.device_type,
        step_numbered.touchpoint_type,
        step_numbered.step_stage,
        case when step_numbered.step_number > 1 then step_numbered.previous_channel end as previous_channel,
        step_numbered.step_number > 1 and step_numbered.channel <> step_numbered.previous_channel as is_channel_hop,
        journeys.journey_started_at,
        journeys.journey_ended_at,
        journeys.journey_step_count,
        journeys.journey_session_count,
        journeys.entry_channel,
        journeys.journey_channel_hops,
        case journeys.furthest_stage_rank
            {%- for stage in var('journey_stages') %}
            when {{ loop.index }} then '{{ stage }}'
            {%- endfor %}
        end as journey_stage,
        journeys.converted_at is not null as is_converted,
        (unix_timestamp(journeys.converted_at) - unix_timestamp(journeys.journey_started_at)) / 3600.0
            as hours_to_convert,
        journeys.converted_at is null and step_numbered.step_number = journeys.last_step_number as is_drop_off_step
    from step_numbered
    inner join journeys
        on step_numbered.journey_actor = journeys.journey_actor
        and step_numbered.journey_number = journeys.journey_number
)

select * from journey_steps
