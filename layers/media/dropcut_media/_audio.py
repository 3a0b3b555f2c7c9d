"""Audio on a sample-exact timeline: decoded frames in, spans of it out to AAC writers.

Times are samples from the video's first frame (the origin every part and seam is measured
from), so the audio of a span starts and ends exactly where its video does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer

from dropcut_media._av import mux, silence

#: A gap or overlap in the input's audio timestamps larger than this (seconds) is honoured
#: (silence inserted, or the repeated audio dropped); smaller ones are jitter and ignored.
RESYNC_SECONDS = Fraction(1, 20)
#: Samples handed to a span's writer at a time (bounds the memory of one chunk).
CHUNK_SAMPLES = 8192


def take(fifo: av.AudioFifo, samples: int = 0) -> AudioFrame:
    """``samples`` samples (0: all) from ``fifo``, which the caller saw holds that many
    (AudioFifo.read answers None only when it holds fewer)."""
    frame = fifo.read(samples)
    assert frame is not None, f"the fifo holds {fifo.samples} samples, not {samples}"
    return frame


class AacWriter:
    """Encodes the samples it is given into one AAC stream of one container, in encoder-sized
    frames (pts = samples written so far), and pads with silence to a length on finish."""

    def __init__(
        self, container: OutputContainer, stream: AudioStream, *, rate: int, layout: str
    ) -> None:
        self.container = container
        self.stream = stream
        self.rate = rate
        self.layout = layout
        self.fifo = av.AudioFifo()
        self.samples = 0
        self.finished = False

    def write(self, frame: AudioFrame) -> None:
        frame.pts = None
        self.fifo.write(frame)
        size = self.stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size:
            self._encode(take(self.fifo, size))

    def _encode(self, frame: AudioFrame) -> None:
        frame.pts = self.samples
        frame.time_base = Fraction(1, self.rate)
        self.samples += frame.samples
        mux(self.container, self.stream.encode(frame))

    def fill_to(self, total_samples: int) -> None:
        """Write silence until ``total_samples`` have been given (nothing if that many were)."""
        missing = total_samples - self.samples - self.fifo.samples
        if missing > 0:
            self.write(silence(missing, rate=self.rate, layout=self.layout))

    def finish(self, total_samples: int) -> None:
        """Pad with silence to ``total_samples`` (those already written count), encode the rest
        and flush the encoder. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self.fill_to(total_samples)
        if self.fifo.samples:
            self._encode(take(self.fifo))
        mux(self.container, self.stream.encode(None))


class SampleRouter:
    """One continuous audio timeline cut into spans: ``spans[i] = (start, end)`` in samples from
    the origin, increasing and not overlapping; the samples of span i go to ``sinks[i]`` and
    ``done(i)`` is called once span i is complete (or the input ends)."""

    def __init__(
        self,
        *,
        rate: int,
        layout: str,
        spans: Sequence[tuple[int, int]],
        sink: Callable[[int, AudioFrame], None],
        done: Callable[[int], None],
    ) -> None:
        self.rate = rate
        self.layout = layout
        self.spans = list(spans)
        self.sink = sink
        self.done = done
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self.fifo = av.AudioFifo()
        self.head: int | None = None  # the timeline sample at the head of the fifo
        self.span = 0

    @property
    def complete(self) -> bool:
        """Every span has been delivered."""
        return self.span >= len(self.spans)

    def push(self, frame: AudioFrame, start_seconds: Fraction) -> None:
        """A decoded audio frame whose first sample plays ``start_seconds`` after the origin."""
        if self.complete:
            return
        expected = round(start_seconds * self.rate)
        tolerance = RESYNC_SECONDS * self.rate
        if self.head is None:
            # The first frame: exact, silence before it when it starts after the first span.
            self.head = min(expected, self.spans[self.span][0])
            tolerance = Fraction(0)
        tail = self.head + self.fifo.samples
        if expected > tail + tolerance:
            self._append(silence(expected - tail, rate=self.rate, layout=self.layout))
        elif expected + frame.samples < tail - tolerance:
            return  # audio we already have (timestamps went back)
        for out in self.resampler.resample(frame):
            self._append(out)
        self._deliver()

    def _append(self, frame: AudioFrame) -> None:
        frame.pts = None
        self.fifo.write(frame)

    def _deliver(self) -> None:
        assert self.head is not None
        while not self.complete:
            start, end = self.spans[self.span]
            if self.head >= end:
                self.done(self.span)
                self.span += 1
                continue
            available = self.fifo.samples
            if available == 0:
                return
            if self.head < start:
                dropped = min(available, start - self.head)
                self.fifo.read(dropped)
                self.head += dropped
                continue
            count = min(available, end - self.head, CHUNK_SAMPLES)
            self.sink(self.span, take(self.fifo, count))
            self.head += count

    def finish(self) -> None:
        """The input has ended: deliver what the resampler holds, then close every span."""
        for out in self.resampler.resample(None):
            self._append(out)
        if self.head is not None:
            self._deliver()
        while not self.complete:
            self.done(self.span)
            self.span += 1
