{#- dbt-spark's Delta MERGE, plus deletes for the models that need them.

    A model whose incremental result must also remove rows sets
    `meta: {merge_delete_flag: <column>}`: a boolean column of the result, true for a key whose
    row must go. The MERGE (one Delta transaction) deletes the matched rows of flagged keys,
    updates the others and never inserts a flagged row; the flag column is not written. Such a
    model sets on_schema_change 'ignore' (dbt would count the flag as a new column): this macro
    refuses a result whose other columns differ from the table's, so a column change still needs
    a --full-refresh. Every other model gets dbt-spark's own merge. -#}
{% macro spark__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) %}
    {%- set delete_flag = (config.get('meta') or {}).get('merge_delete_flag') -%}
    {%- if not delete_flag -%}
        {{ return(dbt.spark__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates)) }}
    {%- endif -%}
    {%- if not unique_key or unique_key is not string -%}
        {% do exceptions.raise_compiler_error("merge_delete_flag needs one unique_key column, got: " ~ unique_key) %}
    {%- endif -%}

    {%- set target_columns = adapter.get_columns_in_relation(target) | map(attribute='name') | list -%}
    {%- set source_columns = adapter.get_columns_in_relation(source) | map(attribute='name')
        | reject('equalto', delete_flag) | list -%}
    {%- if (target_columns | sort) != (source_columns | sort) -%}
        {% do exceptions.raise_compiler_error(
            "The columns of " ~ target ~ " changed (table: " ~ (target_columns | join(', ')) ~ "; model: "
            ~ (source_columns | join(', ')) ~ "). Rebuild it: dbt build --full-refresh --select " ~ target.identifier) %}
    {%- endif -%}
    {%- set predicates = [] if incremental_predicates is none else [] + incremental_predicates -%}
    {%- do predicates.append('DBT_INTERNAL_SOURCE.' ~ unique_key ~ ' = DBT_INTERNAL_DEST.' ~ unique_key) -%}

    merge into {{ target }} as DBT_INTERNAL_DEST
        using {{ source }} as DBT_INTERNAL_SOURCE
        on {{ predicates | join(' and ') }}
        when matched and DBT_INTERNAL_SOURCE.{{ delete_flag }} then delete
        when matched then update set
        {%- for column in target_columns %}
            {{ column }} = DBT_INTERNAL_SOURCE.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
        when not matched and not DBT_INTERNAL_SOURCE.{{ delete_flag }} then insert ({{ target_columns | join(', ') }})
            values ({% for column in target_columns %}DBT_INTERNAL_SOURCE.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
{% endmacro %}
