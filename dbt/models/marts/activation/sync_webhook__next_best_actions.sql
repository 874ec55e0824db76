{#- Each customer's next best action for a webhook consumer (activation/webhook_next_best_actions,
    mirror mode: a customer whose action is gone is sent as a removal). The actions already
    respect channel consent (customer_next_best_action). -#}
with actions as (
    select * from {{ ref('customer_next_best_action') }}
),

webhook_rows as (
    select
        customer_id,
        next_best_action,
        action_channel,
        action_reason,
        action_priority,
        {{ activation_suppression_reason('none') }} as suppression_reason
    from actions
    where next_best_action is not null
)

select * from webhook_rows
