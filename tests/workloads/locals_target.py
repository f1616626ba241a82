# -*- coding: utf-8 -*-
"""Parks a thread in two nested functions with known locals for `pytap dump --locals`.

usage: python locals_target.py TRUTH.json
Runs on Python 2.7 and 3.6+. The parked functions hold every kind of value pytap shows
(None, bools, small, big and huge ints, floats, str and bytes short and long, containers,
an instance), arguments, *args/**kwargs, a cell variable, an argument that is a cell, a
free variable, a deleted local and a local not assigned yet. Before parking, each frame
records its own locals (f_locals, with the repr rule of `short_repr`) and its code
object's variable names in order: the truth pytap is checked against.
"""
from __future__ import print_function

import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from truth import PY2, text  # noqa: E402

MAX_CHARACTERS = 100   # ObjectReader.maximumReprCharacters
MAX_INT_BITS = 2048    # ObjectReader.maximumReprIntBits

if PY2:
    INT_TYPES = (int, long)  # noqa: F821
    TEXT_TYPE = unicode  # noqa: F821
    BYTES_TYPE = str
else:
    INT_TYPES = (int,)
    TEXT_TYPE = str
    BYTES_TYPE = bytes


def short_repr(value):
    """What pytap shows for a value (README, dump --locals)."""
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return repr(value)
    if kind in INT_TYPES:
        bits = abs(value).bit_length()
        return "<int of %d bits>" % bits if bits > MAX_INT_BITS else repr(value)
    if kind is TEXT_TYPE or kind is BYTES_TYPE:
        if len(value) > MAX_CHARACTERS:
            return repr(value[:MAX_CHARACTERS]) + "..."
        return repr(value)
    if kind in (list, tuple):
        return "<%s of %d>" % (kind.__name__, len(value))
    if kind is dict:
        return "<dict of %d>" % len(value)
    return "<%s object at 0x%x>" % (kind.__name__, id(value))


def frame_truth(frame):
    code = frame.f_code
    names = []
    for name in code.co_varnames + code.co_cellvars + code.co_freevars:
        if name not in names:
            names.append(name)
    values = dict((name, short_repr(value)) for name, value in frame.f_locals.items())
    return {
        "function": text(code.co_name),
        "locals": [{"name": text(name), "repr": text(values.get(name))} for name in names],
    }


class Thing(object):
    pass


def report_and_park(truth_path, frames):
    with open(truth_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "frames": frames}, f, indent=1)
    os.rename(truth_path + ".tmp", truth_path)
    time.sleep(100000)


def outer(truth_path, cell_argument, number=-7, *rest, **options):
    none = None
    yes, no = True, False
    big = 2 ** 100
    negative_big = -(3 ** 90)
    huge = 7 ** 1000
    small_float, large_float, tiny_float = 2.5, 1e22, -1.5e-7
    word = u"caf\u00e9 'quoted'\n\u2603"
    long_text = u"x" * 150
    data = b"\x00bytes\xff'"
    long_data = b"y" * 300
    items = [1, 2, 3]
    mapping = {"a": 1, "b": 2}
    pair = (1, "two")
    thing = Thing()
    captured = {"shared": True}
    deleted = 1
    del deleted

    def inner(parameter):
        seen = (captured, cell_argument)  # free variables
        later = lambda: late_cell  # noqa: E731 (a free variable of the lambda, a cell of outer: empty while parked)
        report_and_park(truth_path, [frame_truth(sys._getframe()), frame_truth(sys._getframe(1))])
        not_yet = 1  # unbound while parked
        return seen, not_yet, later

    inner(u"p\u00e4ram")
    late_cell = 1
    return late_cell


def main(truth_path):
    thread = threading.Thread(target=outer, args=(truth_path, [u"cell", 1], 42, "extra", 3.0),
                              kwargs={"flag": True}, name="locals")
    thread.daemon = True
    thread.start()
    while True:
        time.sleep(1000)


if __name__ == "__main__":
    main(sys.argv[1])
