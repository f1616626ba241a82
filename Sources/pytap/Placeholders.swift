import ArgumentParser
struct SampleCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "sample", abstract: "(in progress)") }
struct TopCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "top", abstract: "(in progress)") }
