{#- Journeys: each person's touchpoints (the customer's, or an anonymous visitor's not attributed
    to anybody yet) cut into journeys and sessions, one row per step.

    A journey ends after a purchase (the next non-purchase step opens a new one: retention and
    advocacy after a purchase are a journey of their own) or after var('journey_gap_days')
    without a touchpoint. A session is a run of steps less than var('journey_session_gap_minutes')
    apart, whatever the channel: an email click that brings the customer back to the site
    continues the session. Each step has the stage of its touchpoint type (vars.journey_stages);
    the journey's stage is the furthest one it reached. A channel hop is a step on another
    channel than the step before. Time to convert runs from the first step to the first purchase
    step; the drop-off step is the last step of a journey without a purchase.

    Incremental (Delta MERGE on touchpoint_id). A journey depends on all its person's steps, so a
    run recomputes every step of the persons whose touchpoints changed since the last run: a new
    touchpoint, one attributed to another person (identity merged, stitched or re-assigned it)
    or no longer anybody's. Both the person it left and the one it joined are recomputed; a step
    no longer anybody's is deleted (merge_delete_flag, macros/merge.sql). Every other person's
    steps stay as they are. A full refresh computes the same table from scratch. -#}
{% set step_columns = ['touchpoint_id', 'customer_id', 'anonymous_id', 'occurred_at', 'channel',
                       'touchpoint_type', 'device_type'] %}
{% set journey_actor = "coalesce(customer_id, concat('anonymous:', anonymous_id))" %}
with touchpoints_of_people as (
    select {{ step_columns | join(', ') }}, {{ journey_actor }} as journey_actor
    from {{ ref('fct_customer_touchpoints') }}
    where customer_id is not null or anonymous_id is not null
),

{% if is_incremental() %}
previous_steps as (
    select {{ step_columns | join(', ') }}, {{ journey_actor }} as journey_actor
    from {{ this }}
),

changed_steps as (
    {#- Steps that are new, changed person or detail, or are nobody's any more. -#}
    select
        coalesce(current_steps.touchpoint_id, previous_steps.touchpoint_id) as touchpoint_id,
        current_steps.journey_actor as current_actor,
        previous_steps.journey_actor as previous_actor
    from touchpoints_of_people as current_steps
    full outer join previous_steps
        on current_steps.touchpoint_id = previous_steps.touchpoint_id
    where current_steps.touchpoint_id is null
        or previous_steps.touchpoint_id is null
        {%- for column in step_columns if column != 'touchpoint_id' %}
        or not (current_steps.{{ column }} <=> previous_steps.{{ column }})
        {%- endfor %}
),

changed_actors as (
    select current_actor as journey_actor from changed_steps where current_actor is not null
    union
    select previous_actor as journey_actor from changed_steps where previous_actor is not null
),

touchpoints as (
    select touchpoints_of_people.*
    from touchpoints_of_people
    left semi join changed_actors
        on touchpoints_of_people.journey_actor = changed_actors.journey_actor
),
{% else %}
touchpoints as (
    select * from touchpoints_of_people
),
{% endif %}

steps as (
    select
        touchpoint_id,
        customer_id,
        anonymous_id,
        journey_actor,
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
            when unix_timestamp(occurred_at) - unix_timestamp(previous_occurred_at)
                > {{ var('journey_gap_days') }} * 86400 then 1
            when previous_stage = 'purchase' and coalesce(step_stage, '') <> 'purchase' then 1
            else 0
        end as starts_journey,
        case
            when previous_occurred_at is null then 1
            when unix_timestamp(occurred_at) - unix_timestamp(previous_occurred_at)
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

{% if is_incremental() %}
{#- Plus the steps of touchpoints nobody is attributed to any more, as they are: the merge deletes them. #}
select *, false as _dbt_delete from journey_steps
union all
select previous_journeys.*, true as _dbt_delete
from {{ this }} as previous_journeys
left semi join changed_steps
    on previous_journeys.touchpoint_id = changed_steps.touchpoint_id
    and changed_steps.current_actor is null
{% else %}
select * from journey_steps
{% endif %}
