{#- Every consent state a customer had per purpose (SCD type 2), from the attributed events: a
    row per change (an event that repeats the state it finds changes nothing), valid from its
    event until the next change. Events at one instant are ordered with the withdrawal last, as
    in customer_consent, so the current row agrees with it. Rebuilt from the events on every
    run: a late event or a merge of two customers rewrites the history it belongs to. -#}
with events as (
    select * from {{ ref('int_consent_events_attributed') }}
),

ordered as (
    select
        *,
        lag(status) over (partition by customer_id, purpose order by {{ consent_event_order() }}) as previous_status
    from events
),

changes as (
    select * from ordered
    where previous_status is null or previous_status <> status
),

history as (
    select
        customer_id,
        purpose,
        status as consent_status,
        legal_basis,
        source_system,
        channel,
        event_id,
        occurred_at as valid_from,
        lead(occurred_at) over (partition by customer_id, purpose order by {{ consent_event_order() }}) as valid_to
    from changes
)

select
    *,
    valid_to is null as is_current
from history
