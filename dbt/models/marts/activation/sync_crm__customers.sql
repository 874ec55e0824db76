{#- Every customer for the CRM (activation/crm_customers): golden record, value and segments.
    Sending customer data to the company's own CRM needs no marketing consent; erased customers
    are suppressed by the sync engine (activation.suppressions). -#}
with customers as (
    select * from {{ ref('dim_customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

segments as (
    select * from {{ ref('int_customer_segment_lists') }}
),

crm_rows as (
    select
        customers.customer_id,
        customers.email,
        customers.first_name,
        customers.last_name,
        customers.phone,
        customers.city,
        customers.country,
        traits.lifetime_value_to_date,
        traits.rfm_cell,
        traits.churn_risk,
        concat_ws(';', segments.segment_names) as segment_names,
        {{ activation_suppression_reason('none') }} as suppression_reason
    from customers
    left join traits on customers.customer_id = traits.customer_id
    left join segments on customers.customer_id = segments.customer_id
)

select * from crm_rows
