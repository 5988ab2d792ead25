-- The floor: one hand-written DuckDB script over the same lake that computes the same sessions,
-- call matches and attribution as the dbt models (inactivity and source splits, latest session at
-- or before the call, the call window from the session start; people, touchpoints, opportunity
-- journeys and the six models' credits). DuckDB-only syntax is fine here. bench.py sets the
-- variables: the lake's globs, the dbt project's inactivity gap, call window (minutes), default
-- currency and people fallback, the custom weights seed, and the configured Task fields for the
-- BizibleId and the touchpoint date; it checks floor_matches and floor_attribution against the build.
create or replace table floor_sessions as
with events as (
    select
        event_id,
        regexp_replace(lower(trim(bizible_id)), '[-{}]', '', 'g') as bid,
        event_type,
        occurred_at,
        nullif(regexp_extract(page_url, '[?&]utm_source=([^&#]*)', 1), '') as utm_source,
        nullif(regexp_extract(page_url, '[?&]utm_medium=([^&#]*)', 1), '') as utm_medium,
        nullif(regexp_extract(page_url, '[?&]utm_campaign=([^&#]*)', 1), '') as utm_campaign,
        nullif(regexp_extract(page_url, '[?&]utm_content=([^&#]*)', 1), '') as utm_content,
        nullif(regexp_extract(page_url, '[?&]utm_term=([^&#]*)', 1), '') as utm_term,
        nullif(regexp_extract(page_url, '[?&](gclid|msclkid|fbclid)=([^&#]*)', 2), '') as click_id,
        regexp_replace(lower(nullif(regexp_extract(page_url, '^[a-z]+://([^/?#:]+)', 1), '')), '^www[.]', '') as page_host,
        regexp_replace(lower(nullif(regexp_extract(referrer_url, '^[a-z]+://([^/?#:]+)', 1), '')), '^www[.]', '') as ref_host
    from read_parquet(getvariable('web_glob'))
),
signed as (
    select *,
        case when ref_host is not null and ref_host <> coalesce(page_host, '') then ref_host end as ext_ref,
    from events
),
flagged as (
    select *,
        event_type = 'page_view' and (coalesce(utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_id, ext_ref) is not null) as brings,
        concat_ws('|', utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_id, ext_ref) as sig,
        occurred_at > lag(occurred_at) over w + to_minutes(getvariable('inactivity_minutes')) or lag(occurred_at) over w is null as gap
    from signed
    window w as (partition by bid order by occurred_at, event_type desc, event_id)
),
starts as (
    select *,
        gap or (brings and sig <> coalesce(lag(case when gap or brings then sig end ignore nulls) over w, '')) as starts_session
    from flagged
    window w as (partition by bid order by occurred_at, event_type desc, event_id)
),
sessions as (
    select bid, session_number, min(occurred_at) as session_start,
        bid || ':' || max(case when starts_session then event_id end) as session_id,
        min({'ts': occurred_at, 'id': event_id}) filter (where event_type = 'form_submit') as first_form
    from (select bid, occurred_at, event_type, event_id, starts_session,
                 sum(starts_session::int) over (partition by bid order by occurred_at, event_type desc, event_id) as session_number
          from starts)
    group by bid, session_number
)
select * from sessions;

create or replace table floor_matches as
with task_versions as (
    select Id, SystemModstamp, IsDeleted, CreatedDate, WhoId,
           columns(lambda c: c = getvariable('bizible_id_field')) as bizible_id,
           columns(lambda c: c = getvariable('touchpoint_date_field')) as touchpoint_date
    from read_parquet(getvariable('task_glob'), union_by_name = true)
),
tasks as (
    select Id as task_id,
           regexp_replace(lower(trim(arg_max(bizible_id, SystemModstamp))), '[-{}]', '', 'g') as bid,
           arg_max(coalesce(touchpoint_date, CreatedDate), SystemModstamp) as call_at,
           arg_max(IsDeleted, SystemModstamp) as deleted,
           arg_max(WhoId, SystemModstamp) as who_id
    from task_versions
    group by Id
)
select t.task_id, t.bid, t.who_id, t.call_at, s.session_number, s.session_start, s.session_id,
       case when s.session_start is null then 'no_session'
            when t.call_at <= s.session_start + to_minutes(getvariable('call_window_minutes')) then 'matched'
            else 'outside_window' end as match_status
from tasks t
asof left join floor_sessions s on t.bid = s.bid and t.call_at >= s.session_start
where not t.deleted and regexp_full_match(t.bid, '[0-9a-f]{32}');


-- People (docs/rules.md, People): each live Lead and Contact Id with the person it stands for; the
-- BizibleId's person by the latest evidence (a Task's WhoId, a form submit's e-mail).
create or replace table floor_person_ids as
with leads as (
    select Id, Email, CreatedDate::timestamp as created_at,
           case when coalesce(IsConverted::boolean, false) then ConvertedContactId end as converted_contact_id
    from read_parquet(getvariable('lead_glob'), union_by_name = true)
    qualify row_number() over (partition by Id order by SystemModstamp::timestamp desc, coalesce(IsDeleted::boolean, false) desc, _loaded_at desc) = 1
        and not coalesce(IsDeleted::boolean, false)
),
contacts as (
    select Id, Email, AccountId, CreatedDate::timestamp as created_at
    from read_parquet(getvariable('contact_glob'), union_by_name = true)
    qualify row_number() over (partition by Id order by SystemModstamp::timestamp desc, coalesce(IsDeleted::boolean, false) desc, _loaded_at desc) = 1
        and not coalesce(IsDeleted::boolean, false)
)
select Id as salesforce_id, 0 as record_rank, Id as person_id, lower(trim(Email)) as email, AccountId as account_id, created_at
from contacts
union all
select l.Id, 1, coalesce(c.Id, l.Id), lower(trim(l.Email)), null, l.created_at
from leads l left join contacts c on l.converted_contact_id = c.Id;

create or replace table floor_links as
with email_people as (
    select email, arg_min(person_id, (record_rank, created_at, salesforce_id)) as person_id
    from floor_person_ids
    where email <> ''
    group by email
),
evidence as (
    select m.bid, p.person_id, m.call_at as ts, 'task' as kind, m.task_id as id
    from floor_matches m join floor_person_ids p on m.who_id = p.salesforce_id
    union all
    select regexp_replace(lower(trim(f.bizible_id)), '[-{}]', '', 'g'), e.person_id, f.occurred_at, 'form', f.event_id
    from read_parquet(getvariable('web_glob')) f join email_people e on lower(trim(f.email)) = e.email
    where f.event_type = 'form_submit'
)
select bid, person_id from evidence
qualify row_number() over (partition by bid order by ts desc, person_id, kind, id) = 1;

-- Touchpoints with their person and journey positions: each session's first conversion owns it
-- (on a tie the call); a later or unmatched Task is task-only (its WhoId's person first); a form
-- submit that does not own its session makes none; the journey's first session, when nothing owns
-- it and it came before the first conversion, is a Web Visit (FT).
create or replace table floor_touchpoints as
with session_conversions as (
    select 'task' as kind, task_id as source_id, bid, session_id, call_at as ts, 0 as kind_priority, who_id
    from floor_matches where match_status = 'matched'
    union all
    select 'form', first_form.id, bid, session_id, first_form.ts, 1, null
    from floor_sessions where first_form is not null
),
conversions as (
    select kind, source_id, bid, ts, kind_priority, who_id,
        case when row_number() over (partition by session_id order by ts, kind_priority, source_id) = 1 then session_id end as session_id
    from session_conversions
    union all
    select 'task', task_id, bid, call_at, 0, who_id, null
    from floor_matches where match_status <> 'matched'
),
owned as (
    select c.*, md5(c.kind || '|' || c.source_id) as touchpoint_id,
        case when c.session_id is null then coalesce(w.person_id, l.person_id) else l.person_id end as person_id
    from conversions c
    left join floor_links l on c.bid = l.bid
    left join floor_person_ids w on c.who_id = w.salesforce_id and c.session_id is null
    where c.session_id is not null or c.kind = 'task'
),
first_sessions as (
    select coalesce(l.person_id, s.bid) as journey_key, arg_min(s.session_id, (s.session_start, s.session_id)) as session_id,
           min(s.session_start) as session_start
    from floor_sessions s left join floor_links l on s.bid = l.bid
    where s.session_number = 1
    group by 1
),
journeys as (
    select o.*, f.session_id as first_session_id, f.session_start as first_session_start,
        row_number() over j as conversion_order,
        f.session_start <= min(o.ts) over j as starts_on_the_web,
        bool_or(coalesce(o.session_id = f.session_id, false)) over j as first_session_converted
    from owned o left join first_sessions f on coalesce(o.person_id, o.bid) = f.journey_key
    window j as (partition by coalesce(o.person_id, o.bid) order by o.ts, o.kind_priority, o.touchpoint_id
                 rows between unbounded preceding and unbounded following)
)
select touchpoint_id, person_id, ts, kind_priority, source_id,
    case when coalesce(starts_on_the_web, false) then coalesce(session_id = first_session_id, false)
         else conversion_order = 1 end as is_ft,
    conversion_order = 1 as is_lc
from journeys
union all
select md5('visit|' || first_session_id), person_id, first_session_start, 2, split_part(first_session_id, ':', 2), true, false
from journeys
where conversion_order = 1 and starts_on_the_web and not first_session_converted;

-- Attribution (docs/rules.md, Opportunities and Attribution models): the opportunity's people
-- (live contact roles' live Contacts; without a role, the Account's Contacts), their touchpoints
-- up to the end of CloseDate for a closed one, the positions FT, LC, OC and Closed, and each
-- model's exact share rounded half-even to 10 places, the remainder on the last touchpoint with a
-- share.
create or replace table floor_attribution as
with opportunities as (
    select Id as opportunity_id, AccountId as account_id, Amount::decimal(18, 2) as amount,
        coalesce(nullif(trim(CurrencyIsoCode), ''), getvariable('default_currency')) as currency,
        CreatedDate::timestamp as created_at, coalesce(IsWon::boolean, false) as is_won,
        case when coalesce(IsClosed::boolean, false) then CloseDate::date + interval 1 day end as cutoff_at
    from read_parquet(getvariable('opportunity_glob'), union_by_name = true)
    qualify row_number() over (partition by Id order by SystemModstamp::timestamp desc, coalesce(IsDeleted::boolean, false) desc, _loaded_at desc) = 1
        and not coalesce(IsDeleted::boolean, false)
),
roles as (
    select OpportunityId as opportunity_id, ContactId as contact_id
    from read_parquet(getvariable('role_glob'), union_by_name = true)
    qualify row_number() over (partition by Id order by SystemModstamp::timestamp desc, coalesce(IsDeleted::boolean, false) desc, _loaded_at desc) = 1
        and not coalesce(IsDeleted::boolean, false)
),
contacts as (
    select person_id, account_id from floor_person_ids where record_rank = 0
),
opportunity_people as (
    select distinct r.opportunity_id, c.person_id from roles r join contacts c on r.contact_id = c.person_id
    union all
    select o.opportunity_id, c.person_id
    from opportunities o join contacts c on o.account_id = c.account_id
    where getvariable('people_fallback') = 'account' and o.opportunity_id not in (select opportunity_id from roles)
),
journey as (
    select o.opportunity_id, o.created_at, o.is_won, t.touchpoint_id, t.person_id, t.ts, t.is_lc,
        row_number() over (partition by o.opportunity_id order by t.ts, t.kind_priority, t.source_id) as n
    from opportunities o
    join opportunity_people p on o.opportunity_id = p.opportunity_id
    join floor_touchpoints t on p.person_id = t.person_id
    where o.cutoff_at is null or t.ts < o.cutoff_at
),
marked as (
    select *,
        min(case when is_lc then n end) over o as lc_n,
        max(case when ts <= created_at then n end) over o as oc_n,
        max(n) over o as last_n
    from journey
    window o as (partition by opportunity_id)
),
weights as (
    -- in units of 1/10000 of a percent point; middle: where the middle touchpoints lie
    select * from (values
        ('first_touch', 1000000, 0, 0, 0, 0, 'none'),
        ('lead_creation', 0, 1000000, 0, 0, 0, 'none'),
        ('u_shaped', 400000, 400000, 0, 0, 200000, 'ft_to_lc'),
        ('w_shaped', 300000, 300000, 300000, 0, 100000, 'ft_to_oc'),
        ('full_path', 225000, 225000, 225000, 225000, 100000, 'all')
    ) as w(model, w_ft, w_lc, w_oc, w_closed, w_middle, middle)
    union all
    select 'custom',
        sum(case when position = 'FT' then round(weight * 10000) else 0 end)::bigint,
        sum(case when position = 'LC' then round(weight * 10000) else 0 end)::bigint,
        sum(case when position = 'OC' then round(weight * 10000) else 0 end)::bigint,
        sum(case when position = 'Closed' then round(weight * 10000) else 0 end)::bigint,
        sum(case when position = 'middle' then round(weight * 10000) else 0 end)::bigint,
        'all'
    from read_csv(getvariable('custom_weights_csv'))
),
held as (
    select m.opportunity_id, m.touchpoint_id, m.person_id, m.n, w.model,
        m.n = 1 as is_ft, m.n = m.lc_n as is_lc, m.n = m.oc_n as is_oc, m.is_won and m.n = m.last_n as is_closed,
        w.w_ft + w.w_lc + w.w_oc + w.w_closed + w.w_middle as total,
        w.w_middle,
        w.w_ft + case when m.lc_n is not null then w.w_lc else 0 end + case when m.oc_n is not null then w.w_oc else 0 end
            + case when m.is_won then w.w_closed else 0 end as present,
        case when m.n = 1 then w.w_ft else 0 end + case when m.n = m.lc_n then w.w_lc else 0 end
            + case when m.n = m.oc_n then w.w_oc else 0 end + case when m.is_won and m.n = m.last_n then w.w_closed else 0 end as own,
        case w.middle when 'all' then true
            when 'ft_to_lc' then m.n > 1 and m.n < m.lc_n
            when 'ft_to_oc' then m.n > 1 and m.n < m.oc_n
            else false end as in_range
    from marked m cross join weights w
),
counted as (
    select *,
        not (own > 0) and coalesce(in_range, false) and w_middle > 0 as is_middle,
        greatest(count(*) filter (where own > 0) over g, 1) as takers,
        greatest(count(*) filter (where not (own > 0) and coalesce(in_range, false) and w_middle > 0) over g, 1) as middles,
        count(*) filter (where own > 0) over g as holders,
        count(*) filter (where not (own > 0) and coalesce(in_range, false) and w_middle > 0) over g as middle_count
    from held
    window g as (partition by opportunity_id, model)
),
shares as (
    -- the exact share num / den
    select *,
        (own * middles * takers
         + case when is_middle then w_middle * takers else 0 end
         + case when (holders > 0 and own > 0) or (holders = 0 and is_ft)
                then (total - present - case when middle_count > 0 then w_middle else 0 end) * middles else 0 end)::hugeint as num,
        (total * middles * takers)::hugeint as den
    from counted
),
rounded as (
    select *,
        num * 10000000000 // den
        + case when 2 * (num * 10000000000 % den) > den then 1
               when 2 * (num * 10000000000 % den) = den then (num * 10000000000 // den) % 2
               else 0 end as units
    from shares
),
balanced as (
    select *,
        units + case when n = max(case when num > 0 then n end) over g then 10000000000 - sum(units) over g else 0 end as credit_units
    from rounded
    window g as (partition by opportunity_id, model)
)
select b.opportunity_id, b.touchpoint_id, b.person_id,
    concat_ws(', ', case when is_ft then 'FT' end, case when is_lc then 'LC' end, case when is_oc then 'OC' end,
              case when is_closed then 'Closed' end) as opportunity_positions,
    b.model,
    (credit_units::decimal(20, 0) / 10000000000)::decimal(18, 10) as credit,
    o.amount::decimal(38, 2) * (credit_units::decimal(20, 0) / 10000000000)::decimal(18, 10) as attributed_amount,
    o.currency as currency_iso_code
from balanced b join opportunities o on b.opportunity_id = o.opportunity_id;
