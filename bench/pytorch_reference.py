#!/usr/bin/python3
"""qv2x's model in plain PyTorch eager, for numbers and for speed (docs/model-forward.md).

The same architecture as core/model (SPEC §3-§5), written from the SPEC and the docs the
way QuantV2X's own eager model runs (NCHW, every agent of a frame batched through the
pyramid trunk), built from the config stored in a qv2x checkpoint
(`__qv2x__.config_yaml`) and loaded from it with torch.load / load_state_dict(strict).

  check  runs the reference on the inputs of `qv2x model inputs` and compares every tensor
         that `qv2x model forward` wrote, in pipeline order: max |a - b| and the relative
         error max |a - b| / max |b| (a = qv2x, b = PyTorch; the absolute error when b is
         all zero). Exit status 1 when one exceeds --tol (1e-4) or a codebook index differs
         other than at a distance tie.
  bench  times PyTorch eager and `qv2x model forward --repeat` on the same inputs in one
         run, in alternating rounds: one agent's encode, the ego half fusing every agent and
         the whole frame, at each preset; jemalloc preloaded for both (the script re-runs
         itself with LD_PRELOAD), 2 threads, OMP_WAIT_POLICY=PASSIVE; qv2x both as the
         services run it and with --unfrozen (its plain eval layers). Writes one JSON and
         prints a table.

Run with Debian's python3 (python3-torch, python3-yaml): /usr/bin/python3.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

META = "__qv2x__."
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
# A distance tie: the two codewords' squared distances differ by at most this fraction of
# |x|^2 + |c|^2, the size of the terms the distance is computed from (float32 rounding of
# those terms and 1e-5-level feature differences both stay below it).
TIE_REL = 1e-5


class ConfigError(Exception):
    pass


def key(tree, path):
    """The value at a dotted key path of the stage YAML, or ConfigError naming it."""
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"config key {path} is missing")
        node = node[part]
    return node


# ---------------------------------------------------------------------------------------
# The model (state_dict names are qv2x's, i.e. QuantV2X's: docs/checkpoint-format.md)


class PFNLayer(nn.Module):
    """OpenCOOD's PFNLayer: Linear (no bias) -> BatchNorm1d -> ReLU -> max over points."""

    def __init__(self, cin, cout, last, eps, momentum):
        super().__init__()
        self.last = last
        units = cout if last else cout // 2
        self.linear = nn.Linear(cin, units, bias=False)
        self.norm = nn.BatchNorm1d(units, eps=eps, momentum=momentum)

    def forward(self, x):  # [P, N, C]
        x = self.linear(x)
        x = F.relu(self.norm(x.permute(0, 2, 1)).permute(0, 2, 1))
        x_max = x.max(dim=1, keepdim=True)[0]
        if self.last:
            return x_max
        return torch.cat([x, x_max.expand(-1, x.shape[1], -1)], dim=2)


class PillarVFE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        filters = key(cfg, "model.args.pillar_vfe.num_filters")
        eps = key(cfg, "model.args.pillar_vfe.bn_eps")
        momentum = key(cfg, "model.args.pillar_vfe.bn_momentum")
        layers, cin = [], 10
        for i, f in enumerate(filters):
            layers.append(PFNLayer(cin, f, i + 1 == len(filters), eps, momentum))
            cin = f
        self.pfn_layers = nn.ModuleList(layers)
        self.out_channels = cin

    def forward(self, features, num_points):
        # The 10 per-point features arrive computed (qv2x's Pillars); padded slots are zeroed
        # and, as in OpenCOOD, still enter the max after the BatchNorm.
        slots = torch.arange(features.shape[1]).unsqueeze(0)
        x = features * (slots < num_points.long().unsqueeze(1)).unsqueeze(2).to(features.dtype)
        for layer in self.pfn_layers:
            x = layer(x)
        return x.squeeze(1)


class PointPillarEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.pillar_vfe = PillarVFE(cfg)


def scatter(pillar_features, coords, grid_h, grid_w):
    """[P, C] -> [1, C, H, W]; row = y index, column = x index (SPEC §3)."""
    c = pillar_features.shape[1]
    canvas = torch.zeros(c, grid_h * grid_w, dtype=pillar_features.dtype)
    cells = coords[:, 0].long() * grid_w + coords[:, 1].long()
    canvas[:, cells] = pillar_features.t()
    return canvas.view(1, c, grid_h, grid_w)


def conv(cin, cout, k, stride=1, groups=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride, downsample, eps):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes, eps=eps)
        self.conv2 = conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes, eps=eps)
        self.downsample = (
            nn.Sequential(conv(inplanes, planes, 1, stride), nn.BatchNorm2d(planes, eps=eps))
            if downsample else None)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    """ResNeXt bottleneck with expansion 1; the stride on the grouped 3x3."""

    def __init__(self, inplanes, planes, stride, downsample, groups, width_per_group, eps):
        super().__init__()
        width = planes * width_per_group // 64 * groups
        self.conv1 = conv(inplanes, width, 1)
        self.bn1 = nn.BatchNorm2d(width, eps=eps)
        self.conv2 = conv(width, width, 3, stride, groups)
        self.bn2 = nn.BatchNorm2d(width, eps=eps)
        self.conv3 = conv(width, planes, 1)
        self.bn3 = nn.BatchNorm2d(planes, eps=eps)
        self.downsample = (
            nn.Sequential(conv(inplanes, planes, 1, stride), nn.BatchNorm2d(planes, eps=eps))
            if downsample else None)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetTrunk(nn.Module):
    """OpenCOOD's ResNetModified: levels layer0, layer1, ... without a stem."""

    def __init__(self, make_block, layer_nums, strides, filters, inplanes):
        super().__init__()
        self.num_levels = len(layer_nums)
        for level, (count, stride, planes) in enumerate(zip(layer_nums, strides, filters)):
            blocks = []
            for b in range(count):
                s = stride if b == 0 else 1
                down = b == 0 and (s != 1 or inplanes != planes)
                blocks.append(make_block(inplanes, planes, s, down))
                inplanes = planes
            setattr(self, f"layer{level}", nn.Sequential(*blocks))

    def level(self, i):
        return getattr(self, f"layer{i}")


class BevBackbone(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        a = "model.args.backbone."
        eps = key(cfg, a + "bn_eps")
        self.resnet = ResNetTrunk(lambda i, p, s, d: BasicBlock(i, p, s, d, eps),
                                  key(cfg, a + "layer_nums"), key(cfg, a + "layer_strides"),
                                  key(cfg, a + "num_filters"), in_channels)

    def forward(self, x):
        levels = []
        for i in range(self.resnet.num_levels):
            x = self.resnet.level(i)(x)
            levels.append(x)
        return levels[0] if len(levels) == 1 else torch.cat(levels, 1)


class Codebook(nn.Module):
    """SPEC §4: argmin of |x|^2 + |c|^2 - 2<x, c> per segment, residual levels."""

    def __init__(self, cfg):
        super().__init__()
        a = "model.args.codebook."
        self.m = key(cfg, a + "seg_num")
        self.k = key(cfg, a + "dict_size")
        self.channels = key(cfg, a + "channel")
        self.d = self.channels // self.m
        levels = key(cfg, a + "residual_levels")
        self.codewords = nn.ParameterList(
            [nn.Parameter(torch.zeros(self.m, self.k, self.d)) for _ in range(levels)])

    def segments(self, x):  # [N, C, H, W] -> [m, P, d]
        return x.permute(0, 2, 3, 1).reshape(-1, self.m, self.d).transpose(0, 1)

    def distances(self, seg, level):  # [m, P, d] -> [m, P, k]
        cb = self.codewords[level]
        return ((seg * seg).sum(2, keepdim=True) + (cb * cb).sum(2).unsqueeze(1)
                - 2 * torch.bmm(seg, cb.transpose(1, 2)))

    def lookup(self, idx, level):  # [m, P] -> [m, P, d]
        cb = self.codewords[level]
        return torch.gather(cb, 1, idx.unsqueeze(2).expand(-1, -1, self.d))

    def encode(self, x, follow=None, ties=None):
        """Indices [N, L*m, H, W], level-major. With `follow` (another implementation's
        indices), each level's residual is taken after follow's choice and every differing
        index is classified into `ties` (a list of per-level dicts)."""
        n, _, h, w = x.shape
        residual = self.segments(x)
        out = []
        for level in range(len(self.codewords)):
            dist = self.distances(residual, level)
            idx = dist.argmin(2)
            if follow is not None:
                theirs = follow[:, level * self.m:(level + 1) * self.m].permute(1, 0, 2, 3)
                theirs = theirs.reshape(self.m, -1).long()
                ties.append(classify(dist, idx, theirs, residual, self.codewords[level]))
                idx = theirs
            out.append(idx)
            residual = residual - self.lookup(idx, level)
        return torch.cat(out, 0).view(-1, n, h, w).permute(1, 0, 2, 3).contiguous()

    def decode(self, indices):  # [N, L*m, H, W] -> [N, C, H, W]
        n, _, h, w = indices.shape
        idx = indices.long().permute(1, 0, 2, 3).reshape(len(self.codewords), self.m, -1)
        recon = sum(self.lookup(idx[level], level) for level in range(len(self.codewords)))
        return recon.transpose(0, 1).reshape(n, h, w, self.channels).permute(0, 3, 1, 2)


def classify(dist, ours, theirs, seg, cb):
    """Differing indices of one level: ties (distance gap within TIE_REL) or not."""
    differ = ours != theirs
    count = int(differ.sum())
    if count == 0:
        return {"differ": 0, "ties": 0, "worst_gap_rel": 0.0}
    d_ours = dist.gather(2, ours.unsqueeze(2)).squeeze(2)[differ]
    d_theirs = dist.gather(2, theirs.unsqueeze(2)).squeeze(2)[differ]
    x_sq = (seg * seg).sum(2)[differ]
    c_sq = torch.stack([(cb[s] * cb[s]).sum(1) for s in range(cb.shape[0])])  # [m, k]
    seg_of = torch.arange(cb.shape[0]).unsqueeze(1).expand_as(ours)[differ]
    scale = x_sq + torch.maximum(c_sq[seg_of, ours[differ]], c_sq[seg_of, theirs[differ]])
    gap = (d_theirs - d_ours) / scale.clamp_min(1e-30)
    return {"differ": count, "ties": int((gap <= TIE_REL).sum()),
            "worst_gap_rel": float(gap.max())}


def is_identity(warp):
    return bool(torch.equal(warp, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])))


def warp_to_ego(x, warps):
    """Bilinear affine_grid sampling (align_corners=False, zeros outside), ego grid -> agent
    map; an agent whose warp is exactly the identity (the ego) passes through unsampled."""
    out = []
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        if is_identity(warps[i]):
            out.append(xi)
            continue
        grid = F.affine_grid(warps[i:i + 1], list(xi.shape), align_corners=False)
        out.append(F.grid_sample(xi, grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=False))
    return torch.cat(out)


class PyramidFusion(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        a = "model.args.fusion_backbone."
        eps, groups = key(cfg, a + "bn_eps"), key(cfg, a + "groups")
        wpg = key(cfg, a + "width_per_group")
        filters = key(cfg, a + "num_filters")
        self.resnet = ResNetTrunk(lambda i, p, s, d: Bottleneck(i, p, s, d, groups, wpg, eps),
                                  key(cfg, a + "layer_nums"), key(cfg, a + "layer_strides"),
                                  filters, in_channels)
        self.deblocks = nn.ModuleList([
            nn.Sequential(
                nn.ConvTranspose2d(c, u, s, stride=s, bias=False),
                nn.BatchNorm2d(u, eps=key(cfg, a + "deconv_bn_eps"),
                               momentum=key(cfg, a + "deconv_bn_momentum")),
                nn.ReLU())
            for c, u, s in zip(filters, key(cfg, a + "num_upsample_filters"),
                               key(cfg, a + "upsample_strides"))])
        for i, c in enumerate(filters):
            setattr(self, f"single_head_{i}", nn.Conv2d(c, 1, 1))

    def forward(self, x, warps, record=None):
        """x [n, C, H, W]: one frame's agents, the ego first -> [1, sum(U), H, W]."""
        decoded = []
        for level in range(self.resnet.num_levels):
            x = self.resnet.level(level)(x)
            occ = getattr(self, f"single_head_{level}")(x)
            score = torch.sigmoid(occ) + 1e-4
            warped = warp_to_ego(x, warps)
            s = warp_to_ego(score, warps)
            s = torch.softmax(s.masked_fill(s == 0, float("-inf")), dim=0)
            s = torch.where(torch.isnan(s), torch.zeros_like(s), s)
            fused = (warped * s).sum(0, keepdim=True)
            if record is not None:
                p = f"pyramid.{level}."
                record.update({p + "features": x, p + "occupancy": occ, p + "warped": warped,
                               p + "weights": s, p + "fused": fused})
            decoded.append(self.deblocks[level](fused))
        return torch.cat(decoded, 1)


class ShrinkHeader(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        a = "model.args.shrink_header."
        cin, dim = key(cfg, a + "input_dim"), key(cfg, a + "dim")
        first = nn.Conv2d(cin, dim, key(cfg, a + "kernel_size"), stride=key(cfg, a + "stride"),
                          padding=key(cfg, a + "padding"))
        block = nn.Module()
        block.double_conv = nn.Sequential(first, nn.ReLU(inplace=True),
                                          nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(inplace=True))
        self.layers = nn.ModuleList([block])

    def forward(self, x):
        return self.layers[0].double_conv(x)


class Reference(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        r, v = key(cfg, "preprocess.cav_lidar_range"), key(cfg, "preprocess.args.voxel_size")
        self.grid_w = round((r[3] - r[0]) / v[0])
        self.grid_h = round((r[4] - r[1]) / v[1])
        self.pillar_size = float(v[0])
        self.encoder_m1 = PointPillarEncoder(cfg)
        self.backbone_m1 = BevBackbone(cfg, self.encoder_m1.pillar_vfe.out_channels)
        method = key(cfg, "model.core_method")
        if method not in ("heter_pyramid_collab_mc", "heter_pyramid_collab_codebook_mc"):
            raise ConfigError(f"config key model.core_method: unknown model {method}")
        self.codebook = Codebook(cfg) if method.endswith("codebook_mc") else None
        in_channels = sum(key(cfg, "model.args.backbone.num_filters"))
        self.pyramid_backbone = PyramidFusion(cfg, in_channels)
        self.shrink_conv = ShrinkHeader(cfg)
        dim = key(cfg, "model.args.shrink_header.dim")
        anchors = key(cfg, "model.args.anchor_number")
        self.cls_head = nn.Conv2d(dim, anchors, 1)
        self.reg_head = nn.Conv2d(dim, 7 * anchors, 1)
        self.dir_head = nn.Conv2d(dim, key(cfg, "model.args.dir_args.num_bins") * anchors, 1)

    def pillar_features(self, agent):
        return self.encoder_m1.pillar_vfe(agent["features"], agent["num_points"])

    def bev(self, agent, pillar_features=None):
        """One agent's backbone map before the codebook: [1, C, h, w]."""
        if pillar_features is None:
            pillar_features = self.pillar_features(agent)
        return self.backbone_m1(scatter(pillar_features, agent["coords"], self.grid_h, self.grid_w))

    def encode(self, agent):
        """The agent half: pillars -> indices (or features without a codebook)."""
        bev = self.bev(agent)
        return self.codebook.encode(bev) if self.codebook is not None else bev

    def fuse(self, sent, warps, record=None):
        """The ego half: every agent's indices (or features) -> heads."""
        maps = torch.cat(sent)
        if self.codebook is not None:
            maps = self.codebook.decode(maps)
        fused = self.pyramid_backbone(maps, warps, record)
        shrunk = self.shrink_conv(fused)
        if record is not None:
            record.update({"fused": fused, "shrink": shrunk})
        return {"cls": self.cls_head(shrunk), "reg": self.reg_head(shrunk),
                "dir": self.dir_head(shrunk)}


# ---------------------------------------------------------------------------------------
# Files


def load_model(path):
    sd = torch.load(path, map_location="cpu")
    meta = {k[len(META):]: bytes(v.tolist()).decode() for k, v in sd.items() if k.startswith(META)}
    if "config_yaml" not in meta:
        raise ConfigError(f"{path}: no {META}config_yaml (not a qv2x checkpoint?)")
    cfg = yaml.safe_load(meta["config_yaml"])
    model = Reference(cfg)
    model.load_state_dict({k: v for k, v in sd.items() if not k.startswith(META)}, strict=True)
    return model.eval(), meta


def load_inputs(path):
    d = torch.load(path, map_location="cpu")
    n = d["pairwise"].shape[0]
    agents = [{f: d[f"agents.{i}.{f}"] for f in ("features", "num_points", "coords")}
              for i in range(n)]
    return d, agents


def pose_matrix(pose):
    """T(pose) = [R | t], R = Rz(yaw) Ry(-pitch) Rx(-roll), degrees (SPEC §5)."""
    x, y, z, roll, yaw, pitch = [float(v) for v in pose]

    def rotation(deg, i, j):  # about the axis other than i and j
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        m = torch.eye(3, dtype=torch.float64)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m

    # Rz acts on (x, y), Ry on (z, x), Rx on (y, z): each is the right-handed rotation.
    t = torch.eye(4, dtype=torch.float64)
    t[:3, :3] = rotation(yaw, 0, 1) @ rotation(-pitch, 2, 0) @ rotation(-roll, 1, 2)
    t[:3, 3] = torch.tensor([x, y, z], dtype=torch.float64)
    return t


def normalized_affine(m, grid_w, grid_h, ratio):
    """SPEC §5: the affine_grid matrix (float32) from M = T_agent^-1 T_ego."""
    a = [float(m[0, 0]), float(m[0, 1]) * grid_h / grid_w, 2.0 * float(m[0, 3]) / (ratio * grid_w),
         float(m[1, 0]) * grid_w / grid_h, float(m[1, 1]), 2.0 * float(m[1, 3]) / (ratio * grid_h)]
    return torch.tensor(a, dtype=torch.float32).view(2, 3)


def reference_warps(model, inputs):
    pairwise = inputs["pairwise"].double()
    return torch.stack([normalized_affine(pairwise[0, k], model.grid_w, model.grid_h,
                                          model.pillar_size) for k in range(pairwise.shape[0])])


# ---------------------------------------------------------------------------------------
# check


def compare(name, ours, theirs, tol, rows):
    """Appends a row comparing qv2x's `theirs` with the reference's `ours`."""
    if theirs is None:
        rows.append({"tensor": name, "ok": False, "error": "missing from the qv2x outputs"})
        return
    if tuple(theirs.shape) != tuple(ours.shape):
        rows.append({"tensor": name, "ok": False,
                     "error": f"shape {list(theirs.shape)} in qv2x, {list(ours.shape)} here"})
        return
    a, b = theirs.double(), ours.double()
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    scale = float(b.abs().max()) if b.numel() else 0.0
    rel = diff / scale if scale > 0 else diff
    rows.append({"tensor": name, "shape": list(ours.shape), "max_abs": diff, "max_ref": scale,
                 "rel": rel, "ok": rel <= tol})


def run_check(args):
    model, meta = load_model(args.checkpoint)
    inputs, agents = load_inputs(args.inputs)
    out = torch.load(args.outputs, map_location="cpu")
    rows, notes = [], []
    with torch.inference_mode():
        n = len(agents)
        if "lidar_pose" in inputs:
            poses = [pose_matrix(p) for p in inputs["lidar_pose"]]
            pw = torch.stack([torch.stack([torch.linalg.inv(poses[j]) @ poses[i] for j in range(n)])
                              for i in range(n)])
            compare("pairwise (from lidar_pose)", pw, inputs["pairwise"].double(), 1e-9, rows)
        warps = reference_warps(model, inputs)
        compare("warp_to_ego", warps, out.get("warp_to_ego"), args.tol, rows)
        bev = []
        for i, agent in enumerate(agents):
            pf = model.pillar_features(agent)
            compare(f"agents.{i}.pillar_features", pf, out.get(f"agents.{i}.pillar_features"),
                    args.tol, rows)
            bev.append(model.bev(agent, pf))
        bev = torch.cat(bev)
        compare("bev_features", bev, out.get("bev_features"), args.tol, rows)
        if model.codebook is not None:
            cb = model.codebook
            m, levels = cb.m, len(cb.codewords)
            theirs = [out.get(f"indices.{l}") for l in range(levels)]
            if any(t is None or tuple(t.shape) != (n, m) + tuple(bev.shape[2:]) for t in theirs):
                rows.append({"tensor": "indices", "ok": False,
                             "error": "missing or mis-shaped indices.<level> in the qv2x outputs"})
                sent = cb.encode(bev)
            else:
                ties = []
                own = cb.encode(bev)
                cb.encode(bev, follow=torch.cat(theirs, 1), ties=ties)
                for l, t in enumerate(ties):
                    untied = t["differ"] - t["ties"]
                    rows.append({"tensor": f"indices.{l}", "shape": list(theirs[l].shape),
                                 "differ": t["differ"], "ties": t["ties"],
                                 "worst_gap_rel": t["worst_gap_rel"], "ok": untied == 0})
                # Where they differ, the ego half decodes qv2x's indices, so that a tie broken
                # the other way does not show up again as a fusion mismatch.
                differ = sum(t["differ"] for t in ties)
                sent = torch.cat(theirs, 1).long() if differ else own
                if differ:
                    notes.append(f"the ego half decodes qv2x's indices, not its own ({differ} "
                                 f"differ, {sum(t['ties'] for t in ties)} of them at ties)")
            compare("decoded", cb.decode(sent), out.get("decoded"), args.tol, rows)
            sent = [sent[i:i + 1] for i in range(n)]
        else:
            sent = [bev[i:i + 1] for i in range(n)]
        record = {}
        heads = model.fuse(sent, warps, record)
        record.update(heads)
        for name, tensor in record.items():  # pipeline order
            compare(name, tensor, out.get(name), args.tol, rows)
    bad = [r for r in rows if not r["ok"]]
    print_check(rows, args, meta, notes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "inputs": args.inputs,
                       "outputs": args.outputs, "tol": args.tol, "ok": not bad, "notes": notes,
                       "rows": rows}, f, indent=2)
    return 1 if bad else 0


def print_check(rows, args, meta, notes):
    print(f"{args.outputs} (qv2x) vs PyTorch {torch.__version__} eager on {args.inputs}, "
          f"checkpoint {args.checkpoint} (stage {meta.get('stage', '?')}); "
          f"rel = max|qv2x - torch| / max|torch|, tolerance {args.tol:g}")
    print(f"{'tensor':34} {'shape':22} {'max abs':>10} {'max |ref|':>10} {'rel':>10}")
    for r in rows:
        flag = "" if r["ok"] else "  <-- MISMATCH"
        if "error" in r:
            print(f"{r['tensor']:34} {r['error']}{flag}")
        elif "differ" in r:
            detail = (f"{r['differ']} differ, {r['ties']} of them ties (worst gap "
                      f"{r['worst_gap_rel']:.2g} of |x|^2+|c|^2)" if r["differ"] else "all equal")
            print(f"{r['tensor']:34} {str(r['shape']):22} {detail}{flag}")
        else:
            print(f"{r['tensor']:34} {str(r['shape']):22} {r['max_abs']:10.3g} "
                  f"{r['max_ref']:10.3g} {r['rel']:10.3g}{flag}")
    for note in notes:
        print("note:", note)
    bad = [r["tensor"] for r in rows if not r["ok"]]
    print(f"FAIL: {len(bad)} tensor(s) differ, first {bad[0]}" if bad
          else f"OK: {len(rows)} tensors agree")


# ---------------------------------------------------------------------------------------
# bench


def cpu_model():
    with open("/proc/cpuinfo") as f:
        info = f.read()
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines()
                 if l.startswith("model name")), platform.processor())
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines()
                  if l.startswith("flags")), [])
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    return name, [f for f in wanted if f in flags]


def median_ms(seconds):
    return 1e3 * statistics.median(seconds)


def time_pytorch(model, agents, warps, repeat):
    """The same three measurements as `qv2x model forward --repeat` (model_forward.h)."""
    encode_s, fuse_s, frame_s = [], [], []
    with torch.inference_mode():
        sent = [model.encode(a) for a in agents]
        for _ in range(repeat):
            t0 = time.perf_counter()
            model.encode(agents[0])
            encode_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.fuse(sent, warps)
            fuse_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.fuse([model.encode(a) for a in agents], warps)
            frame_s.append(time.perf_counter() - t0)
    return encode_s, fuse_s, frame_s


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"pytorch_reference: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def bench_preset(args, preset, work):
    config = os.path.join(args.configs, preset, "stage3.yaml")
    ckpt, inputs = os.path.join(work, f"{preset}.pth"), os.path.join(work, f"{preset}-in.pth")
    run([args.qv2x, "model", "init", "--config", config, "--out", ckpt])
    made = run([args.qv2x, "model", "inputs", "--config", config, "--scene", args.scene,
                "--frame", str(args.frame), "--out", inputs]
               + [a for s in args.set for a in ("--set", s)])
    model, _ = load_model(ckpt)
    tensors, agents = load_inputs(inputs)
    warps = reference_warps(model, tensors)
    with torch.inference_mode():  # warm-up
        for _ in range(args.warmup):
            model.fuse([model.encode(a) for a in agents], warps)
    q = {"encode": [], "fuse": [], "frame": []}
    u = {"encode": [], "fuse": [], "frame": []}  # qv2x --unfrozen: the plain eval layers
    p = {"encode": [], "fuse": [], "frame": []}
    per_round = max(1, args.repeat // args.rounds)
    for r in range(args.rounds):
        for runs, extra in ((q, []), (u, ["--unfrozen"])):
            timing = os.path.join(work, f"{preset}-timing-{r}.json")
            run([args.qv2x, "model", "forward", "--config", config, "--checkpoint", ckpt,
                 "--inputs", inputs, "--repeat", str(per_round), "--threads", str(args.threads),
                 "--timing", timing] + extra)
            with open(timing) as f:
                t = json.load(f)
            for k in runs:
                runs[k] += t[f"{k}_s"]
        for k, v in zip(("encode", "fuse", "frame"), time_pytorch(model, agents, warps, per_round)):
            p[k] += v
        print(f"  {preset} round {r + 1}/{args.rounds}: qv2x frame {median_ms(q['frame']):.1f} ms, "
              f"PyTorch {median_ms(p['frame']):.1f} ms", file=sys.stderr)
    n = len(agents)
    stages = {}
    for k, label in (("encode", "encode_1_agent"), ("fuse", f"fuse_{n}_agents"),
                     ("frame", f"frame_{n}_agents")):
        qm, um, pm = median_ms(q[k]), median_ms(u[k]), median_ms(p[k])
        stages[label] = {"qv2x_ms": round(qm, 2), "qv2x_unfrozen_ms": round(um, 2),
                         "pytorch_ms": round(pm, 2), "speedup": round(pm / qm, 3),
                         "freezing_speedup": round(um / qm, 3), "runs": len(q[k])}
    return {"config": config, "scene": args.scene, "frame": args.frame,
            "inputs": made.strip(), "agents": n,
            "pillars": [int(a["num_points"].shape[0]) for a in agents], "stages": stages}


def run_bench(args):
    if JEMALLOC not in os.environ.get("LD_PRELOAD", ""):
        if not os.path.exists(JEMALLOC):
            sys.exit(f"pytorch_reference: {JEMALLOC} is missing (apt-get install libjemalloc2)")
        # PASSIVE: OpenMP workers that spin at barriers while the machine's cores are shared
        # made both sides 3-5 times slower here, and erratic.
        env = dict(os.environ, LD_PRELOAD=JEMALLOC, OMP_NUM_THREADS=str(args.threads),
                   OMP_WAIT_POLICY="PASSIVE")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    torch.set_num_threads(args.threads)
    name, flags = cpu_model()
    result = {"cpu_model": name, "cpu_flags": flags, "threads": args.threads,
              "allocator": "jemalloc (LD_PRELOAD, both sides)", "omp_wait_policy": "PASSIVE",
              "torch": torch.__version__,
              "qv2x": args.qv2x, "repeat": args.repeat, "rounds": args.rounds,
              "loadavg_before": os.getloadavg()[0],
              "speedup": "PyTorch eager median / qv2x median (> 1: qv2x faster)",
              "freezing_speedup": "qv2x --unfrozen median / qv2x median (what frozen convs give)",
              "presets": {}}
    try:
        result["commit"] = run(["git", "rev-parse", "--short", "HEAD"]).strip()
    except SystemExit:
        pass
    with tempfile.TemporaryDirectory(prefix="qv2x-pytorch-bench-") as work:
        for preset in args.presets.split(","):
            result["presets"][preset] = bench_preset(args, preset, work)
    result["loadavg_after"] = os.getloadavg()[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"{name}, {args.threads} threads, jemalloc, PyTorch {torch.__version__}; "
          f"medians of {args.repeat} runs in {args.rounds} alternating rounds")
    print(f"{'preset':10} {'stage':16} {'qv2x ms':>10} {'unfrozen ms':>12} {'PyTorch ms':>11} "
          f"{'speedup':>8}")
    for preset, r in result["presets"].items():
        for stage, s in r["stages"].items():
            print(f"{preset:10} {stage:16} {s['qv2x_ms']:10.1f} {s['qv2x_unfrozen_ms']:12.1f} "
                  f"{s['pytorch_ms']:11.1f} {s['speedup']:7.2f}x")
    print(f"wrote {args.out}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("check", help="compare qv2x's forward outputs with PyTorch's")
    c.add_argument("--checkpoint", required=True, help="qv2x checkpoint (.pth)")
    c.add_argument("--inputs", required=True, help="file of `qv2x model inputs`")
    c.add_argument("--outputs", required=True, help="file of `qv2x model forward --out`")
    c.add_argument("--tol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    c.add_argument("--json", help="also write the comparison as JSON")
    b = sub.add_parser("bench", help="time PyTorch eager and qv2x on the same inputs")
    b.add_argument("--qv2x", default="build/bin/qv2x")
    b.add_argument("--configs", default="configs")
    b.add_argument("--presets", default="cpu,v2x_real")
    b.add_argument("--scene", default="configs/scenes/bench8.yaml",
                   help="scene of the inputs (bench8's frame 0 has 4 agents in range)")
    b.add_argument("--frame", type=int, default=0)
    b.add_argument("--set", action="append", default=[], help="config override for the inputs")
    b.add_argument("--repeat", type=int, default=20, help="timed runs per side and stage")
    b.add_argument("--rounds", type=int, default=4, help="alternations between the two sides")
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--out", default="bench/results/pytorch-vs-qv2x.json")
    args = p.parse_args()
    try:
        return run_check(args) if args.mode == "check" else run_bench(args)
    except ConfigError as e:
        sys.exit(f"pytorch_reference: {e}")


if __name__ == "__main__":
    sys.exit(main())
