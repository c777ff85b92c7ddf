#!/usr/bin/env python3
"""Writes Tests/CheckpointsTests/Fixtures/keras: Keras 3 `.keras` archives (issue 10) written by Keras itself, the
same model's `save_weights("x.weights.h5")`, and hostile archives built around a real inner `model.weights.h5`.

Run:   KERAS_BACKEND=torch /work/venv/bin/python Tools/make_keras_fixtures.py

Made with: Python 3.11.7, keras 3.15.1 (torch backend, torch 2.15.0), numpy 2.4.6, h5py 3.16.0 (recorded in
keras/VERSIONS.txt). The weights are seeded; metadata.json holds Keras's save date, so a re-run changes that string
(and the archives' member timestamps), not the weights.

Expected values (format of make_fixtures.py) are read back through Keras and h5py: each dataset's bytes as h5py gives
them from the inner model.weights.h5, and every one cross-checked against the loaded model's variable it belongs to
(`keras.saving.load_model(...)`, the layer named by the `vars` group's `name` attribute).

Hostile archives (no expected values; KerasArchiveTests names what each must say):
  hostile_external.keras      inner h5 whose dataset has external storage (/etc/passwd)
  hostile_extlink.keras       inner h5 whose layers/dense/vars/0 is an external link (/etc/passwd.h5)
  hostile_vds.keras           inner h5 whose dataset is virtual (mapping other.h5)
  hostile_truncated.keras     inner h5 cut to half its length
  hostile_bomb.keras          model.weights.h5 deflated: 80 MiB of zeros in ~80 KiB (beyond the 200x ratio)
  hostile_bomb_lying.keras    deflated member whose header declares 4 KiB but whose stream inflates to 1 MiB
  ambiguous_pkl.keras         a .keras archive that also holds a PyTorch data.pkl
  npz_weights.keras           Keras's weights_format="npz" variant (model.weights.npz): refused, naming it
  no_weights.keras            config.json and metadata.json only
"""

import collections
import io
import os
import platform
import shutil
import struct
import sys
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

ROOT = os.path.join(mf.ROOT, "keras")


def out(name):
    os.makedirs(ROOT, exist_ok=True)
    return os.path.join(ROOT, name)


def build_model():
    """Conv2D + BatchNormalization (non-trainable statistics) + a nested Sequential (layers/<a>/layers/<b>)."""
    keras.utils.set_random_seed(3)
    inner = keras.Sequential([keras.layers.Dense(3, name="d1"), keras.layers.Dense(2, name="d2")], name="block")
    inp = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 2, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = inner(x)
    m = keras.Model(inp, x, name="tiny")
    # Non-trivial BatchNormalization statistics.
    bn = m.get_layer("bn")
    bn.moving_mean.assign(np.array([0.5, -0.25, 2.0], np.float32))
    bn.moving_variance.assign(np.array([1.5, 0.75, 3.0], np.float32))
    return m


def keras_name(path):
    """The reader's Keras 3 naming: layers/<a>/layers/<b>/vars/<i> -> a.b.i."""
    comps = path.split("/")
    parts, k = [], 0
    while k < len(comps):
        if comps[k] == "layers" and k + 1 < len(comps):
            parts.append(comps[k + 1]); k += 2; continue
        if comps[k] == "vars" and k + 2 == len(comps):
            parts.append(comps[k + 1]); k += 2; continue
        parts.append(comps[k]); k += 1
    return ".".join(parts)


def walk_h5(f):
    """Datasets in the reader's order (groups by name, all-digit names numerically) and attributes as metadata."""
    records, meta, datasets = [], collections.OrderedDict(), []

    def key(n):
        return (0, int(n), "") if n.isdigit() else (1, 0, n)

    def visit(g, path):
        for a, v in g.attrs.items():
            meta[(path.strip("/").replace("/", ".") + "." if path != "/" else "") + a] = v if isinstance(v, str) else v.decode()
        for n in sorted(g.keys(), key=key):
            o = g[n]
            p = (path.rstrip("/") + "/" + n)
            if isinstance(o, h5py.Group):
                visit(o, p)
            else:
                datasets.append((p.lstrip("/"), o))
    visit(f, "/")
    for p, d in datasets:
        records.append(mf.numpy_record(keras_name(p), d[()]))
    return records, meta, datasets


def cross_check(model, datasets):
    """Every dataset equals the variable Keras loads into the layer its vars group names."""
    layers = {}

    def collect(layer):
        layers[layer.name] = layer
        for sub in getattr(layer, "layers", []):
            collect(sub)
    collect(model)
    for p, d in datasets:
        vars_group = d.parent
        layer = layers[vars_group.attrs["name"]]
        v = np.asarray(keras.ops.convert_to_numpy(layer.weights[int(p.split("/")[-1])]))
        assert v.dtype == d.dtype and v.shape == d.shape and v.tobytes() == d[()].tobytes(), p


def zip_members(path, members, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in members:
            z.writestr(name, data)


def main():
    versions = collections.OrderedDict([
        ("python", platform.python_version()), ("keras", keras.__version__), ("backend", keras.backend.backend()),
        ("torch", __import__("torch").__version__), ("numpy", np.__version__), ("h5py", h5py.__version__),
    ])
    shutil.rmtree(ROOT, ignore_errors=True)
    m = build_model()
    archive, weights = out("tiny.keras"), out("tiny.weights.h5")
    m.save(archive)
    m.save_weights(weights)

    z = zipfile.ZipFile(archive)
    assert z.getinfo("model.weights.h5").compress_type == zipfile.ZIP_STORED
    inner = z.read("model.weights.h5")
    config, metadata = z.read("config.json").decode(), z.read("metadata.json").decode()
    loaded = keras.saving.load_model(archive)
    for path, meta_extra in [(archive, {"keras_config": config, "keras_metadata": metadata}), (weights, {})]:
        src = io.BytesIO(inner) if path == archive else path
        with h5py.File(src, "r") as f:
            records, meta, datasets = walk_h5(f)
            cross_check(loaded, datasets)
            meta["keras_layout"] = "keras3-weights-h5"
            meta.update(meta_extra)
            fmt = "keras" if path == archive else "hdf5"
            how = 'model.save("tiny.keras")' if path == archive else 'model.save_weights("tiny.weights.h5")'
            mf.write_expected(path, fmt, records, meta, f"keras {keras.__version__}: {how}",
                              notes="values as h5py reads the (inner) model.weights.h5, each equal to the variable "
                                    "keras.saving.load_model gives; names as the .weights.h5 reader gives them")

    # Deflated (Keras writes model.weights.h5 stored; zip tools may recompress): must read the same.
    deflated = out("tiny_deflated.keras")
    zip_members(deflated, [(i.filename, z.read(i)) for i in z.infolist()], zipfile.ZIP_DEFLATED)
    shutil.copy(archive + ".expected.json", deflated + ".expected.json")

    # Hostile archives.
    ext = io.BytesIO()
    with h5py.File(ext, "w") as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"
        g.create_dataset("0", shape=(16,), dtype="u1", external=[("/etc/passwd", 0, 16)])
    base = [("metadata.json", metadata), ("config.json", config)]
    zip_members(out("hostile_external.keras"), base + [("model.weights.h5", ext.getvalue())])
    link = io.BytesIO()
    with h5py.File(link, "w") as f:
        f.create_group("layers/dense/vars")
        f["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd.h5", "/w")
    zip_members(out("hostile_extlink.keras"), base + [("model.weights.h5", link.getvalue())])
    vds = io.BytesIO()
    with h5py.File(vds, "w") as f:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource("other.h5", "w", shape=(4,))
        f.create_group("layers/dense/vars").create_virtual_dataset("0", layout)
    zip_members(out("hostile_vds.keras"), base + [("model.weights.h5", vds.getvalue())])
    zip_members(out("hostile_truncated.keras"), base + [("model.weights.h5", inner[: len(inner) // 2])])
    zip_members(out("hostile_bomb.keras"), base + [("model.weights.h5", bytes(80 << 20))], zipfile.ZIP_DEFLATED)
    lying = out("hostile_bomb_lying.keras")
    zip_members(lying, base + [("model.weights.h5", bytes(1 << 20))], zipfile.ZIP_DEFLATED)
    patch_declared_size(lying, "model.weights.h5", 4096)
    zip_members(out("ambiguous_pkl.keras"), base + [("model.weights.h5", inner), ("archive/data.pkl", b"\x80\x02}q\x00.")])
    from keras.src.saving import saving_lib
    saving_lib.save_model(m, out("npz_weights.keras"), weights_format="npz")
    zip_members(out("no_weights.keras"), base)

    with open(out("VERSIONS.txt"), "w") as f:
        f.write("Fixtures written by Tools/make_keras_fixtures.py with:\n")
        for k, v in versions.items():
            f.write(f"{k} {v}\n")
    total = sum(os.path.getsize(os.path.join(ROOT, n)) for n in os.listdir(ROOT))
    print(f"{total / 1024:.0f} KiB in {ROOT}")


def patch_declared_size(path, member, size):
    """Rewrites the uncompressed size of `member` in its local header and central directory entry."""
    data = bytearray(open(path, "rb").read())
    info = zipfile.ZipFile(path).getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    name = member.encode()
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + n] == name:
            struct.pack_into("<I", data, pos + 24, size)
        pos += 4
    open(path, "wb").write(bytes(data))


if __name__ == "__main__":
    main()
