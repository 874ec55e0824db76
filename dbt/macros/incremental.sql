{#- For an incremental model: the rows of `rows_cte` ingested after the newest ingested_at the
    model already holds for their source_table (all rows of a source it has never seen).
    `columns` (a list) selects and orders columns; default all of them. -#}
{% macro rows_arrived_since_last_run(rows_cte, columns=none) -%}
    select
        {%- if columns %} {% for column in columns %}{{ rows_cte }}.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
        {%- else %} {{ rows_cte }}.*{% endif %}
    from {{ rows_cte }}
    left join (
        select source_table, max(ingested_at) as ingested_at
        from {{ this }}
        group by source_table
    ) as watermarks
        on {{ rows_cte }}.source_table = watermarks.source_table
    where watermarks.ingested_at is null
        or {{ rows_cte }}.ingested_at > watermarks.ingested_at
{%- endmacro %}
