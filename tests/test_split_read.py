"""dicomfast.split_read: a file read up to its pixel data, the rest copied file to file.

The property: the head read plus the file's tail, written one after the other,
is byte for byte what writing the whole file read whole gives; and every file the
split does not suit is read whole.
"""

from __future__ import annotations

import errno
import os
import warnings

import pytest
from corpus import all_files, file_id

import dicomfast
from dicomfast.atomic import FileRange, write_chunks
from dicomfast.errors import DicomfastError, TruncatedDataError
from dicomfast.split_read import _HEAD_READS, HEAD_BYTES, open_split
from dicomfast.writer import part10_chunks

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


def _whole(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dicomfast.read(path)
        except DicomfastError:
            return None


def _bytes(chunks):
    out = bytearray()
    for chunk in chunks:
        if type(chunk) is FileRange:
            out += os.pread(chunk.fd, chunk.length, chunk.offset)
        else:
            out += chunk
    return bytes(out)


def _written(ds):
    try:
        return part10_chunks(ds)
    except DicomfastError:
        return None


@pytest.fixture(scope="module")
def corpus_splits():
    """(path, the whole read, split.dataset tags, the split's bytes or None) per file."""
    out = []
    for path in all_files():
        whole = _whole(path)
        if whole is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_split(path) as split:
                chunks = _written(split.dataset)
                got = None
                if chunks is not None:
                    chunks += [r for r in (split.pixels, split.padding) if r is not None]
                    got = _bytes(chunks)
                out.append((path, whole, split.pixels is not None, got))
    return out


def test_split_writes_what_the_whole_read_writes(corpus_splits):
    split_count = 0
    for path, whole, was_split, got in corpus_splits:
        expected = _written(whole)
        if expected is None:
            assert got is None, file_id(path)
            continue
        assert got == _bytes(expected), file_id(path)
        split_count += was_split
    # Most corpus files above HEAD_BYTES end with their pixel data: if none split,
    # the fast path is not being taken at all.
    assert split_count >= 50


def test_what_splits_and_what_is_read_whole(corpus_splits):
    padded = 0
    for path, whole, was_split, _ in corpus_splits:
        size = path.stat().st_size
        tags = sorted(whole._map())
        if tags and tags[-1] == 0xFFFCFFFC:  # Data Set Trailing Padding may follow
            tags.pop()
            padded += was_split
        last = tags[-1] if tags else 0
        if size <= HEAD_BYTES or last not in _PIXEL_TAGS or whole.transfer_syntax is None \
                or whole.transfer_syntax.is_deflated:
            assert not was_split, file_id(path)
    assert padded >= 3  # the corpus has such files: the padding is accepted


def test_the_head_dataset_has_all_but_the_pixel_data(corpus_splits):
    for path, whole, was_split, _ in corpus_splits:
        if not was_split:
            continue
        with open_split(path) as split:
            tags = set(split.dataset._map())
            assert tags == set(whole._map()) - {split.pixel_tag, 0xFFFCFFFC}, file_id(path)
            assert split.dataset.filename == str(path)
            end = split.pixels.offset + split.pixels.length
            if split.padding is not None:
                assert split.padding.offset == end
                end += split.padding.length
                assert 0xFFFCFFFC in whole
            assert end == path.stat().st_size
            raw = os.pread(split.fd, 4, split.pixels.offset)
            little = whole.transfer_syntax.is_little_endian
            group = int.from_bytes(raw[:2], "little" if little else "big")
            assert group == 0x7FE0


def _big_file():
    for path in all_files():
        if path.stat().st_size > 4 * HEAD_BYTES and path.suffix == ".dcm":
            ds = _whole(path)
            if ds is not None and max(ds._map()) == 0x7FE00010 and \
                    not ds.transfer_syntax.is_deflated and _written(ds) is not None:
                return path
    pytest.skip("no large corpus file ends with its pixel data")


def test_elements_after_the_pixel_data_make_a_whole_read(tmp_path):
    ds = dicomfast.read(_big_file())
    ds.add_new(0x7FE10010, "LO", "A PRIVATE CREATOR")
    ds.add_new(0x7FE11001, "LO", "a value after the pixel data")
    path = tmp_path / "tail.dcm"
    ds.save(path)
    with open_split(path) as split:
        assert split.pixels is None
        assert split.dataset[0x7FE11001].value == "a value after the pixel data"
        assert "PixelData" in split.dataset


@pytest.mark.parametrize("blob, splits", [(_HEAD_READS[0] + 10, True),
                                          (_HEAD_READS[1] + 10, False)])
def test_a_head_longer_than_a_read_reads_again(tmp_path, blob, splits):
    """A head longer than the first read is read again, longer; one longer than the
    second makes the file read whole. Neither the cut heads scanned on the way warns."""
    ds = dicomfast.read(_big_file())
    ds.add_new(0x00291010, "OB", b"\x01" * blob)
    path = tmp_path / "long-head.dcm"
    ds.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_split(path) as split:
            assert (split.pixels is not None) == splits
            assert len(split.dataset[0x00291010].value) == blob
            assert bytes(_bytes(part10_chunks(split.dataset) + [split.pixels] * splits)) \
                == _bytes(part10_chunks(dicomfast.read(path)))


def test_a_source_cut_meanwhile_is_an_error_naming_the_offset(tmp_path):
    path = tmp_path / "in.dcm"
    path.write_bytes(_big_file().read_bytes())
    with open_split(path) as split:
        assert split.pixels is not None
        os.truncate(path, split.pixels.offset + 100)
        out = os.open(tmp_path / "out.dcm", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(TruncatedDataError, match=f"offset {split.pixels.offset + 100}"):
                write_chunks(out, [b"head", split.pixels])
        finally:
            os.close(out)


@pytest.mark.parametrize("kernel", ["refused", "missing"])
def test_copy_falls_back_to_user_memory(tmp_path, monkeypatch, kernel):
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3 << 20))
    if kernel == "missing":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:
        def refuse(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse)
    fd = os.open(source, os.O_RDONLY)
    out = os.open(tmp_path / "out.bin", os.O_WRONLY | os.O_CREAT)
    try:
        write_chunks(out, [b"ab", FileRange(fd, 5, (3 << 20) - 5), memoryview(b"cd")])
    finally:
        os.close(out)
        os.close(fd)
    assert (tmp_path / "out.bin").read_bytes() == b"ab" + source.read_bytes()[5:] + b"cd"


def test_short_writes_are_finished(tmp_path, monkeypatch):
    real = os.writev

    def at_most_3(fd, buffers):
        return real(fd, [bytes(memoryview(b).cast("B")[:3]) for b in buffers[:1]])

    monkeypatch.setattr(os, "writev", at_most_3)
    out = os.open(tmp_path / "out.bin", os.O_WRONLY | os.O_CREAT)
    try:
        write_chunks(out, [b"abcdefg", b"", bytearray(b"hij"), memoryview(b"klmnop")])
    finally:
        os.close(out)
    assert (tmp_path / "out.bin").read_bytes() == b"abcdefghijklmnop"


def test_a_pipe_is_read_whole(tmp_path):
    """A path that is not a regular file (a named pipe here) is read as a stream."""
    source = _big_file()
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    import threading

    feeder = threading.Thread(target=lambda: fifo.write_bytes(source.read_bytes()))
    feeder.start()
    try:
        with open_split(fifo) as split:
            assert split.pixels is None
            assert bytes(split.dataset.PixelData) == bytes(dicomfast.read(source).PixelData)
    finally:
        feeder.join()


def test_damaged_files_split_as_they_read_whole(tmp_path):
    """Bytes changed at random in the head, the pixel data element's header and its
    fragments: open_split raises nothing but what reading the file raises, and what
    it splits writes what the whole read writes."""
    import random

    rng = random.Random(1)
    sources = [p for p in all_files() if p.stat().st_size > HEAD_BYTES]
    sources = [p for p in sources if _whole(p) is not None][:40]
    path = tmp_path / "damaged.dcm"
    splits = 0
    for k in range(400):
        data = bytearray(sources[k % len(sources)].read_bytes())
        with open_split(sources[k % len(sources)]) as split:
            at = split.pixels.offset if split.pixels else rng.randrange(len(data))
        for _ in range(rng.randint(1, 4)):
            # near the pixel data element's start (its header, the first items), or anywhere
            pos = at + rng.randrange(64) if rng.random() < 0.7 else rng.randrange(len(data))
            if pos < len(data):
                data[pos] = rng.randrange(256)
        if rng.random() < 0.2:
            del data[rng.randrange(len(data)):]  # cut short
        path.write_bytes(bytes(data))
        whole = _whole(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with open_split(path) as split:
                    # what the whole read refuses is not split either
                    assert whole is not None or split.pixels is None, k
                    chunks = _written(split.dataset)
                    if chunks is None or whole is None:
                        continue
                    splits += split.pixels is not None
                    got = _bytes(chunks + [r for r in (split.pixels, split.padding) if r])
        except DicomfastError:
            assert whole is None, (k, "split raised where the whole read did not")
            continue
        expected = _written(whole)
        if expected is not None:
            assert got == _bytes(expected), k
    assert splits > 50
