"""Sleep: the negative phase of Forward-Forward learning, deferred to a later time.

Hinton's Forward-Forward paper (2022) notes that the positive and negative passes need not
alternate: the negative passes could be done offline, as in sleep.

A learner that sleeps learns each labelled window *awake*: its positive phase only
(FFNet.learn_positive: the true label's pass, about half of a learn_one), and the window
goes into the class-balanced rehearsal buffer by its reservoir (ffrt.rehearsal). The
negative phase comes later, *asleep*: each sleep step takes a stored sample (the classes
in turn, a draw from the buffer's own PRNG, as replays do) and learns it as negative
data with a wrong label (FFNet.learn_negative); with `positives` a sleep step learns the
stored sample with both phases instead (learn_one: a replay, deferred). The guard
(ffrt.guard) observes awake steps as positive and sleep steps as negative goodness.

A learner is an ffrt.live.LiveLearner (`setup(live, (every, steps, positives))`; on the
host also ffkit.learning.protocols.FFLearner): it sleeps `steps` steps after every `every`
windows learnt (0: only when asked), or when a host sends SLEEP. (This module, not
ffrt.live, holds it all: a board that never sleeps never loads it.) Integers only, nothing
allocated per window or step; the same bits on board and host.

The SLEEP request (a host asks for n sleep steps now) is ffrt.sleep_ops's.

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> from ffrt.live import LiveLearner
>>> live = LiveLearner(FFNet(Config(n_features=72, n_classes=3, in_max=255, in_scale=1,
...                                 layers=(8,))), per_class=2)
>>> setup(live, (2, 3, False))            # every 2 windows learnt, 3 sleep steps
>>> x = bytes(range(72))
>>> for y in (0, 1, 2, 0):
...     _ = live.window(x, y)
>>> live.net.step, live.slept             # 4 awake steps + 2 sleeps of 3 steps
(10, 6)
"""


def setup(lv, sleep):
    """Make lv (a LiveLearner, or anything with its attributes) sleep: sleep = (every,
    steps, positives) learns each labelled window awake (its positive phase; the window
    kept in the buffer) and sleeps `steps` steps after every `every` windows learnt (0:
    only when asked); None: both phases at once again (learn_one). Needs the buffer."""
    lv.sleep_cfg = None
    if sleep is not None:
        if not lv.per_class:
            raise ValueError("sleep learns from the rehearsal buffer: per_class must be > 0")
        import ffrt.sleep as mod
        lv.sleep_cfg = (mod, sleep[0], sleep[1], bool(sleep[2]))


def awake(lv, x, y, last):
    """Learn (x, y) awake: the positive phase (reusing the prediction when last and the
    learner predicts by goodness), the head's step only if it predicts by the head (a net
    predicting by goodness never reads its head: its step would cost a neutral forward
    pass for nothing), x kept in the buffer; then a sleep when one is due."""
    net = lv.net
    head = lv.predict_head
    if last and not head:
        net.learn_positive_last(y, False)
    else:
        net.learn_positive(x, y, head)  # checks x and y before anything changes
    lv.buffer()._keep(x, y)
    g = lv.guard
    if g is not None:
        g.observe(1)
    cfg = lv.sleep_cfg
    if cfg[1] and lv.learnt % cfg[1] == 0:
        sleep(lv, cfg[2])


def sleep(lv, n):
    """n sleep steps on lv's rehearsal buffer (fewer if it holds nothing); returns the
    steps done."""
    reh = lv.rehearsal
    if reh is None:
        return 0
    net = lv.net
    g = lv.guard
    cfg = lv.sleep_cfg
    both = cfg is not None and cfg[3]
    k = reh.per_class
    done = 0
    for _ in range(n):
        j = reh._pick()
        if j < 0:
            break
        if both:
            net.learn_one(reh.sample(j), j // k)
        else:
            net.learn_negative(reh.sample(j), j // k)
        if g is not None:
            g.observe(3 if both else 2)
        done += 1
    lv.slept += done
    return done
