"""LiveLearner: raw IMU samples in; features, a prediction and a learn step per window out.

Its learning policy is `Learner`'s (schedules, then the learn step, then the guard), the
one the host's protocols and its River estimator learn through too.

What a board runs on its own sensor stream, and what the protocol's SAMPLES request
(ffrt.live_ops) runs on samples a host streams: a `ffrt.features.Windower` turns int16
samples (4096 LSB/g, 2048 LSB/(rad/s)) into the 72 window features every 64 samples, and
each window is predicted first, then, when learning is on and the window has a label,
learnt: through a class-balanced `ffrt.rehearsal.Rehearsal` buffer when per_class > 0,
else by the net alone. Prediction is FFNet.predict_one (goodness per label) or, with
predict_head, FFNet.predict_head (one pass and the linear head).

Schedules (ffrt.schedule, `set_schedules`): of lr_shift and of theta, tuples of (windows
learnt, value) pairs; when the count of windows learnt since the learner was made or its
buffer cleared reaches an entry, the net's lr_shift (or theta per layer) takes its value
before that window is learnt. Empty by default: the net keeps its own.

Sleep (`ffrt.sleep.setup(live, (every, steps, positives))`): each labelled window is
learnt awake, its positive phase only, and kept in the buffer; negatives are learnt
later, asleep, from the buffer (every N windows for M steps, or when asked: SLEEP).

Guard rails: with `guard` set (an ffrt.guard.Guard, e.g. by ADAPT's "guard"), every
window learnt is observed (the goodness of its last learn step), and a collapse or
saturation rolls the net back to the newest valid checkpoint.

The same bits everywhere: the host runs this class in CPython with numpy kernels on the
same stream (ffkit.sessions.stream) and must end with the board's weights byte for byte.

RAM: the windower's 2,376 bytes of buffers, plus the rehearsal buffer when there is one
(n_classes * per_class * 72 bytes: 6,912 for HAPT with 16 per class; `ram_bytes`), made
by the first window learnt after a reset. Nothing else is allocated per sample or per
window (tests/test_stream.py measures it in MicroPython).

    from ffrt.live import LiveLearner
    live = LiveLearner(net, per_class=16, replay=2)
    while True:
        if live.read(imu):                    # ffrt.imu_mpu6050 / imu_lsm6ds / adc_source
            print(live.last)                  # a window completed: its prediction

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=72, n_classes=3, in_max=255, in_scale=1, layers=(8,)))
>>> live = LiveLearner(net, per_class=2, replay=1)
>>> got = [live.push(4096, 0, 0, 0, 0, 0) for i in range(128)]
>>> got[126] is None, live.window(got[127], 1) in (0, 1, 2), net.step   # a new one + a replay
(True, True, 2)
>>> live.learning = False; live.window(got[127], 1) in (0, 1, 2), net.step
(True, 2)
"""

from array import array

from ffrt.features import N_FEATURES, Windower
from ffrt.rehearsal import check_sizes

try:
    from micropython import const
except ImportError:  # CPython: every const() here is an int
    const = int  # type: ignore[assignment]

PREDICT_MODES = ("goodness", "head")  # predict_head False / True; ADAPT's predict byte
_IN_MAX = const(255)  # the features are bytes: the net must take 0..255
_READ = const(32)     # samples drained from a sensor per read


class Learner:
    """The learning policy, one sample at a time: schedules, then the learn step (awake
    for sleep, through the rehearsal buffer, or the net alone), then the guard.

    One policy for every runner: the board's live learner (`LiveLearner`, below), the
    host's personalisation protocols (ffkit.learning.protocols.FFLearner) and the River estimator
    (ffkit.learning.river_model.FFClassifier) learn through it, so a setting means the same
    everywhere. Any model shape; predict_head: predict by the linear head, not by
    goodness per label.
    """

    def __init__(self, net, per_class=0, replay=1, predict_head=False):
        check_sizes(per_class, replay, 0)
        self.net = net
        self.per_class = per_class
        self.replay = replay
        self.predict_head = bool(predict_head)
        self.rehearsal = None
        self.learning = True
        self.learnt = 0     # samples learnt since the buffer was last cleared (schedules)
        self.schedules = None  # (ffrt.schedule.step, lr, theta): set_schedules
        self.guard = None      # an ffrt.guard.Guard: observes every sample learnt
        self.sleep_cfg = None  # (ffrt.sleep, every, steps, positives): ffrt.sleep.setup
        self.slept = 0         # sleep steps since the buffer was last cleared

    def clear_buffer(self):
        """Empty the rehearsal buffer: it is dropped now, and the next sample learnt makes
        a fresh Rehearsal (its PRNG seeded from the model's seed, as after a reboot). Until
        then its RAM is free: a RESET reload (ffrt.ops) needs it for the checkpoint. The
        schedules count from here again."""
        self.rehearsal = None
        self.learnt = self.slept = 0
        if self.guard is not None:
            self.guard.restart()

    def set_schedules(self, lr_schedule=(), theta_schedule=()):
        """Schedules of lr_shift and theta by samples learnt (checked by the caller:
        ffrt.schedule.check, ffrt.live_ops). ffrt.schedule is loaded only when one is
        set, so a board without schedules never holds it."""
        lr = tuple(lr_schedule)
        theta = tuple((a, tuple(v)) for a, v in theta_schedule)
        self.schedules = None
        if lr or theta:
            from ffrt.schedule import step
            self.schedules = (step, lr, theta)

    def buffer(self):
        """The rehearsal buffer, made now if it is not held (None when per_class is 0)."""
        if self.per_class and self.rehearsal is None:
            from ffrt.rehearsal import Rehearsal
            self.rehearsal = Rehearsal(self.net, self.per_class, self.replay)
        return self.rehearsal

    def predict(self, x):
        net = self.net
        return net.predict_head(x) if self.predict_head else net.predict_one(x)

    def learn(self, x, label, predicted=False):
        """Learn (x, label) by the policy (the class docstring). predicted: `predict(x)`
        was the last thing the net did, so its goodness per label can be reused."""
        net = self.net
        label = net.check_label(label)  # before any counter or schedule moves
        if not predicted:
            net.check_x(x)
        t = self.learnt
        self.learnt = t + 1
        sched = self.schedules
        if sched is not None:
            sched[0](net, sched[1], sched[2], t)
        sl = self.sleep_cfg
        if sl is not None:  # awake: the positive phase now, negatives in sleep
            sl[0].awake(self, x, label, predicted)
            return
        if self.per_class:
            self.buffer().learn_one(x, label)
        elif predicted and not self.predict_head:
            net.learn_last(label)  # learn_one's bits, reusing the goodness
        else:
            net.learn_one(x, label)
        g = self.guard
        if g is not None:
            g.observe()


class LiveLearner(Learner):
    """Windows of a sample stream, predicted and learnt as they complete; see the module."""

    def __init__(self, net, per_class=0, replay=1, predict_head=False):
        cfg = net.cfg
        if cfg.n_features != N_FEATURES or cfg.in_max != _IN_MAX:
            raise ValueError("live learning needs a model of the %d window features "
                             "(ffrt.features) in 0..%d; this one takes %d in 0..%d"
                             % (N_FEATURES, _IN_MAX, cfg.n_features, cfg.in_max))
        super().__init__(net, per_class, replay, predict_head)
        self.windower = Windower(kernels=net.k)  # the features' twin goes with the kernels
        self.last = -1      # the newest window's prediction (-1: none yet)
        self.windows = 0    # windows predicted since the last reset
        self._sensor_buf = None
        self.reset()

    def reset(self, buffer=True):
        """Start a new stream: the next window is the next 128 samples; with buffer, the
        rehearsal buffer is emptied too (`clear_buffer`)."""
        self.windower.reset()
        self.net.reset_state()  # a recurrent model starts the new stream without context
        self.last = -1
        self.windows = 0
        if buffer:
            self.clear_buffer()

    def ram_bytes(self):
        """Bytes of the windower's buffers and of the rehearsal buffer, if it is held
        (from the first window learnt after a reset on)."""
        w = self.windower
        n = 2 * len(w.ring) + 2 * len(w.win) + len(w.out)
        return n + (self.rehearsal.ram_bytes() if self.rehearsal is not None else 0)

    def push(self, ax, ay, az, gx, gy, gz):
        """One sample in; the window's 72 features when it completes one (then call
        `window`), else None."""
        return self.windower.push(ax, ay, az, gx, gy, gz)

    def window(self, x, label=-1):
        """Predict features x; then, when learning and label >= 0, learn (x, label).
        Returns the prediction (also in `last`)."""
        pred = self.predict(x)
        if self.learning and label >= 0:
            self.learn(x, label, True)
        self.last = pred
        self.windows += 1
        self.net.advance()  # a recurrent model's next state (a no-op for a feed-forward one)
        return pred

    def read(self, sensor, label=-1):
        """Drain up to 32 samples from sensor (its read_into, as ffrt.imu_mpu6050,
        imu_lsm6ds and adc_source offer) through `feed`; returns the windows completed."""
        buf = self._sensor_buf
        if buf is None:  # once
            buf = self._sensor_buf = array("h", bytes(12 * _READ))
        return self.feed(buf, sensor.read_into(buf), label)

    def feed(self, buf, n, label=-1):
        """Samples buf[0:6n] (ax ay az gx gy gz each, as the sensor sources' read_into
        fills them), every completed window predicted (and learnt with label, if any);
        returns how many windows completed."""
        w = self.windower
        if w.twin is not None:
            return self._feed_blocks(w, buf, n, label)
        done = 0
        j = 0
        for _ in range(n):
            x = w.push(buf[j], buf[j + 1], buf[j + 2], buf[j + 3], buf[j + 4], buf[j + 5])
            j += 6
            if x is not None:
                self.window(x, label)
                done += 1
        return done

    def _feed_blocks(self, w, buf, n, label):
        # up to the next window per call: no Python per sample (ffrt.features.push_block)
        done = 0
        off = 0
        while n > 0:
            k = w.due
            if k > n:
                k = n
            x = w.push_block(buf, off, k)
            off += 12 * k
            n -= k
            if x is not None:
                self.window(x, label)
                done += 1
        return done
