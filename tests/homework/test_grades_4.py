"""Every chapter grades like homework, shard 4 of 4 (part of make test).

One kernel per chapter (``cnnbook.grading.onekernel``; why four files: ``onekernel.SHARDS``):
the blank scores 0, the solution full marks, every fake that alters an answer (hard-coded
values, a lookup table, an always-equal object, a patched torch.allclose, a forbidden call)
loses its points, no lesson cell fails in a submission's folder, and the longest cell stays
under a third of nbgrader's timeout. ``tests/test_cheats.py`` proves on chapter 02 that this
check grades like nbgrader's autograde. ``CNNBOOK_GRADE=02,05`` picks chapters.
"""
import pytest

from cnnbook.grading import onekernel

SHARD = 3


@pytest.mark.parametrize("chapter", onekernel.shard(SHARD))
def test_chapter_grades_like_homework(chapter, load_tool):
    onekernel.assert_grades_like_homework(chapter, load_tool("assignments").TIMEOUT)
