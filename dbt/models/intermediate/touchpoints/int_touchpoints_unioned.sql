{#- Every interaction of every source in one shape, not yet attributed to a customer. Each row
    carries what attributes it (see fct_customer_touchpoints):
    - attribution_key: 'record:<source table>:<id>' for records identity resolution maps one by
      one, 'record:crm_contacts:<id>' for a web/app event of a logged-in CRM contact, and
      'email:<sha-256 of the standardised address>' for the email provider's events;
    - anonymous_id: the web/app visitor, the fallback when the key attributes nobody.
    ingested_at is when the source row (this version of it) reached bronze. -#}
with web as (
    select
        concat('web_events:', event_id) as touchpoint_id,
        occurred_at,
        channel,
        event_type as touchpoint_type,
        page_url as touchpoint_detail,
        device_type,
        city,
        country,
        session_id,
        anonymous_id,
        case when crm_contact_id is not null then concat('record:crm_contacts:', crm_contact_id) end as attribution_key,
        'web_events' as source_table,
        event_id as source_record_id,
        ingested_at
    from {{ ref('stg_web__events') }}
),

email as (
    select
        concat('email_events:', event_id) as touchpoint_id,
        occurred_at,
        'email' as channel,
        concat('email_', event_type) as touchpoint_type,
        campaign_id as touchpoint_detail,
        'unknown' as device_type,
        cast(null as string) as city,
        cast(null as string) as country,
        cast(null as string) as session_id,
        cast(null as string) as anonymous_id,
        concat('email:', sha2(email_standardised, 256)) as attribution_key,
        'email_events' as source_table,
        event_id as source_record_id,
        ingested_at
    from {{ ref('stg_email__events') }}
),

records as (
    {#- Sources whose records identity resolution maps one by one. -#}
    select
        'shop_orders' as source_table, order_id as source_record_id, ordered_at as occurred_at, channel,
        'order_placed' as touchpoint_type, status as touchpoint_detail,
        case when channel = 'app' then 'mobile' else 'unknown' end as device_type, ingested_at
    from {{ ref('stg_shop__orders') }}
    union all
    select
        'pos_transactions', transaction_id, transacted_at, 'store', 'store_purchase', store_id, 'in_store', ingested_at
    from {{ ref('stg_store__pos_transactions') }}
    union all
    select
        'support_tickets', ticket_id, created_at, 'support', 'support_ticket', channel, 'unknown', ingested_at
    from {{ ref('stg_support__tickets') }}
    union all
    select
        'survey_responses', response_id, submitted_at, 'survey', concat(lower(survey_type), '_response'), touchpoint,
        'unknown', ingested_at
    from {{ ref('stg_surveys__responses') }}
    union all
    select
        'social_mentions', mention_id, posted_at, 'social', 'social_mention', platform, 'unknown', ingested_at
    from {{ ref('stg_social__mentions') }}
),

resolved as (
    select
        concat(source_table, ':', source_record_id) as touchpoint_id,
        occurred_at,
        channel,
        touchpoint_type,
        touchpoint_detail,
        device_type,
        cast(null as string) as city,
        cast(null as string) as country,
        cast(null as string) as session_id,
        cast(null as string) as anonymous_id,
        concat('record:', source_table, ':', source_record_id) as attribution_key,
        source_table,
        source_record_id,
        ingested_at
    from records
),

touchpoints as (
    select * from web
    union all
    select * from email
    union all
    select * from resolved
)

select * from touchpoints
