{#- Every source record -> the customer id that carries it now. identity_map is rewritten by
    each identity run, after customer_id_lineage; should a run stop between the two writes,
    the lineage already knows the successor of an id the map still names. -#}
with identity_map as (
    select * from {{ ref('stg_identity__identity_map') }}
),

lineage as (
    select * from {{ ref('stg_identity__customer_id_lineage') }}
),

resolved as (
    select
        identity_map.source_table,
        identity_map.source_record_id,
        coalesce(lineage.current_customer_id, identity_map.customer_id) as customer_id,
        identity_map.match_rule,
        identity_map.email_normalised,
        identity_map.phone_e164
    from identity_map
    left join lineage
        on identity_map.customer_id = lineage.customer_id
)

select * from resolved
