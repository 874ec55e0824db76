{#- The email as identity resolution standardises it (spark_jobs/identity/standardise.py,
    email()): lower case and trimmed, +tags dropped where the provider ignores them, dots
    dropped for Gmail, googlemail.com -> gmail.com; null unless it looks like local@domain.tld.
    tests/test_dbt_macros.py keeps the two in step. -#}
{% macro standardise_email(column) -%}
{%- set plus_tag_domains = ["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com",
                            "me.com", "proton.me", "protonmail.com", "fastmail.com"] -%}
{%- set text = "lower(trim(" ~ column ~ "))" -%}
{%- set domain = "case when substring_index(" ~ text ~ ", '@', -1) = 'googlemail.com' then 'gmail.com' "
                 ~ "else substring_index(" ~ text ~ ", '@', -1) end" -%}
{%- set local_untagged = "case when (" ~ domain ~ ") in ('" ~ plus_tag_domains | join("', '") ~ "') "
                         ~ "then regexp_replace(substring_index(" ~ text ~ ", '@', 1), '\\\\+.*$', '') "
                         ~ "else substring_index(" ~ text ~ ", '@', 1) end" -%}
{%- set local = "case when (" ~ domain ~ ") = 'gmail.com' then replace(" ~ local_untagged ~ ", '.', '') "
                ~ "else " ~ local_untagged ~ " end" -%}
case
    when {{ text }} rlike '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$' and ({{ local }}) <> ''
        then concat({{ local }}, '@', {{ domain }})
end
{%- endmacro %}
