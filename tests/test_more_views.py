"""More ways to look at a recording, against real interpreters: the Firefox Profiler's
format (`-o X.gecko.json`), the source heat map (`-o X.heat.html`, checked in headless
Chromium) and the differential flame graph (`pytap diff`)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest

import interpreters
from conftest import interpreter_params, run_pytap
from test_sample import check_frames_are_real, python_frame, split_of, wait_for_file

# ---------------------------------------------------------------------------------------
# The Firefox Profiler's processed format, version 57: the shape of `Profile` in
# src/types/profile.js of firefox-devtools/profiler at that version (no validator or
# parser of it is published as a Python package, so the schema is checked here).

CATEGORY_COLORS = {"transparent", "purple", "green", "orange", "yellow", "lightblue", "blue", "brown",
                   "magenta", "red", "lightred", "darkgrey", "grey"}
THREAD_TABLES = {
    "samples": {"stack": "index?", "time": "number", "weight": None, "weightType": None},
    "markers": {"data": None, "name": "string", "startTime": "number?", "endTime": "number?",
                "phase": "phase", "category": "category"},
    "stackTable": {"frame": "frame", "prefix": "stack?"},
    "frameTable": {"address": "int", "inlineDepth": "int", "category": "category?", "subcategory": "int?",
                   "func": "func", "nativeSymbol": "int?", "innerWindowID": "int?", "line": "int?",
                   "column": "int?"},
    "funcTable": {"name": "string", "isJS": "bool", "relevantForJS": "bool", "resource": "resource",
                  "fileName": "string?", "lineNumber": "int?", "columnNumber": "int?"},
    "resourceTable": {"lib": "int?", "name": "string", "host": "string?", "type": "int"},
    "nativeSymbols": {"libIndex": "int", "address": "int", "name": "string", "functionSize": "int?"},
}


def check_processed_profile(profile):
    """Asserts that `profile` has the shape the Firefox Profiler loads (processed, v57)."""
    meta = profile["meta"]
    assert meta["preprocessedProfileVersion"] == 57
    for key, kind in (("interval", (int, float)), ("startTime", (int, float)), ("processType", int),
                      ("product", str), ("version", int), ("markerSchema", list)):
        assert isinstance(meta[key], kind), key
    assert meta["stackwalk"] in (0, 1)
    categories = meta["categories"]
    assert any(c["color"] == "grey" for c in categories), "a grey default category is required"
    for c in categories:
        assert c["color"] in CATEGORY_COLORS and isinstance(c["name"], str)
        assert c["subcategories"] and all(isinstance(s, str) for s in c["subcategories"])
    assert isinstance(profile["libs"], list)
    strings = profile["shared"]["stringArray"]
    assert all(isinstance(s, str) for s in strings)
    assert isinstance(profile["threads"], list) and profile["threads"]
    for thread in profile["threads"]:
        for key, kind in (("name", str), ("processType", str), ("isMainThread", bool), ("pid", str),
                          ("pausedRanges", list), ("registerTime", (int, float)),
                          ("processStartupTime", (int, float))):
            assert isinstance(thread[key], kind), key
        assert isinstance(thread["tid"], (int, str))
        assert thread["unregisterTime"] is None or isinstance(thread["unregisterTime"], (int, float))
        lengths = {}
        for table, columns in THREAD_TABLES.items():
            value = thread[table]
            length = value["length"]
            assert isinstance(length, int) and length >= 0
            for column in columns:
                if column in ("weight", "weightType"):
                    continue
                assert len(value[column]) == length, (table, column)
            lengths[table] = length
        samples = thread["samples"]
        assert samples["weight"] is None and samples["weightType"] == "samples"
        refs = {
            "index": lengths["stackTable"], "stack": lengths["stackTable"], "frame": lengths["frameTable"],
            "func": lengths["funcTable"], "string": len(strings), "category": len(categories),
        }
        for table, columns in THREAD_TABLES.items():
            for column, kind in columns.items():
                if kind is None:
                    continue
                optional = kind.endswith("?")
                kind = kind.rstrip("?")
                for row, value in enumerate(thread[table][column]):
                    if value is None:
                        assert optional, (table, column, row)
                    elif kind in refs:
                        assert isinstance(value, int) and 0 <= value < refs[kind], (table, column, row, value)
                    elif kind == "resource":
                        assert value == -1 or 0 <= value < lengths["resourceTable"]
                    elif kind == "int":
                        assert isinstance(value, int) and not isinstance(value, bool)
                    elif kind == "number":
                        assert isinstance(value, (int, float)) and not isinstance(value, bool)
                    elif kind == "bool":
                        assert isinstance(value, bool)
                    elif kind == "phase":
                        assert value in (0, 1, 2, 3)
        stack_table = thread["stackTable"]
        for index, prefix in enumerate(stack_table["prefix"]):
            assert prefix is None or prefix < index, "stacks come after their prefix"
        frame_table = thread["frameTable"]
        for category, subcategory in zip(frame_table["category"], frame_table["subcategory"]):
            if category is not None:
                assert subcategory is not None and subcategory < len(categories[category]["subcategories"])
        times = samples["time"]
        assert times == sorted(times), "samples in time order"
        markers = thread["markers"]
        for phase, start, end in zip(markers["phase"], markers["startTime"], markers["endTime"]):
            if phase == 1:
                assert start is not None and end is not None and start <= end


def sample_stacks(profile, thread):
    """Each sample of `thread` as folded-style labels root first, with its time."""
    strings = profile["shared"]["stringArray"]
    stacks, frames, funcs = thread["stackTable"], thread["frameTable"], thread["funcTable"]

    def label(frame):
        func = frames["func"][frame]
        name = strings[funcs["name"][func]]
        file_index = funcs["fileName"][func]
        if file_index is None:
            return name
        line = frames["line"][frame]
        return "%s (%s%s)" % (name, strings[file_index], ":%d" % line if line is not None else "")

    rows = []
    for stack, time_ms in zip(thread["samples"]["stack"], thread["samples"]["time"]):
        labels = []
        while stack is not None:
            labels.append(label(stacks["frame"][stack]))
            stack = stacks["prefix"][stack]
        rows.append((labels[::-1], time_ms))
    return rows


def markers_of(profile, thread):
    strings = profile["shared"]["stringArray"]
    m = thread["markers"]
    return [(strings[n], s, e) for n, s, e in zip(m["name"], m["startTime"], m["endTime"])]


def covered(markers, name, time_ms):
    return any(n == name and s <= time_ms <= e for n, s, e in markers)


def record_split_to(interp, path, seconds, rate, share_a, extra=(), stage=None):
    """cpu_split in attach mode, written to `path`; returns (truth, pytap's stderr)."""
    own_dir, host_dir = stage or interp.stage()
    truth_own = os.path.join(own_dir, "split.json")
    process = interp.popen(os.path.join(own_dir, "cpu_split.py"), truth_own, seconds + 3, share_a)
    try:
        time.sleep(1.0)
        result = run_pytap("sample", "--pid", process.pid, "--duration", seconds, "--rate", rate, "-o", path,
                           *extra, timeout=seconds + 60)
        assert result.returncode == 0, result.stderr.decode()
        truth = wait_for_file(os.path.join(host_dir, "split.json"), process, timeout=seconds + 60)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    return truth, result.stderr.decode()


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.12", "sid-3.14"]))
def test_gecko_profile_has_timed_samples_and_cpu_gil_markers(interp, tmp_path):
    path = str(tmp_path / "split.gecko.json")
    seconds, rate = 2, 1000
    truth, summary = record_split_to(interp, path, seconds, rate, share_a=0.3)
    with open(path) as f:
        profile = json.load(f)
    check_processed_profile(profile)
    assert profile["meta"]["interval"] == 1000.0 / rate
    assert abs(profile["meta"]["startTime"] / 1000.0 - time.time()) < 120
    threads = profile["threads"]
    assert len(threads) == 1, [t["name"] for t in threads]
    rows = sample_stacks(profile, threads[0])
    # The samples say what the folded output would: the workload's own CPU split.
    counts = split_of([(labels, 1) for labels, _ in rows], truth)
    total = counts["work_a"] + counts["work_b"]
    assert total > 0.1 * seconds * rate, summary
    # (Loosely, on a busy machine: this checks the file, not the sampler's accuracy, which
    # test_sample does.)
    assert counts["work_b"] > counts["work_a"] > 0, (counts, truth["share_a"])
    check_frames_are_real([(labels, 1) for labels, _ in rows], truth)
    # Timestamps: milliseconds from the start of the recording, spanning it.
    times = [t for _, t in rows]
    assert 0 <= times[0] < 200 and times[-1] - times[0] > 0.8 * seconds * 1000, (times[0], times[-1])
    # The one busy thread: its samples are on a CPU (default mode), and while it runs the
    # Python loops of work_a and work_b it holds the GIL (2.7's ctypes thread_time call
    # releases it).
    markers = markers_of(profile, threads[0])
    assert {n for n, _, _ in markers} <= {"On CPU", "Holds GIL", "Without GIL"}, markers
    assert all(covered(markers, "On CPU", t) for t in times)
    in_loops = [t for labels, t in rows if (python_frame(labels[-1]) or ("",))[0] in ("work_a", "work_b")]
    holding = sum(covered(markers, "Holds GIL", t) for t in in_loops)
    assert holding > 0.9 * len(in_loops), (holding, len(in_loops))


def test_gecko_markers_tell_threads_states_apart(tmp_path):
    interp = interpreters.BY_NAME["pyenv-3.12"]
    if interp.missing_reason():
        pytest.skip("SKIPPED " + interp.missing_reason())
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "threads_mix.py"), os.path.join(own_dir, "mix.json"))
    try:
        wait_for_file(os.path.join(host_dir, "mix.json"), process)
        path = str(tmp_path / "mix.gecko.json")
        result = run_pytap("sample", "--pid", process.pid, "--duration", 2, "--rate", 200, "--idle", "-o", path)
        assert result.returncode == 0, result.stderr.decode()
    finally:
        process.kill()
        process.wait()
    with open(path) as f:
        profile = json.load(f)
    check_processed_profile(profile)
    by_name = dict((t["name"], t) for t in profile["threads"])
    assert {"spinner_loop", "hasher_loop", "sleeper_loop"} <= set(by_name), list(by_name)

    def share(thread_name, marker):
        thread = by_name[thread_name]
        markers = markers_of(profile, thread)
        times = thread["samples"]["time"]
        return sum(covered(markers, marker, t) for t in times) / float(len(times))

    # The sleeper is off a CPU without the GIL; the hasher on a CPU without it (C code that
    # released it); the spinner on a CPU, and it holds the GIL more than any other thread.
    assert share("sleeper_loop", "Off CPU") > 0.9
    assert share("sleeper_loop", "Without GIL") > 0.9
    assert share("hasher_loop", "On CPU") > 0.6
    assert share("hasher_loop", "Without GIL") > 0.9
    assert share("spinner_loop", "On CPU") > 0.6
    assert share("spinner_loop", "Holds GIL") > 0.5
    assert share("spinner_loop", "Holds GIL") > share("hasher_loop", "Holds GIL") + 0.4


# ---------------------------------------------------------------------------------------
# Heat map

ROW = re.compile(r'<tr id="(f\d+)-L(\d+)"><td class="n">\d+</td><td class="n"(?: style="background:([^"]+)")?>(\d*)</td>'
                 r'<td class="n"(?: style="background:[^"]+")?>(\d*)</td><td class="code"[^>]*>(.*?)</td></tr>')


def heat_rows(html, path):
    """{line: (own, total, code text, own colour)} of the file named `path`, or None."""
    files = dict((m.group(2), m.group(1)) for m in re.finditer(r'<h2 id="(f\d+)">([^<]*?) <span', html))
    file_id = files.get(path)
    if file_id is None:
        return None, None
    rows = {}
    for m in ROW.finditer(html):
        if m.group(1) == file_id:
            rows[int(m.group(2))] = (int(m.group(4) or 0), int(m.group(5) or 0), m.group(6), m.group(3))
    return file_id, rows


def unescape(text):
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


def check_heat_map_of_split(html, truth, source_text):
    file_id, rows = heat_rows(html, truth["work_a"]["file"])
    assert rows, "cpu_split.py not in the heat map"
    # The whole source, line by line, as the target's file holds it.
    source_lines = source_text.splitlines()
    assert len(rows) == len(source_lines)
    for number, line in enumerate(source_lines, 1):
        assert unescape(rows[number][2]) == line, number
    # The hottest line by own samples is one of work_a's (80% of the CPU), and lines
    # outside the functions have none.
    hottest = max(rows, key=lambda n: rows[n][0])
    assert hottest in truth["work_a"]["lines"], (hottest, truth["work_a"]["lines"])
    assert rows[1][0] == rows[1][1] == 0
    return file_id, hottest, rows


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "sid-3.14"]))
def test_heat_map_reads_sources_through_the_targets_root(interp, tmp_path):
    path = str(tmp_path / "split.heat.html")
    truth, summary = record_split_to(interp, path, 2, 500, share_a=0.8)
    with open(path) as f:
        html = f.read()
    with open((interp.chroot or "") + truth["work_a"]["file"]) as f:
        source = f.read()
    check_heat_map_of_split(html, truth, source)


def test_heat_map_of_a_launched_command_after_it_exited(tmp_path):
    interp = interpreters.BY_NAME["pyenv-3.8"]  # before 3.9, a relative script path stays relative
    if interp.missing_reason():
        pytest.skip("SKIPPED " + interp.missing_reason())
    own_dir, host_dir = interp.stage()
    # Started in another directory with a relative script path: the source is found
    # through the target's working directory, read after it exited.
    path = str(tmp_path / "launch.heat.html")
    result = run_pytap("sample", "--rate", 500, "-o", path, "--", interp.path, "cpu_split.py",
                       os.path.join(own_dir, "t.json"), 2, 0.8, cwd=host_dir, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert "the target exited" in result.stderr.decode()
    truth = json.load(open(os.path.join(host_dir, "t.json")))
    assert truth["work_a"]["file"] == "cpu_split.py"
    with open(path) as f:
        html = f.read()
    with open(os.path.join(host_dir, "cpu_split.py")) as f:
        check_heat_map_of_split(html, truth, f.read())


def test_heat_map_without_the_source_shows_line_numbers(tmp_path):
    interp = interpreters.BY_NAME["pyenv-3.12"]
    if interp.missing_reason():
        pytest.skip("SKIPPED " + interp.missing_reason())
    own_dir, host_dir = interp.stage()
    script = os.path.join(host_dir, "vanishing_split.py")
    shutil.copy(os.path.join(host_dir, "cpu_split.py"), script)
    process = interp.popen(script, os.path.join(own_dir, "v.json"), 4, 0.5)
    try:
        time.sleep(1.0)
        os.remove(script)
        path = str(tmp_path / "gone.heat.html")
        result = run_pytap("sample", "--pid", process.pid, "--duration", 1.5, "--rate", 500, "-o", path)
        assert result.returncode == 0, result.stderr.decode()
        truth = wait_for_file(os.path.join(host_dir, "v.json"), process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    with open(path) as f:
        html = f.read()
    file_id, rows = heat_rows(html, script)
    assert rows, "the script is in the heat map"
    assert "Source not available" in html.split('id="%s"' % file_id)[1].split("<table")[0]
    # Only the sampled lines, numbered, without code: work_a's among them.
    assert set(rows) & set(truth["work_a"]["lines"]), sorted(rows)
    assert all(code == "" and total > 0 for own, total, code, _ in rows.values())


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def png_column(path, x):
    """The (r, g, b) pixels of column x of a PNG screenshot, top to bottom."""
    from PIL import Image
    image = Image.open(path).convert("RGB")
    width, height = image.size
    pixels = image.load()
    return [pixels[x, y] for y in range(height)]


def screenshot_column(chromium, url, out, width, height, x):
    # (Chromium's headless screenshot of a page scrolled to a #fragment comes out blank, so
    # the page is taken from its top, in a window tall enough for the first file.)
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--window-size=%d,%d" % (width, height), "--screenshot=" + out, url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert os.path.exists(out), result.stderr.decode()[-2000:]
    return png_column(out, x)


def parse_rgb(text):
    return tuple(int(x) for x in re.match(r"rgb\((\d+),(\d+),(\d+)\)", text).groups())


def red_bands(column):
    """Top to bottom, the colours of runs of reddish pixels (own-sample shading)."""
    bands = []
    previous = None
    for r, g, b in column:
        colour = (r, g, b) if r == 255 and g < 255 and b <= g else None
        if colour is not None and colour != previous:
            bands.append(colour)
        previous = colour
    return bands


def test_heat_map_shading_in_headless_chromium(tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("SKIPPED no chromium (apt-get install chromium)")
    try:
        import PIL  # noqa: F401
    except ImportError:
        pytest.skip("SKIPPED no PIL in the test venv (scripts/setup-matrix.sh installs pillow)")
    interp = interpreters.BY_NAME["pyenv-3.12"]
    if interp.missing_reason():
        pytest.skip("SKIPPED " + interp.missing_reason())
    path = str(tmp_path / "split.heat.html")
    truth, _ = record_split_to(interp, path, 2, 500, share_a=0.8)
    with open(path) as f:
        html = f.read()
    with open(truth["work_a"]["file"]) as f:
        file_id, hottest, rows = check_heat_map_of_split(html, truth, f.read())
    assert file_id == "f0"
    expected_hot = parse_rgb(rows[hottest][3])
    assert expected_hot[0] == 255 and expected_hot[1] < 120, expected_hot  # deep red

    # The shaded code cells of the first file, top to bottom, as the page declares them:
    # a run of adjacent lines of one colour draws as one band.
    expected = []
    for number in sorted(rows):
        colour = parse_rgb(rows[number][3]) if rows[number][3] else None
        if colour is not None and not (expected and expected[-1][1] == number - 1 and expected[-1][0] == colour):
            expected.append((colour, number))
        elif colour is not None:
            expected[-1] = (colour, number)
    assert all(colour != (255, 255, 255) for colour, _ in expected), "a line with samples is shaded"
    width = 1000
    height = 400 + 20 * len(rows)
    column = screenshot_column(chromium, "file://" + path, str(tmp_path / "page.png"), width, height,
                               int(width * 0.95))  # right of any code text
    bands = red_bands(column)
    # Chromium draws the first file's shading in the order and colours the page declares;
    # the hot line's band is the deep red one.
    drawn = bands[:len(expected)]
    assert len(drawn) == len(expected), (bands, expected)
    for (colour, line), seen in zip(expected, drawn):
        assert all(abs(a - b) <= 2 for a, b in zip(colour, seen)), (line, colour, seen)
    hot_index = [line for _, line in expected].index(hottest) if hottest in [l for _, l in expected] else None
    if hot_index is None:  # the hot line ends a run of equal shades
        hot_index = max(i for i, (c, _) in enumerate(expected) if c == expected_hot)
    assert all(abs(a - b) <= 2 for a, b in zip(drawn[hot_index], expected_hot))
    # Unshaded lines (e.g. the docstring) are white.
    assert rows[2][3] is None


# ---------------------------------------------------------------------------------------
# Differential flame graph


def fills_by_label(svg_path):
    tree = ET.parse(svg_path)
    ns = "{http://www.w3.org/2000/svg}"
    fills = {}
    for g in tree.iter(ns + "g"):
        if g.get("class") != "f":
            continue
        label = g.find(ns + "title").text.split("\n")[0]
        fills.setdefault(label, set()).add(parse_rgb(g.find(ns + "rect").get("fill")))
    return fills


def test_diff_colours_what_grew_red_and_what_shrank_blue(tmp_path):
    interp = interpreters.BY_NAME["pyenv-3.12"]
    if interp.missing_reason():
        pytest.skip("SKIPPED " + interp.missing_reason())
    before, after = str(tmp_path / "before.folded"), str(tmp_path / "after.folded")
    stage = interp.stage()  # the same script path in both profiles
    truth, _ = record_split_to(interp, before, 2, 500, share_a=0.2, stage=stage)
    record_split_to(interp, after, 2, 500, share_a=0.8, stage=stage)
    out = str(tmp_path / "diff.svg")
    result = run_pytap("diff", before, after, "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    fills = fills_by_label(out)
    # Each line of work_a/work_b is a frame of its own: only lines sampled often enough to
    # show the shift are checked (`return total` runs once a call: a few samples in both).
    def leaf_counts(path):
        counts = {}
        with open(path) as f:
            for row in f:
                stack, _, count = row.rstrip("\n").rpartition(" ")
                leaf = stack.split(";")[-1]
                counts[leaf] = counts.get(leaf, 0) + int(count)
        return counts
    before_counts, after_counts = leaf_counts(before), leaf_counts(after)
    checked = {"work_a": 0, "work_b": 0}
    for label, colours in fills.items():
        parsed = python_frame(label)
        if not parsed or parsed[1] != truth["work_a"]["file"] or parsed[0] not in checked:
            continue
        if max(before_counts.get(label, 0), after_counts.get(label, 0)) < 20:
            continue
        for r, g, b in colours:
            if parsed[0] == "work_a":  # 20% -> 80%: grew
                assert r == 255 and g == b and g < 225, (label, (r, g, b))
            else:  # 80% -> 20%: shrank
                assert b == 255 and r == g and r < 225, (label, (r, g, b))
        checked[parsed[0]] += 1
    assert checked["work_a"] > 0 and checked["work_b"] > 0, fills.keys()
    # Frames both profiles share in full (the module frame at the root) are unchanged.
    roots = [label for label in fills if python_frame(label) and python_frame(label)[0] == "<module>"]
    assert roots

    # Written to stdout without -o; the same graph.
    result = run_pytap("diff", before, after)
    assert result.returncode == 0 and result.stdout.startswith(b"<?xml")


def test_diff_refuses_bad_input_in_one_line(tmp_path):
    good = tmp_path / "good.folded"
    good.write_text("main;a 3\n")
    bad = tmp_path / "bad.folded"
    bad.write_text("main;a 3\nthis is not folded\n")
    for args, needle in (((str(good), str(bad)), "line 2"), ((str(good), str(tmp_path / "missing")), "cannot read")):
        result = run_pytap("diff", *args)
        assert result.returncode == 1, result
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], lines
