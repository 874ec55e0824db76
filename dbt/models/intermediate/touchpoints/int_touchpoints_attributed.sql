{#- Every interaction of every source, with the customer it belongs to (null when nobody is
    known). attributed_by says how: identity_map (the record was resolved), login (a web/app
    event of a logged-in CRM contact), anonymous_id (earlier or later activity of a visitor who
    logged in or clicked a tracked email link: stitched), email (the provider's event on an
    address of exactly one customer). -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

anonymous_ids as (
    select * from {{ ref('stg_identity__anonymous_ids') }}
),

emails as (
    select * from {{ ref('int_emails_attributed') }}
),

crm_customers as (
    select source_record_id as crm_contact_id, customer_id
    from identity_map
    where source_table = 'crm_contacts'
),

web as (
    select
        concat('web_events:', events.event_id) as touchpoint_id,
        coalesce(crm_customers.customer_id, anonymous_ids.customer_id) as customer_id,
        case
            when crm_customers.customer_id is not null then 'login'
            when anonymous_ids.customer_id is not null then 'anonymous_id'
        end as attributed_by,
        events.occurred_at,
        events.channel,
        events.event_type as touchpoint_type,
        events.page_url as touchpoint_detail,
        events.device_type,
        events.city,
        events.country,
        events.session_id,
        'web_events' as source_table,
        events.event_id as source_record_id
    from {{ ref('stg_web__events') }} as events
    left join crm_customers
        on events.crm_contact_id = crm_customers.crm_contact_id
    left join anonymous_ids
        on events.anonymous_id = anonymous_ids.anonymous_id
),

email as (
    select
        concat('email_events:', events.event_id) as touchpoint_id,
        emails.customer_id,
        case when emails.customer_id is not null then 'email' end as attributed_by,
        events.occurred_at,
        'email' as channel,
        concat('email_', events.event_type) as touchpoint_type,
        events.campaign_id as touchpoint_detail,
        'unknown' as device_type,
        cast(null as string) as city,
        cast(null as string) as country,
        cast(null as string) as session_id,
        'email_events' as source_table,
        events.event_id as source_record_id
    from {{ ref('stg_email__events') }} as events
    left join emails
        on events.email_standardised = emails.email_standardised
),

resolved_records as (
    {#- Sources whose records identity resolution maps one by one. -#}
    select
        concat('shop_orders:', order_id) as touchpoint_id, 'shop_orders' as source_table, order_id as source_record_id,
        ordered_at as occurred_at, channel, 'order_placed' as touchpoint_type, status as touchpoint_detail,
        case when channel = 'app' then 'mobile' else 'unknown' end as device_type
    from {{ ref('stg_shop__orders') }}
    union all
    select
        concat('pos_transactions:', transaction_id), 'pos_transactions', transaction_id,
        transacted_at, 'store', 'store_purchase', store_id, 'in_store'
    from {{ ref('stg_store__pos_transactions') }}
    union all
    select
        concat('support_tickets:', ticket_id), 'support_tickets', ticket_id,
        created_at, 'support', 'support_ticket', channel, 'unknown'
    from {{ ref('stg_support__tickets') }}
    union all
    select
        concat('survey_responses:', response_id), 'survey_responses', response_id,
        submitted_at, 'survey', concat(lower(survey_type), '_response'), touchpoint, 'unknown'
    from {{ ref('stg_surveys__responses') }}
    union all
    select
        concat('social_mentions:', mention_id), 'social_mentions', mention_id,
        posted_at, 'social', 'social_mention', platform, 'unknown'
    from {{ ref('stg_social__mentions') }}
),

resolved as (
    select
        records.touchpoint_id,
        identity_map.customer_id,
        case when identity_map.customer_id is not null then 'identity_map' end as attributed_by,
        records.occurred_at,
        records.channel,
        records.touchpoint_type,
        records.touchpoint_detail,
        records.device_type,
        cast(null as string) as city,
        cast(null as string) as country,
        cast(null as string) as session_id,
        records.source_table,
        records.source_record_id
    from resolved_records as records
    left join identity_map
        on records.source_table = identity_map.source_table
        and records.source_record_id = identity_map.source_record_id
),

touchpoints as (
    select * from web
    union all select * from email
    union all select * from resolved
)

select * from touchpoints
