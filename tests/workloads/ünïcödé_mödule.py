# -*- coding: utf-8 -*-
# A module whose file name is not ASCII; dump_target.py loads it with compile().


def parked_in_unicode_file():
    park_sleep()  # noqa: F821 (given by the loader)
