"""The upper layer state machine against PS3.8 Table 9-10, cell by cell."""

from __future__ import annotations

import pytest

from dicomfast.net.statemachine import (
    PLAIN,
    Effect,
    Event,
    InvalidEventError,
    State,
    StateMachine,
)

# PS3.8 Table 9-10 written column by column (one line per state, Evt1..Evt19), so that
# a transcription slip in the module's row-wise table shows up as a mismatch here.
COLUMNS = {
    1: "AE-1 . . . AE-5 . . . . . . . . . . . . . .",
    2: ". . AA-1 AA-1 . AE-6 . . . AA-1 . AA-1 AA-1 . . AA-2 AA-5 AA-2 AA-1",
    3: ". . AA-8 AA-8 . AA-8 AE-7 AE-8 . AA-8 . AA-8 AA-8 . AA-1 AA-3 AA-4 . AA-8",
    4: ". AE-2 . . . . . . . . . . . . AA-2 . AA-4 . .",
    5: ". . AE-3 AE-4 . AA-8 . . . AA-8 . AA-8 AA-8 . AA-1 AA-3 AA-4 . AA-8",
    6: ". . AA-8 AA-8 . AA-8 . . DT-1 DT-2 AR-1 AR-2 AA-8 . AA-1 AA-3 AA-4 . AA-8",
    7: ". . AA-8 AA-8 . AA-8 . . . AR-6 . AR-8 AR-3 . AA-1 AA-3 AA-4 . AA-8",
    8: ". . AA-8 AA-8 . AA-8 . . AR-7 AA-8 . AA-8 AA-8 AR-4 AA-1 AA-3 AA-4 . AA-8",
    9: ". . AA-8 AA-8 . AA-8 . . . AA-8 . AA-8 AA-8 AR-9 AA-1 AA-3 AA-4 . AA-8",
    10: ". . AA-8 AA-8 . AA-8 . . . AA-8 . AA-8 AR-10 . AA-1 AA-3 AA-4 . AA-8",
    11: ". . AA-8 AA-8 . AA-8 . . . AA-8 . AA-8 AR-3 . AA-1 AA-3 AA-4 . AA-8",
    12: ". . AA-8 AA-8 . AA-8 . . . AA-8 . AA-8 AA-8 AR-4 AA-1 AA-3 AA-4 . AA-8",
    13: ". . AA-6 AA-6 . AA-7 . . . AA-6 . AA-6 AA-6 . . AA-2 AR-5 AA-2 AA-7",
}
EXPECTED = {}
for _sta, _cells in COLUMNS.items():
    for _evt, _action in enumerate(_cells.split(), start=1):
        EXPECTED[(_evt, _sta)] = None if _action == "." else _action

# Next state of each action (PS3.8 Tables 9-6 to 9-9); conditional ones tested apart.
NEXT = {"AE-1": 4, "AE-2": 5, "AE-3": 6, "AE-4": 1, "AE-5": 2, "AE-7": 6, "AE-8": 13,
        "DT-1": 6, "DT-2": 6, "AR-1": 7, "AR-2": 8, "AR-3": 1, "AR-4": 13, "AR-5": 1,
        "AR-6": 7, "AR-7": 8, "AR-9": 11, "AR-10": 12, "AA-1": 13, "AA-2": 1, "AA-3": 1,
        "AA-4": 1, "AA-5": 1, "AA-6": 13, "AA-7": 13, "AA-8": 13}


def _machine(state: int, requestor: bool = True) -> StateMachine:
    m = StateMachine(requestor)
    m.state = State(state)
    return m


@pytest.mark.parametrize("evt,sta", sorted(EXPECTED))
def test_cell(evt, sta):
    action = EXPECTED[(evt, sta)]
    m = _machine(sta)
    if action is None:
        with pytest.raises(InvalidEventError):
            m.handle(Event(evt))
        assert m.state == State(sta)  # an invalid event changes nothing
        return
    t = m.handle(Event(evt))
    assert t.action == action
    if action in NEXT:
        assert t.next_state == State(NEXT[action]) == m.state
    else:
        assert action in ("AE-6", "AR-8")


def test_every_cell_is_covered():
    assert len(EXPECTED) == 19 * 13


@pytest.mark.parametrize("evt,sta", sorted(EXPECTED))
@pytest.mark.parametrize("requestor", [True, False])
def test_precomputed_transitions_equal_the_general_path(evt, sta, requestor):
    """Transitions handle() takes ready-made (P-DATA among them) are exactly what the
    tables give; `quiet` is True exactly when nothing loud is asked for."""
    if EXPECTED[(evt, sta)] is None:
        return
    worked = _machine(sta, requestor)._handle(Event(evt), State(sta), True, None, True)
    loud = (Effect.SEND_ABORT | Effect.SEND_RELEASE_RQ | Effect.SEND_RELEASE_RP
            | Effect.START_ARTIM | Effect.STOP_ARTIM | Effect.INDICATE_ABORT
            | Effect.INDICATE_P_ABORT | Effect.CLOSE_TRANSPORT)
    assert worked.quiet == (not worked.effects & loud and worked.next_state != State.STA1)
    m = _machine(sta, requestor)
    artim = m.artim
    t = m.handle(Event(evt))
    if (Event(evt), State(sta)) in PLAIN:
        assert t is PLAIN[(Event(evt), State(sta))]
        assert t == worked and t.quiet and m.artim == artim
    assert m.state == worked.next_state


def test_data_transfer_is_precomputed():
    assert {(Event.EVT9, State.STA6), (Event.EVT10, State.STA6)} <= set(PLAIN)


def test_ae6_acceptable_and_not():
    m = _machine(2)
    m.artim = True
    t = m.handle(Event.EVT6, acceptable=True)
    assert t.next_state == State.STA3 and t.effects & Effect.INDICATE_ASSOCIATE
    assert t.effects & Effect.STOP_ARTIM and not m.artim
    m = _machine(2)
    t = m.handle(Event.EVT6, acceptable=False)
    assert t.next_state == State.STA13
    assert t.effects & Effect.SEND_ASSOCIATE_RJ and t.effects & Effect.START_ARTIM and m.artim


def test_ar8_release_collision_sides():
    assert _machine(7, requestor=True).handle(Event.EVT12).next_state == State.STA9
    assert _machine(7, requestor=False).handle(Event.EVT12).next_state == State.STA10


def test_aa3_user_or_provider_abort():
    t = _machine(6).handle(Event.EVT16, peer_user_abort=True)
    assert t.effects & Effect.INDICATE_ABORT and not t.effects & Effect.INDICATE_P_ABORT
    t = _machine(6).handle(Event.EVT16, peer_user_abort=False)
    assert t.effects & Effect.INDICATE_P_ABORT and not t.effects & Effect.INDICATE_ABORT
    assert t.effects & Effect.CLOSE_TRANSPORT


def test_abort_pdu_sources_and_reasons():
    t = _machine(6).handle(Event.EVT15)
    assert t.effects & Effect.SEND_ABORT and (t.abort_source, t.abort_reason) == (0, 0)
    t = _machine(6).handle(Event.EVT19, abort_reason=6)
    assert (t.abort_source, t.abort_reason) == (2, 6)
    t = _machine(6).handle(Event.EVT3)  # an A-ASSOCIATE-AC during data transfer
    assert (t.abort_source, t.abort_reason) == (2, 2)
    t = _machine(2).handle(Event.EVT10)  # P-DATA before the association request
    assert t.action == "AA-1" and (t.abort_source, t.abort_reason) == (2, 2)
    t = _machine(13).handle(Event.EVT6)
    assert t.action == "AA-7" and t.effects & Effect.SEND_ABORT


def test_artim_follows_the_actions():
    m = StateMachine(requestor=False)
    assert m.handle(Event.EVT5).effects & Effect.START_ARTIM and m.artim
    m.handle(Event.EVT6)
    assert not m.artim
    m.handle(Event.EVT7)
    m.handle(Event.EVT12)
    t = m.handle(Event.EVT14)
    assert t.action == "AR-4" and m.artim and m.state == State.STA13
    t = m.handle(Event.EVT17)
    assert t.action == "AR-5" and not m.artim and m.is_idle


def _deliver(t, peer: StateMachine) -> None:
    """Carry the PDU a transition sends to the peer machine."""
    mapping = [(Effect.SEND_ASSOCIATE_RQ, Event.EVT6), (Effect.SEND_ASSOCIATE_AC, Event.EVT3),
               (Effect.SEND_ASSOCIATE_RJ, Event.EVT4), (Effect.SEND_P_DATA, Event.EVT10),
               (Effect.SEND_RELEASE_RQ, Event.EVT12), (Effect.SEND_RELEASE_RP, Event.EVT13),
               (Effect.SEND_ABORT, Event.EVT16)]
    for effect, event in mapping:
        if t.effects & effect:
            peer.handle(event)


def test_whole_association_between_two_machines():
    rq, ac = StateMachine(True, history=True), StateMachine(False, history=True)
    assert rq.handle(Event.EVT1).effects & Effect.CONNECT
    ac.handle(Event.EVT5)
    _deliver(rq.handle(Event.EVT2), ac)
    assert ac.state == State.STA3
    _deliver(ac.handle(Event.EVT7), rq)
    assert rq.is_established and ac.is_established
    for _ in range(3):
        _deliver(rq.handle(Event.EVT9), ac)
        _deliver(ac.handle(Event.EVT9), rq)
    _deliver(rq.handle(Event.EVT11), ac)
    assert (rq.state, ac.state) == (State.STA7, State.STA8)
    _deliver(ac.handle(Event.EVT14), rq)
    assert rq.is_idle and ac.state == State.STA13
    ac.handle(Event.EVT17)
    assert ac.is_idle
    assert [t.action for t in rq.history][:3] == ["AE-1", "AE-2", "AE-3"]


def test_release_collision_both_sides():
    rq, ac = _machine(6, True), _machine(6, False)
    rq.handle(Event.EVT11)
    ac.handle(Event.EVT11)            # both send A-RELEASE-RQ
    rq.handle(Event.EVT12)            # each receives the other's
    ac.handle(Event.EVT12)
    assert (rq.state, ac.state) == (State.STA9, State.STA10)
    _deliver(rq.handle(Event.EVT14), ac)  # requestor answers first (PS3.8 §7.2.2)
    assert (rq.state, ac.state) == (State.STA11, State.STA12)
    _deliver(ac.handle(Event.EVT14), rq)
    assert rq.is_idle and ac.state == State.STA13


def test_rejection_between_two_machines():
    rq, ac = _machine(4, True), StateMachine(False)
    ac.handle(Event.EVT5)
    _deliver(rq.handle(Event.EVT2), ac)
    t = ac.handle(Event.EVT8)
    assert t.effects & Effect.SEND_ASSOCIATE_RJ and ac.artim
    _deliver(t, rq)
    assert rq.is_idle
    assert ac.handle(Event.EVT18).action == "AA-2" and ac.is_idle
