{#- For an incremental model: the rows of `rows_cte` ingested after the newest ingested_at the
    model already holds for their source_table (all rows of a source it has never seen).
    `columns` (a list) selects and orders columns; default all of them.

    The watermarks are read from {{ this }} when the model runs and written into the SQL as
    literals: a constant predicate on ingested_at reaches every bronze scan under the staging
    views, where Delta skips the files of earlier batches by their ingested_at statistics (a
    join to the watermarks would read all of bronze to find the new rows). In a dbt unit test
    {{ this }} is the test's fixture, which only SQL can read: there the watermarks are joined. -#}
{% macro rows_arrived_since_last_run(rows_cte, columns=none) -%}
    {%- set in_unit_test = model.resource_type == 'unit_test' -%}
    {%- set watermarks = {} -%}
    {%- if execute and not in_unit_test -%}
        {%- set result = run_query("select source_table, cast(max(ingested_at) as string) from " ~ this
                                   ~ " group by source_table") -%}
        {%- for row in result.rows -%}
            {%- do watermarks.update({row[0]: row[1]}) -%}
        {%- endfor -%}
    {%- endif %}
    select
        {%- if columns %} {% for column in columns %}{{ rows_cte }}.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
        {%- else %} {{ rows_cte }}.*{% endif %}
    from {{ rows_cte }}
    {%- if in_unit_test %}
    left join (
        select source_table, max(ingested_at) as ingested_at
        from {{ this }}
        group by source_table
    ) as watermarks
        on {{ rows_cte }}.source_table = watermarks.source_table
    where watermarks.ingested_at is null
        or {{ rows_cte }}.ingested_at > watermarks.ingested_at
    {%- else %}
    where
    {%- for source_table, ingested_at in watermarks.items() | sort %}
        ({{ rows_cte }}.source_table = '{{ source_table }}' and {{ rows_cte }}.ingested_at > timestamp'{{ ingested_at }}') or
    {%- endfor %}
        {{ rows_cte }}.source_table not in ('{{ watermarks.keys() | sort | join("', '") }}')
    {%- endif %}
{%- endmacro %}
