with source as (
    select * from {{ source('ml', 'customer_scores') }}
),

renamed as (
    select
        customer_id,
        churn_risk,
        predicted_value,
        horizon_days,
        scored_as_of
    from source
)

select * from renamed
