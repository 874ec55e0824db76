{#- The state of each purpose a customer has any consent event for: the newest event wins,
    whatever system it came from; at the same instant a withdrawal wins over a grant, so a
    withdrawal is never overridden by a grant that is not newer. -#}
with events as (
    select * from {{ ref('int_consent_events_attributed') }}
),

ordered as (
    select
        *,
        row_number() over (partition by customer_id, purpose order by {{ consent_event_order() }}) as position,
        count(*) over (partition by customer_id, purpose) as events
    from events
),

latest as (
    select
        customer_id,
        purpose,
        status,
        legal_basis,
        channel,
        source_system,
        occurred_at,
        event_id
    from ordered
    where position = events
)

select * from latest
