{#- Survivorship: which observation of a customer supplies an attribute group of the golden
    record. The rules are declared in dbt_project.yml (vars.survivorship), one per group:

      <group>:
        columns: [col, ...]      the observation columns that survive together (street, city, ...)
        sources: [table, ...]    the source tables allowed to supply them
        rank_by: [criterion, ...] in order; the first observation wins
          verified         observations whose email is verified first (email_verified)
          most_recent      newest observed_at first
          source_priority  in the order of `sources`
          most_complete    the observation with the most of the group's columns filled first
      Ties always go to the source table, then the smallest source record id, so a re-run
      chooses the same record.

    An observation is a candidate when it comes from an allowed source and at least one of
    the group's columns is not null. -#}

{% macro survivorship_order_by(group, rule) -%}
    {%- for criterion in rule.rank_by -%}
        {%- if criterion == 'verified' -%}
            case when email_verified then 0 else 1 end
        {%- elif criterion == 'most_recent' -%}
            observed_at desc
        {%- elif criterion == 'most_complete' -%}
            ({% for column in rule.columns %}case when {{ column }} is null then 0 else 1 end{{ ' + ' if not loop.last }}{% endfor %}) desc
        {%- elif criterion == 'source_priority' -%}
            case source_table {% for source in rule.sources %}when '{{ source }}' then {{ loop.index }} {% endfor %}end
        {%- else -%}
            {{ exceptions.raise_compiler_error("survivorship rule '" ~ group ~ "': unknown rank_by '" ~ criterion
               ~ "' (expected verified, most_recent, most_complete or source_priority)") }}
        {%- endif -%},
    {% endfor -%}
    source_table, source_record_id
{%- endmacro %}

{% macro survivor_select(observations, group, rule) -%}
    {%- if not rule.columns or not rule.sources or not rule.rank_by -%}
        {{ exceptions.raise_compiler_error("survivorship rule '" ~ group ~ "' needs columns, sources and rank_by") }}
    {%- endif -%}
    select
        customer_id,
        {% for column in rule.columns -%}
        {{ column }},
        {% endfor -%}
        source_table as {{ group }}_source,
        source_record_id as {{ group }}_source_record_id,
        observed_at as {{ group }}_observed_at
    from (
        select
            *,
            row_number() over (
                partition by customer_id
                order by {{ survivorship_order_by(group, rule) }}
            ) as survivor_rank
        from {{ observations }}
        where source_table in ('{{ rule.sources | join("', '") }}')
            and coalesce({{ rule.columns | join(', ') }}) is not null
    )
    where survivor_rank = 1
{%- endmacro %}
