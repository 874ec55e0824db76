{#- The golden record's person attributes, one row per customer with at least one observation,
    chosen by the survivorship rules of dbt_project.yml (vars.survivorship, macros/survivorship.sql).
    Each group also says which source table and record it came from and when that was observed. -#}

{%- set rules = var('survivorship') %}

with observations as (
    select * from {{ ref('int_customer_observations_unioned') }}
),

customers as (
    select distinct customer_id from observations
),
{% for group, rule in rules.items() %}
{{ group }}_survivor as (
    {{ survivor_select('observations', group, rule) | indent(4) }}
),
{% endfor %}
survived as (
    select
        customers.customer_id
        {%- for group, rule in rules.items() %}
        {%- for column in rule.columns %},
        {{ group }}_survivor.{{ column }}
        {%- endfor %},
        {{ group }}_survivor.{{ group }}_source,
        {{ group }}_survivor.{{ group }}_source_record_id,
        {{ group }}_survivor.{{ group }}_observed_at
        {%- endfor %}
    {#- sqlfluff cannot lay out joins generated in a loop: no layout rule here. #}
    -- noqa: disable=LT02
    from customers
    {%- for group in rules %}
    left join {{ group }}_survivor
        on customers.customer_id = {{ group }}_survivor.customer_id
    {%- endfor %}
    -- noqa: enable=LT02
)

select * from survived
