{#- Journey stages are declared in dbt_project.yml (vars.journey_stages: stage -> touchpoint
    types, in funnel order). -#}

{% macro journey_stage(touchpoint_type) %}
    case
    {%- for stage, types in var('journey_stages').items() %}
        when {{ touchpoint_type }} in ({% for t in types %}'{{ t }}'{{ ', ' if not loop.last }}{% endfor %}) then '{{ stage }}'
    {%- endfor %}
    end
{% endmacro %}


{% macro journey_stage_rank(stage) %}
    {#- 1 for the first stage of the funnel, 2 for the next...; 0 for a step without a stage. -#}
    case {{ stage }}
    {%- for name in var('journey_stages') %}
        when '{{ name }}' then {{ loop.index }}
    {%- endfor %}
        else 0
    end
{% endmacro %}
