{#- Golden record, one row per customer. Survivorship (skeleton; #5 declares it per attribute):
    name, phone and location from the most recently updated CRM contact; email from that
    contact, else the normalised email identity resolution matched on. -#}
with identity_map as (
    select * from {{ ref('stg_identity__identity_map') }}
),

contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

order_stats as (
    select * from {{ ref('int_customer_orders_aggregated') }}
),

customers as (
    select
        customer_id,
        count(*) as source_record_count,
        count_if(source_table = 'crm_contacts') as crm_contact_count,
        max(email_normalised) as matched_email
    from identity_map
    group by customer_id
),

contacts_ranked as (
    select
        identity_map.customer_id,
        contacts.*,
        row_number() over (
            partition by identity_map.customer_id
            order by contacts.updated_at desc, contacts.contact_id desc
        ) as recency_rank
    from contacts
    inner join identity_map
        on identity_map.source_table = 'crm_contacts'
        and contacts.contact_id = identity_map.source_record_id
),

latest_contact as (
    select * from contacts_ranked where recency_rank = 1
),

golden as (
    select
        customers.customer_id,
        coalesce(latest_contact.email, customers.matched_email) as email,
        case when latest_contact.email is not null then 'crm_contacts' else 'shop_orders' end as email_source,
        latest_contact.first_name,
        latest_contact.last_name,
        latest_contact.phone,
        latest_contact.city,
        latest_contact.country,
        latest_contact.contact_id as crm_contact_id,
        customers.crm_contact_count,
        customers.source_record_count,
        coalesce(order_stats.order_count, 0) as order_count,
        coalesce(order_stats.total_spend, cast(0 as decimal(14, 2))) as total_spend,
        order_stats.first_order_at,
        order_stats.last_order_at
    from customers
    left join latest_contact
        on customers.customer_id = latest_contact.customer_id
    left join order_stats
        on customers.customer_id = order_stats.customer_id
)

select * from golden
