"""GOIP place-clusters and verdicts (collector.goip) on crafted link detections with known truth."""

import pytest

from collector.goip import GoipModel, cluster_uplinks, judge_uplink_emitters
from collector.judge import ALARMING, judge
from collector.reference import Reference
from collector.store import EmitterRow
from rfhunt.geo import distance_m, from_enu, to_enu
from rfhunt.records import Detection
from tests.goip_feed import LAT0, LON0, START_UTC, Feed


def majority(cluster, truth):
    names = [truth[i] for i in cluster.detection_index]
    return max(set(names), key=names.count)


def names(cluster):
    return {i["name"] for i in cluster.indicators}


def goip_of(clusters, truth, who):
    mine = [c for c in clusters if majority(c, truth) == who]
    assert mine, f"no cluster for {who}"
    return max(mine, key=lambda c: c.n_links)


def test_four_channel_gateway_among_a_crowd_is_goip():
    f = Feed(1)
    f.gateway("goip", 100.0, -200.0, 27.0, (10, 11.5), busy=4)
    f.crowd("crowd", 300.0, 100.0, 300.0, (10, 11.5), calls=6)
    clusters = cluster_uplinks(f.dets)
    g = goip_of(clusters, f.truth, "goip")
    assert g.verdict == "goip"
    assert {"concurrent", "busy", "persistent"} <= names(g)
    assert g.concurrent_max >= 4 and set(g.arfcns) <= {20, 33}
    # located near the truth from the pattern's powers
    lat, lon = from_enu(100.0, -200.0, LAT0, LON0)
    assert distance_m(g.lat, g.lon, float(lat), float(lon)) < 300
    assert g.semi_major_m is not None
    assert not any(c.verdict == "goip" and majority(c, f.truth) == "crowd" for c in clusters)


def test_crowd_only_is_not_goip():
    f = Feed(2)
    f.crowd("crowd-a", 300.0, 100.0, 300.0, (10, 12), calls=8)
    f.crowd("crowd-b", -300.0, 200.0, 200.0, (10, 12), calls=8, arfcns=(50, 51))
    assert all(c.verdict != "goip" for c in cluster_uplinks(f.dets))


def test_three_channels_are_not_concurrent_enough():
    f = Feed(3)
    f.gateway("goip", 100.0, -200.0, 27.0, (10, 11.5), busy=3, churn=0.0)
    g = goip_of(cluster_uplinks(f.dets), f.truth, "goip")
    assert g.verdict == "uplink" and "concurrent" not in names(g)
    assert "busy" in names(g) and "persistent" in names(g)
    assert "fewer than 4" not in g.reasons[0] or g.concurrent_max == 3


def test_short_activity_is_only_suspect():
    """20 minutes of 6 channels: concurrent and busy, but not persistent yet."""
    f = Feed(4)
    f.gateway("goip", -200.0, 300.0, 25.0, (10, 10 + 1 / 3), busy=6)
    g = goip_of(cluster_uplinks(f.dets), f.truth, "goip")
    assert g.verdict == "goip_suspect"
    assert {"concurrent", "busy"} <= names(g) and "persistent" not in names(g)
    assert "goip_suspect" in ALARMING and "goip" in ALARMING


def test_one_level_needs_handsets_at_one_power():
    """Same place, same traffic, but every call at its own level within +-4 dB (phones of
    one building under their own power control): no ``one_level``, not ``goip``."""
    box = Feed(12)
    box.gateway("x", 100.0, -200.0, 28.0, (10, 11.5), busy=6, churn=0.5)
    spread = Feed(12)
    spread.gateway("x", 100.0, -200.0, 28.0, (10, 11.5), busy=6, churn=0.5, level_spread_db=4.0)
    g = goip_of(cluster_uplinks(box.dets), box.truth, "x")
    assert g.verdict == "goip" and "one_level" in names(g)
    for c in cluster_uplinks(spread.dets):
        assert "one_level" not in names(c) and c.verdict != "goip"


def test_set_up_rate_counts_new_links():
    busy = Feed(5)
    busy.gateway("goip", 0.0, -300.0, 27.0, (10, 11.5), busy=5, churn=1.0)
    calm = Feed(5)
    calm.gateway("goip", 0.0, -300.0, 27.0, (10, 11.5), busy=5, churn=0.0)
    assert "setup_rate" in names(goip_of(cluster_uplinks(busy.dets), busy.truth, "goip"))
    assert "setup_rate" not in names(goip_of(cluster_uplinks(calm.dets), calm.truth, "goip"))


def test_night_activity_and_daily_rhythm():
    """48 h: a gateway busy day and night gains ``night`` and ``long``; the same box busy
    only from 07 to 21 local time (two days) is a ``crowd`` with ``daily_rhythm``."""
    f = Feed(6)
    f.gateway("goip", 200.0, 200.0, 28.0, (0, 48), busy=5)
    f.gateway("office", -300.0, -300.0, 28.0, (7, 21), busy=4, arfcns=(60, 61))
    f.gateway("office", -300.0, -300.0, 28.0, (31, 45), busy=4, arfcns=(60, 61))
    clusters = cluster_uplinks(f.dets)
    g = goip_of(clusters, f.truth, "goip")
    assert g.verdict == "goip" and {"night", "long"} <= names(g)
    office = goip_of(clusters, f.truth, "office")
    assert office.verdict == "crowd" and "daily_rhythm" in names(office)


def test_two_places_and_two_levels_are_apart():
    """Two gateways at different places, and one at the same place but 9 dB louder, are three clusters."""
    f = Feed(7)
    f.gateway("a", 300.0, 300.0, 27.0, (10, 11), busy=4)
    f.gateway("b", -300.0, -100.0, 27.0, (10, 11), busy=4, arfcns=(70, 71))
    f.gateway("c", 300.0, 300.0, 36.0, (10, 11), busy=4, arfcns=(80, 81))  # an antenna with gain
    clusters = cluster_uplinks(f.dets)
    for who in "abc":
        g = goip_of(clusters, f.truth, who)
        assert g.verdict == "goip"
        assert all(f.truth[i] == who for i in g.detection_index)


def test_links_of_many_cells_are_not_one_box():
    """Four links at once at one pattern, but over 20 ARFCNs: passing phones of many cells."""
    f = Feed(8)
    f.gateway("mix", 100.0, -200.0, 27.0, (10, 11.5), busy=4, arfcns=tuple(range(1, 21)), churn=1.0)
    g = goip_of(cluster_uplinks(f.dets), f.truth, "mix")
    assert g.verdict != "goip" and "phones of many cells" in g.reasons[0]


def test_two_sensors_do_not_place_a_link():
    f = Feed(9)
    f.gateway("goip", 100.0, -200.0, 27.0, (10, 11), busy=5)
    only2 = [d for d in f.dets if d.sensor_id in ("s1", "s2")]
    assert cluster_uplinks(only2) == []
    assert cluster_uplinks(only2, GoipModel(min_sensors=2))


def test_judge_gives_uplink_emitters_the_cluster_verdict():
    f = Feed(10)
    f.gateway("goip", 100.0, -200.0, 27.0, (10, 11.5), busy=4)
    f.crowd("crowd", 300.0, 100.0, 300.0, (10, 11.5), calls=4, arfcns=(50,))
    ems = [EmitterRow(id=k, assoc_key=f"gsm_uplink:arfcn:{a}", kind="gsm_uplink", freq_hz=890e6 + 0.2e6 * a,
                      channel=a, first_seen_utc=START_UTC, last_seen_utc=START_UTC + 5000, n_detections=9,
                      lat=None, lon=None, semi_major_m=None, semi_minor_m=None, orientation_deg=None,
                      est_power_dbm=None, path_loss_exponent=None, rms_residual_db=None, underdetermined=None,
                      verdict=None, reasons=(), updated_utc=None)
           for k, a in ((1, 20), (2, 33), (3, 50), (4, 99))]
    out = judge(ems, Reference(), uplink_detections=f.dets)
    assert out[1].verdict == "goip" and out[2].verdict == "goip"
    assert out[1].score >= 4 and any(i["name"] == "concurrent" for i in out[1].indicators)
    assert out[3].verdict != "goip" and out[4].verdict == "uplink"
    # without detections: the emitter-level fallback (unlocated -> pending)
    fallback, clusters = judge_uplink_emitters(ems)
    assert {j.verdict for j in fallback.values()} == {"pending"} and clusters == []


def test_garbage_features_and_other_kinds_are_ignored():
    f = Feed(11)
    f.gateway("goip", 100.0, -200.0, 27.0, (10, 11), busy=4)
    junk = [Detection("s1", 1, START_UTC, 22.5, 114.0, "fm", 98e6, None, 200e3, -50.0, 30.0, {}),
            Detection("s1", 2, START_UTC, 22.5, 114.0, "gsm_uplink", 890e6, None, 200e3, -50.0, 30.0, {}),
            Detection("s2", 3, START_UTC, 22.5, 114.0, "gsm_uplink", 890e6, 5, 200e3, -50.0, 30.0,
                      {"timeslot": "x", "n_access": float("nan")})]
    assert cluster_uplinks(junk) == []
    a = cluster_uplinks(f.dets)
    b = cluster_uplinks(f.dets + junk)
    assert [c.verdict for c in a] == [c.verdict for c in b]


def test_enu_helpers_round_trip():  # the crafted geometry relies on them
    e, n = to_enu(*from_enu(100.0, -200.0, LAT0, LON0), LAT0, LON0)
    assert float(e) == pytest.approx(100.0, abs=0.01) and float(n) == pytest.approx(-200.0, abs=0.01)
