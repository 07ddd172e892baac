"""Coverage-guided fuzzing of dicomfast's Python entry points with atheris.

    python tools/fuzz_python.py read|dimse|statemachine|deid SECONDS [corpus dirs...]

  read          dicomfast.read on the bytes, every value decoded, the pixel data read
                (frames capped: see MAX_DECODED below)
  dimse         dicomfast.net.dimse.decode_command, then every field of the command
  deid          the bytes as a file de-identified with the native header rewrite and
                with the walk over a Dataset: both must fail, or write the same bytes
  statemachine  the upper layer state machine (PS3.8 §9.2) of both sides driven by
                the bytes: each step is a local primitive, a timer expiry, a transport
                event, or a PDU framed and decoded by dicomfast.net.pdu, whose type
                (or decode failure: EVT19) is the event

Nothing but a DicomfastError may come out (and MemoryError only when the deliberately
lowered pixels limit below is the cause); anything else is a finding: atheris prints the
traceback, writes the input as crash-<hash> in the working directory, and exits 1.
The state machine must also have an action for every PDU event in every state with a
transport connection, for a close in every state but Sta1 and for the ARTIM expiry
whenever it says the timer runs (PS3.8 Table 9-10), and be in Sta1 after a close.

Needs atheris (pip install 'dicomfast[fuzz]'). Seeds: the sample files for read, a few
encoded commands for dimse, encoded PDUs for statemachine, plus any directories given.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Decoded pixel output is capped well below the default for fuzzing speed and memory.
MAX_DECODED = 64 << 20


def _setup_read():
    import dicomfast
    from dicomfast.errors import DicomfastError
    from dicomfast.pixels import params

    params.MAX_DECODED_BYTES = MAX_DECODED

    def walk(ds):
        stack = [iter(ds)]
        while stack:
            el = next(stack[-1], None)
            if el is None:
                stack.pop()
                continue
            value = el.value
            if el.VR == "SQ":
                stack.extend(iter(sub) for sub in value)
            else:
                str(value)

    def one(data: bytes) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = dicomfast.read(data, force=bool(data[:1] == b"\x01"),
                                    max_inflated_size=MAX_DECODED)
                walk(ds)
                if ds.file_meta is not None:
                    walk(ds.file_meta)
                if any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
                    try:
                        ds.pixel_array  # noqa: B018
                    except MemoryError:
                        pass  # allowed: the output is capped at MAX_DECODED above
            except DicomfastError:
                pass

    seeds = [p.read_bytes() for p in sorted((ROOT / "dicomfast" / "samples").glob("*.dcm"))]
    return one, seeds


def _setup_deid():
    from dicomfast import deid as deid_module
    from dicomfast.deid import Deidentifier
    from dicomfast.errors import DicomfastError

    folder = Path(tempfile.mkdtemp(prefix="fuzz-deid-"))
    source = folder / "in.dcm"
    native = Deidentifier(salt="fuzz", burned_in="ignore")
    dataset_path = Deidentifier(salt="fuzz", burned_in="ignore")
    dataset_path.native = False
    # An empty UI value gets a fresh UID: the same sequence of them on both paths.
    real_generate = deid_module.generate_uid
    fresh = [0]

    def numbered_uid(prefix=None, entropy_srcs=None):
        fresh[0] += 1
        return real_generate(prefix, entropy_srcs=entropy_srcs or [str(fresh[0])])

    deid_module.generate_uid = numbered_uid

    def written(deid: Deidentifier, name: str) -> bytes | type:
        out = folder / name
        fresh[0] = 0
        try:
            deid.write_deidentified(source, out)
        except (DicomfastError, ValueError) as exc:
            return type(exc)  # ValueError: a value the data set path cannot encode
        return out.read_bytes()

    def one(data: bytes) -> None:
        source.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = written(native, "a.dcm")
            b = written(dataset_path, "b.dcm")
        if isinstance(a, bytes) or isinstance(b, bytes):
            assert a == b, f"the native rewrite and the Dataset path differ: {a!r:.60} / {b!r:.60}"

    seeds = [p.read_bytes() for p in sorted((ROOT / "dicomfast" / "samples").glob("*.dcm"))]
    return one, seeds


def _setup_dimse():
    from dicomfast.errors import DicomfastError
    from dicomfast.net import dimse

    def one(data: bytes) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cmd = dimse.decode_command(data)
                for el in cmd:
                    str(el.value)
                dimse.has_data_set(cmd)
                status = cmd.get("Status")
                if isinstance(status, int):
                    dimse.status_category(status)
            except DicomfastError:
                pass

    seeds = [dimse.encode_command(dimse.echo_rq(7)),
             dimse.encode_command(dimse.echo_rsp(dimse.echo_rq(7))),
             dimse.encode_command(dimse.store_rq(3, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"))]
    return one, seeds


def _setup_statemachine():
    from dicomfast.errors import DicomfastError
    from dicomfast.net import pdu as P
    from dicomfast.net.statemachine import Event, State, StateMachine

    peer_event = {P.ASSOCIATE_AC: Event.EVT3, P.ASSOCIATE_RJ: Event.EVT4,
                  P.ASSOCIATE_RQ: Event.EVT6, P.P_DATA_TF: Event.EVT10,
                  P.RELEASE_RQ: Event.EVT12, P.RELEASE_RP: Event.EVT13, P.ABORT: Event.EVT16}
    local = [Event.EVT1, Event.EVT2, Event.EVT5, Event.EVT7, Event.EVT8, Event.EVT9,
             Event.EVT11, Event.EVT14, Event.EVT15, Event.EVT17, Event.EVT18]
    pdu_events = set(peer_event.values()) | {Event.EVT19}
    no_connection = {State.STA1, State.STA4}

    def apply(sm: StateMachine, event: Event, op: int) -> None:
        # What the transport can deliver must have an action (PS3.8 Table 9-10): a PDU
        # whenever a connection is open, a close whenever one exists, the ARTIM expiry
        # whenever the timer runs. Those are skipped where they cannot happen.
        if event in pdu_events and sm.state in no_connection:
            return
        if event == Event.EVT17 and sm.state == State.STA1:
            return
        if event == Event.EVT18 and not sm.artim:
            return
        received = event in pdu_events or event in (Event.EVT17, Event.EVT18)
        if received and not sm.can(event):
            raise AssertionError(f"{event.name} has no action in {sm.state.name}")
        try:
            t = sm.handle(event, acceptable=bool(op & 1), abort_reason=op % 7,
                          peer_user_abort=bool(op & 2))
        except DicomfastError:
            if received:
                raise
            return  # a local primitive at the wrong time: InvalidEventError
        assert isinstance(t.next_state, State) and sm.state == t.next_state
        if event == Event.EVT17:
            assert sm.state == State.STA1, f"transport closed, still {sm.state.name}"

    def one(data: bytes) -> None:
        sms = [StateMachine(requestor=True), StateMachine(requestor=False)]
        framer = P.Framer(max_pdata_len=16384)
        pos = 0
        while pos < len(data):
            op = data[pos]
            pos += 1
            sm = sms[op >> 7]
            if op & 0x40:  # a local or transport event
                apply(sm, local[op % len(local)], op)
                continue
            # A PDU: the next 2 bytes say how many bytes of the stream follow.
            n = int.from_bytes(data[pos:pos + 2], "big")
            framer.feed(data[pos + 2:pos + 2 + n])
            pos += 2 + n
            while True:
                try:
                    raw = framer.next()
                    if raw is None:
                        break
                    pdu = P.decode(raw, max_pdata_len=16384)
                    event = peer_event[raw[0]]
                    del pdu
                except DicomfastError:
                    event = Event.EVT19
                    framer = P.Framer(max_pdata_len=16384)  # the stream is abandoned
                apply(sm, event, op)
                if event == Event.EVT19:
                    break

    seeds = []
    try:
        rq = P.encode(P.AssociateRQ(called_ae="SCP", calling_ae="SCU", contexts=[
            P.PresentationContext(1, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])]))
        ac = P.encode(P.AssociateAC(called_ae="SCP", calling_ae="SCU", contexts=[
            P.PresentationContextResult(1, P.PC_ACCEPTANCE, "1.2.840.10008.1.2")]))
        rel = P.encode(P.ReleaseRQ())
        rp = P.encode(P.ReleaseRP())

        def step(side: int, pdu: bytes) -> bytes:
            return bytes([side << 7]) + len(pdu).to_bytes(2, "big") + pdu

        seeds.append(bytes([0x40 + 0, 0x40 + 1]) + step(0, ac) + step(0, rp))
        seeds.append(bytes([0xC0 + 2]) + step(1, rq) + bytes([0xC0 + 3]) + step(1, rel))
    except (TypeError, DicomfastError):
        pass
    return one, seeds


SETUPS = {"read": _setup_read, "dimse": _setup_dimse, "statemachine": _setup_statemachine,
          "deid": _setup_deid}


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in SETUPS or not sys.argv[2].isdigit():
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    target, seconds, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    try:
        import atheris
    except ImportError:
        print("fuzz_python: atheris is not installed (pip install 'dicomfast[fuzz]')",
              file=sys.stderr)
        return 3
    one, seeds = SETUPS[target]()
    # After the imports: instrument_imports() misses modules that an editable install's
    # finder loads, and instrument_all() covers every function loaded so far.
    atheris.instrument_all()
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-python-{target}-"))
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)

    def test_one(data: bytes) -> None:
        one(data)

    args = [sys.argv[0], f"-max_total_time={seconds}", "-max_len=65536", "-timeout=10",
            "-rss_limit_mb=3072", "-print_final_stats=1", str(corpus), *extra]
    atheris.Setup(args, test_one)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
