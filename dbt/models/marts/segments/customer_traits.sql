{#- Behavioural traits per customer, as of var('traits_as_of') (default: the newest touchpoint
    in the data, so a re-run over the same data gives the same traits).

    RFM: recency (days since the last completed purchase, online or in store), frequency
    (completed purchases), monetary (their total). Each is scored 1-5 by percentile among
    customers with a purchase: score = 1 + floor(5 x percent_rank), capped at 5, so equal
    values always get equal scores (5 = most recent / most frequent / highest spend).
    Churn risk and predicted value come from the Spark MLlib job (stg_ml__customer_scores; null
    for customers without a purchase). Social sentiment averages the lexicon scores of the
    customer's social mentions (int_social_mentions_scored). Preferences are the most frequent value among the customer's touchpoints (ties: the value
    seen last, then alphabetical). -#}
with customers as (
    select customer_id from {{ ref('dim_customers') }}
),

touchpoints as (
    select * from {{ ref('fct_customer_touchpoints') }}
    where customer_id is not null
),

as_of as (
    {%- if var('traits_as_of', none) %}
    select cast('{{ var("traits_as_of") }}' as date) as as_of_date
    {%- else %}
    select cast(max(occurred_at) as date) as as_of_date
    from touchpoints
    {%- endif %}
),

purchases as (
    select * from {{ ref('fct_orders') }}
    where status = 'completed' and customer_id is not null
),

purchase_stats as (
    select
        purchases.customer_id,
        datediff(max(as_of.as_of_date), max(purchases.order_date)) as recency_days,
        count(*) as frequency,
        cast(sum(purchases.total_amount) as decimal(14, 2)) as monetary,
        cast(avg(purchases.total_amount) as decimal(14, 2)) as average_order_value,
        min(purchases.order_date) as first_purchase_on,
        max(purchases.ordered_at) as last_purchase_at
    from purchases
    cross join as_of
    group by purchases.customer_id
),

rfm as (
    select
        *,
        least(5, 1 + floor(5 * percent_rank() over (order by recency_days desc))) as recency_score,
        least(5, 1 + floor(5 * percent_rank() over (order by frequency))) as frequency_score,
        least(5, 1 + floor(5 * percent_rank() over (order by monetary))) as monetary_score
    from purchase_stats
),

{%- set preferences = {
    "preferred_channel": "channel",
    "preferred_device": "case when device_type not in ('unknown', 'in_store') then device_type end",
    "most_engaged_day_of_week": "date_format(occurred_at, 'EEEE')",
    "most_engaged_hour": "hour(occurred_at)",
} %}
{% for trait, expression in preferences.items() %}
{{ trait }} as (
    select customer_id, value as {{ trait }}
    from (
        select
            customer_id,
            value,
            row_number() over (
                partition by customer_id order by count(*) desc, max(occurred_at) desc, value
            ) as preference_rank
        from (select customer_id, occurred_at, {{ expression }} as value from touchpoints)
        where value is not null
        group by customer_id, value
    )
    where preference_rank = 1
),
{% endfor %}

carts as (
    select customer_id, max(occurred_at) as last_cart_add_at
    from touchpoints
    where touchpoint_type = 'add_to_cart'
    group by customer_id
),

category_affinity as (
    select customer_id, product_category as top_product_category
    from (
        select
            purchases.customer_id,
            lines.product_category,
            row_number() over (
                partition by purchases.customer_id
                order by sum(lines.line_amount * purchases.exchange_rate) desc, lines.product_category
            ) as affinity_rank
        from purchases
        inner join {{ ref('stg_shop__order_lines') }} as lines
            on purchases.order_id = lines.order_id
        group by purchases.customer_id, lines.product_category
    )
    where affinity_rank = 1
),

surveys as (
    select
        identity_map.customer_id,
        responses.*
    from {{ ref('stg_surveys__responses') }} as responses
    inner join {{ ref('int_identity_map_resolved') }} as identity_map
        on identity_map.source_table = 'survey_responses'
        and responses.response_id = identity_map.source_record_id
),

survey_stats as (
    select
        customer_id,
        max_by(
            case when survey_type = 'NPS' then nps_category end,
            case when survey_type = 'NPS' then submitted_at end
        ) as latest_nps_category,
        max(case when survey_type = 'NPS' then submitted_at end) as latest_nps_at,
        avg(case when survey_type = 'CSAT' then score end) as average_csat,
        avg(case when survey_type = 'CES' then score end) as average_ces
    from surveys
    group by customer_id
),

tickets as (
    select
        identity_map.customer_id,
        count(*) as support_ticket_count,
        avg(tickets.resolution_hours) as average_resolution_hours
    from {{ ref('stg_support__tickets') }} as tickets
    inner join {{ ref('int_identity_map_resolved') }} as identity_map
        on identity_map.source_table = 'support_tickets'
        and tickets.ticket_id = identity_map.source_record_id
    group by identity_map.customer_id
),

social as (
    select
        touchpoints.customer_id,
        count(*) as social_mention_count,
        avg(mentions.sentiment_score) as average_social_sentiment
    from touchpoints
    inner join {{ ref('int_social_mentions_scored') }} as mentions
        on touchpoints.touchpoint_id = concat('social_mentions:', mentions.mention_id)
    group by touchpoints.customer_id
),

scores as (
    select * from {{ ref('stg_ml__customer_scores') }}
),

traits as (
    select
        customers.customer_id,
        (select as_of.as_of_date from as_of) as traits_as_of,
        rfm.recency_days,
        coalesce(rfm.frequency, 0) as purchase_count,
        coalesce(rfm.monetary, cast(0 as decimal(14, 2))) as lifetime_value_to_date,
        rfm.average_order_value,
        cast(rfm.recency_score as int) as recency_score,
        cast(rfm.frequency_score as int) as frequency_score,
        cast(rfm.monetary_score as int) as monetary_score,
        concat(rfm.recency_score, rfm.frequency_score, rfm.monetary_score) as rfm_cell,
        rfm.first_purchase_on,
        rfm.last_purchase_at,
        carts.last_cart_add_at,
        {%- for trait in preferences %}
        {{ trait }}.{{ trait }},
        {%- endfor %}
        category_affinity.top_product_category,
        survey_stats.latest_nps_category,
        survey_stats.latest_nps_at,
        survey_stats.average_csat,
        survey_stats.average_ces,
        coalesce(tickets.support_ticket_count, 0) as support_ticket_count,
        tickets.average_resolution_hours,
        coalesce(social.social_mention_count, 0) as social_mention_count,
        social.average_social_sentiment,
        case
            when social.average_social_sentiment > 0 then 'positive'
            when social.average_social_sentiment < 0 then 'negative'
            when social.average_social_sentiment = 0 then 'neutral'
        end as social_sentiment,
        scores.churn_risk,
        scores.predicted_value,
        scores.horizon_days as prediction_horizon_days,
        coalesce(rfm.monetary, cast(0 as decimal(14, 2))) + scores.predicted_value as predicted_lifetime_value
    from customers
    left join rfm on customers.customer_id = rfm.customer_id
    {%- for trait in preferences %}
    left join {{ trait }} on customers.customer_id = {{ trait }}.customer_id
    {%- endfor %}
    left join carts on customers.customer_id = carts.customer_id
    left join category_affinity on customers.customer_id = category_affinity.customer_id
    left join survey_stats on customers.customer_id = survey_stats.customer_id
    left join tickets on customers.customer_id = tickets.customer_id
    left join social on customers.customer_id = social.customer_id
    left join scores on customers.customer_id = scores.customer_id
)

select * from traits
