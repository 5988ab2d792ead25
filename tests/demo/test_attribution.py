"""The oracle's reading of the identity and attribution rules, on journeys worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from calltrail.demo.attribution import (
    Contact,
    ContactRole,
    Conversion,
    FormSubmit,
    Lead,
    Opportunity,
    Session,
    attribute,
    touchpoint_id,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ACCOUNT = "001000000000001AAA"
ALICE = "003000000000001AAA"
BOB = "003000000000002AAA"
LEAD = "00Q000000000001AAA"
OPP = "006000000000001AAA"


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def contact(cid: str, email: str | None = None) -> Contact:
    return Contact(cid, email, ACCOUNT, at(-100))


def opportunity(*, created: float = 30, close: float | None = 40, won: bool = True, amount: str | None = "1000.00",
                currency: str | None = "EUR", account: str | None = ACCOUNT, oid: str = OPP) -> Opportunity:
    return Opportunity(oid, account, Decimal(amount) if amount is not None else None, currency, at(created),
                       (at(close) if close is not None else at(60)).date(), close is not None, won and close is not None)


def calls(bid: str, person: str, *days: float) -> list[Conversion]:
    """Task-only calls (no web) of ``person`` at these days."""
    return [Conversion(bid, "task", f"00T00000000{bid[:1]}{n:03d}AAA", at(d), None, person) for n, d in enumerate(days)]


def run(conversions, *, sessions=(), forms=(), opportunities=None, roles=None, leads=(), contacts=None, **kw):
    return attribute(leads=list(leads), contacts=contacts if contacts is not None else [contact(ALICE)],
                     sessions=list(sessions), conversions=list(conversions), forms=list(forms),
                     opportunities=opportunities if opportunities is not None else [opportunity()],
                     roles=roles if roles is not None else [ContactRole(OPP, ALICE)], **kw)


def shares(result, model: str) -> list[tuple[str, str]]:
    """(opportunity positions, credit) in journey order, for one model."""
    order = {t.touchpoint_id: n for n, t in enumerate(result.journeys[OPP])}
    rows = sorted((c for c in result.credits if c.model == model), key=lambda c: order[c.touchpoint_id])
    return [(c.opportunity_positions, format(c.credit, "f")) for c in rows]


def test_u_shaped_with_nothing_between_ft_and_lc_is_50_50():
    # A web visit (FT) then a call (LC) on the web: two touchpoints, nothing between.
    bid = "a" * 32
    s = Session(bid, "ev-1", at(0))
    result = run([Conversion(bid, "task", "00T000000000001AAA", at(5), None, ALICE)], sessions=[s])
    assert shares(result, "u_shaped") == [("FT", "0.5000000000"), ("LC, OC, Closed", "0.5000000000")]


def test_a_journey_of_one_touchpoint_gets_all_the_credit_in_every_model():
    result = run(calls("a" * 32, ALICE, 1))
    for model in ("first_touch", "lead_creation", "u_shaped", "w_shaped", "full_path", "custom"):
        assert shares(result, model) == [("FT, LC, OC, Closed", "1.0000000000")], model


def test_lead_creation_without_an_lc_touchpoint_gives_ft_everything():
    # Alice's only conversion, her LC call, comes after the close: the journey is her web visit (FT).
    bid = "b" * 32
    s = Session(bid, "ev-1", at(0))
    result = run([Conversion(bid, "task", "00T000000000001AAA", at(50), None, ALICE)], sessions=[s])
    assert shares(result, "lead_creation") == [("FT, OC, Closed", "1.0000000000")]
    assert shares(result, "u_shaped") == [("FT, OC, Closed", "1.0000000000")]


def test_an_oc_touchpoint_between_ft_and_lc_is_middle_in_u_shaped():
    # Alice's web visit (day 0, FT), Bob's web visit (day 10, OC: the opportunity is created on day
    # 15), Alice's call (day 20, the first LC), Bob's call (day 21, Closed).
    a, b = "a" * 32, "b" * 32
    result = run([Conversion(a, "task", "00T000000000001AAA", at(20), None, ALICE),
                  Conversion(b, "task", "00T000000000002AAA", at(21), None, BOB)],
                 sessions=[Session(a, "ev-1", at(0)), Session(b, "ev-2", at(10))],
                 contacts=[contact(ALICE), contact(BOB)], opportunities=[opportunity(created=15)],
                 roles=[ContactRole(OPP, ALICE), ContactRole(OPP, BOB)])
    # FT (Alice's visit), Bob's visit (OC, middle for u_shaped), Alice's call (LC), Bob's call (Closed).
    assert shares(result, "u_shaped") == [("FT", "0.4000000000"), ("OC", "0.2000000000"), ("LC", "0.4000000000"),
                                          ("Closed", "0.0000000000")]
    # w_shaped: FT 30, LC 30, OC 30; nothing lies strictly between FT and OC, so its 10 is split
    # among FT, OC and LC; the rounding remainder goes to the last of them (LC).
    w = dict(zip(["ft", "oc", "lc", "closed"], [c for _, c in shares(result, "w_shaped")], strict=True))
    assert w == {"ft": "0.3333333333", "oc": "0.3333333333", "lc": "0.3333333334", "closed": "0.0000000000"}


def test_w_shaped_gives_nothing_after_oc_except_lc_and_closed_and_shares_the_middle_before_it():
    # Five calls: FT day 1, middle day 2, OC day 3 (created day 3.5), after-OC day 4, Closed day 5.
    # The first call is LC (FT, LC).
    result = run(calls("a" * 32, ALICE, 1, 2, 3, 4, 5), opportunities=[opportunity(created=3.5, close=10)])
    assert shares(result, "w_shaped") == [("FT, LC", "0.6000000000"), ("", "0.1000000000"), ("OC", "0.3000000000"),
                                          ("", "0.0000000000"), ("Closed", "0.0000000000")]
    # full_path: FT+LC 45, OC 22.5, Closed 22.5, the two others 5 each.
    assert shares(result, "full_path") == [("FT, LC", "0.4500000000"), ("", "0.0500000000"), ("OC", "0.2250000000"),
                                           ("", "0.0500000000"), ("Closed", "0.2250000000")]
    # u_shaped: FT and LC coincide (80) and nothing lies between them: the 20 goes to it too.
    assert [c for _, c in shares(result, "u_shaped")] == ["1.0000000000"] + ["0.0000000000"] * 4


def test_full_path_for_a_lost_opportunity_shares_the_closed_position_among_the_others():
    result = run(calls("a" * 32, ALICE, 1, 2, 3), opportunities=[opportunity(created=1.5, won=False)])
    # FT, LC on day 1 (also OC): 22.5 * 3 + 22.5 (no Closed) = 90; the two middle touchpoints 5 each.
    assert shares(result, "full_path") == [("FT, LC, OC", "0.9000000000"), ("", "0.0500000000"), ("", "0.0500000000")]


def test_credits_are_rounded_half_even_and_the_remainder_goes_to_the_last_non_zero_touchpoint():
    # full_path with FT, LC (day 1), OC (day 2), no Closed (open), three middle touchpoints after OC:
    # FT+LC 45 + 22.5/2 = 56.25, OC 22.5 + 11.25 = 33.75, middle 10/3 each = 0.0333333333(3).
    result = run(calls("a" * 32, ALICE, 1, 2, 3, 4, 5), opportunities=[opportunity(created=2.5, close=None)])
    got = shares(result, "full_path")
    assert got == [("FT, LC", "0.5625000000"), ("OC", "0.3375000000"), ("", "0.0333333333"), ("", "0.0333333333"),
                   ("", "0.0333333334")]
    assert sum(Decimal(c) for _, c in got) == 1


def test_attributed_amounts_sum_to_the_amount_and_a_missing_amount_stays_null():
    result = run(calls("a" * 32, ALICE, 1, 2, 3, 4, 5), opportunities=[opportunity(created=2.5, close=None,
                                                                                    amount="999.99")])
    amounts = [c.attributed_amount for c in result.credits if c.model == "full_path"]
    assert sum(amounts) == Decimal("999.99") and amounts[2] == Decimal("999.99") * Decimal("0.0333333333")
    assert {c.currency_iso_code for c in result.credits} == {"EUR"}
    empty = run(calls("a" * 32, ALICE, 1), opportunities=[opportunity(amount=None, currency=None)])
    assert {(c.attributed_amount, c.currency_iso_code) for c in empty.credits} == {(None, "USD")}


def test_the_journey_ends_with_the_close_date_and_an_open_opportunity_has_no_cut_off():
    conv = calls("a" * 32, ALICE, 1, 40.99, 41.01)  # close date = day 40's date; day 40 starts 09:00
    closed = run(conv, opportunities=[opportunity(close=40)])
    open_ = run(conv, opportunities=[opportunity(close=None)])
    # day 40.99 is 08:45 on the next date: after the end of the close date (day 40 at 09:00 + 15 h).
    assert len(closed.journeys[OPP]) == 1 and len(open_.journeys[OPP]) == 3
    edge = run(calls("a" * 32, ALICE, 1, 40.6), opportunities=[opportunity(close=40)])  # 23:24 on the close date
    assert len(edge.journeys[OPP]) == 2


def test_on_a_tie_a_task_comes_before_a_form_before_a_visit_then_the_source_id():
    a, b = "a" * 32, "b" * 32
    c = "c" * 32
    result = run([Conversion(a, "form", "ev-9", at(1), f"{a}:ev-9"),
                  Conversion(b, "task", "00T000000000002AAA", at(1), None, BOB),
                  Conversion(c, "task", "00T000000000001AAA", at(1), None, ALICE)],
                 sessions=[Session(a, "ev-9", at(1))], forms=[FormSubmit(a, "alice@example.com", at(1))],
                 contacts=[contact(ALICE, "Alice@Example.com "), contact(BOB)],
                 roles=[ContactRole(OPP, ALICE), ContactRole(OPP, BOB)])
    assert [t.source_id for t in result.journeys[OPP]] == ["00T000000000001AAA", "00T000000000002AAA", "ev-9"]


def test_two_devices_give_one_ft_and_one_lc_and_a_converted_lead_follows_its_contact():
    phone, laptop = "1" * 32, "2" * 32
    lead = Lead(LEAD, "alice@example.com", at(-5), converted_contact_id=ALICE)
    result = run([Conversion(phone, "task", "00T000000000001AAA", at(2), None, LEAD),
                  Conversion(laptop, "form", "ev-5", at(3), f"{laptop}:ev-5")],
                 sessions=[Session(laptop, "ev-1", at(0)), Session(laptop, "ev-5", at(3))],
                 forms=[FormSubmit(laptop, "ALICE@example.com", at(3))], leads=[lead],
                 contacts=[contact(ALICE, None)])
    assert result.links == {phone: ALICE, laptop: ALICE}
    positions = {(t.kind, t.position, t.person_id) for t in result.touchpoints}
    assert positions == {("visit", "FT", ALICE), ("task", "LC", ALICE), ("form", "Post LC", ALICE)}
    assert shares(result, "first_touch")[0] == ("FT", "1.0000000000")


def test_the_latest_evidence_wins_for_the_whole_history_and_an_unknown_who_id_links_nothing():
    bid = "a" * 32
    result = run([Conversion(bid, "task", "00T000000000001AAA", at(1), f"{bid}:ev-1", ALICE),
                  Conversion(bid, "task", "00T000000000002AAA", at(9), f"{bid}:ev-2", "00Q999999999999AAA")],
                 sessions=[Session(bid, "ev-1", at(1)), Session(bid, "ev-2", at(9))],
                 forms=[FormSubmit(bid, "bob@example.com", at(5))],
                 contacts=[contact(ALICE), contact(BOB, "bob@example.com")])
    assert result.links == {bid: BOB}
    assert {t.person_id for t in result.touchpoints} == {BOB}
    assert result.unattributed == {OPP: "no_touchpoints"}


def test_a_contact_wins_an_email_over_a_lead_and_a_task_only_call_belongs_to_its_who_id():
    bid = "a" * 32
    lead = Lead(LEAD, "bob@example.com", at(-300))
    result = run([Conversion(bid, "task", "00T000000000001AAA", at(1), None, ALICE),
                  Conversion(bid, "form", "ev-3", at(3), f"{bid}:ev-3")],
                 sessions=[Session(bid, "ev-3", at(3))], forms=[FormSubmit(bid, "bob@example.com", at(3))],
                 leads=[lead], contacts=[contact(ALICE), contact(BOB, "bob@example.com")])
    owners = {t.source_id: (t.person_id, t.position) for t in result.touchpoints}
    assert result.links == {bid: BOB}
    assert owners == {"00T000000000001AAA": (ALICE, "FT, LC"), "ev-3": (BOB, "FT, LC")}


def test_without_roles_the_accounts_contacts_count_unless_roles_only_is_configured():
    result = run(calls("a" * 32, ALICE, 1), roles=[])
    assert len(result.journeys[OPP]) == 1
    roles_only = run(calls("a" * 32, ALICE, 1), roles=[], people_source="roles")
    assert roles_only.unattributed == {OPP: "no_people"} and roles_only.credits == []


def test_unattributed_opportunities_say_why():
    others = [opportunity(oid="006000000000002AAA", account=None),
              opportunity(oid="006000000000003AAA", close=0.5)]
    result = run(calls("a" * 32, ALICE, 1), opportunities=[opportunity(), *others],
                 roles=[ContactRole(OPP, ALICE), ContactRole("006000000000003AAA", ALICE)])
    assert result.unattributed == {"006000000000002AAA": "no_people", "006000000000003AAA": "no_touchpoints_before_cutoff"}


def test_custom_weights_must_sum_to_100_and_are_used_as_given():
    with pytest.raises(ValueError, match="sum to 100"):
        run(calls("a" * 32, ALICE, 1), custom={"FT": 50, "middle": 10})
    result = run(calls("a" * 32, ALICE, 1, 2, 3), opportunities=[opportunity(created=0.5, won=False)],
                 custom={"FT": 0, "LC": 70, "OC": 0, "Closed": 0, "middle": 30})
    # No OC (created before any touchpoint); LC (day 1) 70; the two others share the middle 30.
    assert shares(result, "custom") == [("FT, LC", "0.7000000000"), ("", "0.1500000000"), ("", "0.1500000000")]


def test_touchpoint_ids_are_the_marts_keys():
    import hashlib
    assert touchpoint_id("visit", "abc:ev-1") == hashlib.md5(b"visit|abc:ev-1").hexdigest()
