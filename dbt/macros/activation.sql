{#- Why a customer must not be sent to a channel, or null when they may be (a sync model's
    suppression_reason column; the sync engine skips, and in mirror mode removes, anyone with a
    reason). Consent is not decided here: the sync engine checks gold.customer_consent for the
    purpose each sync declares. This adds what the channel itself needs: for email, an address
    that takes mail (a hard bounce after the last engagement suppresses it) and the email
    platform's own subscription state. -#}
{% macro activation_suppression_reason(channel) -%}
    {%- if channel == 'email' -%}
    case
        when email_subscription_status = 'unsubscribed' then 'unsubscribed'
        when not email_deliverable then 'bounced'
        when email_subscription_status <> 'subscribed' then 'no_consent'
    end
    {%- elif channel == 'none' -%}
    cast(null as string)
    {%- else -%}
    {{ exceptions.raise_compiler_error("activation_suppression_reason: unknown channel '" ~ channel ~ "' (email, none)") }}
    {%- endif -%}
{%- endmacro %}
