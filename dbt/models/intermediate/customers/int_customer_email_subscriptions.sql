{#- Email marketing consent and deliverability per customer. The consent is the ledger's
    (int_customer_consent_latest, purpose email_marketing: the consent platform's events and the
    email platform's list membership and unsubscribes, newest wins): subscribed when granted,
    unsubscribed when withdrawn, unknown without a signal. A hard bounce after the last open or
    click makes the address undeliverable whatever the consent. -#}

with events as (
    select * from {{ ref('stg_email__events') }}
),

emails as (
    select * from {{ ref('int_emails_attributed') }}
),

email_consent as (
    select * from {{ ref('int_customer_consent_latest') }}
    where purpose = 'email_marketing'
),

engagement as (
    select
        emails.customer_id,
        max(case when events.event_type in ('open', 'click') then events.occurred_at end) as last_engaged_at,
        max(case when events.event_type = 'bounce' then events.occurred_at end) as last_bounced_at
    from events
    inner join emails
        on events.email_standardised = emails.email_standardised
    group by emails.customer_id
),

subscriptions as (
    select
        coalesce(email_consent.customer_id, engagement.customer_id) as customer_id,
        case email_consent.status
            when 'granted' then 'subscribed'
            when 'withdrawn' then 'unsubscribed'
            else 'unknown'
        end as email_subscription_status,
        email_consent.occurred_at as email_subscription_changed_at,
        engagement.last_bounced_at is null
        or (engagement.last_engaged_at is not null and engagement.last_bounced_at <= engagement.last_engaged_at)
            as email_deliverable
    from email_consent
    full outer join engagement
        on email_consent.customer_id = engagement.customer_id
)

select * from subscriptions
