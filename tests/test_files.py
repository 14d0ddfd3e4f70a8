"""cnnbook.files: atomic writes that leave no half file and the umask's permissions."""
import os

import pytest

from cnnbook.files import atomic_copy, atomic_write, umask_mode


def test_atomic_write_renames_into_place_with_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "sub" / "a.txt", lambda tmp: tmp.write_text("hello"))
        assert path.read_text() == "hello"
        assert path.stat().st_mode & 0o777 == 0o640 == umask_mode()
    finally:
        os.umask(old)
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_an_interrupted_write_leaves_the_old_file_and_no_part(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def interrupted(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_copy_copies_bytes(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 10)
    assert atomic_copy(src, tmp_path / "d" / "dst.bin").read_bytes() == src.read_bytes()
