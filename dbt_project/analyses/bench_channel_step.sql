{#- make bench: the channel step of int_sessions alone (the rule lookups of macros/channel_rules.sql),
    on the built sessions' distinct signatures plus var('calltrail__bench_referrer_hosts') made-up
    referrer hosts, for a figure that depends on the number of distinct hosts real sites see
    (thousands) rather than on the handful the bench's generated data has. bench/bench.py compiles
    this analysis and times it on the warehouse (DuckDB: range() makes the hosts). -#}
with channel_signatures as (

    select utm_campaign as campaign, utm_medium as medium, utm_source as source, referrer_host
    from {{ ref('int_sessions') }}
    union all
    select null, null, null,
           'blog' || cast(i as varchar) || '.site' || cast(i % 997 as varchar) || '.example.com'
    from range({{ var('calltrail__bench_referrer_hosts', 50000) }}) as hosts(i)

),

viewed_pages as (

    select landing_page_raw from {{ ref('int_sessions') }}

),

{{ calltrail.channel_lookup_ctes('bench', 'channel_signatures', 'viewed_pages') }}

select count(*) as signatures, count(distinct referrer_host) as referrer_hosts
from bench_channels
