"""RDS decoding: block synchronisation, burst-error correction and the groups' contents.

From a data-bit stream (see :mod:`dsp.fm.rds_demod`) to PI, PS, PTY, radiotext and block
counts (IEC 62106 / EN 50067):

* **Syndromes** of every 26-bit window are computed at once (the code is linear: two
  8192-entry tables for the high and low 13 bits). A window whose syndrome is the offset
  word of block A, B, C, C' or D places a group start at ``position - 26 * index``.
* **Block synchronisation** is a vote: each such window votes for its group phase
  (mod 104); noise casts about 5/1024 random votes per bit, so a phase needs more votes
  than the Poisson law of the random ones gives with a false-sync probability under
  1e-4 over the whole stream. Votes are also counted in a sliding window of +-8 groups,
  so a bit slip re-synchronises where the local phase clearly changes.
* **Error correction**: at each expected block position a syndrome that is not the
  expected offset word is looked up among those of every error burst of up to 5 bits (the
  shortened cyclic (26,16) code corrects all of them; a channel-bit error becomes a
  2-bit burst after differential decoding). When the soft channel bits are given, a
  block that still fails gets a Chase decoding: every combination of flips of its
  :data:`CHASE_BITS` least reliable channel bits is tried and the cheapest that passes
  the check exactly is kept. Such a block counts as corrected; any other is an error.
* **Voting across groups**: PI is the value that A (and C') blocks give most, weighted 1
  for a clean block and 0.5 for a corrected one; it is reported when its weight is at
  least 2 and twice any other's. PS characters and radiotext segments are voted the same
  way, per segment.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from dsp.fm.rds import BLOCK_BITS, GROUP_BITS, OFFSETS, rds_syndrome
from rfhunt.errors import DspError

#: Probability that noise alone synchronises a whole stream.
FALSE_SYNC_PROBABILITY = 1e-4
#: Groups on each side of a group whose votes decide its phase locally.
LOCAL_GROUPS = 8
MAX_BURST_BITS = 5
PI_MIN_WEIGHT = 2.0
#: Votes the best phase needs to be tried when the sure synchronisation fails.
WEAK_SYNC_VOTES = 3
#: Least reliable channel bits of a failed block whose flips a Chase decoding tries.
CHASE_BITS = 5
_CHASE_COMBOS = ((np.arange(1, 1 << CHASE_BITS)[:, None] >> np.arange(CHASE_BITS)) & 1).astype(bool)

_W_OK, _W_CORRECTED = 1.0, 0.5


def _syndrome_tables() -> tuple[np.ndarray, np.ndarray]:
    v = np.arange(8192, dtype=np.int64)
    return rds_syndrome(v << 13), rds_syndrome(v)


_SYN_HI, _SYN_LO = _syndrome_tables()
#: Block index in its group (A 0, B 1, C and C' 2, D 3) by syndrome; -1 for none.
_POSITION = np.full(1024, -1, dtype=np.int64)
for _name, _pos in (("A", 0), ("B", 1), ("C", 2), ("C'", 2), ("D", 3)):
    _POSITION[OFFSETS[_name]] = _pos


def syndromes(words: np.ndarray) -> np.ndarray:
    """Syndromes of 26-bit words (int64), vectorized by table."""
    w = np.asarray(words, dtype=np.int64)
    return _SYN_HI[w >> 13] ^ _SYN_LO[w & 0x1FFF]


def _burst_table() -> np.ndarray:
    """26-bit error pattern by syndrome for every burst of 1..5 bits; 0 where none."""
    table = np.zeros(1024, dtype=np.int64)
    for length in range(1, MAX_BURST_BITS + 1):
        inner = range(1) if length <= 2 else range(1 << (length - 2))
        for mid in inner:
            core = 1 if length == 1 else (1 | (mid << 1) | (1 << (length - 1)))
            for shift in range(BLOCK_BITS - length + 1):
                pattern = core << shift
                s = int(syndromes(np.int64(pattern)))
                if table[s] not in (0, pattern):  # pragma: no cover - a property of the code
                    raise AssertionError("RDS burst syndromes are not unique")
                table[s] = pattern
    return table


BURST_PATTERNS = _burst_table()


@dataclass(frozen=True)
class RdsResult:
    """What was decoded from one station's RDS.

    Attributes
    ----------
    synced : bool
        Block synchronisation was found.
    pi : int or None
        Programme identification (see the module notes for the vote).
    ps : str or None
        Programme service name, 8 characters, when all four segments were received.
    pty : int or None
    tp : bool or None
    rt : str or None
        Radiotext up to its carriage return, when every segment was received.
    n_groups : int
        Group positions examined while in sync.
    n_blocks, n_ok, n_corrected, n_errors : int
        Blocks examined, passing their check as received, after burst correction, and
        failing it.
    group_types : dict
        Counts of groups by type (``"0A"``, ``"2A"``, ...) whose block B was good.
    """

    synced: bool = False
    pi: int | None = None
    ps: str | None = None
    pty: int | None = None
    tp: bool | None = None
    rt: str | None = None
    n_groups: int = 0
    n_blocks: int = 0
    n_ok: int = 0
    n_corrected: int = 0
    n_errors: int = 0
    group_types: dict = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """RDS is on air: a PI was decoded, or sync held with at least 4 clean blocks."""
        return self.pi is not None or (self.synced and self.n_ok >= 4)


@functools.lru_cache(maxsize=256)
def _poisson_threshold(mean: float, trials: int, p: float) -> int:
    """Smallest count that ``trials`` Poisson(``mean``) draws all stay under with probability 1 - p."""
    return int(stats.poisson.isf(p / max(trials, 1), max(mean, 1e-12))) + 1


def _group_phases(syn: np.ndarray, n_bits: int) -> tuple[np.ndarray, int, int]:
    """Group phase (0..103) for each 104-bit slot of the stream (-1 where not synchronised),
    and the phase with the most votes over the whole stream with its vote count."""
    pos = _POSITION[syn]
    idx = np.flatnonzero(pos >= 0)
    n_slots = n_bits // GROUP_BITS + 1
    out = np.full(n_slots, -1, dtype=np.int64)
    if idx.size == 0:
        return out, 0, 0
    phase = (idx - BLOCK_BITS * pos[idx]) % GROUP_BITS
    counts = np.zeros((n_slots, GROUP_BITS), dtype=np.int64)
    np.add.at(counts, (idx // GROUP_BITS, phase), 1)
    random_per_window = 5.0 / 1024.0 / GROUP_BITS
    glob = counts.sum(axis=0)
    g_best = int(np.argmax(glob))
    g_ok = glob[g_best] >= _poisson_threshold(syn.size * random_per_window, GROUP_BITS, FALSE_SYNC_PROBABILITY)
    width = 2 * LOCAL_GROUPS + 1
    cs = np.concatenate([np.zeros((1, GROUP_BITS), dtype=np.int64), np.cumsum(counts, axis=0)])
    j = np.arange(n_slots)
    lo = np.clip(j - LOCAL_GROUPS, 0, n_slots)
    hi = np.clip(j + LOCAL_GROUPS + 1, 0, n_slots)
    local = cs[hi] - cs[lo]
    l_best = np.argmax(local, axis=1)
    l_count = local[j, l_best]
    n_local = width * GROUP_BITS * random_per_window
    l_thr = _poisson_threshold(n_local, GROUP_BITS * max(n_slots // width, 1), FALSE_SYNC_PROBABILITY)
    l_ok = l_count >= l_thr
    if g_ok:
        out[:] = g_best
        switch = l_ok & (l_count > local[j, g_best])
        out[switch] = l_best[switch]
    else:
        out[l_ok] = l_best[l_ok]
    return out, g_best, int(glob[g_best])


def _printable(codes: list[int]) -> str:
    return "".join(chr(c) if 0x20 <= c <= 0x7E else "?" for c in codes)


def _vote(votes: dict, key) -> object:
    return max(votes[key].items(), key=lambda kv: kv[1])[0]


def decode_rds(data_bits: np.ndarray, soft: np.ndarray | None = None) -> RdsResult:
    """Synchronise, correct and parse an RDS data-bit stream.

    When the votes fall short of a sure synchronisation, the phase with the most votes (at
    least :data:`WEAK_SYNC_VOTES`) is tried anyway and kept only if its A blocks agree on a
    PI (see the module notes): noise does not produce that, so weak stations still give
    their PI.

    Parameters
    ----------
    data_bits : array_like of 0/1
        Differentially decoded data bits in time order.
    soft : array_like, optional
        The soft channel bits they came from, one more (``data_bits[k]`` from ``soft[k]`` and
        ``soft[k + 1]``): blocks that fail the hard checks then get a Chase decoding.

    Returns
    -------
    RdsResult

    Raises
    ------
    DspError
        If ``soft`` is not one longer than ``data_bits``.
    """
    d = np.asarray(data_bits, dtype=np.int64).ravel() & 1
    if soft is not None:
        soft = np.asarray(soft, dtype=np.float64).ravel()
        if soft.size != d.size + 1:
            raise DspError(f"soft must hold one channel bit more than data_bits: {soft.size} for {d.size}")
    n = d.size
    if n < GROUP_BITS:
        return RdsResult()
    weights = np.int64(1) << np.arange(BLOCK_BITS - 1, -1, -1, dtype=np.int64)
    words = np.lib.stride_tricks.sliding_window_view(d, BLOCK_BITS) @ weights
    syn = syndromes(words)
    phases, g_best, g_votes = _group_phases(syn, n)
    result = None
    if np.any(phases >= 0):
        result = _decode_groups(words, syn, phases, n, soft)
    if (result is None or result.pi is None) and g_votes >= WEAK_SYNC_VOTES:
        weak = _decode_groups(words, syn, np.full(phases.size, g_best), n, soft)
        if weak.pi is not None:
            return weak
    return result if result is not None else RdsResult()


def _chase(word: int, syndrome: int, offsets: tuple[int, ...], ch: np.ndarray) -> tuple[int, int] | None:
    """Chase decoding of one block: the data word whose check passes with the fewest (by
    reliability) of its :data:`CHASE_BITS` least reliable channel bits flipped.

    ``ch`` holds the block's 27 soft channel bits (data bit ``k`` of the block comes from
    ``ch[k]`` and ``ch[k + 1]``). Returns (corrected 26-bit word, offset) or None.
    """
    mag = np.abs(ch)
    least = np.argsort(mag)[:CHASE_BITS]
    # flipping channel bit i toggles data bits i - 1 and i of the block (MSB first)
    flips = np.array([(1 << (BLOCK_BITS - i) if i >= 1 else 0) | (1 << (BLOCK_BITS - 1 - i) if i < BLOCK_BITS else 0)
                      for i in least], dtype=np.int64)
    e = np.bitwise_xor.reduce(np.where(_CHASE_COMBOS, flips, 0), axis=1)
    s = syndrome ^ np.bitwise_xor.reduce(np.where(_CHASE_COMBOS, syndromes(flips), 0), axis=1)
    ok = np.isin(s, offsets)
    if not ok.any():
        return None
    cost = np.where(ok, _CHASE_COMBOS @ mag[least], np.inf)
    k = int(np.argmin(cost))
    return word ^ int(e[k]), int(s[k])


def _decode_groups(words: np.ndarray, syn: np.ndarray, phases: np.ndarray, n: int,
                   soft: np.ndarray | None = None) -> RdsResult:
    """Correct and parse the groups at the given per-slot phases."""
    slots = np.flatnonzero(phases >= 0)
    starts = slots * GROUP_BITS + phases[slots]
    starts = starts[starts + GROUP_BITS <= n]
    if starts.size == 0:
        return RdsResult(synced=False)
    pos = starts[:, None] + BLOCK_BITS * np.arange(4)
    w = words[pos]
    s = syn[pos]
    info = np.zeros_like(w)
    status = np.zeros(w.shape, dtype=np.int64)  # 2 ok, 1 corrected, 0 error

    def check(col: int, offset: int, rows: np.ndarray) -> None:
        e = s[rows, col] ^ offset
        pat = BURST_PATTERNS[e]
        st = np.where(e == 0, 2, np.where(pat != 0, 1, 0))
        better = st > status[rows, col]
        r = rows[better]
        status[r, col] = st[better]
        info[r, col] = (w[r, col] ^ pat[better]) >> 10

    def chase(col: int, offsets: tuple[int, ...]) -> None:
        for g in np.flatnonzero(status[:, col] == 0):
            p0 = int(pos[g, col])
            if soft is None or p0 + BLOCK_BITS + 1 > soft.size:
                continue
            got = _chase(int(w[g, col]), int(s[g, col]), offsets, soft[p0:p0 + BLOCK_BITS + 1])
            if got is not None:
                status[g, col], info[g, col] = 1, got[0] >> 10
                s[g, col] = got[1]

    every = np.arange(starts.size)
    for col, name in ((0, "A"), (1, "B"), (3, "D")):
        check(col, OFFSETS[name], every)
        chase(col, (OFFSETS[name],))
    b_good = status[:, 1] > 0
    version = np.where(b_good, (info[:, 1] >> 11) & 1, -1)
    check(2, OFFSETS["C"], every[version != 1])
    check(2, OFFSETS["C'"], every[version != 0])
    s_before = s[:, 2].copy()
    chase(2, (OFFSETS["C"], OFFSETS["C'"]))
    c_prime = (version == 1) | ((version == -1) & ((s_before == OFFSETS["C'"]) | (s[:, 2] == OFFSETS["C'"])))
    wt = np.where(status == 2, _W_OK, np.where(status == 1, _W_CORRECTED, 0.0))

    pi_votes: Counter = Counter()
    for g in range(starts.size):
        if status[g, 0]:
            pi_votes[int(info[g, 0])] += wt[g, 0]
        if c_prime[g] and status[g, 2]:
            pi_votes[int(info[g, 2])] += wt[g, 2]
    pi = None
    if pi_votes:
        ranked = pi_votes.most_common(2)
        top, w_top = ranked[0]
        w_next = ranked[1][1] if len(ranked) > 1 else 0.0
        if w_top >= PI_MIN_WEIGHT and w_top >= 2 * w_next:
            pi = top

    ps_votes: dict = defaultdict(Counter)
    rt_votes: dict = defaultdict(Counter)
    pty_votes: Counter = Counter()
    tp_votes: Counter = Counter()
    types: Counter = Counter()
    last_ab = None
    for g in np.flatnonzero(b_good):
        b = int(info[g, 1])
        gtype, ver = b >> 12, (b >> 11) & 1
        types[f"{gtype}{'AB'[ver]}"] += 1
        pty_votes[(b >> 5) & 31] += wt[g, 1]
        tp_votes[(b >> 10) & 1] += wt[g, 1]
        if gtype == 0 and status[g, 3]:
            dv = int(info[g, 3])
            ps_votes[b & 3][(dv >> 8, dv & 0xFF)] += wt[g, 1] * wt[g, 3]
        elif gtype == 2:
            seg, ab = b & 15, (b >> 4) & 1
            dv = int(info[g, 3])
            if ver == 0 and status[g, 2] and status[g, 3]:
                cv = int(info[g, 2])
                rt_votes[(ab, 0, seg)][(cv >> 8, cv & 0xFF, dv >> 8, dv & 0xFF)] += wt[g, 2] * wt[g, 3]
                last_ab = (ab, 0)
            elif ver == 1 and status[g, 3]:
                rt_votes[(ab, 1, seg)][(dv >> 8, dv & 0xFF)] += wt[g, 3]
                last_ab = (ab, 1)

    ps = None
    if all(k in ps_votes for k in range(4)):
        ps = _printable([c for k in range(4) for c in _vote(ps_votes, k)])
    rt = None
    if last_ab is not None:
        codes: list[int] = []
        complete = False
        for seg in range(16):
            key = last_ab + (seg,)
            if key not in rt_votes:
                break
            chunk = list(_vote(rt_votes, key))
            if 0x0D in chunk:
                codes.extend(chunk[:chunk.index(0x0D)])
                complete = True
                break
            codes.extend(chunk)
        else:
            complete = True
        if complete:
            rt = _printable(codes).rstrip()
    st_flat = status.ravel()
    return RdsResult(
        synced=True, pi=pi, ps=ps,
        pty=int(pty_votes.most_common(1)[0][0]) if pty_votes else None,
        tp=bool(tp_votes.most_common(1)[0][0]) if tp_votes else None,
        rt=rt, n_groups=int(starts.size), n_blocks=int(st_flat.size),
        n_ok=int(np.count_nonzero(st_flat == 2)), n_corrected=int(np.count_nonzero(st_flat == 1)),
        n_errors=int(np.count_nonzero(st_flat == 0)), group_types=dict(sorted(types.items())))
