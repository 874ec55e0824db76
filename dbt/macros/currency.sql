{#- Conversion into the reporting currency (var reporting_currency) with int_exchange_rates_daily
    joined as `rates` on (currency, order date): an amount already in the reporting currency
    keeps rate 1 whatever rates exist; any other gets that day's rate, or null without one. -#}
{% macro reporting_exchange_rate(currency_column, rates='rates') -%}
    case
        when {{ currency_column }} = '{{ var("reporting_currency") | upper }}' then cast(1 as decimal(18, 8))
        else {{ rates }}.exchange_rate
    end
{%- endmacro %}

{#- An amount converted at the rate above, rounded half up to cents. -#}
{% macro to_reporting_currency(amount_column, currency_column, rates='rates') -%}
    cast(round({{ amount_column }} * {{ reporting_exchange_rate(currency_column, rates) }}, 2) as decimal(14, 2))
{%- endmacro %}
