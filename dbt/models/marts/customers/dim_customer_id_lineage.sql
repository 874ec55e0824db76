{#- Every customer id identity resolution ever issued -> the id that carries its records now.
    Follow a stored id (in an export, a CRM, a saved list) to today's customer with one join;
    current_customer_id is null when the customer's records are all gone. -#}
with lineage as (
    select * from {{ ref('stg_identity__customer_id_lineage') }}
),

resolved as (
    select
        customer_id,
        current_customer_id,
        case
            when current_customer_id is null then 'removed'
            when current_customer_id = customer_id then 'current'
            else 'retired'
        end as id_status
    from lineage
)

select * from resolved
