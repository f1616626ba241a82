import ArgumentParser
import PyTap

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Draw a differential flame graph of two folded profiles: what grew (red) and shrank (blue).",
        discussion: """
            Reads two folded-stack files (pytap sample's default output, or any \
            flamegraph.pl-style 'frame;frame;... COUNT' file) and draws the second one's flame \
            graph, each frame coloured by how its share of all samples changed since the first: \
            red grew, blue shrank, grey unchanged; the deeper the colour, the larger the change. \
            Shares are normalised by each file's total, so recordings of different lengths \
            compare. Frames present only in BEFORE are not drawn (swap the files to see them).

            Examples:
              pytap sample -x 1234 -t 30 > before.folded
              pytap sample -x 1234 -t 30 > after.folded
              pytap diff before.folded after.folded -o diff.svg
            """
    )

    @Argument(help: "The earlier profile (folded stacks).")
    var before: String

    @Argument(help: "The later profile (folded stacks); its frames are drawn.")
    var after: String

    @Option(name: [.customShort("o"), .customLong("output")], help: "SVG file to write; default stdout.")
    var output: String?

    @Option(name: .long, help: "The graph's title (default: 'BEFORE → AFTER').")
    var title: String?

    func run() throws {
        // Checked first: a bad -o fails before the files are read.
        let destination: OutputFile?
        do {
            destination = try output.map(OutputFile.prepare)
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        do {
            let graph = DifferentialFlameGraph(before: try DiffCommand.read(before), after: try DiffCommand.read(after))
            let svg = graph.render(title: title ?? "\(before) → \(after)")
            if let output, let destination {
                try destination.write(Array(svg.utf8))
                writeStandardError("pytap: wrote \(output) (\(graph.before.total) → \(graph.after.total) samples)\n")
            } else {
                try writeStandardOutput(svg)
            }
        } catch {
            Failure.from(error, pid: nil).exit()
        }
    }

    /// A folded file parsed; its name is in any error.
    static func read(_ path: String) throws -> FoldedStacks {
        let bytes: [UInt8]
        do {
            bytes = try ProcFiles.readAll(path, limit: 1 << 30)
        } catch {
            throw Failure(message: "cannot read \(path): \(error)", status: .failure)
        }
        do {
            return try FoldedStacks(parsing: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw Failure(message: "\(path): \(error)", status: .failure)
        }
    }
}
