import Foundation
import PackagePlugin

/// Compiles each of pytap's BPF programs (bpf/NAME.bpf.c) with the toolchain's clang
/// (`-target bpf`) and embeds each object in the PyTap module as a generated Swift file
/// (`enum BPFNameProgramObject`), so the executable carries them: no compiler, kernel
/// headers or BTF are needed where pytap runs.
@main
struct BPFProgramPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let package = context.package.directoryURL
        let programs = package.appending(path: "bpf")
        let includes = package.appending(path: "Sources/CBPF/include")
        let script = programs.appending(path: "embed.sh")
        let clang = try context.tool(named: "clang").url
        let files = FileManager.default
        func contents(_ directory: URL) throws -> [URL] {
            try files.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil).sorted { $0.path < $1.path }
        }
        // Every header a program may include: a change to any rebuilds every program.
        let headers = try (contents(includes) + contents(programs)).filter { $0.pathExtension == "h" }
        return try contents(programs).filter { $0.lastPathComponent.hasSuffix(".bpf.c") }.map { source in
            let stem = String(source.lastPathComponent.dropLast(".bpf.c".count))
            let typeName = "BPF" + stem.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + "ProgramObject"
            let output = context.pluginWorkDirectoryURL.appending(path: typeName + ".swift")
            return .buildCommand(
                displayName: "Compiling the BPF program \(source.lastPathComponent)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, clang.path, source.path, includes.path, output.path, typeName],
                inputFiles: [source, script] + headers,
                outputFiles: [output])
        }
    }
}
