{#- Why a customer must not be sent to a channel, or null when they may be (a sync model's
    suppression_reason column; the sync engine skips, and in mirror mode removes, anyone with a
    reason). Reads dim_customers' consent columns. Ad audiences take the email marketing
    consent: the sources carry no separate ads consent yet. -#}
{% macro activation_suppression_reason(channel) -%}
    {%- if channel == 'email' -%}
    case
        when email_subscription_status = 'unsubscribed' then 'unsubscribed'
        when not email_deliverable then 'bounced'
        when email_subscription_status <> 'subscribed' then 'no_consent'
    end
    {%- elif channel == 'ads' -%}
    case
        when email_subscription_status = 'unsubscribed' then 'unsubscribed'
        when email_subscription_status <> 'subscribed' then 'no_consent'
    end
    {%- elif channel == 'none' -%}
    cast(null as string)
    {%- else -%}
    {{ exceptions.raise_compiler_error("activation_suppression_reason: unknown channel '" ~ channel ~ "' (email, ads, none)") }}
    {%- endif -%}
{%- endmacro %}
