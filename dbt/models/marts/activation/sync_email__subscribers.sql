{#- The newsletter audience for the email platform (activation/email_subscribers, mirror mode):
    every customer with an email, tagged with their segments. Only subscribed, deliverable
    addresses are sent; the others carry the reason and are removed from the platform. -#}
with customers as (
    select * from {{ ref('dim_customers') }}
),

segments as (
    select * from {{ ref('int_customer_segment_lists') }}
),

subscribers as (
    select
        customers.customer_id,
        customers.email,
        customers.first_name,
        customers.last_name,
        coalesce(segments.segment_names, array()) as segment_names,
        {{ activation_suppression_reason('email') }} as suppression_reason
    from customers
    left join segments on customers.customer_id = segments.customer_id
    where customers.email is not null
)

select * from subscribers
