"""The parity driver (ffkit.parity): one learning sequence on the digits samples, in CPython
and MicroPython alike (no f-strings, no typing). `drive` learns ``steps`` samples, then
predicts the held-out ones, and returns a JSON-able dict: the state digest (every
layer's weights, the head weights, every layer's PRNG states, the head PRNG, the net
PRNG, the step as u32, in this order) and its parts, the .ffw CRCs, a digest every
``every`` steps, the layers' active steps and the predictions.

How it runs:

- in CPython (ffkit.parity.CPythonRunner): the host executes this file's text in a
  namespace named ``ffkit_parity_driver`` and calls `drive` with a kernels module;
- in the MicroPython unix port (MicroPythonRunner): ``micropython parity_driver.py
  ARGS.json``, the file of its parameters named by sys.argv[1];
- on an emulated board (QemuRunner, ffkit.board.qemu.run_json): this file is the job, imported
  as ``_ffkit_job``, and its parameters are the file ``args.json`` copied onto the board.

The parameters, one JSON object: {"kernels": the kernels module to import
("ffrt.kernels_viper"), "cfg": the model's Config fields, "path": the sample file
(ffkit.parity.write_samples), "steps", "every"}. As a program it prints `drive`'s result
as one JSON line.
"""
import json
import struct
import sys
import time
from binascii import crc32

from ffrt import ffw
from ffrt import ffw_ram
from ffrt.model import Config
from ffrt.net import FFNet

if hasattr(time, "ticks_us"):
    def _now_us():
        return time.ticks_us()

    def _since_us(t0):
        return time.ticks_diff(time.ticks_us(), t0)
else:
    def _now_us():
        return time.perf_counter()  # type: ignore[attr-defined]  # CPython

    def _since_us(t0):
        return int((time.perf_counter() - t0) * 1000000)  # type: ignore[attr-defined]


class Samples:
    """Records first..first+n-1 of a sample file, read one at a time into one buffer:
    a board's heap need not hold the data set (the Cortex-M0's 192 KB cannot hold the
    1,797 digits as Python objects). Item i is (features, label); the features buffer is
    reused by the next read, so a learner must copy it (FFNet._load does)."""

    def __init__(self, f, nf, first, n):
        self.f = f
        self.nf = nf
        self.first = first
        self.n = n
        self.buf = bytearray(nf + 1)
        self.x = bytearray(nf)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.f.seek(10 + (self.first + i) * (self.nf + 1))
        buf = self.buf
        if self.f.readinto(buf) != len(buf):
            raise ValueError("sample file ends early")
        x = self.x
        x[:] = buf[:self.nf]
        return x, buf[self.nf]


def read_samples(path):
    """(n_features, train Samples, test Samples) of a sample file; the file stays open."""
    f = open(path, "rb")
    head = f.read(10)
    magic, nf, n_train, n_test = struct.unpack("<4sHHH", head)
    if magic != b"FFPD":
        raise ValueError("not a parity sample file: " + path)
    size = f.seek(0, 2)
    want = 10 + (n_train + n_test) * (nf + 1)
    if size != want:
        raise ValueError("sample file has %d bytes, expected %d" % (size, want))
    return nf, Samples(f, nf, 0, n_train), Samples(f, nf, n_train, n_test)


def state_parts(net):
    """(name, bytes) of every part of the model state, in digest order."""
    parts = []
    for l in range(net.n_layers):
        parts.append(("layer %d weights" % l, bytes(net.weights[l])))
    parts.append(("head weights", bytes(net.head)))
    for l in range(net.n_layers):
        parts.append(("layer %d prng" % l, bytes(net.rngs[l])))
    parts.append(("head prng", bytes(net.head_rng)))
    parts.append(("net prng", bytes(net.rng)))
    parts.append(("step", struct.pack("<I", net.step)))
    if net.cfg.recurrent:  # the state each layer but the last reads from the layer above
        for l in range(net.n_layers - 1):
            parts.append(("layer %d state" % l, bytes(net.layer_input(l))))
    return parts


def state_crc(net):
    c = 0
    for _, b in state_parts(net):
        c = crc32(b, c)
    return c & 0xFFFFFFFF


def drive(kernels, cfg_dict, path, steps, every, hook=None):
    cfg = Config(**cfg_dict)
    nf, train, test = read_samples(path)
    if nf != cfg.n_features:
        raise ValueError("samples have %d features, the model takes %d" % (nf, cfg.n_features))
    net = FFNet(cfg, kernels=kernels)
    digests = [[0, state_crc(net)]]
    active = [0] * net.n_layers  # learn steps in which the layer had any activity to learn
    n = len(train)
    t0 = _now_us()
    for i in range(steps):
        x, y = train[i % n]
        net.learn_one(x, y)
        net.advance()  # a recurrent net's next state (nothing for a feed-forward one)
        for l in range(net.n_layers):
            if net.last_pos[l] or net.last_neg[l]:
                active[l] += 1
        if (i + 1) % every == 0 or i + 1 == steps:
            digests.append([i + 1, state_crc(net)])
    learn_us = _since_us(t0)
    if hook is not None:
        hook(net)
    state = {}
    for name, b in state_parts(net):
        state[name] = crc32(b) & 0xFFFFFFFF
    crc = state_crc(net)
    wcrc = ffw_ram.weights_crc32(net)
    fcrc = struct.unpack("<I", ffw_ram.encode(net)[-4:])[0]
    t0 = _now_us()
    pred, pred_head = [], []
    for i in range(len(test)):
        x = test[i][0]
        pred.append(net.predict_one(x))
        pred_head.append(net.predict_head(x))
        net.advance()
    predict_us = _since_us(t0)
    train.f.close()
    return {"weights_crc32": wcrc, "ffw_crc32": fcrc, "state_crc32": crc, "state": state,
            "step": net.step, "digests": digests,
            "active_steps": active,
            "predict_one": pred, "predict_head": pred_head,
            "learn_us": learn_us, "predict_us": predict_us}


def main():
    argv = getattr(sys, "argv", [])  # a port may have no sys.argv
    with open(argv[1] if len(argv) > 1 else "args.json") as f:
        args = json.load(f)
    __import__(args["kernels"])
    kernels = sys.modules[args["kernels"]]
    print(json.dumps(drive(kernels, args["cfg"], args["path"], args["steps"], args["every"])))


if __name__ == "__main__" or __name__ == "_ffkit_job":
    main()
