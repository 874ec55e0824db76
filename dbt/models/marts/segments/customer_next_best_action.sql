{#- One next best action per customer: the first rule of vars.next_best_actions (in priority
    order) the customer meets, with its channel and why; customers no rule selects have none.
    Email actions require a subscribed, deliverable address (the rules say so). -#}
with profiles as (
    select * from {{ ref('int_customers_profiled') }}
),

memberships as (
    select customer_id, segment_names as segments
    from {{ ref('int_customer_segment_lists') }}
),

inputs as (
    select
        profiles.*,
        coalesce(memberships.segments, array()) as segments
    from profiles
    left join memberships
        on profiles.customer_id = memberships.customer_id
),

actions as (
    select
        customer_id,
        {{ next_best_action_case('action') }} as next_best_action,
        {{ next_best_action_case('channel') }} as action_channel,
        {{ next_best_action_case('description') }} as action_reason,
        {{ next_best_action_case('priority') }} as action_priority,
        traits_as_of as decided_as_of
    from inputs
)

select * from actions
