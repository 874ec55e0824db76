{#- The rate into the reporting currency (var reporting_currency) for every currency and every
    calendar day the published rates cover: the rate published that day, else the last one
    published at most var('exchange_rate_max_age_days') days before (weekends, holidays).

    A published rate says 1 base = rate quote; a currency converts to the reporting currency
    through the base: exchange_rate = rate(base -> reporting) / rate(base -> currency), rounded
    to 8 decimals. The base itself is worth 1 of itself. When the source quotes against several
    bases on a day, the alphabetically first base that quotes both currencies is used. -#}
{%- set reporting = var('reporting_currency') | upper %}
{%- set max_age = var('exchange_rate_max_age_days') | int %}
with published as (
    select rate_date, base_currency, quote_currency, rate
    from {{ ref('stg_reference__exchange_rates') }}
    union
    select distinct rate_date, base_currency, base_currency as quote_currency, cast(1 as decimal(18, 8)) as rate
    from {{ ref('stg_reference__exchange_rates') }}
),

reporting as (
    select rate_date, base_currency, rate as reporting_per_base
    from published
    where quote_currency = '{{ reporting }}'
),

crossed as (
    select
        published.rate_date,
        published.quote_currency as currency,
        cast(reporting.reporting_per_base / published.rate as decimal(18, 8)) as exchange_rate,
        row_number() over (
            partition by published.rate_date, published.quote_currency order by published.base_currency
        ) as base_rank
    from published
    inner join reporting
        on published.rate_date = reporting.rate_date
        and published.base_currency = reporting.base_currency
),

valid as (
    select
        currency,
        rate_date,
        exchange_rate,
        least(
            date_add(rate_date, {{ max_age }}),
            coalesce(
                date_sub(lead(rate_date) over (partition by currency order by rate_date), 1),
                date_add(rate_date, {{ max_age }})
            )
        ) as valid_to
    from crossed
    where base_rank = 1
),

daily as (
    select
        explode(sequence(rate_date, valid_to)) as rate_on,
        currency,
        '{{ reporting }}' as reporting_currency,
        exchange_rate,
        rate_date
    from valid
)

select * from daily
