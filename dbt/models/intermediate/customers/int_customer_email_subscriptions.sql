{#- Email consent per customer from the email provider's events (the only consent signal the
    sources carry today; SMS, phone and ads consent need the consent ledger of the roadmap).
    unsubscribed: the latest subscription event is an unsubscribe; subscribed: the customer is
    on the provider's send list (received a send) and has not unsubscribed since. A hard bounce
    after the last open or click makes the address undeliverable whatever the consent. -#}

with events as (
    select * from {{ ref('stg_email__events') }}
),

emails as (
    select * from {{ ref('int_emails_attributed') }}
),

per_customer as (
    select
        emails.customer_id,
        max(case when events.event_type = 'send' then events.occurred_at end) as last_sent_at,
        max(case when events.event_type = 'unsubscribe' then events.occurred_at end) as unsubscribed_at,
        max(case when events.event_type in ('open', 'click') then events.occurred_at end) as last_engaged_at,
        max(case when events.event_type = 'bounce' then events.occurred_at end) as last_bounced_at
    from events
    inner join emails
        on events.email_standardised = emails.email_standardised
    group by emails.customer_id
),

subscriptions as (
    select
        customer_id,
        case
            when unsubscribed_at is not null then 'unsubscribed'
            when last_sent_at is not null then 'subscribed'
            else 'unknown'
        end as email_subscription_status,
        coalesce(unsubscribed_at, last_sent_at) as email_subscription_changed_at,
        last_bounced_at is null or (last_engaged_at is not null and last_bounced_at <= last_engaged_at)
            as email_deliverable
    from per_customer
)

select * from subscriptions
