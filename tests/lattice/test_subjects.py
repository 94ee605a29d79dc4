"""Every subject lattice builds is safe to send: tokens checked, lengths bounded (issue 13, item 1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lattice import subjects
from lattice.errors import InvalidName

ACTOR = "M" + "A" * 55


def test_a_4kb_actor_id_is_refused_before_it_becomes_a_subject() -> None:
    with pytest.raises(InvalidName, match=r"actor id is 4100 bytes long; at most 256"):
        subjects.actor_rpc("default", "x" * 4100)


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "a*", ">", "a\tb", "a\x00b"])
def test_separators_wildcards_whitespace_and_empty_tokens_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName, match="link name"):
        subjects.provider_rpc("default", "V" + "B" * 55, bad)


def test_every_builder_checks_its_tokens() -> None:
    long = "n" * 300
    for build in (
        lambda: subjects.ctl_cmd("default", long, "scale"),
        lambda: subjects.ctl_cmd_all("default", long),
        lambda: subjects.ctl_get_inventory("default", long),
        lambda: subjects.ctl_get("default", long),
        lambda: subjects.ctl_linkdefs("default", long),
        lambda: subjects.ctl_auction("default", long),
        lambda: subjects.provider_linkdefs("default", ACTOR, "default", long),
        lambda: subjects.events(long),
        lambda: subjects.provider_health(long, ACTOR, "default"),
    ):
        with pytest.raises(InvalidName):
            build()


def test_user_subjects_are_checked_token_by_token_and_as_a_whole() -> None:
    assert subjects.check_subject("orders.eu.new") == "orders.eu.new"
    with pytest.raises(InvalidName, match="empty"):
        subjects.check_subject("orders..new")
    with pytest.raises(InvalidName, match="at most 1024"):
        subjects.check_subject(".".join(["abcdefgh"] * 200))


@given(st.text(min_size=1, max_size=300))
def test_what_is_accepted_fits_nats_rules(name: str) -> None:
    try:
        subject = subjects.actor_rpc("default", name)
    except InvalidName:
        return
    assert len(subject.encode()) <= subjects.MAX_SUBJECT
    assert subject.split(".")[-1] == name
    assert not any(c.isspace() or c in "*>" for c in name)
