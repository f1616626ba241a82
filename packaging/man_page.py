"""Writes pytap.1 from the binary's own command definitions (used by scripts/wheel).

usage: python man_page.py PYTAP GENERATE_MANUAL DATE OUTPUT_DIR

swift-argument-parser's generate-manual reads `PYTAP --experimental-dump-help` and writes
mdoc. Two things it gets wrong are mended here rather than by hand-writing the page:
* it drops every non-ASCII character ("3.6–3.15" became "3.63.15"): they reach it as
  ASCII tokens and leave it as groff's \\[uXXXX] escapes, which render in any locale;
* it keeps blank lines of help texts, which mdoc warns about: they become `.Pp`.
"""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile

TOKEN = "@@u%04x@@"
TOKEN_PATTERN = re.compile(r"@@u([0-9a-f]{4,6})@@")


def main(pytap, generate_manual, date, output_dir):
    dump = subprocess.run([pytap, "--experimental-dump-help"], stdout=subprocess.PIPE, check=True).stdout
    json.loads(dump)  # fail here, with the JSON error, rather than inside generate-manual
    ascii_dump = "".join(c if ord(c) < 128 else TOKEN % ord(c) for c in dump.decode("utf-8"))
    with tempfile.TemporaryDirectory() as scratch:
        dump_path = os.path.join(scratch, "dump-help.json")
        with open(dump_path, "w") as f:
            f.write(ascii_dump)
        # generate-manual runs "TOOL --experimental-dump-help": this TOOL answers with the tokenised JSON.
        tool = os.path.join(scratch, "pytap")
        with open(tool, "w") as f:
            f.write("#!/bin/sh\nexec cat '%s'\n" % dump_path)
        os.chmod(tool, stat.S_IRWXU)
        subprocess.run([generate_manual, tool, "--date", date, "--output-directory", scratch], check=True)
        with open(os.path.join(scratch, "pytap.1")) as f:
            page = f.read()
    page = TOKEN_PATTERN.sub(lambda m: "\\[u%s]" % m.group(1).upper(), page)
    page = "\n".join(".Pp" if line == "" else line for line in page.rstrip("\n").split("\n")) + "\n"
    with open(os.path.join(output_dir, "pytap.1"), "w") as f:
        f.write(page)


if __name__ == "__main__":
    main(*sys.argv[1:])
