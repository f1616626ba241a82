import Foundation
import PackagePlugin

/// Compiles pytap's BPF sampling program (bpf/sample.bpf.c) with the toolchain's clang
/// (`-target bpf`) and embeds the object in the PyTap module as a generated Swift file, so
/// the executable carries it: no compiler, kernel headers or BTF are needed where pytap runs.
@main
struct BPFProgramPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let package = context.package.directoryURL
        let source = package.appending(path: "bpf/sample.bpf.c")
        let header = package.appending(path: "Sources/CBPF/include/pytap_sample.h")
        let script = package.appending(path: "bpf/embed.sh")
        let output = context.pluginWorkDirectoryURL.appending(path: "BPFSampleProgramObject.swift")
        let clang = try context.tool(named: "clang").url
        return [
            .buildCommand(
                displayName: "Compiling the BPF sampling program",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, clang.path, source.path, header.deletingLastPathComponent().path, output.path],
                inputFiles: [source, header, script],
                outputFiles: [output]),
        ]
    }
}
