"""Per-channel commit points (PROTOCOL.md, "Resume", point 2)."""

from __future__ import annotations

from gateway.sessions.commit import ChannelCommits


def test_one_channel_commits_at_its_last_final() -> None:
    commits = ChannelCommits(1, base_ms=0)
    commits.interim(0)
    assert commits.committed_ms == 0
    commits.final(0, 2000)
    assert commits.committed_ms == 2000
    commits.interim(0)
    assert commits.committed_ms == 2000


def test_a_silent_channel_does_not_hold_the_commit_point_back() -> None:
    commits = ChannelCommits(2, base_ms=0)
    for end in (2000, 4000, 6000):
        commits.interim(0)
        commits.final(0, end)
        assert commits.committed_ms == end


def test_an_open_utterance_holds_the_commit_point_back() -> None:
    commits = ChannelCommits(2, base_ms=0)
    commits.interim(0)
    commits.final(0, 3000)
    commits.interim(1)  # the right channel speaks from somewhere after 0
    commits.interim(0)
    commits.final(0, 5000)
    assert commits.committed_ms == 0
    commits.final(1, 4500)
    assert commits.committed_ms == 5000


def test_finals_behind_a_channels_last_final_are_repeats_after_a_restart() -> None:
    commits = ChannelCommits(2, base_ms=0)
    commits.final(0, 5000)
    commits.interim(1)
    commits.final(1, 3000)
    assert commits.already_final(0, 5000)
    assert not commits.already_final(0, 5001)
    assert commits.already_final(1, 3000)


def test_the_state_round_trips_through_the_store() -> None:
    commits = ChannelCommits(2, base_ms=0)
    commits.final(0, 5000)
    commits.final(1, 3000)
    restored = ChannelCommits(2, base_ms=3000, encoded=commits.encode())
    assert restored.encode() == "5000,3000"
    assert restored.utterance_start(0) == 5000
    assert ChannelCommits(2, base_ms=4000, encoded="5000,3000").encode() == "5000,4000"
