{#- The declared segments (vars.segments in dbt_project.yml): name, meaning, rule. -#}
with definitions as (
    {{ segment_definitions() }}
)

select * from definitions
