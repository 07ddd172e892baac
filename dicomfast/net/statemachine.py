"""The DICOM upper layer protocol state machine (PS3.8 §9.2), sans-IO.

:class:`StateMachine` knows the thirteen states, the nineteen events and the
state transition table (PS3.8 Table 9-10). Given an event it returns a
:class:`Transition`: the action the table names, the next state and the effects
the caller must carry out (send a PDU, pass an indication up, start or stop the
ARTIM timer, close the transport). It performs no I/O and keeps no clock, so the
same object drives a socket, a test or a simulation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dicomfast.errors import AssociationError


class State(enum.IntEnum):
    """PS3.8 Table 9-1."""
    STA1 = 1    # Idle
    STA2 = 2    # Transport connection open (awaiting A-ASSOCIATE-RQ PDU)
    STA3 = 3    # Awaiting local A-ASSOCIATE response primitive
    STA4 = 4    # Awaiting transport connection opening to complete
    STA5 = 5    # Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU
    STA6 = 6    # Association established and ready for data transfer
    STA7 = 7    # Awaiting A-RELEASE-RP PDU
    STA8 = 8    # Awaiting local A-RELEASE response primitive
    STA9 = 9    # Release collision requestor side: awaiting A-RELEASE response primitive
    STA10 = 10  # Release collision acceptor side: awaiting A-RELEASE-RP PDU
    STA11 = 11  # Release collision requestor side: awaiting A-RELEASE-RP PDU
    STA12 = 12  # Release collision acceptor side: awaiting A-RELEASE response primitive
    STA13 = 13  # Awaiting transport connection close indication


class Event(enum.IntEnum):
    """PS3.8 Table 9-2."""
    EVT1 = 1    # A-ASSOCIATE request (local user)
    EVT2 = 2    # Transport connect confirmation (local transport service)
    EVT3 = 3    # A-ASSOCIATE-AC PDU received
    EVT4 = 4    # A-ASSOCIATE-RJ PDU received
    EVT5 = 5    # Transport connection indication (local transport service)
    EVT6 = 6    # A-ASSOCIATE-RQ PDU received
    EVT7 = 7    # A-ASSOCIATE response primitive (accept)
    EVT8 = 8    # A-ASSOCIATE response primitive (reject)
    EVT9 = 9    # P-DATA request primitive
    EVT10 = 10  # P-DATA-TF PDU received
    EVT11 = 11  # A-RELEASE request primitive
    EVT12 = 12  # A-RELEASE-RQ PDU received
    EVT13 = 13  # A-RELEASE-RP PDU received
    EVT14 = 14  # A-RELEASE response primitive
    EVT15 = 15  # A-ABORT request primitive
    EVT16 = 16  # A-ABORT PDU received
    EVT17 = 17  # Transport connection closed indication
    EVT18 = 18  # ARTIM timer expired
    EVT19 = 19  # Unrecognized or invalid PDU received


class Effect(enum.Flag):
    """What an action asks of the caller (PS3.8 Tables 9-6 to 9-9)."""
    NONE = 0
    CONNECT = enum.auto()               # issue TRANSPORT CONNECT
    ACCEPT_TRANSPORT = enum.auto()      # issue the transport connection response
    SEND_ASSOCIATE_RQ = enum.auto()
    SEND_ASSOCIATE_AC = enum.auto()
    SEND_ASSOCIATE_RJ = enum.auto()
    SEND_P_DATA = enum.auto()
    SEND_RELEASE_RQ = enum.auto()
    SEND_RELEASE_RP = enum.auto()
    SEND_ABORT = enum.auto()
    INDICATE_ASSOCIATE = enum.auto()    # A-ASSOCIATE indication to the local user
    CONFIRM_ACCEPT = enum.auto()        # A-ASSOCIATE confirmation (accept)
    CONFIRM_REJECT = enum.auto()        # A-ASSOCIATE confirmation (reject)
    INDICATE_P_DATA = enum.auto()
    INDICATE_RELEASE = enum.auto()
    CONFIRM_RELEASE = enum.auto()
    INDICATE_ABORT = enum.auto()        # A-ABORT indication (the peer's user aborted)
    INDICATE_P_ABORT = enum.auto()      # A-P-ABORT indication (a provider aborted)
    START_ARTIM = enum.auto()
    STOP_ARTIM = enum.auto()
    CLOSE_TRANSPORT = enum.auto()


E = Effect
S = State

# Actions: (effects, next state). Next state None: decided by a condition (AE-6, AR-8).
ACTIONS: dict[str, tuple[Effect, State | None]] = {
    # Association establishment (PS3.8 Table 9-6).
    "AE-1": (E.CONNECT, S.STA4),
    "AE-2": (E.SEND_ASSOCIATE_RQ, S.STA5),
    "AE-3": (E.CONFIRM_ACCEPT, S.STA6),
    "AE-4": (E.CONFIRM_REJECT | E.CLOSE_TRANSPORT, S.STA1),
    "AE-5": (E.ACCEPT_TRANSPORT | E.START_ARTIM, S.STA2),
    "AE-6": (E.STOP_ARTIM, None),   # acceptable: indicate (Sta3); else RJ + ARTIM (Sta13)
    "AE-7": (E.SEND_ASSOCIATE_AC, S.STA6),
    "AE-8": (E.SEND_ASSOCIATE_RJ | E.START_ARTIM, S.STA13),
    # Data transfer (Table 9-7).
    "DT-1": (E.SEND_P_DATA, S.STA6),
    "DT-2": (E.INDICATE_P_DATA, S.STA6),
    # Association release (Table 9-8).
    "AR-1": (E.SEND_RELEASE_RQ, S.STA7),
    "AR-2": (E.INDICATE_RELEASE, S.STA8),
    "AR-3": (E.CONFIRM_RELEASE | E.CLOSE_TRANSPORT, S.STA1),
    "AR-4": (E.SEND_RELEASE_RP | E.START_ARTIM, S.STA13),
    "AR-5": (E.STOP_ARTIM, S.STA1),
    "AR-6": (E.INDICATE_P_DATA, S.STA7),
    "AR-7": (E.SEND_P_DATA, S.STA8),
    "AR-8": (E.INDICATE_RELEASE, None),  # requestor: Sta9; acceptor: Sta10
    "AR-9": (E.SEND_RELEASE_RP, S.STA11),
    "AR-10": (E.CONFIRM_RELEASE, S.STA12),
    # Association abort (Table 9-9).
    "AA-1": (E.SEND_ABORT | E.START_ARTIM, S.STA13),
    "AA-2": (E.STOP_ARTIM | E.CLOSE_TRANSPORT, S.STA1),
    "AA-3": (E.INDICATE_ABORT | E.CLOSE_TRANSPORT, S.STA1),
    "AA-4": (E.INDICATE_P_ABORT, S.STA1),
    "AA-5": (E.STOP_ARTIM, S.STA1),
    "AA-6": (E.NONE, S.STA13),           # ignore the PDU
    "AA-7": (E.SEND_ABORT, S.STA13),
    "AA-8": (E.SEND_ABORT | E.INDICATE_P_ABORT | E.START_ARTIM, S.STA13),
}


def _row(event: int, cells: str) -> dict[tuple[Event, State], str]:
    out = {}
    for sta, action in enumerate(cells.split(), start=1):
        if action != ".":
            out[(Event(event), State(sta))] = action
    return out


# PS3.8 Table 9-10, one row per event, one column per state Sta1..Sta13 ('.' = no entry).
TABLE: dict[tuple[Event, State], str] = {}
for _evt, _cells in (
    #       1     2     3     4     5     6     7     8     9     10    11    12    13
    (1,  "AE-1  .     .     .     .     .     .     .     .     .     .     .     ."),
    (2,  ".     .     .     AE-2  .     .     .     .     .     .     .     .     ."),
    (3,  ".     AA-1  AA-8  .     AE-3  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6"),
    (4,  ".     AA-1  AA-8  .     AE-4  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6"),
    (5,  "AE-5  .     .     .     .     .     .     .     .     .     .     .     ."),
    (6,  ".     AE-6  AA-8  .     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7"),
    (7,  ".     .     AE-7  .     .     .     .     .     .     .     .     .     ."),
    (8,  ".     .     AE-8  .     .     .     .     .     .     .     .     .     ."),
    (9,  ".     .     .     .     .     DT-1  .     AR-7  .     .     .     .     ."),
    (10, ".     AA-1  AA-8  .     AA-8  DT-2  AR-6  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6"),
    (11, ".     .     .     .     .     AR-1  .     .     .     .     .     .     ."),
    (12, ".     AA-1  AA-8  .     AA-8  AR-2  AR-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6"),
    (13, ".     AA-1  AA-8  .     AA-8  AA-8  AR-3  AA-8  AA-8  AR-10 AR-3  AA-8  AA-6"),
    (14, ".     .     .     .     .     .     .     AR-4  AR-9  .     .     AR-4  ."),
    (15, ".     .     AA-1  AA-2  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  ."),
    (16, ".     AA-2  AA-3  .     AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-2"),
    (17, ".     AA-5  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AR-5"),
    (18, ".     AA-2  .     .     .     .     .     .     .     .     .     .     AA-2"),
    (19, ".     AA-1  AA-8  .     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7"),
):
    TABLE.update(_row(_evt, _cells))
del _evt, _cells

# A-ABORT PDU fields the provider sends (PS3.8 Table 9-26).
_SOURCE_USER, _SOURCE_PROVIDER = 0, 2
_REASON_UNEXPECTED_PDU = 2


class InvalidEventError(AssociationError):
    """An event the state table has no entry for in the current state: a local
    primitive issued at the wrong time (a programming error, not a peer's fault)."""


@dataclass(frozen=True)
class Transition:
    """The outcome of one event: the action named by the table and what to do."""
    event: Event
    state: State          # before
    action: str
    next_state: State
    effects: Effect
    abort_source: int = 0  # with Effect.SEND_ABORT: the A-ABORT PDU's source and reason
    abort_reason: int = 0
    #: True when the caller has nothing to do beyond the data effects (send or
    #: indicate P-DATA, ...): nothing to send on its own, no timer, no abort, no close.
    quiet: bool = False


# Effects that ask the caller for more than passing data along.
_LOUD = (E.SEND_ABORT | E.SEND_RELEASE_RQ | E.SEND_RELEASE_RP | E.START_ARTIM | E.STOP_ARTIM
         | E.INDICATE_ABORT | E.INDICATE_P_ABORT | E.CLOSE_TRANSPORT)


def _plain_transitions() -> dict[tuple[Event, State], Transition]:
    """The transitions that depend on nothing but event and state and ask for nothing
    loud (the P-DATA ones of an established association among them), made once:
    the hot path of every message takes them from here instead of working them out.
    A test checks each against :meth:`StateMachine.handle`'s general path."""
    out = {}
    for (event, state), action in TABLE.items():
        effects, next_state = ACTIONS[action]
        if action in ("AE-6", "AR-8", "AA-3") or next_state is None \
                or effects & _LOUD or next_state == S.STA1:
            continue
        out[(event, state)] = Transition(event, state, action, next_state, effects,
                                         quiet=True)
    return out


PLAIN = _plain_transitions()

#: The actions that pass a received P-DATA-TF to the user (DT-2, AR-6).
P_DATA_INDICATIONS = frozenset(a for a, (eff, _s) in ACTIONS.items() if eff & E.INDICATE_P_DATA)


class StateMachine:
    """One association's upper layer state (PS3.8 §9.2), requestor or acceptor side.

    ``artim`` tells whether the ARTIM timer should be running; the caller owns the
    clock and reports its expiry as EVT18.
    """

    __slots__ = ("requestor", "state", "artim", "history")

    def __init__(self, requestor: bool, history: bool = False):
        self.requestor = requestor
        self.state = State.STA1
        self.artim = False
        self.history: list[Transition] | None = [] if history else None

    def can(self, event: Event) -> bool:
        return (event, self.state) in TABLE

    def handle(self, event: Event, *, acceptable: bool = True, abort_reason: int | None = None,
               peer_user_abort: bool = True) -> Transition:
        """Apply one event. ``acceptable``: for EVT6, whether the A-ASSOCIATE-RQ can be
        passed to the user (AE-6). ``abort_reason``: the A-ABORT reason for an invalid
        PDU (EVT19) or a user abort (EVT15). ``peer_user_abort``: for EVT16, whether
        the received A-ABORT came from the peer's service-user (AA-3)."""
        state = self.state
        plain = PLAIN.get((event, state))
        if plain is not None:
            self.state = plain.next_state
            if self.history is not None:
                self.history.append(plain)
            return plain
        return self._handle(event, state, acceptable, abort_reason, peer_user_abort)

    def _handle(self, event: Event, state: State, acceptable: bool,
                abort_reason: int | None, peer_user_abort: bool) -> Transition:
        """handle()'s general path: every transition, worked out from the tables."""
        action = TABLE.get((event, state))
        if action is None:
            raise InvalidEventError(
                f"{event.name} is not allowed in {state.name} (PS3.8 Table 9-10)")
        effects, next_state = ACTIONS[action]
        source = reason = 0
        if action == "AE-6":
            if acceptable:
                effects, next_state = effects | E.INDICATE_ASSOCIATE, S.STA3
            else:
                effects, next_state = effects | E.SEND_ASSOCIATE_RJ | E.START_ARTIM, S.STA13
        elif action == "AR-8":
            next_state = S.STA9 if self.requestor else S.STA10
        elif action == "AA-3" and not peer_user_abort:
            effects = (effects & ~E.INDICATE_ABORT) | E.INDICATE_P_ABORT
        if effects & E.SEND_ABORT:
            if event == Event.EVT15:
                source, reason = _SOURCE_USER, abort_reason or 0
            else:
                # AA-1 in Sta2, AA-7 and AA-8 answer the peer's protocol error.
                source = _SOURCE_PROVIDER
                reason = abort_reason if abort_reason is not None and event == Event.EVT19 \
                    else _REASON_UNEXPECTED_PDU
        # AE-6 (reject) stops then restarts the timer: stop first.
        if effects & E.STOP_ARTIM or next_state == S.STA1:
            self.artim = False
        if effects & E.START_ARTIM:
            self.artim = True
        self.state = next_state
        t = Transition(event, state, action, next_state, effects, source, reason,
                       quiet=not effects & _LOUD and next_state != S.STA1)
        if self.history is not None:
            self.history.append(t)
        return t

    @property
    def is_established(self) -> bool:
        return self.state == State.STA6

    @property
    def is_idle(self) -> bool:
        return self.state == State.STA1
