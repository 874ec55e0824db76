{#- The combination of `columns` is unique (dbt_utils' unique_combination_of_columns, without
    the package download). -#}
{% test unique_combination_of_columns(model, columns) %}
with grouped as (
    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ columns | join(', ') }}
)

select * from grouped where n > 1
{% endtest %}
