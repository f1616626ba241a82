/// A self-contained interactive SVG flame graph (no external scripts, styles or fonts):
/// the root ("all") at the bottom, callees stacked above their callers, widths
/// proportional to samples, siblings in alphabetical order.
///
/// - Frames are colored by kind (Python warm, native blue, kernel purple, markers grey),
///   the shade chosen from a stable hash of the function name, so a function has the same
///   color wherever it appears and in every graph.
/// - Hovering a frame shows its label, samples and percentage in the details line at the
///   bottom (and as a tooltip); clicking zooms into it; "Reset zoom" (or clicking the root)
///   zooms out; "Search" (or Ctrl+F, `/`) highlights frames matching a regular expression
///   and shows the share of samples they cover; Escape clears the search.
/// - Frames narrower than `minimumFraction` of all samples are left out, with their callees.
/// - Labels are cut to fit their frame, ending in "..".
///
/// The output depends only on the profile (no timestamps), so it can be compared byte
/// for byte. A `FlameGraphColoring` replaces the colours by kind (the differential flame
/// graph of `pytap diff`).
public struct FlameGraphWriter: Sendable {
    /// Image width in pixels.
    public var width: Int
    /// Frames covering less than this share of all samples are not drawn.
    public var minimumFraction: Double
    /// The big line at the top; nil uses the profiled command.
    public var title: String?
    /// The line under it; nil says pid, Python version, duration and samples.
    public var subtitle: String?
    /// Frame colours and legend; nil colours by frame kind.
    public var coloring: FlameGraphColoring?

    public init(width: Int = 1200, minimumFraction: Double = 0.001, title: String? = nil,
                subtitle: String? = nil, coloring: FlameGraphColoring? = nil) {
        self.width = width
        self.minimumFraction = minimumFraction
        self.title = title
        self.subtitle = subtitle
        self.coloring = coloring
    }

    // Geometry, in pixels.
    static let padding = 10.0
    static let frameHeight = 16.0
    static let fontSize = 12.0
    static let titleFontSize = 17.0
    /// Average glyph width for the font size, used to cut labels (same rule in the script).
    static let charWidth = fontSize * 0.59
    static let framesTop = 60.0

    /// One frame of the merged call tree.
    struct Node {
        var label: String
        var kind: FrameKind?
        var colorKey: String
        var parent: Int
        var total = 0
        var children: [String: Int] = [:]
    }

    /// A frame as drawn: its node, depth (root 0) and first sample offset.
    struct Placed {
        var node: Int
        var depth: Int
        var start: Int
    }

    /// Merges the profile's stacks (`counts` samples each) into a call tree; node 0 is the root.
    static func buildTree(_ profile: Profile, counts: [UInt32: Int]) -> [Node] {
        var nodes = [Node(label: "all", kind: nil, colorKey: "", parent: 0)]
        var frameInfo = [UInt32: (label: String, colorKey: String)]()
        for (stack, count) in counts {
            var current = 0
            nodes[0].total += count
            for id in profile.stacks[stack] {
                let frame = profile.frames[id]
                let info: (label: String, colorKey: String)
                if let known = frameInfo[id] {
                    info = known
                } else {
                    info = (singleLine(frame.label), frame.kind == .python ? frame.qualname : frame.name)
                    frameInfo[id] = info
                }
                if let child = nodes[current].children[info.label] {
                    current = child
                } else {
                    let child = nodes.count
                    nodes.append(Node(label: info.label, kind: frame.kind, colorKey: info.colorKey, parent: current))
                    nodes[current].children[info.label] = child
                    current = child
                }
                nodes[current].total += count
            }
        }
        return nodes
    }

    /// The frames to draw, parents before children, siblings by label.
    static func place(_ nodes: [Node], minimumSamples: Double) -> [Placed] {
        var placed = [Placed]()
        var pending = [Placed(node: 0, depth: 0, start: 0)]
        while let item = pending.popLast() {
            placed.append(item)
            let children = nodes[item.node].children.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            var start = item.start
            var visible = [Placed]()
            for (_, child) in children {
                if Double(nodes[child].total) >= minimumSamples {
                    visible.append(Placed(node: child, depth: item.depth + 1, start: start))
                }
                start += nodes[child].total
            }
            pending.append(contentsOf: visible.reversed())
        }
        return placed
    }

    public func render(_ profile: Profile) -> String {
        render(profile, counts: profile.countsByStack())
    }

    /// The flame graph of `counts` samples per stack id of `profile`'s tables.
    func render(_ profile: Profile, counts: [UInt32: Int]) -> String {
        let nodes = FlameGraphWriter.buildTree(profile, counts: counts)
        let total = nodes[0].total
        let placed = total > 0 ? FlameGraphWriter.place(nodes, minimumSamples: minimumFraction * Double(total)) : []
        let maxDepth = placed.map(\.depth).max() ?? 0

        let pad = FlameGraphWriter.padding
        let frameHeight = FlameGraphWriter.frameHeight
        let imageWidth = Double(max(width, 200))
        let usable = imageWidth - 2 * pad
        let framesBottom = FlameGraphWriter.framesTop + Double(maxDepth + 1) * frameHeight
        let detailsY = framesBottom + 20
        let imageHeight = detailsY + 12
        let scale = total > 0 ? usable / Double(total) : 0

        let metadata = profile.metadata
        let command = metadata.command.isEmpty ? "pid \(metadata.pid)" : metadata.command
        let heading = singleLine(title ?? command)
        var facts = ["pid \(metadata.pid)"]
        if let version = metadata.pythonVersion { facts.append("Python \(version)") }
        facts.append(fixed(metadata.duration, 2) + " s")
        facts.append(metadata.unit == .bytes ? metadata.unit.amount(total) : metadata.unit.amount(total) + " at \(metadata.rate) Hz")
        if metadata.byFunction { facts.append("by function") }
        let subtitle = singleLine(self.subtitle ?? facts.joined(separator: ", "))

        var svg = """
        <?xml version="1.0" encoding="UTF-8" standalone="no"?>
        <!-- Flame graph written by pytap \(PyTapVersion.string). Click a frame to zoom, Ctrl+F to search. -->
        <svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="\(fixed(imageWidth, 0))" height="\(fixed(imageHeight, 0))" viewBox="0 0 \(fixed(imageWidth, 0)) \(fixed(imageHeight, 0))">
        <defs>
        <linearGradient id="background" x1="0" y1="0" x2="0" y2="1">
        <stop offset="5%" stop-color="#eeeeee"/>
        <stop offset="95%" stop-color="#eeeeb0"/>
        </linearGradient>
        </defs>
        <style type="text/css"><![CDATA[\(FlameGraphWriter.style)]]></style>
        <rect x="0" y="0" width="100%" height="100%" fill="url(#background)"/>

        """
        let titleRoom = Int((usable - 220) / (FlameGraphWriter.titleFontSize * 0.59))
        svg += "<text id=\"title\" x=\"\(fixed(imageWidth / 2, 2))\" y=\"24\">\(xmlEscape(truncate(heading, toCharacters: titleRoom)))</text>\n"
        svg += "<text id=\"subtitle\" x=\"\(fixed(imageWidth / 2, 2))\" y=\"42\">\(xmlEscape(subtitle))</text>\n"
        svg += "<text id=\"reset\" class=\"control hide\" x=\"\(fixed(pad, 2))\" y=\"24\">Reset zoom</text>\n"
        svg += "<text id=\"search\" class=\"control\" x=\"\(fixed(imageWidth - pad, 2))\" y=\"24\">Search</text>\n"
        if let coloring {
            svg += legend(coloring.legend, y: 42)
        } else {
            svg += legend(kinds: Set(nodes.compactMap(\.kind)), y: 42)
        }
        if total == 0 {
            svg += "<text id=\"empty\" x=\"\(fixed(imageWidth / 2, 2))\" y=\"\(fixed(FlameGraphWriter.framesTop + 12, 2))\">No \(metadata.unit.rawValue)</text>\n"
        }

        svg += "<g id=\"frames\">\n"
        // Labels from the root (excluding "all") of each placed frame, for a coloring.
        var paths = [Int: [String]]()
        for item in placed {
            let node = nodes[item.node]
            var fill = FlameGraphWriter.color(kind: node.kind, key: node.colorKey)
            var note: String?
            if let coloring {
                let path = item.node == 0 ? [] : (paths[node.parent] ?? []) + [node.label]
                paths[item.node] = path
                (fill, note) = coloring.frame(path, node.total)
            }
            let x = pad + Double(item.start) * scale
            let frameWidth = Double(node.total) * scale
            let y = FlameGraphWriter.framesTop + Double(maxDepth - item.depth) * frameHeight
            let percent = fixed(100 * Double(node.total) / Double(total), 2)
            var summary = metadata.unit.amount(node.total) + ", \(percent)%"
            if let note { summary += "; " + singleLine(note) }
            let label = xmlEscape(node.label)
            svg += "<g class=\"f\" data-s=\"\(item.start)\" data-n=\"\(node.total)\">"
            svg += "<title>\(label)\n\(summary)</title>"
            svg += "<rect x=\"\(fixed(x, 2))\" y=\"\(fixed(y, 0))\" width=\"\(fixed(frameWidth, 2))\" height=\"\(fixed(frameHeight - 1, 0))\" fill=\"\(fill)\"/>"
            svg += "<text x=\"\(fixed(x + 3, 2))\" y=\"\(fixed(y + 11.5, 1))\">\(xmlEscape(FlameGraphWriter.fit(node.label, width: frameWidth)))</text>"
            svg += "</g>\n"
        }
        svg += "</g>\n"

        svg += "<text id=\"details\" x=\"\(fixed(pad, 2))\" y=\"\(fixed(detailsY, 0))\"> </text>\n"
        svg += "<text id=\"matched\" x=\"\(fixed(imageWidth - pad, 2))\" y=\"\(fixed(detailsY, 0))\"> </text>\n"
        let config = "{width: \(fixed(imageWidth, 0)), pad: \(fixed(pad, 0)), charWidth: \(fixed(FlameGraphWriter.charWidth, 2)), total: \(total)\(metadata.unit == .samples ? "" : ", unit: \"\(metadata.unit.rawValue)\"")}"
        svg += "<script type=\"text/ecmascript\"><![CDATA[\nvar config = \(config);\n\(FlameGraphWriter.script)]]></script>\n"
        svg += "</svg>\n"
        return svg
    }

    /// A key of the colors used: one swatch and name per frame kind present.
    private func legend(kinds: Set<FrameKind>, y: Double) -> String {
        let entries: [(FrameKind, String)] = [(.python, "Python"), (.native, "native"), (.kernel, "kernel"), (.marker, "marker")]
        return legend(entries.filter { kinds.contains($0.0) }.map { (FlameGraphWriter.color(kind: $0.0, key: ""), $0.1) }, y: y)
    }

    /// One swatch and name per entry, left to right.
    private func legend(_ entries: [(color: String, name: String)], y: Double) -> String {
        var out = ""
        var x = FlameGraphWriter.padding
        for (color, name) in entries {
            out += "<rect class=\"swatch\" x=\"\(fixed(x, 2))\" y=\"\(fixed(y - 9, 0))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            out += "<text class=\"legend\" x=\"\(fixed(x + 14, 2))\" y=\"\(fixed(y, 0))\">\(xmlEscape(name))</text>\n"
            x += 14 + Double(name.count) * FlameGraphWriter.charWidth + 12
        }
        return out
    }

    /// `label` cut to fit `width` pixels: whole, or its start followed by "..", or empty.
    /// The script applies the same rule after zooming.
    static func fit(_ label: String, width: Double) -> String {
        let room = Int(((width - 6) / charWidth).rounded(.down))
        return truncate(label, toCharacters: room)
    }

    /// Frame fill: a hue per kind, the shade from a stable hash of the function name.
    static func color(kind: FrameKind?, key: String) -> String {
        // FNV-1a: unlike Hasher, the same in every run.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let a = Double(hash & 0xff) / 255
        let b = Double((hash >> 8) & 0xff) / 255
        let c = Double((hash >> 16) & 0xff) / 255
        let (red, green, blue): (Double, Double, Double)
        switch kind {
        case .python?: (red, green, blue) = (225 + 30 * a, 95 + 120 * b, 40 + 40 * c)
        case .native?: (red, green, blue) = (75 + 50 * a, 150 + 55 * b, 205 + 45 * c)
        case .kernel?: (red, green, blue) = (165 + 40 * a, 120 + 40 * b, 215 + 40 * c)
        case .marker?: (red, green, blue) = (170 + 30 * a, 170 + 30 * a, 170 + 30 * a)
        case nil: (red, green, blue) = (215, 215, 225)
        }
        return "rgb(\(Int(red)),\(Int(green)),\(Int(blue)))"
    }

    static let style = """

    text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: 12px; fill: rgb(0,0,0); }
    #title { font-size: 17px; text-anchor: middle; }
    #subtitle { text-anchor: middle; fill: rgb(80,80,80); }
    #search, #matched { text-anchor: end; }
    #empty { text-anchor: middle; fill: rgb(120,120,120); }
    .control { cursor: pointer; fill: rgb(30,60,170); text-decoration: underline; }
    .legend { fill: rgb(80,80,80); }
    .swatch { stroke: rgb(120,120,120); stroke-width: 0.5; }
    .hide { display: none; }
    g.f { cursor: pointer; }
    g.f text { pointer-events: none; }
    g.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.7; }
    g.parent rect { opacity: 0.5; }
    g.match rect { fill: rgb(230,0,230); }

    """

    /// The interactive part. `config` (width, pad, charWidth, total) is defined before it.
    static let script = """
    "use strict";
    (function () {
      var details = document.getElementById("details");
      var matched = document.getElementById("matched");
      var resetButton = document.getElementById("reset");
      var searchButton = document.getElementById("search");
      var framesGroup = document.getElementById("frames");

      // Every drawn frame: its elements, sample range [start, start + count) and label.
      var nodes = [];
      var nodeOfGroup = new Map();
      var rootY = -1;
      var groups = framesGroup.getElementsByTagName("g");
      for (var i = 0; i < groups.length; i++) {
        var g = groups[i];
        var lines = g.getElementsByTagName("title")[0].textContent.split("\\n");
        var node = {
          g: g,
          rect: g.getElementsByTagName("rect")[0],
          text: g.getElementsByTagName("text")[0],
          start: Number(g.getAttribute("data-s")),
          count: Number(g.getAttribute("data-n")),
          label: lines[0],
          summary: lines[1] || ""
        };
        node.y = Number(node.rect.getAttribute("y"));
        rootY = Math.max(rootY, node.y);
        nodes.push(node);
        nodeOfGroup.set(g, node);
      }

      function nodeAt(element) {
        for (; element && element !== framesGroup; element = element.parentNode) {
          if (nodeOfGroup.has(element)) return nodeOfGroup.get(element);
        }
        return null;
      }

      // The label cut to fit `width` pixels, ending in ".." when cut (as pytap does).
      function fit(label, width) {
        var chars = Array.from(label);
        var room = Math.floor((width - 6) / config.charWidth);
        if (room < 3) return "";
        if (chars.length <= room) return label;
        return chars.slice(0, room - 2).join("") + "..";
      }

      function place(node, x, width) {
        node.rect.setAttribute("x", x.toFixed(2));
        node.rect.setAttribute("width", width.toFixed(2));
        node.text.setAttribute("x", (x + 3).toFixed(2));
        node.text.textContent = fit(node.label, width);
      }

      // Zoom: `focus` spans the full width, its callees scale with it, its callers
      // stay as full-width faded bars, everything else is hidden. null zooms out.
      var focus = null;
      function zoom(target) {
        focus = target && target.y !== rootY ? target : null;
        var start = focus ? focus.start : 0;
        var count = focus ? focus.count : config.total;
        var full = config.width - 2 * config.pad;
        var scale = full / count;
        nodes.forEach(function (node) {
          var end = node.start + node.count;
          var classes = node.g.classList;
          classes.remove("hide");
          classes.remove("parent");
          if (focus && node.y > focus.y && node.start <= start && end >= start + count) {
            classes.add("parent");
            place(node, config.pad, full);
          } else if (!focus || (node.y <= focus.y && node.start >= start && end <= start + count)) {
            place(node, config.pad + (node.start - start) * scale, node.count * scale);
          } else {
            classes.add("hide");
          }
        });
        resetButton.classList.toggle("hide", focus === null);
      }

      // Search: highlight frames whose label matches (a regular expression, or plain
      // text if it is not one) and report the share of samples under them.
      var term = null;
      function search(text) {
        term = text ? text : null;
        var pattern = null;
        if (term) {
          try { pattern = new RegExp(term); } catch (error) { pattern = null; }
        }
        var spans = [];
        nodes.forEach(function (node) {
          var hit = term !== null && node.y !== rootY &&
            (pattern ? pattern.test(node.label) : node.label.indexOf(term) >= 0);
          node.g.classList.toggle("match", hit);
          if (hit) spans.push([node.start, node.start + node.count]);
        });
        if (term === null) {
          matched.textContent = " ";
          searchButton.textContent = "Search";
          return;
        }
        // Samples under matches, counting nested matches once.
        spans.sort(function (a, b) { return a[0] - b[0]; });
        var covered = 0, reach = 0;
        spans.forEach(function (span) {
          if (span[1] > reach) {
            covered += span[1] - Math.max(span[0], reach);
            reach = span[1];
          }
        });
        matched.textContent = "Matched: " + (100 * covered / config.total).toFixed(2) + "% (" + covered + " " + (config.unit || "samples") + ")";
        searchButton.textContent = "Clear search";
      }

      function askSearch() {
        var text = window.prompt("Search frames (regular expression):", term || "");
        if (text !== null) search(text);
      }

      function showDetails(node) {
        var text = node ? node.label + " (" + node.summary + ")" : " ";
        details.textContent = fit(text, config.width - 2 * config.pad - 260) || " ";
      }

      framesGroup.addEventListener("mouseover", function (event) { showDetails(nodeAt(event.target)); });
      framesGroup.addEventListener("mouseout", function () { showDetails(null); });
      framesGroup.addEventListener("click", function (event) {
        var node = nodeAt(event.target);
        if (node) zoom(node);
      });
      resetButton.addEventListener("click", function () { zoom(null); });
      searchButton.addEventListener("click", function () {
        if (term !== null) search(null); else askSearch();
      });
      window.addEventListener("keydown", function (event) {
        if ((event.key === "f" && (event.ctrlKey || event.metaKey)) || event.key === "/") {
          event.preventDefault();
          askSearch();
        } else if (event.key === "Escape") {
          search(null);
        }
      });
    })();

    """
}

/// `text` with line breaks replaced by spaces.
fileprivate func singleLine(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        out.unicodeScalars.append(scalar == "\n" || scalar == "\r" ? " " : scalar)
    }
    return out
}

/// `text` if it has at most `room` Unicode scalars, else its first `room - 2` and "..";
/// empty when `room` is under 3.
fileprivate func truncate(_ text: String, toCharacters room: Int) -> String {
    guard room >= 3 else { return "" }
    let scalars = text.unicodeScalars
    if scalars.count <= room { return text }
    var out = ""
    out.unicodeScalars.append(contentsOf: scalars.prefix(room - 2))
    return out + ".."
}

/// Text safe in XML content and attribute values: markup characters as entities,
/// characters XML 1.0 forbids (most controls, U+FFFE, U+FFFF) as U+FFFD. Also safe in HTML.
func xmlEscape(_ text: String) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
        default:
            if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                out.unicodeScalars.append("\u{FFFD}")
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

fileprivate func fixed(_ value: Double, _ digits: Int) -> String { NumberFormat.fixed(value, digits) }
