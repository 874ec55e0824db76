{#- Attribution key (see int_touchpoints_unioned) -> the customer it attributes to today: every
    record identity resolution mapped (ids resolved through the lineage), and every address of
    exactly one customer. Anonymous visitors are looked up in stg_identity__anonymous_ids. -#}
with identity_map as (
    select * from {{ ref('int_identity_map_resolved') }}
),

emails as (
    select * from {{ ref('int_emails_attributed') }}
),

keys as (
    select concat('record:', source_table, ':', source_record_id) as attribution_key, customer_id
    from identity_map
    union all
    select concat('email:', sha2(email_standardised, 256)), customer_id
    from emails
)

select * from keys
