"""The replay buffer keeps exactly the audio after an offset, within its bound."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sessions.replay import ReplayBuffer


def test_since_cuts_the_first_frame() -> None:
    buffer = ReplayBuffer(start=100, limit=10_000)
    for chunk in (b"aaaa", b"bbbb", b"cccc"):
        buffer.append(chunk)
    assert buffer.end == 112
    assert b"".join(buffer.since(106)) == b"bbcccc"
    buffer.trim(108)
    assert buffer.start == 108
    assert b"".join(buffer.since(108)) == b"cccc"
    assert buffer.covers(110)
    assert not buffer.covers(104)


def test_limit_drops_the_oldest() -> None:
    buffer = ReplayBuffer(start=0, limit=8)
    for chunk in (b"aaaa", b"bbbb", b"cccc"):
        buffer.append(chunk)
    assert (buffer.start, buffer.end) == (4, 12)
    assert not buffer.covers(0)


@given(
    st.lists(st.binary(min_size=1, max_size=50), max_size=30),
    st.integers(min_value=0, max_value=1500),
)
def test_since_is_the_suffix_of_everything_appended(chunks: list[bytes], cut: int) -> None:
    buffer = ReplayBuffer(start=0, limit=10**9)
    for chunk in chunks:
        buffer.append(chunk)
    whole = b"".join(chunks)
    cut = min(cut, len(whole))
    assert b"".join(buffer.since(cut)) == whole[cut:]
    buffer.trim(cut)
    assert buffer.start <= cut
    assert b"".join(buffer.since(cut)) == whole[cut:]
