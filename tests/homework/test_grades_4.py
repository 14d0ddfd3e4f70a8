"""Every chapter grades like homework, shard 4 of 4.

One kernel per chapter (``cnnbook.grading.onekernel``; why four files: ``onekernel.shard``):
the blank scores 0, the solution full marks, every fake that alters an answer loses its
points, no lesson cell fails in a submission's folder, and the longest cell stays under a
third of nbgrader's timeout. ``tests/test_cheats.py`` proves on chapter 02 that this check
grades like nbgrader's autograde.
"""
import pytest

from cnnbook.grading import onekernel

pytestmark = pytest.mark.skipif(not onekernel.enabled(),
                                reason="opt-in: CNNBOOK_GRADE_ALL=1, or CNNBOOK_GRADE=02,05")
SHARD = 3


@pytest.mark.parametrize("chapter", onekernel.shard(SHARD))
def test_chapter_grades_like_homework(chapter, load_tool):
    onekernel.assert_grades_like_homework(chapter, load_tool("assignments").TIMEOUT)
