# -*- coding: utf-8 -*-
"""Corrupts its own memory the ways a torn read would look to pytap, in a parked thread.

usage: python corrupt_target.py TRUTH.json MODE
MODE "cycle": the parked thread's frame chain points back into itself.
MODE "length": the parked function's code object name claims a length of 2**40.
The thread never runs again after the corruption; the process is killed by the test.
Offsets are CPython's (x86_64), checked by pytap's layout tests.
"""
from __future__ import print_function

import ctypes
import json
import os
import sys
import threading
import time

parked = threading.Event()


def park_sleep():
    parked.set()
    time.sleep(100000)


def outer():
    def inner_corruptible_function():
        park_sleep()
    inner_corruptible_function()


def set_pointer(address, value):
    ctypes.c_void_p.from_address(address).value = value


def corrupt(mode, ident):
    frame = sys._current_frames()[ident]       # park_sleep
    inner = frame.f_back                        # inner_corruptible_function
    outer_frame = inner.f_back                  # outer
    if mode == "cycle":
        if sys.version_info < (3, 11):
            set_pointer(id(outer_frame) + 24, id(outer_frame))          # PyFrameObject.f_back
        else:
            iframe = ctypes.c_void_p.from_address(id(outer_frame) + 24).value  # PyFrameObject.f_frame
            previous = 48 if sys.version_info < (3, 12) else 8          # _PyInterpreterFrame.previous
            set_pointer(iframe + previous, iframe)
    elif mode == "length":
        name = inner.f_code.co_name
        # 2.7 PyStringObject.ob_size and 3.x PyASCIIObject.length are both at offset 16.
        ctypes.c_ssize_t.from_address(id(name) + 16).value = 1 << 40
    else:
        raise SystemExit("unknown mode " + mode)


def main():
    truth_path, mode = sys.argv[1], sys.argv[2]
    thread = threading.Thread(target=outer, name="corrupted")
    thread.daemon = True
    thread.start()
    parked.wait()
    time.sleep(0.2)
    corrupt(mode, thread.ident)
    with open(truth_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "ident": thread.ident}, f)
    os.rename(truth_path + ".tmp", truth_path)
    while True:
        time.sleep(10)


if __name__ == "__main__":
    main()
