{#- What each source record says about its customer, and when: the candidates the survivorship
    rules (int_customer_attributes_survived) choose from. email_verified: the address showed
    engagement (an open or a click) at the email provider and has not bounced since. phone is
    the E.164 form identity resolution parsed (null when the number does not parse). -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

email_engagement as (
    select
        email_standardised,
        max(case when event_type in ('open', 'click') then occurred_at end) as last_engaged_at,
        max(case when event_type = 'bounce' then occurred_at end) as last_bounced_at
    from {{ ref('stg_email__events') }}
    where email_standardised is not null
    group by email_standardised
),

contacts as (
    select
        'crm_contacts' as source_table, contact_id as source_record_id, updated_at as observed_at,
        email, first_name, last_name, phone, birth_date, street, city, postcode, country
    from {{ ref('stg_crm__contacts') }}
),

{#- Sources that tell us an email (and an order a shipping postcode), nothing else. -#}
{%- set email_sources = [
    {"model": "stg_shop__orders", "table": "shop_orders", "key": "order_id", "at": "ordered_at",
     "email": "customer_email", "postcode": "shipping_postcode"},
    {"model": "stg_support__tickets", "table": "support_tickets", "key": "ticket_id", "at": "created_at",
     "email": "customer_email"},
    {"model": "stg_surveys__responses", "table": "survey_responses", "key": "response_id", "at": "submitted_at",
     "email": "respondent_email"},
    {"model": "stg_social__mentions", "table": "social_mentions", "key": "mention_id", "at": "posted_at",
     "email": "linked_email"},
] %}

observations as (
    select * from contacts
    {%- for email_source in email_sources %}
    union all
    select
        '{{ email_source.table }}' as source_table, {{ email_source.key }} as source_record_id,
        {{ email_source.at }} as observed_at,
        {{ email_source.email }} as email, null as first_name, null as last_name, null as phone,
        cast(null as date) as birth_date,
        null as street,
        null as city,
        {{ email_source.get("postcode", "null") }} as postcode,
        null as country
    from {{ ref(email_source.model) }}
    {%- endfor %}
),

attributed as (
    select
        identity_map.customer_id,
        observations.* except (phone),
        case when observations.phone is not null then identity_map.phone_e164 end as phone,
        coalesce(
            email_engagement.last_engaged_at is not null
            and (
                email_engagement.last_bounced_at is null
                or email_engagement.last_bounced_at < email_engagement.last_engaged_at
            ),
            false
        ) as email_verified
    from observations
    inner join identity_map
        on observations.source_table = identity_map.source_table
        and observations.source_record_id = identity_map.source_record_id
    left join email_engagement
        on identity_map.email_normalised = email_engagement.email_standardised  -- the record's email, standardised
)

select * from attributed
