#!/usr/bin/env python3
"""The load test's arithmetic (scripts/load): the exposition-text parser, histogram
quantiles as Prometheus computes them, and the message accounting identities."""
import os
import sys
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(REPO, "scripts/load"))
from metrics import Sample, bucket_delta, quantile  # noqa: E402
from report import accounting, exact_latency  # noqa: E402

FUSION = """# HELP qv2x_fusion_messages_total Feature messages accepted, per agent
# TYPE qv2x_fusion_messages_total counter
qv2x_fusion_messages_total{agent="0"} 8
qv2x_fusion_messages_total{agent="-1"} 5
qv2x_fusion_late_messages_total{agent="0"} 1
qv2x_fusion_late_messages_total{agent="-1"} 0
qv2x_fusion_rejected_messages_total{reason="duplicate"} 1
qv2x_fusion_rejected_messages_total{reason="bad \\"digest\\", really"} 0
qv2x_fusion_fused_messages_total{agent="0"} 7
qv2x_fusion_fused_messages_total{agent="-1"} 3
qv2x_fusion_discarded_messages_total{agent="0",reason="no_ego"} 1
qv2x_fusion_discarded_messages_total{agent="-1",reason="max_cav"} 2
qv2x_fusion_frames_total{outcome="fused"} 7
qv2x_fusion_e2e_latency_seconds_bucket{precision="fp32",le="0.1"} 4
qv2x_fusion_e2e_latency_seconds_bucket{precision="fp32",le="0.2"} 10
qv2x_fusion_e2e_latency_seconds_bucket{precision="fp32",le="+Inf"} 12
qv2x_fusion_e2e_latency_seconds_bucket{precision="int8",le="0.1"} 6
qv2x_fusion_e2e_latency_seconds_bucket{precision="int8",le="0.2"} 20
qv2x_fusion_e2e_latency_seconds_bucket{precision="int8",le="+Inf"} 28
"""


def agent(sent):
    return Sample(f'qv2x_agent_frames_sent_total{{agent="x",precision="fp32"}} {sent - 1}\n'
                  f'qv2x_agent_frames_sent_total{{agent="x",precision="int8"}} 1\n')


class ParserTest(unittest.TestCase):
    def test_sums_and_groups_by_label(self):
        s = Sample(FUSION)
        self.assertEqual(s.sum("qv2x_fusion_messages_total"), 13)
        self.assertEqual(s.sum("qv2x_fusion_messages_total", agent=-1), 5)
        self.assertEqual(s.by("qv2x_fusion_rejected_messages_total", "reason"),
                         {"duplicate": 1, 'bad \\"digest\\", really': 0})
        self.assertFalse(s.has("qv2x_fusion_missing_messages_total"))

    def test_buckets_sum_over_other_labels(self):
        self.assertEqual(Sample(FUSION).buckets("qv2x_fusion_e2e_latency_seconds"),
                         [(0.1, 10), (0.2, 30), (float("inf"), 40)])


class QuantileTest(unittest.TestCase):
    B = [(0.1, 10.0), (0.2, 30.0), (float("inf"), 40.0)]

    def test_linear_within_the_bucket(self):
        self.assertAlmostEqual(quantile(0.05, self.B), 0.02)  # rank 2 of 10 in [0, 0.1]
        self.assertAlmostEqual(quantile(0.5, self.B), 0.15)   # rank 20: half of (0.1, 0.2]

    def test_rank_in_inf_bucket_gives_highest_finite_bound(self):
        self.assertEqual(quantile(0.99, self.B), 0.2)

    def test_empty_histogram_has_no_quantile(self):
        self.assertIsNone(quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]))
        self.assertIsNone(quantile(0.5, []))

    def test_delta_between_scrapes(self):
        self.assertEqual(bucket_delta(self.B, [(0.1, 4.0), (0.2, 4.0), (float("inf"), 5.0)]),
                         [(0.1, 6.0), (0.2, 26.0), (float("inf"), 35.0)])

    def test_exact_latency_percentiles(self):
        r = exact_latency([i / 100 for i in range(1, 101)])  # 0.01 .. 1.00
        self.assertAlmostEqual(r["p50_s"], 0.505)
        self.assertAlmostEqual(r["p99_s"], 0.99)  # nearest rank: the 99th of 100
        self.assertEqual(r["frames"], 100)


class AccountingTest(unittest.TestCase):
    def test_every_message_accounted(self):
        # agent 0 sent 10: 8 joined, 1 late, 1 rejected; agent -1 sent 5, all joined.
        a = accounting([0, -1], {0: agent(10), -1: agent(5)}, Sample(FUSION))
        self.assertEqual(a["sent"], 15)
        self.assertEqual(a["sent_balance"], 0)
        self.assertEqual(a["joined_balance"], 0)
        self.assertEqual(a["discarded_by_reason"], {"no_ego": 1, "max_cav": 2})
        self.assertEqual(a["per_agent"]["0"]["unanswered_or_rejected"], 1)
        self.assertTrue(all(a["checks"].values()))

    def test_a_lost_message_fails_the_identity(self):
        a = accounting([0, -1], {0: agent(11), -1: agent(5)}, Sample(FUSION))
        self.assertEqual(a["sent_balance"], 1)
        self.assertFalse(a["checks"]["sent = joined + late + rejected"])

    def test_a_frame_never_closed_fails_the_second_identity(self):
        text = FUSION.replace('qv2x_fusion_fused_messages_total{agent="-1"} 3',
                              'qv2x_fusion_fused_messages_total{agent="-1"} 2')
        a = accounting([0, -1], {0: agent(10), -1: agent(5)}, Sample(text))
        self.assertEqual(a["joined_balance"], 1)
        self.assertFalse(a["checks"]["joined = fused + discarded"])
        self.assertFalse(a["checks"]["per agent: joined = fused + discarded"])

    def test_without_outcome_counters_the_second_identity_is_unknown(self):
        text = "\n".join(l for l in FUSION.splitlines()
                         if "fused_messages" not in l and "discarded" not in l)
        a = accounting([0, -1], {0: agent(10), -1: agent(5)}, Sample(text))
        self.assertIsNone(a["checks"]["joined = fused + discarded"])
        self.assertIsNone(a["fused"])


if __name__ == "__main__":
    unittest.main()
