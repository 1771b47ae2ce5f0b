#!/usr/bin/env python3
"""Writes the small seed corpus of the fuzz targets (pure Python, no torch/numpy/cv2).
Run from fuzz/: python3 make_seeds.py. Seeds are committed; fuzzing never writes here."""
import io, json, os, pickle, struct, zipfile, zlib

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join("corpus", target, name), "wb") as f:
        f.write(data)

# --- safetensors
def safetensors(entries, data, meta=None):
    h = {k: v for k, v in entries.items()}
    if meta:
        h["__metadata__"] = meta
    t = json.dumps(h).encode()
    t += b" " * ((8 - len(t) % 8) % 8)
    return struct.pack("<Q", len(t)) + t + data
put("checkpoint", "st_two", safetensors(
    {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
     "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}, bytes(24), {"format": "pt"}))
put("checkpoint", "st_f16", safetensors({"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]}}, bytes(6)))

# --- torch zip with a hand-written pickle (torch._utils._rebuild_tensor_v2, persistent storages)
def torch_pickle(entries):
    # Protocol 2 written by hand, opcode by opcode, the way torch.save lays out a state dict.
    out = bytearray(b"\x80\x02")
    def g(mod, name):
        out.extend(b"c" + mod.encode() + b"\n" + name.encode() + b"\n")
    def s(x):
        b = x.encode(); out.extend(b"X" + struct.pack("<I", len(b)) + b)
    def i(v):
        out.extend(b"J" + struct.pack("<i", v))
    def tup(vals):
        out.extend(b"(")
        for v in vals: i(v)
        out.extend(b"t")
    g("collections", "OrderedDict"); out.extend(b")R(")
    for name, (kind, key, numel, offset, size, stride) in entries.items():
        s(name)
        g("torch._utils", "_rebuild_tensor_v2"); out.extend(b"(")
        out.extend(b"("); s("storage"); g("torch", kind); s(key); s("cpu"); i(numel); out.extend(b"tQ")
        i(offset); tup(size); tup(stride); out.extend(b"\x89")
        g("collections", "OrderedDict"); out.extend(b")R")
        out.extend(b"tR")
    out.extend(b"u.")
    return bytes(out)

def torch_zip(entries, storages):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", torch_pickle(entries))
        z.writestr("archive/byteorder", "little")
        for k, v in storages.items():
            z.writestr("archive/data/" + k, v)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()
put("checkpoint", "pth_views", torch_zip(
    {"w": ("FloatStorage", "0", 6, 0, [2, 3], [3, 1]), "wt": ("FloatStorage", "0", 6, 0, [3, 2], [1, 3]),
     "l": ("LongStorage", "1", 4, 1, [2], [2])},
    {"0": bytes(24), "1": bytes(32)}))
put("checkpoint", "pth_half", torch_zip({"h": ("HalfStorage", "0", 4, 0, [2, 2], [2, 1])}, {"0": bytes(8)}))

# --- JSON (server bodies, headers)
put("json", "body", '{"boxes": [[10, 20, 110, 220]], "outputs": ["alpha", "cutout"], "background": "#ffffff"}')
put("json", "numbers", '[0, -1, 1.5, 1e308, 4294967456, 18446744073709551615, 12.0, "\\u00e9", null, true]')
put("json", "nested", "[" * 40 + "]" * 40)
put("json", "header", '{"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}')

# --- COCO
coco = {
  "images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 5}, {"id": 2, "file_name": "b.jpg", "height": 5}],
  "annotations": [
    {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [1, 1, 3, 3], "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]]},
    {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 1, "segmentation": {"size": [5, 8], "counts": [0, 5, 35]}},
    {"id": 12, "image_id": 1, "category_id": 4, "segmentation": {"size": [5, 8], "counts": "05n0NTO"}},
    {"id": 13, "image_id": 1, "category_id": 4}],
  "categories": [{"id": 3, "name": "person", "supercategory": "person"}, {"id": 4, "name": "tie"}]}
put("coco", "small", json.dumps(coco))
put("coco", "panoptic", json.dumps({"images": [], "categories": [], "annotations": [
    {"image_id": 1, "file_name": "p.png", "segments_info": [{"id": 5, "category_id": 1, "bbox": [0, 0, 2, 2]}]}]}))

# --- RLE / polygons: [h, w, kind] + payload
put("rle_polygon", "string", bytes([5, 8, 0]) + b"05n0NTO")
put("rle_polygon", "polygon", bytes([6, 6, 1]) + struct.pack("<8d", 1, 1, 4, 1, 4, 4, 1, 4))
put("rle_polygon", "far", bytes([6, 6, 1]) + struct.pack("<8d", 2, 2, 1e8, 2, 1e8, 4, 2, 4))

# --- images: a tiny PNG (grey, RGB, RGBA) written by hand
def png(w, h, ctype, channels, depth=8):
    raw = b"".join(b"\x00" + bytes(((x * 37 + y * 11 + c) % 256 for x in range(w) for c in range(channels))) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
put("image", "grey.png", png(5, 4, 0, 1))
put("image", "rgb.png", png(6, 3, 2, 3))
put("image", "rgba.png", png(3, 3, 6, 4))

# --- CLI parsers
for n, t in enumerate(["10,20,110,220", "1.5,2.25,30.75,40", "-1e1,0,2E1,+20", "0x8,0,20,20", "#ff8800", "#f80",
                       "255,128,0", "white", "Gray", "1,2,3,4,5"]):
    put("cli_parsers", "s%d" % n, t)
# --- ONNX: tiny graphs in the protobuf wire format, written field by field (onnx.proto numbers)
def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7f; v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v: return bytes(out)
def fld(n, v):  # an int (varint) or bytes/str/list of fields (length-delimited)
    if isinstance(v, int): return varint(n << 3) + varint(v)
    if isinstance(v, str): v = v.encode()
    if isinstance(v, list): v = b"".join(v)
    return varint(n << 3 | 2) + varint(len(v)) + v
def f32(n, x): return varint(n << 3 | 5) + struct.pack("<f", x)
def dims_info(name, dims):  # ValueInfoProto, float32, -1 = symbolic
    ds = [fld(1, [fld(1, d) if d >= 0 else fld(2, "n")]) for d in dims]
    return fld(1, name) + fld(2, [fld(1, [fld(1, 1), fld(2, ds)])])
def tensor(name, dims, dtype, raw):
    return [fld(1, d) for d in dims] + [fld(2, dtype), fld(8, name), fld(9, raw)]
def floats(name, dims, vals): return tensor(name, dims, 1, struct.pack("<%df" % len(vals), *vals))
def int64s(name, vals): return tensor(name, [len(vals)], 7, struct.pack("<%dq" % len(vals), *vals))
def attr_ints(name, vals): return fld(5, [fld(1, name), fld(20, 7)] + [fld(8, v) for v in vals])
def attr_i(name, v): return fld(5, [fld(1, name), fld(20, 2), fld(3, v)])
def attr_s(name, v): return fld(5, [fld(1, name), fld(20, 3), fld(4, v)])
def node(op, ins, outs, *attrs, name=""):
    return fld(1, [fld(1, i) for i in ins] + [fld(2, o) for o in outs] + ([fld(3, name)] if name else [])
               + [fld(4, op)] + list(attrs))
def model(nodes, inits, inputs, outputs, opset=15):
    g = list(nodes) + [fld(2, "g")] + [fld(5, t) for t in inits] + [fld(11, dims_info(*i)) for i in inputs] \
        + [fld(12, dims_info(o, [])) for o in outputs]
    return fld(1, 8) + fld(8, [fld(2, opset)]) + fld(7, g)
os.makedirs(os.path.join("corpus", "onnx"), exist_ok=True)
# Conv (pads, strides) + Relu + MaxPool + Sigmoid, the IS-Net stage pattern.
put("onnx", "conv_pool", model(
    [node("Conv", ["x", "w", "b"], ["c"], attr_ints("kernel_shape", [3, 3]), attr_ints("pads", [1, 1, 1, 1]),
          attr_ints("strides", [1, 1]), name="conv"),
     node("Relu", ["c"], ["r"]),
     node("MaxPool", ["r"], ["p"], attr_ints("kernel_shape", [2, 2]), attr_ints("strides", [2, 2]), attr_i("ceil_mode", 1)),
     node("Sigmoid", ["p"], ["y"])],
    [floats("w", [2, 1, 3, 3], [0.1 * k for k in range(18)]), floats("b", [2], [0.5, -0.5])],
    [("x", [1, 1, -1, -1])], ["y"]))
# The shape subgraph IS-Net uses before a Resize: Shape -> Gather -> Unsqueeze -> Concat -> Resize(sizes).
put("onnx", "resize_shape", model(
    [node("Shape", ["skip"], ["s"]),
     node("Constant", [], ["i2"], fld(5, [fld(1, "value"), fld(20, 4), fld(5, int64s("", [2, 3]))])),
     node("Gather", ["s", "i2"], ["hw"], attr_i("axis", 0)),
     node("Slice", ["s", "st", "en"], ["nc"]),
     node("Concat", ["nc", "hw"], ["sz"], attr_i("axis", 0)),
     node("Cast", ["sz"], ["sz64"], attr_i("to", 7)),
     node("Resize", ["x", "", "", "sz64"], ["up"], attr_s("mode", "linear"),
          attr_s("coordinate_transformation_mode", "align_corners")),
     node("Add", ["up", "skip"], ["sum"]),
     node("Mul", ["sum", "half"], ["y"])],
    [int64s("st", [0]), int64s("en", [2]), floats("half", [1], [0.5])],
    [("x", [1, 2, 2, 2]), ("skip", [1, 2, 4, 4])], ["y"]))
# Resize by scales, Sub, Unsqueeze (opset 11 axes attribute), Identity; fp16 and int32-typed initializers.
put("onnx", "scales_fp16", model(
    [node("Resize", ["x", "", "sc"], ["up"], attr_s("mode", "linear"),
          attr_s("coordinate_transformation_mode", "pytorch_half_pixel")),
     node("Sub", ["up", "h"], ["d"]),
     node("Identity", ["d"], ["y"]),
     node("Shape", ["x"], ["s"], attr_i("start", -2)),
     node("Unsqueeze", ["s"], ["u"], attr_ints("axes", [0]))],
    [floats("sc", [4], [1, 1, 2, 2]), tensor("h", [1], 10, struct.pack("<H", 0x3c00)),
     tensor("i", [2], 6, struct.pack("<2i", 1, 2))],
    [("x", [1, 1, 3, 3])], ["y", "u"], opset=11))
print("seeds written")
