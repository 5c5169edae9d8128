"""The load test's figures from its scrapes: message accounting, rates, latency, memory."""
import math
import statistics

from metrics import bucket_delta, quantile

MIB = 1024.0 * 1024.0


def accounting(agent_ids, agents, fusion):
    """Every message sent, followed to where it ended, from the final scrapes (`agents`:
    {id: Sample} after the agents stopped sending; `fusion`: Sample after fusion closed
    every frame). Identities (all exact):
      sent = joined + late + rejected          (each message answered once)
      joined = fused + discarded               (each joined frame closed one way)
    per agent too, except `rejected`, which fusion counts by reason only."""
    per_agent = {}
    for a in agent_ids:
        key = str(a)
        row = {
            "sent": agents[a].sum("qv2x_agent_frames_sent_total"),
            "joined": fusion.sum("qv2x_fusion_messages_total", agent=key),
            "late": fusion.sum("qv2x_fusion_late_messages_total", agent=key),
            "missing_from_frames": fusion.sum("qv2x_fusion_missing_messages_total", agent=key),
            "skipped_ticks": agents[a].sum("qv2x_agent_frames_skipped_total"),
            "reconnects": agents[a].sum("qv2x_agent_reconnects_total"),
        }
        if fusion.has("qv2x_fusion_fused_messages_total"):
            row["fused"] = fusion.sum("qv2x_fusion_fused_messages_total", agent=key)
            row["discarded"] = fusion.by("qv2x_fusion_discarded_messages_total", "reason",
                                         agent=key)
        # What this agent sent that fusion neither joined nor called late: its rejections.
        row["unanswered_or_rejected"] = row["sent"] - row["joined"] - row["late"]
        per_agent[key] = row
    total = lambda k: sum(r[k] for r in per_agent.values())
    rejected = fusion.by("qv2x_fusion_rejected_messages_total", "reason")
    out = {
        "sent": total("sent"),
        "joined": total("joined"),
        "late": total("late"),
        "rejected": sum(rejected.values()),
        "rejected_by_reason": {r: v for r, v in rejected.items() if v},
        "frames_by_outcome": fusion.by("qv2x_fusion_frames_total", "outcome"),
        "per_agent": per_agent,
    }
    out["sent_balance"] = out["sent"] - out["joined"] - out["late"] - out["rejected"]
    checks = {"sent = joined + late + rejected": out["sent_balance"] == 0}
    if all("fused" in r for r in per_agent.values()):
        out["fused"] = total("fused")
        discarded = {}
        for r in per_agent.values():
            for reason, v in r["discarded"].items():
                discarded[reason] = discarded.get(reason, 0.0) + v
        out["discarded_by_reason"] = {r: v for r, v in discarded.items() if v}
        out["joined_balance"] = out["joined"] - out["fused"] - sum(discarded.values())
        checks["joined = fused + discarded"] = out["joined_balance"] == 0
        checks["per agent: joined = fused + discarded"] = all(
            r["joined"] == r["fused"] + sum(r["discarded"].values()) for r in per_agent.values())
    else:
        out["fused"] = None
        checks["joined = fused + discarded"] = None  # fusion lacks the per-message outcome
    out["checks"] = checks
    return out


def window(agent_ids, before, after, seconds, rate_hz):
    """Steady-state rates between two scrapes `seconds` apart ({"fusion": Sample,
    agent id: Sample} each)."""
    f0, f1 = before["fusion"], after["fusion"]
    d = lambda name, **m: f1.sum(name, **m) - f0.sum(name, **m)
    sent = {str(a): after[a].sum("qv2x_agent_frames_sent_total") -
            before[a].sum("qv2x_agent_frames_sent_total") for a in agent_ids}
    skipped = sum(after[a].sum("qv2x_agent_frames_skipped_total") -
                  before[a].sum("qv2x_agent_frames_skipped_total") for a in agent_ids)
    e2e = bucket_delta(f1.buckets("qv2x_fusion_e2e_latency_seconds"),
                       f0.buckets("qv2x_fusion_e2e_latency_seconds"))
    fuse = bucket_delta(f1.buckets("qv2x_fusion_fuse_duration_seconds"),
                        f0.buckets("qv2x_fusion_fuse_duration_seconds"))
    agents_hist = bucket_delta(f1.buckets("qv2x_fusion_agents_per_frame"),
                               f0.buckets("qv2x_fusion_agents_per_frame"))
    fused = d("qv2x_fusion_frames_total", outcome="fused")
    discarded0, discarded1 = (f.by("qv2x_fusion_discarded_messages_total", "reason")
                              for f in (f0, f1))
    agents_sum = (f1.sum("qv2x_fusion_agents_per_frame_sum") -
                  f0.sum("qv2x_fusion_agents_per_frame_sum"))
    return {
        "seconds": seconds,
        "target_rate_hz": rate_hz,
        "messages_sent": sum(sent.values()),
        "messages_per_second": sum(sent.values()) / seconds,
        "agent_rate_hz": {a: v / seconds for a, v in sent.items()},
        "agent_rate_hz_min": min(sent.values()) / seconds,
        "skipped_ticks": skipped,
        "frames_fused": fused,
        "fused_frames_per_second": fused / seconds,
        "agents_per_fused_frame": agents_sum / fused if fused else None,
        "agents_per_frame_p50": quantile(0.5, agents_hist),
        "fused_messages": d("qv2x_fusion_fused_messages_total"),
        "discarded_by_reason": {r: v - discarded0.get(r, 0.0) for r, v in discarded1.items()
                                if v != discarded0.get(r, 0.0)},
        "late": d("qv2x_fusion_late_messages_total"),
        "missing": d("qv2x_fusion_missing_messages_total"),
        "rejected": d("qv2x_fusion_rejected_messages_total"),
        "e2e_histogram_p50_s": quantile(0.5, e2e),
        "e2e_histogram_p99_s": quantile(0.99, e2e),
        "fuse_p50_s": quantile(0.5, fuse),
        "fuse_p99_s": quantile(0.99, fuse),
    }


def exact_latency(values):
    """p50 (median) / p99 (nearest rank) / max of the per-frame end-to-end latencies
    (DetectionFrame values)."""
    if not values:
        return {"frames": 0, "p50_s": None, "p99_s": None, "max_s": None}
    v = sorted(values)
    pick = lambda q: v[max(0, math.ceil(q * len(v)) - 1)]  # nearest rank
    return {"frames": len(v), "p50_s": statistics.median(v), "p99_s": pick(0.99),
            "max_s": v[-1]}


def memory(rss_start, rss_warm, rss_end, rss_max):
    """Per process: RSS at start (all serving), after the warm-up, at the end and the
    highest sample, MiB; growth = end - after warm-up."""
    out = {}
    for name in rss_start:
        s, w, e = rss_start[name], rss_warm.get(name), rss_end.get(name)
        out[name] = {"start_mib": s / MIB, "warm_mib": w / MIB if w else None,
                     "end_mib": e / MIB if e else None, "max_mib": rss_max.get(name, 0) / MIB,
                     "growth_mib": (e - w) / MIB if e and w else None}
    return out


def ms(x):
    return "-" if x is None else f"{1e3 * x:.1f} ms"


def table(r):
    """The printed summary of one run."""
    a, w, lat = r["accounting"], r["window"], r["latency_exact"]
    lines = [
        f"load test: {r['agents']} agents (up to {r['max_cav']} fused per frame), {r['pace']} "
        f"at {w['target_rate_hz']:g} Hz, {w['seconds']:.0f} s measured after "
        f"{r['warmup_s']:.0f} s warm-up ({r['cpu']}, load average "
        f"{r['load_average'][0]:.1f} / {r['load_average'][1]:.1f} at its start / end)",
        "",
        "| messages (whole run, after drain) | count |",
        "|---|---|",
        f"| sent by agents | {a['sent']:.0f} |",
        f"| joined a frame at fusion | {a['joined']:.0f} |",
        f"| late (frame already closed) | {a['late']:.0f} |",
        f"| rejected | {a['rejected']:.0f} {a['rejected_by_reason'] or ''} |",
        f"| sent - joined - late - rejected | {a['sent_balance']:.0f} |",
    ]
    if a["fused"] is not None:
        lines += [f"| fused | {a['fused']:.0f} |",
                  f"| discarded | {sum(a['discarded_by_reason'].values()):.0f} "
                  f"{a['discarded_by_reason'] or ''} |",
                  f"| joined - fused - discarded | {a['joined_balance']:.0f} |"]
    else:
        lines.append("| fused / discarded | not exported by this fusion build |")
    lines += [
        "",
        "| steady state (measured window) | value |",
        "|---|---|",
        f"| messages/s (all agents) | {w['messages_per_second']:.1f} "
        f"(slowest agent {w['agent_rate_hz_min']:.2f} Hz) |",
        f"| scene ticks skipped by agents | {w['skipped_ticks']:.0f} |",
        f"| fused frames/s | {w['fused_frames_per_second']:.2f} "
        f"({w['agents_per_fused_frame'] or 0:.2f} agents/frame) |",
        f"| late / missing / rejected | {w['late']:.0f} / {w['missing']:.0f} / "
        f"{w['rejected']:.0f} |",
        f"| messages fused / discarded | {w['fused_messages']:.0f} / "
        f"{sum(w['discarded_by_reason'].values()):.0f} {w['discarded_by_reason'] or ''} |",
        f"| end-to-end p50 / p99 (per frame, exact) | {ms(lat['p50_s'])} / {ms(lat['p99_s'])} "
        f"(max {ms(lat['max_s'])}, {lat['frames']} frames) |",
        f"| end-to-end p50 / p99 (histogram) | {ms(w['e2e_histogram_p50_s'])} / "
        f"{ms(w['e2e_histogram_p99_s'])} |",
        f"| fuse p50 / p99 (histogram) | {ms(w['fuse_p50_s'])} / {ms(w['fuse_p99_s'])} |",
        "",
        "| process | RSS start | after warm-up | end | max | growth |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in r["memory"].items():
        f = lambda x: "-" if x is None else f"{x:.1f}"
        lines.append(f"| {name} | {f(m['start_mib'])} | {f(m['warm_mib'])} | "
                     f"{f(m['end_mib'])} | {f(m['max_mib'])} | {f(m['growth_mib'])} MiB |")
    lines += ["", "checks: " + ", ".join(
        f"{k}: {'ok' if v else 'n/a' if v is None else 'FAILED'}" for k, v in r["checks"].items())]
    return "\n".join(lines) + "\n"
