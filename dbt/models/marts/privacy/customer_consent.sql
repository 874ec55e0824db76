{#- One row per customer and purpose (vars.consent_purposes): may we use this person's data
    for this purpose, since when, on what basis, said where. The newest consent event wins
    (int_customer_consent_latest); without one, the purpose's default basis decides: opt-in
    purposes (consent) are not_granted, the others granted (legitimate interest, contract) until
    the person withdraws. The sync engine sends a customer only when is_granted for its sync's
    purpose. -#}
with customers as (
    select customer_id from {{ ref('dim_customers') }}
),

purposes as (
    {%- for purpose, basis in var('consent_purposes').items() %}
    select
        '{{ purpose }}' as purpose,
        '{{ basis }}' as default_legal_basis
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

latest as (
    select * from {{ ref('int_customer_consent_latest') }}
),

consent as (
    select
        customers.customer_id,
        purposes.purpose,
        case
            when latest.status is not null then latest.status
            when purposes.default_legal_basis = 'consent' then 'not_granted'
            else 'granted'
        end as consent_status,
        coalesce(latest.status = 'granted', purposes.default_legal_basis <> 'consent') as is_granted,
        coalesce(latest.legal_basis, purposes.default_legal_basis) as legal_basis,
        latest.occurred_at as status_since,
        coalesce(latest.source_system, 'default') as source_system,
        latest.channel,
        latest.event_id as last_event_id
    from customers
    cross join purposes
    left join latest
        on customers.customer_id = latest.customer_id
        and purposes.purpose = latest.purpose
)

select * from consent
