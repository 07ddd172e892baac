"""The network command line: echo, store, storescp; exit codes and one-line reasons."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_net_helpers import (
    HOST,
    ROOT,
    by_instance_uid,
    dcmtk,
    dcmtk_env,
    dicomfast_storescp_process,
    free_port,
    make_objects,
    need_dcmtk,
    same_dataset,
)

from dicomfast.net import AE, cli


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomfast.net.cli", *args], cwd=str(ROOT / "tests"),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def scp(tmp_path):
    with AE("CLISCP").serve_in_background(tmp_path / "in", host=HOST) as server:
        server.out = tmp_path / "in"
        yield server


def test_add_subcommands_registers_three():
    parser = argparse.ArgumentParser()
    cli.add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["echo", "h", "104", "--aet", "A", "--called-aet", "B"])
    assert callable(args.net_main) and (args.host, args.port, args.aet) == ("h", 104, "A")
    args = parser.parse_args(["store", "h", "11112", "a.dcm", "dir"])
    assert args.paths == ["a.dcm", "dir"]
    args = parser.parse_args(["storescp", "--port", "0", "--output-dir", "x"])
    assert args.output_dir == "x" and not args.no_fsync and not args.no_direct_io
    with pytest.raises(SystemExit):
        parser.parse_args(["echo", "h", "99999"])


def test_echo_ok_and_refused(scp, capsys):
    assert cli.echo(HOST, scp.port, "ME", "CLISCP") == 0
    assert "0x0000 Success" in capsys.readouterr().out
    assert cli.echo(HOST, free_port(), "ME", "X", timeout=3) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dicomfast: echo")


def test_store_files_and_folders(scp, tmp_path):
    objs = make_objects(tmp_path / "objs", ("CT_small.dcm", "MR_small_RLE.dcm"))
    sub = tmp_path / "tree" / "a"
    sub.mkdir(parents=True)
    (sub / objs[1].name).write_bytes(objs[1].read_bytes())
    run = _run("store", HOST, str(scp.port), str(objs[0]), str(tmp_path / "tree"),
               "--called-aet", "CLISCP")
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"dicomfast: store: 2 of 2 objects stored on {HOST}:{scp.port}")
    stored = by_instance_uid(scp.out)
    assert len(stored) == 2
    import pydicom

    for p in objs:
        uid = str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        same_dataset(p, stored[uid], same_syntax=True)


def test_store_reports_each_failure(scp, tmp_path):
    make_objects(tmp_path / "objs", ("CT_small.dcm",))
    junk = tmp_path / "objs" / "notdicom.dcm"
    junk.write_bytes(b"hello")
    run = _run("store", HOST, str(scp.port), str(tmp_path / "objs"))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert any("notdicom.dcm: cannot read: " in line for line in lines)
    assert lines[-1].startswith("dicomfast: store: 1 of 2")
    assert len(by_instance_uid(scp.out)) == 1
    missing = _run("store", HOST, str(scp.port), str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


@pytest.mark.parametrize("flags", [(), ("--no-direct-io",)], ids=["direct-io", "page-cache"])
def test_storescp_process_with_dcmtk_and_sigterm(tmp_path, flags):
    need_dcmtk("echoscu", "storescu")
    port = free_port()
    objs = make_objects(tmp_path / "objs", ("CT_small.dcm", "rtplan.dcm"))
    out = tmp_path / "out"
    with dicomfast_storescp_process(out, port, "--aet", "CLISCP", *flags) as proc:
        run = subprocess.run([dcmtk("echoscu"), HOST, str(port)], env=dcmtk_env(),
                             capture_output=True, timeout=30)
        assert run.returncode == 0
        run = subprocess.run([dcmtk("storescu"), HOST, str(port), *map(str, objs)],
                             env=dcmtk_env(), capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        assert _run("echo", HOST, str(port)).returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert sorted(os.listdir(out)) == sorted(f"{u}.dcm" for u in by_instance_uid(out))
    assert len(os.listdir(out)) == 2


def test_storescp_bad_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = _run("storescp", "--port", str(free_port()), "--output-dir", str(blocker / "sub"),
               timeout=30)
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1
    assert run.stderr.startswith("dicomfast: storescp")


def test_module_help_lists_subcommands():
    run = _run("--help")
    assert run.returncode == 0
    for name in ("echo", "store", "storescp"):
        assert name in run.stdout


def test_store_module_path_is_importable_without_net_in_dicomfast():
    code = "import sys, dicomfast; print(any(m.startswith('dicomfast.net') for m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(Path(__file__).parent))
    assert run.stdout.strip() == "False"
