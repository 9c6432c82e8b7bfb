"""Offline speaker diarization: resemblyzer voice embeddings over VAD speech, clustered by threshold.

Nothing is downloaded: the voice encoder's weights (``resemblyzer/pretrained.pt``, 17 MB, a GE2E
d-vector LSTM) ship inside the ``resemblyzer`` wheel (Apache-2.0) and run on the torch WhisperX
already installs.

The method, for one channel (16 kHz mono float32) and its VAD speech regions:

1. **Level.** The speech is raised to -30 dBFS (never lowered), resemblyzer's own preprocessing:
   the encoder reads a power mel spectrogram, not a log one, so its input depends on the level.
2. **Windows.** Windows of ``WINDOW_S`` every ``HOP_S`` inside each speech region (the last one
   flush with the region's end); a region shorter than a window but at least ``MIN_WINDOW_S``
   is one window; shorter ones get no window. Each window gets one 256-dimensional embedding.
3. **Clustering.** Agglomerative, average linkage on cosine distance, cut at the distance the
   threshold maps to; ``max_speakers`` caps the number of clusters. A cluster that wins under
   ``MIN_CLUSTER_S`` of speech is not a speaker (windows straddling a change of speaker, a
   cough) and joins the cluster whose centroid is closest.
4. **Labels.** Every ``STEP_S`` of speech takes the majority label of the windows covering it;
   speech no window covers takes the nearest labelled frame's; label runs shorter than
   ``MIN_TURN_S`` take the longer neighbour's label.
5. **Names.** Speakers are ``"1"``, ``"2"``, … in order of first appearance (TRD's style).

**The threshold scale.** TRD's ``config.diarization.clustering.threshold`` (default ``-0.4``) is
read in Kaldi's convention for agglomerative clustering: clusters keep merging while their cost
is below the threshold, so a higher value merges more and finds fewer speakers. It maps onto the
cosine-distance cut one to one, shifted so that TRD's default lands on the cut measured best
here: ``distance = threshold + 0.70`` (-0.4 → 0.30). Resemblyzer's embeddings are non-negative
and unit-length, so distances lie in [0, 1]: a threshold of 0.3 or more gives one speaker.

**Measured** by ``bench/diarization.py`` (2 shared CPU cores) on the two-speaker
``sample.wav``/``sample.rttm`` that pyannote-audio ships (30 s, about 1.8 s of it overlapped
speech), speech regions from WhisperX's VAD, ``pyannote.metrics`` with overlap scored:

- DER 0.163 with no collar (missed 0.078, mostly the overlap a one-voice-at-a-time answer cannot
  cover; false alarm 0.016; confusion 0.069), 0.029 with a ±0.25 s collar. Baseline, all speech
  one speaker: 0.499 and 0.464.
- The transcript's segments, split where the speaker changes (the engine's way): 0.231, 0.070
  with the collar; one speaker per whole Whisper segment instead: 0.394 and 0.258.
- 0.35 s for the 30 s file, a real-time factor of 0.012, after a first call of 1.3 s that loads
  the encoder and JIT-compiles librosa; 20 minutes of dialogue took 12 s.

**A narrow target.** The sample keeps its two speakers for distances 0.28-0.31 only (TRD -0.42 to
-0.39); from -0.38 they merge into one. The tests' espeak-ng files (voices A B A; one voice for
22 s) stay right from -0.45 to -0.3. Hops of 0.5 and 0.75 s widened the sample's band a little
(0.25-0.31) but cost DER (0.208, 0.185); 2-3 s of ``MIN_CLUSTER_S`` let windows straddling speaker
changes become a third "speaker". One 30 s recording cannot settle a threshold for all audio:
that is why it is configurable.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
TRD_DEFAULT_THRESHOLD = -0.4  # TRD's documented default for clustering.threshold
DEFAULT_DISTANCE = 0.30  # the cosine distance TRD's default maps to: measured best, see above

WINDOW_S = 1.5  # one embedding per window; resemblyzer's own partials are 1.6 s
HOP_S = 0.25  # measured best DER; see "A narrow target"
MAX_WINDOWS = 6_000  # the linkage holds n²/2 distances; longer speech gets a longer hop
MIN_WINDOW_S = 0.5  # shorter regions carry too little voice for a useful embedding
MIN_CLUSTER_S = 4.0  # a speaker needs this much speech: less is windows straddling a change
STEP_S = 0.05  # time resolution of the labels
MIN_TURN_S = 0.5  # shorter label runs are smoothed away
_TARGET_DBFS = -30.0  # resemblyzer's audio_norm_target_dBFS
_MEL_STEP_S = 0.01  # resemblyzer's mel frame step
_BATCH = 64  # windows per encoder call: bounds memory

Audio = npt.NDArray[np.float32]
Embeddings = npt.NDArray[np.float32]
Span = tuple[float, float]


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str


def distance_threshold(trd_threshold: float) -> float:
    """TRD's clustering threshold → the cosine distance at which clusters stop merging."""
    return trd_threshold - TRD_DEFAULT_THRESHOLD + DEFAULT_DISTANCE


def diarize(
    audio: Audio, speech: list[Span], threshold: float, max_speakers: int | None = None
) -> list[SpeakerTurn]:
    """Who speaks when inside ``speech`` (seconds); ``threshold`` on TRD's scale."""
    regions = _clip(speech, audio.size / SAMPLE_RATE)
    level = _rms(audio, regions) if regions else 0.0
    if level == 0.0:
        return []  # no speech, or digital silence where the VAD saw some: nobody speaks
    windows = _windows(regions)
    if len(windows) < 2:
        # Too little speech to compare voices: it is all one speaker.
        return [SpeakerTurn(round(start, 3), round(end, 3), "1") for start, end in regions]
    embeddings = _embed(_raise_level(audio, level), regions, windows)
    labels = cluster(embeddings, distance_threshold(threshold), max_speakers)
    grid = _Grid(regions, windows)
    labels = _absorb_small_clusters(embeddings, labels, grid.won_seconds(labels))
    return _name(grid.turns(labels))


def cluster(embeddings: Embeddings, distance: float, max_speakers: int | None = None) -> list[int]:
    """Average-linkage agglomerative clustering on cosine distance, cut at ``distance``; labels 0…"""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(embeddings) < 2:
        return [0] * len(embeddings)
    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    labels = fcluster(tree, t=max(distance, 0.0), criterion="distance")
    if max_speakers is not None and labels.max() > max_speakers:
        labels = fcluster(tree, t=max(max_speakers, 1), criterion="maxclust")
    return [int(label) - 1 for label in labels]


def _clip(speech: list[Span], duration: float) -> list[Span]:
    """Regions inside the audio, in order, too-short ones dropped."""
    clipped = [(max(0.0, float(s)), min(duration, float(e))) for s, e in speech]
    return sorted((s, e) for s, e in clipped if e - s >= STEP_S)


def _windows(regions: list[Span]) -> list[Span]:
    """The embedding windows, in time order, each inside one region."""
    speech_s = sum(end - start for start, end in regions)
    hop = max(HOP_S, speech_s / MAX_WINDOWS)
    windows: list[Span] = []
    for start, end in regions:
        if end - start < MIN_WINDOW_S:
            continue
        if end - start <= WINDOW_S:
            windows.append((start, end))
            continue
        starts = [*np.arange(start, end - WINDOW_S, hop).tolist(), end - WINDOW_S]
        windows.extend((s, s + WINDOW_S) for s in starts)
    return windows


def _rms(audio: Audio, regions: list[Span]) -> float:
    """The root mean square of the speech regions' samples."""
    speech = np.concatenate([audio[_sample(s) : _sample(e)] for s, e in regions])
    return float(np.sqrt(np.mean(np.square(speech, dtype=np.float64)))) if speech.size else 0.0


def _raise_level(audio: Audio, speech_rms: float) -> Audio:
    """The audio raised so that its speech sits at -30 dBFS, as resemblyzer's preprocessing does."""
    gain_db = _TARGET_DBFS - 20.0 * np.log10(speech_rms)
    return audio if gain_db <= 0 else (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32)


def _embed(audio: Audio, regions: list[Span], windows: list[Span]) -> Embeddings:
    """One unit-length embedding per window; the mel spectrogram is computed once per region."""
    from resemblyzer.audio import wav_to_mel_spectrogram  # type: ignore[import-untyped]

    mels: list[npt.NDArray[np.float32]] = []
    region_index = 0
    region_mel = wav_to_mel_spectrogram(audio[_sample(regions[0][0]) : _sample(regions[0][1])])
    for start, end in windows:
        while end > regions[region_index][1] + 1e-6:  # windows are in order, inside regions
            region_index += 1
            first, last = regions[region_index]
            region_mel = wav_to_mel_spectrogram(audio[_sample(first) : _sample(last)])
        offset = round((start - regions[region_index][0]) / _MEL_STEP_S)
        mels.append(region_mel[offset : offset + round((end - start) / _MEL_STEP_S)])
    return _encode(mels)


def _encode(mels: list[npt.NDArray[np.float32]]) -> Embeddings:
    """The voice encoder over mel windows, batched by window length."""
    import torch

    encoder = _encoder()
    out = np.zeros((len(mels), 256), dtype=np.float32)  # resemblyzer's embedding size
    by_length: dict[int, list[int]] = {}
    for index, mel in enumerate(mels):
        by_length.setdefault(mel.shape[0], []).append(index)
    with torch.inference_mode():
        for indices in by_length.values():
            for first in range(0, len(indices), _BATCH):
                batch = indices[first : first + _BATCH]
                out[batch] = encoder(torch.from_numpy(np.stack([mels[i] for i in batch]))).numpy()
    return out


@functools.cache
def _encoder() -> Any:
    """resemblyzer's voice encoder from the weights inside its wheel, on CPU, loaded once."""
    with warnings.catch_warnings():
        # resemblyzer imports scipy.ndimage.morphology, deprecated in SciPy: not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import VoiceEncoder  # type: ignore[import-untyped]

    encoder = VoiceEncoder("cpu", verbose=False)
    encoder.eval()
    return encoder


def _sample(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def _absorb_small_clusters(embeddings: Embeddings, labels: list[int], won: dict[int, float]) -> list[int]:
    """Until every cluster wins ``MIN_CLUSTER_S`` of speech, the one winning least joins the cluster
    whose centroid is closest (so fragments of one voice rejoin each other, not the largest)."""
    merged = np.array(labels)
    seconds = {label: won.get(label, 0.0) for label in set(labels)}
    while len(seconds) > 1:
        smallest = min(seconds, key=lambda label: seconds[label])
        if seconds[smallest] >= MIN_CLUSTER_S:
            break
        others = [label for label in seconds if label != smallest]
        centroids = np.stack([_unit(embeddings[merged == label].mean(axis=0)) for label in others])
        target = others[int(np.argmax(centroids @ _unit(embeddings[merged == smallest].mean(axis=0))))]
        merged[merged == smallest] = target
        seconds[target] += seconds.pop(smallest)
    return [int(label) for label in merged]


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return vector / np.linalg.norm(vector)


class _Grid:
    """The speech regions on a grid of ``STEP_S`` frames, and the windows covering them."""

    def __init__(self, regions: list[Span], windows: list[Span]) -> None:
        size = int(np.ceil(regions[-1][1] / STEP_S))
        self.in_speech = np.zeros(size, dtype=bool)
        for start, end in regions:
            self.in_speech[_frames(start, end)] = True
        # Each window's frames, flattened: (frame, window) pairs for the votes.
        spans = [np.arange(frames.start, frames.stop) for frames in (_frames(s, e) for s, e in windows)]
        self._frame_of_pair = np.concatenate(spans)
        self._window_of_pair = np.repeat(np.arange(len(windows)), [span.size for span in spans])
        self.covered = np.zeros(size, dtype=bool)
        self.covered[self._frame_of_pair] = True

    def majority(self, labels: list[int]) -> npt.NDArray[np.int64]:
        """Per frame, the label most of the windows covering it have (0 where none does)."""
        from scipy.sparse import coo_matrix

        # Sparse: a frame has a handful of windows, but there may be thousands of clusters.
        label_of_pair = np.array(labels)[self._window_of_pair]
        votes = coo_matrix(
            (np.ones(label_of_pair.size), (self._frame_of_pair, label_of_pair)),
            shape=(self.in_speech.size, max(labels) + 1),
        ).tocsr()  # duplicate (frame, label) pairs add up
        return np.asarray(votes.argmax(axis=1)).ravel().astype(np.int64)

    def won_seconds(self, labels: list[int]) -> dict[int, float]:
        """Seconds of speech each label wins by majority."""
        won = np.bincount(self.majority(labels)[self.covered & self.in_speech])
        return {label: float(frames) * STEP_S for label, frames in enumerate(won)}

    def turns(self, labels: list[int]) -> list[tuple[float, float, int]]:
        """(start, end, label) runs over the speech, gaps filled and short runs smoothed."""
        from scipy.ndimage import distance_transform_edt

        frame_labels = self.majority(labels)
        # Speech no window covers (regions under MIN_WINDOW_S) takes the nearest covered frame's label.
        _, (nearest,) = distance_transform_edt(~self.covered, return_indices=True)
        frame_labels = frame_labels[nearest]
        speech = np.flatnonzero(self.in_speech)
        # Smoothed over speech only: a pause neither splits nor joins a speaker's run.
        frame_labels[speech] = _smooth(frame_labels[speech])
        marked = np.where(self.in_speech, frame_labels, -1)
        return [
            (first * STEP_S, last * STEP_S, int(marked[first]))
            for first, last in _run_bounds(marked)
            if marked[first] >= 0
        ]


def _frames(start: float, end: float) -> slice:
    return slice(int(start / STEP_S), int(np.ceil(end / STEP_S)))


def _smooth(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Runs shorter than ``MIN_TURN_S`` take the label of their longer neighbour."""
    shortest = round(MIN_TURN_S / STEP_S)
    smoothed = labels.copy()
    runs = _run_bounds(labels)
    for index, (first, last) in enumerate(runs):
        if last - first >= shortest or len(runs) == 1:
            continue
        neighbours = [runs[i] for i in (index - 1, index + 1) if 0 <= i < len(runs)]
        longer = max(neighbours, key=lambda run: run[1] - run[0])
        smoothed[first:last] = smoothed[longer[0]]
    return smoothed


def _run_bounds(sequence: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """[first, last) index pairs of the runs of equal values."""
    changes = np.flatnonzero(np.diff(sequence)) + 1
    edges = [0, *changes.tolist(), int(sequence.size)]
    return list(itertools.pairwise(edges))


def _name(runs: list[tuple[float, float, int]]) -> list[SpeakerTurn]:
    """Turns with speakers named "1", "2", … in order of first appearance."""
    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    for start, end, label in runs:
        name = names.setdefault(label, str(len(names) + 1))
        turns.append(SpeakerTurn(round(start, 3), round(end, 3), name))
    return turns
