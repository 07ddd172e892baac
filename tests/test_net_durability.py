"""Durability: the storage SCP process is SIGKILLed at random moments while another
process stores objects into it, and restarted; every object the SCU saw
acknowledged must be on disk, complete and readable, and no file under a final name
may be partial.

The object count is DICOMFAST_DURABILITY_N (default 200, CI-sized; the issue's
figure is 1,000).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from test_net_helpers import HOST, ROOT, free_port, make_objects, same_dataset, wait_port

from dicomfast import unnamed
from dicomfast.errors import DicomfastError
from dicomfast.net import AE

N = int(os.environ.get("DICOMFAST_DURABILITY_N", "200"))
pydicom = pytest.importorskip("pydicom")


class KilledSCP:
    """A dicomfast storescp child process that a thread keeps killing and restarting."""

    def __init__(self, folder, port: int, seed: int):
        self.folder, self.port = folder, port
        self.rng = random.Random(seed)
        self.kills = 0
        self.stop = threading.Event()
        self.proc: subprocess.Popen | None = None
        self._start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dicomfast.net.cli", "storescp", "--port", str(self.port),
             "--output-dir", str(self.folder), "--host", HOST, "--network-timeout", "10"],
            cwd=str(ROOT / "tests"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout=20, proc=self.proc)

    def _stored(self) -> int:
        return sum(1 for n in os.listdir(self.folder) if not n.startswith("."))

    def _run(self) -> None:
        # Kill after a random number of further objects has been stored, then a random
        # few milliseconds more, so kills land in the middle of transfers and commits
        # however fast the machine is.
        while not self.stop.is_set():
            target = self._stored() + self.rng.randint(3, 30)
            while self._stored() < target:
                if self.stop.wait(0.001):
                    return
            time.sleep(self.rng.uniform(0, 0.02))
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1
            if self.stop.is_set():
                return
            self._start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.mark.parametrize("associations", [1, 3])
def test_acknowledged_objects_survive_sigkill(tmp_path, associations):
    """One association with an operations window, or several at once: either way the
    SCP commits objects in batches (group commit), and a kill can land inside one."""
    sent = make_objects(tmp_path / "sent", ("CT_small.dcm",), copies=N)
    uid_of = {str(p): str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
              for p in sent}
    out = tmp_path / "out"
    out.mkdir()
    acked: set[str] = set()
    scp = KilledSCP(out, free_port(), seed=N)
    ae = AE("DURABLE", acse_timeout=5, dimse_timeout=10, connect_timeout=5, max_async_ops=8)
    deadline = time.monotonic() + 30 + N * 0.2
    attempts = 0
    try:
        remaining = list(map(str, sent))
        while remaining and time.monotonic() < deadline:
            attempts += 1

            def on_result(res) -> None:
                if res.ok:
                    acked.add(res.source)

            parts = [remaining[i::associations] for i in range(associations)]

            async def store_parts(parts=parts, on_result=on_result) -> list:
                return await asyncio.gather(
                    *(ae.store_async(HOST, scp.port, part, on_result=on_result)
                      for part in parts if part), return_exceptions=True)

            failures = [r for r in asyncio.run(store_parts())
                        if isinstance(r, BaseException)]
            for exc in failures:
                if not isinstance(exc, (DicomfastError, OSError)):
                    raise exc
            if failures:
                time.sleep(0.05)  # refused while the SCP restarts
            remaining = [p for p in remaining if p not in acked]
    finally:
        scp.close()
    assert not remaining, f"{len(remaining)} objects never acknowledged in time"
    assert scp.kills >= min(3, N // 40)
    # Every acknowledged object is there, whole.
    for src in acked:
        path = out / f"{uid_of[src]}.dcm"
        assert path.exists(), f"acknowledged {uid_of[src]} is missing"
    for src in random.Random(1).sample(sorted(acked), min(len(acked), 50)):
        same_dataset(src, out / f"{uid_of[src]}.dcm", same_syntax=True)
    # Nothing partial under a final name, acknowledged or not (a commit can finish
    # after its association died: on disk, whole, but never acknowledged).
    pixels = len(pydicom.dcmread(sent[0]).PixelData)
    for path in out.iterdir():
        if not path.name.startswith("."):
            ds = pydicom.dcmread(path)
            assert ds.SOPInstanceUID + ".dcm" == path.name
            assert len(ds.PixelData) == pixels
    if unnamed.supported(str(out)):
        # Objects in flight had no name yet (O_TMPFILE): the kernel freed them with
        # each killed process, so nothing is left over to clean up.
        assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    print(f"\n{N} objects, {len(acked)} acknowledged, {scp.kills} SIGKILLs, "
          f"{attempts} rounds of {associations} association(s)")
