{#- The order of a customer's consent events for one purpose: by time, and at one instant the
    grant before the withdrawal (so the withdrawal is what holds), then by event id. -#}
{% macro consent_event_order() -%}
    occurred_at, case when status = 'withdrawn' then 1 else 0 end, event_id
{%- endmacro %}
