{#- Single customer view, one row per current customer id: the golden record chosen by the
    survivorship rules (vars.survivorship in dbt_project.yml), the source each attribute came
    from, email consent, household, demographics and order totals. -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

attributes as (
    select * from {{ ref('int_customer_attributes_survived') }}
),

subscriptions as (
    select * from {{ ref('int_customer_email_subscriptions') }}
),

order_stats as (
    select * from {{ ref('int_customer_orders_aggregated') }}
),

postal_codes as (
    select * from {{ ref('stg_reference__postal_codes') }}
),

household_members as (
    select * from {{ ref('stg_identity__household_members') }}
),

lineage as (
    select * from {{ ref('stg_identity__customer_id_lineage') }}
),

demographics as (
    {#- The newest vendor record matched to the customer by hashed email. -#}
    select customer_id, age_band, household_income_band
    from (
        select
            identity_map.customer_id,
            vendor.age_band,
            vendor.household_income_band,
            row_number() over (
                partition by identity_map.customer_id order by vendor.delivered_on desc, vendor.vendor_record_id asc
            ) as recency_rank
        from {{ ref('stg_vendor__demographics') }} as vendor
        inner join identity_map
            on identity_map.source_table = 'enrichment_demographics'
            and vendor.vendor_record_id = identity_map.source_record_id
    )
    where recency_rank = 1
),

customers as (
    select
        customer_id,
        count(*) as source_record_count,
        count_if(source_table = 'crm_contacts') as crm_contact_count,
        sort_array(collect_set(source_table)) as source_tables
    from identity_map
    group by customer_id
),

retired_ids as (
    select current_customer_id as customer_id, sort_array(collect_list(customer_id)) as retired_customer_ids
    from lineage
    where current_customer_id is not null and customer_id <> current_customer_id
    group by current_customer_id
),

places as (
    {#- City, region and country from the postal-code reference where the record lacks them. -#}
    select
        country,
        postcode,
        city,
        region,
        row_number() over (partition by postcode order by country) as country_rank
    from postal_codes
),

golden as (
    select
        customers.customer_id,
        attributes.email,
        attributes.email_source,
        attributes.email_observed_at,
        attributes.first_name,
        attributes.last_name,
        attributes.name_source,
        attributes.phone,
        attributes.phone_source,
        attributes.birth_date,
        attributes.birth_date_source,
        attributes.street,
        coalesce(attributes.city, places.city) as city,
        places.region,
        attributes.postcode,
        coalesce(attributes.country, places.country) as country,
        attributes.address_source,
        attributes.address_observed_at,
        coalesce(subscriptions.email_subscription_status, 'unknown') as email_subscription_status,
        subscriptions.email_subscription_changed_at,
        coalesce(subscriptions.email_deliverable, true) as email_deliverable,
        household_members.household_id,
        household_members.relationship as household_relationship,
        demographics.age_band,
        demographics.household_income_band,
        customers.source_tables,
        customers.source_record_count,
        customers.crm_contact_count,
        coalesce(retired_ids.retired_customer_ids, array()) as retired_customer_ids,
        coalesce(order_stats.order_count, 0) as order_count,
        coalesce(order_stats.total_spend, cast(0 as decimal(14, 2))) as total_spend,
        order_stats.first_order_at,
        order_stats.last_order_at
    from customers
    left join attributes
        on customers.customer_id = attributes.customer_id
    left join subscriptions
        on customers.customer_id = subscriptions.customer_id
    left join order_stats
        on customers.customer_id = order_stats.customer_id
    left join household_members
        on customers.customer_id = household_members.customer_id
    left join demographics
        on customers.customer_id = demographics.customer_id
    left join retired_ids
        on customers.customer_id = retired_ids.customer_id
    left join places
        on attributes.postcode = places.postcode
        and (attributes.country = places.country or (attributes.country is null and places.country_rank = 1))
)

select * from golden
