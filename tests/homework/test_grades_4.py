"""Every chapter grades like homework, shard 4 of 4 (part of make test): what is checked
and why four files, in ``test_grades_1.py``'s docstring."""
import pytest

from cnnbook.grading import onekernel

SHARD = 3


@pytest.mark.parametrize("chapter", onekernel.shard(SHARD))
def test_chapter_grades_like_homework(chapter, load_tool):
    onekernel.assert_grades_like_homework(chapter, load_tool("assignments").TIMEOUT)
