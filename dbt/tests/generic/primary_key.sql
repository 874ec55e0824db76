{#- The column is the model's grain: never null and never shared by two rows. The same as dbt's
    `unique` and `not_null` together, in one scan instead of two: every grain test recomputes
    its model when that is a view, so at 100,000 customers the second scan cost ~1 s per key. -#}
{% test primary_key(model, column_name) %}
select {{ column_name }} as key_value, count(*) as rows_with_key
from {{ model }}
group by {{ column_name }}
having {{ column_name }} is null or count(*) > 1
{% endtest %}
