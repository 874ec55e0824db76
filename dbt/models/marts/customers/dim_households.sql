{#- One row per household (customers at one standardised address) with the enrichment vendor's
    household attributes: the newest vendor record keyed by the household's address. -#}
with households as (
    select * from {{ ref('stg_identity__households') }}
),

vendor as (
    select * from {{ ref('stg_vendor__demographics') }}
),

attached_vendor_records as (
    select household_id, explode(vendor_record_ids) as vendor_record_id
    from households
),

vendor_latest as (
    select household_id, household_income_band, is_homeowner, children_count
    from (
        select
            attached.household_id,
            vendor.household_income_band,
            vendor.is_homeowner,
            vendor.children_count,
            row_number() over (
                partition by attached.household_id order by vendor.delivered_on desc, vendor.vendor_record_id asc
            ) as recency_rank
        from attached_vendor_records as attached
        inner join vendor
            on attached.vendor_record_id = vendor.vendor_record_id
    ) as ranked
    where recency_rank = 1
),

enriched as (
    select
        households.household_id,
        households.address_line,
        households.address_unit,
        households.postcode,
        households.member_count,
        vendor_latest.household_income_band,
        vendor_latest.is_homeowner,
        vendor_latest.children_count
    from households
    left join vendor_latest
        on households.household_id = vendor_latest.household_id
)

select * from enriched
