# -*- coding: utf-8 -*-
"""Parks threads in known stacks for the `pytap dump` tests, then writes the truth.

usage: python dump_target.py TRUTH.json
Runs on Python 2.7 and 3.6+. Every thread registers its OS tid, signals that it is about
to park, and parks: sleeping, waiting, or spinning on one line. A reporter thread then
writes what sys._current_frames() says (see truth.py) and exits.
"""
from __future__ import print_function

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from truth import PY2, Recorder  # noqa: E402

recorder = Recorder()
ready = []
forever = threading.Event()
spinning = [True]


def park_sleep():
    time.sleep(100000)


def start(role, target, name=None):
    event = threading.Event()

    def run():
        recorder.register(role)
        event.set()
        target()

    thread = threading.Thread(target=run, name=name or role)
    thread.daemon = True
    thread.start()
    ready.append(event)
    return thread


def outer():
    def inner():
        park_sleep()
    inner()


class Outer(object):
    class Inner(object):
        def method(self):
            park_sleep()


def generator():
    yield 1
    park_sleep()
    yield 2


def consume():
    for _ in generator():
        pass


def spin():
    while spinning[0]: pass


def recurse(depth):
    if depth == 0:
        park_sleep()
    else:
        recurse(depth - 1)


def wait_on_event():
    forever.wait()


def load_unicode_module():
    """A module whose file name is not ASCII, loaded under its real path."""
    path = os.path.join(HERE, u"\u00fcn\u00efc\u00f6d\u00e9_m\u00f6dule.py")
    if PY2:
        path = path.encode("utf-8")
    with open(path, "rb") as f:
        source = f.read()
    namespace = {"park_sleep": park_sleep}
    exec(compile(source, path, "exec"), namespace)
    return namespace


def main(truth_path):
    start("nested", outer)
    start("method", Outer.Inner().method)
    start("lambda", lambda: park_sleep())
    start("generator", consume)
    start("spinner", spin)
    start("deep", lambda: recurse(250))
    start("far", far_lines)
    start("waiter", wait_on_event, name=u"custom name \u2713 caf\u00e9" if not PY2 else "custom name \xe2\x9c\x93 caf\xc3\xa9")
    start("unicode-file", load_unicode_module()["parked_in_unicode_file"])
    if not PY2:
        import dump_target_py3
        dump_target_py3.start_threads(start, park_sleep)

    def report():
        for event in ready:
            event.wait()
        recorder.write_when_stable(truth_path)

    reporter = threading.Thread(target=report, name="truth-reporter")
    reporter.daemon = True
    reporter.start()
    forever.wait()


def far_lines():
    """Parks at a line far from both the function's first line and line 0."""
    # padding so the parking line is more than 255 lines below the def (0)
    # padding so the parking line is more than 255 lines below the def (1)
    # padding so the parking line is more than 255 lines below the def (2)
    # padding so the parking line is more than 255 lines below the def (3)
    # padding so the parking line is more than 255 lines below the def (4)
    # padding so the parking line is more than 255 lines below the def (5)
    # padding so the parking line is more than 255 lines below the def (6)
    # padding so the parking line is more than 255 lines below the def (7)
    # padding so the parking line is more than 255 lines below the def (8)
    # padding so the parking line is more than 255 lines below the def (9)
    # padding so the parking line is more than 255 lines below the def (10)
    # padding so the parking line is more than 255 lines below the def (11)
    # padding so the parking line is more than 255 lines below the def (12)
    # padding so the parking line is more than 255 lines below the def (13)
    # padding so the parking line is more than 255 lines below the def (14)
    # padding so the parking line is more than 255 lines below the def (15)
    # padding so the parking line is more than 255 lines below the def (16)
    # padding so the parking line is more than 255 lines below the def (17)
    # padding so the parking line is more than 255 lines below the def (18)
    # padding so the parking line is more than 255 lines below the def (19)
    # padding so the parking line is more than 255 lines below the def (20)
    # padding so the parking line is more than 255 lines below the def (21)
    # padding so the parking line is more than 255 lines below the def (22)
    # padding so the parking line is more than 255 lines below the def (23)
    # padding so the parking line is more than 255 lines below the def (24)
    # padding so the parking line is more than 255 lines below the def (25)
    # padding so the parking line is more than 255 lines below the def (26)
    # padding so the parking line is more than 255 lines below the def (27)
    # padding so the parking line is more than 255 lines below the def (28)
    # padding so the parking line is more than 255 lines below the def (29)
    # padding so the parking line is more than 255 lines below the def (30)
    # padding so the parking line is more than 255 lines below the def (31)
    # padding so the parking line is more than 255 lines below the def (32)
    # padding so the parking line is more than 255 lines below the def (33)
    # padding so the parking line is more than 255 lines below the def (34)
    # padding so the parking line is more than 255 lines below the def (35)
    # padding so the parking line is more than 255 lines below the def (36)
    # padding so the parking line is more than 255 lines below the def (37)
    # padding so the parking line is more than 255 lines below the def (38)
    # padding so the parking line is more than 255 lines below the def (39)
    # padding so the parking line is more than 255 lines below the def (40)
    # padding so the parking line is more than 255 lines below the def (41)
    # padding so the parking line is more than 255 lines below the def (42)
    # padding so the parking line is more than 255 lines below the def (43)
    # padding so the parking line is more than 255 lines below the def (44)
    # padding so the parking line is more than 255 lines below the def (45)
    # padding so the parking line is more than 255 lines below the def (46)
    # padding so the parking line is more than 255 lines below the def (47)
    # padding so the parking line is more than 255 lines below the def (48)
    # padding so the parking line is more than 255 lines below the def (49)
    # padding so the parking line is more than 255 lines below the def (50)
    # padding so the parking line is more than 255 lines below the def (51)
    # padding so the parking line is more than 255 lines below the def (52)
    # padding so the parking line is more than 255 lines below the def (53)
    # padding so the parking line is more than 255 lines below the def (54)
    # padding so the parking line is more than 255 lines below the def (55)
    # padding so the parking line is more than 255 lines below the def (56)
    # padding so the parking line is more than 255 lines below the def (57)
    # padding so the parking line is more than 255 lines below the def (58)
    # padding so the parking line is more than 255 lines below the def (59)
    # padding so the parking line is more than 255 lines below the def (60)
    # padding so the parking line is more than 255 lines below the def (61)
    # padding so the parking line is more than 255 lines below the def (62)
    # padding so the parking line is more than 255 lines below the def (63)
    # padding so the parking line is more than 255 lines below the def (64)
    # padding so the parking line is more than 255 lines below the def (65)
    # padding so the parking line is more than 255 lines below the def (66)
    # padding so the parking line is more than 255 lines below the def (67)
    # padding so the parking line is more than 255 lines below the def (68)
    # padding so the parking line is more than 255 lines below the def (69)
    # padding so the parking line is more than 255 lines below the def (70)
    # padding so the parking line is more than 255 lines below the def (71)
    # padding so the parking line is more than 255 lines below the def (72)
    # padding so the parking line is more than 255 lines below the def (73)
    # padding so the parking line is more than 255 lines below the def (74)
    # padding so the parking line is more than 255 lines below the def (75)
    # padding so the parking line is more than 255 lines below the def (76)
    # padding so the parking line is more than 255 lines below the def (77)
    # padding so the parking line is more than 255 lines below the def (78)
    # padding so the parking line is more than 255 lines below the def (79)
    # padding so the parking line is more than 255 lines below the def (80)
    # padding so the parking line is more than 255 lines below the def (81)
    # padding so the parking line is more than 255 lines below the def (82)
    # padding so the parking line is more than 255 lines below the def (83)
    # padding so the parking line is more than 255 lines below the def (84)
    # padding so the parking line is more than 255 lines below the def (85)
    # padding so the parking line is more than 255 lines below the def (86)
    # padding so the parking line is more than 255 lines below the def (87)
    # padding so the parking line is more than 255 lines below the def (88)
    # padding so the parking line is more than 255 lines below the def (89)
    # padding so the parking line is more than 255 lines below the def (90)
    # padding so the parking line is more than 255 lines below the def (91)
    # padding so the parking line is more than 255 lines below the def (92)
    # padding so the parking line is more than 255 lines below the def (93)
    # padding so the parking line is more than 255 lines below the def (94)
    # padding so the parking line is more than 255 lines below the def (95)
    # padding so the parking line is more than 255 lines below the def (96)
    # padding so the parking line is more than 255 lines below the def (97)
    # padding so the parking line is more than 255 lines below the def (98)
    # padding so the parking line is more than 255 lines below the def (99)
    # padding so the parking line is more than 255 lines below the def (100)
    # padding so the parking line is more than 255 lines below the def (101)
    # padding so the parking line is more than 255 lines below the def (102)
    # padding so the parking line is more than 255 lines below the def (103)
    # padding so the parking line is more than 255 lines below the def (104)
    # padding so the parking line is more than 255 lines below the def (105)
    # padding so the parking line is more than 255 lines below the def (106)
    # padding so the parking line is more than 255 lines below the def (107)
    # padding so the parking line is more than 255 lines below the def (108)
    # padding so the parking line is more than 255 lines below the def (109)
    # padding so the parking line is more than 255 lines below the def (110)
    # padding so the parking line is more than 255 lines below the def (111)
    # padding so the parking line is more than 255 lines below the def (112)
    # padding so the parking line is more than 255 lines below the def (113)
    # padding so the parking line is more than 255 lines below the def (114)
    # padding so the parking line is more than 255 lines below the def (115)
    # padding so the parking line is more than 255 lines below the def (116)
    # padding so the parking line is more than 255 lines below the def (117)
    # padding so the parking line is more than 255 lines below the def (118)
    # padding so the parking line is more than 255 lines below the def (119)
    # padding so the parking line is more than 255 lines below the def (120)
    # padding so the parking line is more than 255 lines below the def (121)
    # padding so the parking line is more than 255 lines below the def (122)
    # padding so the parking line is more than 255 lines below the def (123)
    # padding so the parking line is more than 255 lines below the def (124)
    # padding so the parking line is more than 255 lines below the def (125)
    # padding so the parking line is more than 255 lines below the def (126)
    # padding so the parking line is more than 255 lines below the def (127)
    # padding so the parking line is more than 255 lines below the def (128)
    # padding so the parking line is more than 255 lines below the def (129)
    # padding so the parking line is more than 255 lines below the def (130)
    # padding so the parking line is more than 255 lines below the def (131)
    # padding so the parking line is more than 255 lines below the def (132)
    # padding so the parking line is more than 255 lines below the def (133)
    # padding so the parking line is more than 255 lines below the def (134)
    # padding so the parking line is more than 255 lines below the def (135)
    # padding so the parking line is more than 255 lines below the def (136)
    # padding so the parking line is more than 255 lines below the def (137)
    # padding so the parking line is more than 255 lines below the def (138)
    # padding so the parking line is more than 255 lines below the def (139)
    # padding so the parking line is more than 255 lines below the def (140)
    # padding so the parking line is more than 255 lines below the def (141)
    # padding so the parking line is more than 255 lines below the def (142)
    # padding so the parking line is more than 255 lines below the def (143)
    # padding so the parking line is more than 255 lines below the def (144)
    # padding so the parking line is more than 255 lines below the def (145)
    # padding so the parking line is more than 255 lines below the def (146)
    # padding so the parking line is more than 255 lines below the def (147)
    # padding so the parking line is more than 255 lines below the def (148)
    # padding so the parking line is more than 255 lines below the def (149)
    # padding so the parking line is more than 255 lines below the def (150)
    # padding so the parking line is more than 255 lines below the def (151)
    # padding so the parking line is more than 255 lines below the def (152)
    # padding so the parking line is more than 255 lines below the def (153)
    # padding so the parking line is more than 255 lines below the def (154)
    # padding so the parking line is more than 255 lines below the def (155)
    # padding so the parking line is more than 255 lines below the def (156)
    # padding so the parking line is more than 255 lines below the def (157)
    # padding so the parking line is more than 255 lines below the def (158)
    # padding so the parking line is more than 255 lines below the def (159)
    # padding so the parking line is more than 255 lines below the def (160)
    # padding so the parking line is more than 255 lines below the def (161)
    # padding so the parking line is more than 255 lines below the def (162)
    # padding so the parking line is more than 255 lines below the def (163)
    # padding so the parking line is more than 255 lines below the def (164)
    # padding so the parking line is more than 255 lines below the def (165)
    # padding so the parking line is more than 255 lines below the def (166)
    # padding so the parking line is more than 255 lines below the def (167)
    # padding so the parking line is more than 255 lines below the def (168)
    # padding so the parking line is more than 255 lines below the def (169)
    # padding so the parking line is more than 255 lines below the def (170)
    # padding so the parking line is more than 255 lines below the def (171)
    # padding so the parking line is more than 255 lines below the def (172)
    # padding so the parking line is more than 255 lines below the def (173)
    # padding so the parking line is more than 255 lines below the def (174)
    # padding so the parking line is more than 255 lines below the def (175)
    # padding so the parking line is more than 255 lines below the def (176)
    # padding so the parking line is more than 255 lines below the def (177)
    # padding so the parking line is more than 255 lines below the def (178)
    # padding so the parking line is more than 255 lines below the def (179)
    # padding so the parking line is more than 255 lines below the def (180)
    # padding so the parking line is more than 255 lines below the def (181)
    # padding so the parking line is more than 255 lines below the def (182)
    # padding so the parking line is more than 255 lines below the def (183)
    # padding so the parking line is more than 255 lines below the def (184)
    # padding so the parking line is more than 255 lines below the def (185)
    # padding so the parking line is more than 255 lines below the def (186)
    # padding so the parking line is more than 255 lines below the def (187)
    # padding so the parking line is more than 255 lines below the def (188)
    # padding so the parking line is more than 255 lines below the def (189)
    # padding so the parking line is more than 255 lines below the def (190)
    # padding so the parking line is more than 255 lines below the def (191)
    # padding so the parking line is more than 255 lines below the def (192)
    # padding so the parking line is more than 255 lines below the def (193)
    # padding so the parking line is more than 255 lines below the def (194)
    # padding so the parking line is more than 255 lines below the def (195)
    # padding so the parking line is more than 255 lines below the def (196)
    # padding so the parking line is more than 255 lines below the def (197)
    # padding so the parking line is more than 255 lines below the def (198)
    # padding so the parking line is more than 255 lines below the def (199)
    # padding so the parking line is more than 255 lines below the def (200)
    # padding so the parking line is more than 255 lines below the def (201)
    # padding so the parking line is more than 255 lines below the def (202)
    # padding so the parking line is more than 255 lines below the def (203)
    # padding so the parking line is more than 255 lines below the def (204)
    # padding so the parking line is more than 255 lines below the def (205)
    # padding so the parking line is more than 255 lines below the def (206)
    # padding so the parking line is more than 255 lines below the def (207)
    # padding so the parking line is more than 255 lines below the def (208)
    # padding so the parking line is more than 255 lines below the def (209)
    # padding so the parking line is more than 255 lines below the def (210)
    # padding so the parking line is more than 255 lines below the def (211)
    # padding so the parking line is more than 255 lines below the def (212)
    # padding so the parking line is more than 255 lines below the def (213)
    # padding so the parking line is more than 255 lines below the def (214)
    # padding so the parking line is more than 255 lines below the def (215)
    # padding so the parking line is more than 255 lines below the def (216)
    # padding so the parking line is more than 255 lines below the def (217)
    # padding so the parking line is more than 255 lines below the def (218)
    # padding so the parking line is more than 255 lines below the def (219)
    # padding so the parking line is more than 255 lines below the def (220)
    # padding so the parking line is more than 255 lines below the def (221)
    # padding so the parking line is more than 255 lines below the def (222)
    # padding so the parking line is more than 255 lines below the def (223)
    # padding so the parking line is more than 255 lines below the def (224)
    # padding so the parking line is more than 255 lines below the def (225)
    # padding so the parking line is more than 255 lines below the def (226)
    # padding so the parking line is more than 255 lines below the def (227)
    # padding so the parking line is more than 255 lines below the def (228)
    # padding so the parking line is more than 255 lines below the def (229)
    # padding so the parking line is more than 255 lines below the def (230)
    # padding so the parking line is more than 255 lines below the def (231)
    # padding so the parking line is more than 255 lines below the def (232)
    # padding so the parking line is more than 255 lines below the def (233)
    # padding so the parking line is more than 255 lines below the def (234)
    # padding so the parking line is more than 255 lines below the def (235)
    # padding so the parking line is more than 255 lines below the def (236)
    # padding so the parking line is more than 255 lines below the def (237)
    # padding so the parking line is more than 255 lines below the def (238)
    # padding so the parking line is more than 255 lines below the def (239)
    # padding so the parking line is more than 255 lines below the def (240)
    # padding so the parking line is more than 255 lines below the def (241)
    # padding so the parking line is more than 255 lines below the def (242)
    # padding so the parking line is more than 255 lines below the def (243)
    # padding so the parking line is more than 255 lines below the def (244)
    # padding so the parking line is more than 255 lines below the def (245)
    # padding so the parking line is more than 255 lines below the def (246)
    # padding so the parking line is more than 255 lines below the def (247)
    # padding so the parking line is more than 255 lines below the def (248)
    # padding so the parking line is more than 255 lines below the def (249)
    # padding so the parking line is more than 255 lines below the def (250)
    # padding so the parking line is more than 255 lines below the def (251)
    # padding so the parking line is more than 255 lines below the def (252)
    # padding so the parking line is more than 255 lines below the def (253)
    # padding so the parking line is more than 255 lines below the def (254)
    # padding so the parking line is more than 255 lines below the def (255)
    # padding so the parking line is more than 255 lines below the def (256)
    # padding so the parking line is more than 255 lines below the def (257)
    # padding so the parking line is more than 255 lines below the def (258)
    # padding so the parking line is more than 255 lines below the def (259)
    # padding so the parking line is more than 255 lines below the def (260)
    # padding so the parking line is more than 255 lines below the def (261)
    # padding so the parking line is more than 255 lines below the def (262)
    # padding so the parking line is more than 255 lines below the def (263)
    # padding so the parking line is more than 255 lines below the def (264)
    # padding so the parking line is more than 255 lines below the def (265)
    # padding so the parking line is more than 255 lines below the def (266)
    # padding so the parking line is more than 255 lines below the def (267)
    # padding so the parking line is more than 255 lines below the def (268)
    # padding so the parking line is more than 255 lines below the def (269)
    # padding so the parking line is more than 255 lines below the def (270)
    # padding so the parking line is more than 255 lines below the def (271)
    # padding so the parking line is more than 255 lines below the def (272)
    # padding so the parking line is more than 255 lines below the def (273)
    # padding so the parking line is more than 255 lines below the def (274)
    # padding so the parking line is more than 255 lines below the def (275)
    # padding so the parking line is more than 255 lines below the def (276)
    # padding so the parking line is more than 255 lines below the def (277)
    # padding so the parking line is more than 255 lines below the def (278)
    # padding so the parking line is more than 255 lines below the def (279)
    # padding so the parking line is more than 255 lines below the def (280)
    # padding so the parking line is more than 255 lines below the def (281)
    # padding so the parking line is more than 255 lines below the def (282)
    # padding so the parking line is more than 255 lines below the def (283)
    # padding so the parking line is more than 255 lines below the def (284)
    # padding so the parking line is more than 255 lines below the def (285)
    # padding so the parking line is more than 255 lines below the def (286)
    # padding so the parking line is more than 255 lines below the def (287)
    # padding so the parking line is more than 255 lines below the def (288)
    # padding so the parking line is more than 255 lines below the def (289)
    # padding so the parking line is more than 255 lines below the def (290)
    # padding so the parking line is more than 255 lines below the def (291)
    # padding so the parking line is more than 255 lines below the def (292)
    # padding so the parking line is more than 255 lines below the def (293)
    # padding so the parking line is more than 255 lines below the def (294)
    # padding so the parking line is more than 255 lines below the def (295)
    # padding so the parking line is more than 255 lines below the def (296)
    # padding so the parking line is more than 255 lines below the def (297)
    # padding so the parking line is more than 255 lines below the def (298)
    # padding so the parking line is more than 255 lines below the def (299)
    park_sleep()


if __name__ == "__main__":
    main(sys.argv[1])
