{#- Segments are declared in dbt_project.yml (vars.segments: name, description, rule); these
    macros turn the declarations into SQL, so adding a segment is configuration, not code. -#}

{% macro declared_segments() %}
    {%- set segments = var('segments', []) -%}
    {%- set seen = [] -%}
    {%- for segment in segments -%}
        {%- set name = segment.get('name') if segment is mapping else none -%}
        {%- if not name or not modules.re.match('^[a-z][a-z0-9_]*$', name) -%}
            {{ exceptions.raise_compiler_error("vars.segments[" ~ loop.index0 ~ "]: a segment needs a snake_case name, got " ~ segment) }}
        {%- endif -%}
        {%- if name in seen -%}
            {{ exceptions.raise_compiler_error("vars.segments: segment '" ~ name ~ "' is declared twice") }}
        {%- endif -%}
        {%- if not segment.get('rule') or not segment.get('description') -%}
            {{ exceptions.raise_compiler_error("vars.segments: segment '" ~ name ~ "' needs a description and a rule") }}
        {%- endif -%}
        {%- do seen.append(name) -%}
    {%- endfor -%}
    {{ return(segments) }}
{% endmacro %}


{% macro segment_memberships(inputs) %}
    {#- One row per (customer, segment) whose rule the customer meets. -#}
    {%- for segment in declared_segments() %}
    select customer_id, '{{ segment.name }}' as segment_name
    from {{ inputs }}
    where ({{ segment.rule }})
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{% endmacro %}


{% macro segment_definitions() %}
    {#- The declarations as rows: segment_name, description, rule. -#}
    {%- for segment in declared_segments() %}
    select
        '{{ segment.name }}' as segment_name,
        {{ spark_string_literal(segment.description | trim) }} as description,
        {{ spark_string_literal(segment.rule | trim) }} as rule
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{% endmacro %}


{% macro spark_string_literal(value) -%}
    {#- A Spark SQL string literal of any text (quotes and backslashes escaped). -#}
    '{{ value | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}


{% macro next_best_action_case(field) %}
    {#- The first declared next best action (vars.next_best_actions) whose rule holds: its
        `field` (action, channel, description or priority), else null. -#}
    case
    {%- for rule in var('next_best_actions') %}
        when ({{ rule.rule }}) then
        {%- if field == 'priority' %} {{ loop.index }}
        {%- else %} {{ spark_string_literal(rule[field] | trim) }}
        {%- endif %}
    {%- endfor %}
    end
{% endmacro %}
