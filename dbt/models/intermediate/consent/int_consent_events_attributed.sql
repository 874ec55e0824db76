{#- Every consent signal, attributed to today's customer: the consent platform's events (by CRM
    contact id, else the standardised email, else the phone in E.164; an email or phone shared
    by several customers attributes nothing) and the email platform's own signals for
    email_marketing: the first send to a customer (they were on the platform's list, which
    holds their opt-in) is a grant, every unsubscribe a withdrawal. A bounce is no consent
    signal (it is deliverability: int_customer_email_subscriptions). Events of nobody we know
    are left out. -#}
with consent_events as (
    select * from {{ ref('stg_consent__events') }}
),

email_events as (
    select * from {{ ref('stg_email__events') }}
),

emails as (
    select * from {{ ref('int_emails_attributed') }}
),

identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

contacts as (
    select
        source_record_id as crm_contact_id,
        customer_id
    from identity_map
    where source_table = 'crm_contacts'
),

phones as (
    select
        phone_e164,
        min(customer_id) as customer_id
    from identity_map
    where phone_e164 is not null
    group by phone_e164
    having count(distinct customer_id) = 1
),

from_consent_platforms as (
    select
        consent_events.event_id,
        coalesce(contacts.customer_id, emails.customer_id, phones.customer_id) as customer_id,
        consent_events.purpose,
        consent_events.status,
        coalesce(consent_events.legal_basis, 'consent') as legal_basis,
        consent_events.channel,
        consent_events.source_system,
        consent_events.occurred_at
    from consent_events
    left join contacts
        on consent_events.crm_contact_id = contacts.crm_contact_id
    left join emails
        on consent_events.email_standardised = emails.email_standardised
    left join phones
        on consent_events.phone_e164 = phones.phone_e164
),

email_signals as (
    select
        email_events.event_id,
        emails.customer_id,
        email_events.event_type,
        email_events.occurred_at
    from email_events
    inner join emails
        on email_events.email_standardised = emails.email_standardised
    where email_events.event_type in ('send', 'unsubscribe')
),

first_sends as (
    select
        min_by(event_id, struct(occurred_at, event_id)) as event_id,
        customer_id,
        'email_marketing' as purpose,
        'granted' as status,
        'consent' as legal_basis,
        'email_list' as channel,
        'email_platform' as source_system,
        min(occurred_at) as occurred_at
    from email_signals
    where event_type = 'send'
    group by customer_id
),

unsubscribes as (
    select
        event_id,
        customer_id,
        'email_marketing' as purpose,
        'withdrawn' as status,
        'consent' as legal_basis,
        'email_link' as channel,
        'email_platform' as source_system,
        occurred_at
    from email_signals
    where event_type = 'unsubscribe'
),

unioned as (
    select * from from_consent_platforms
    where customer_id is not null
    union all
    select * from first_sends
    union all
    select * from unsubscribes
)

select * from unioned
