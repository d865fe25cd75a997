import Foundation

/// The `airavata-gateway` executable that `swift build` made for the tests.
public func gatewayBinary(filePath: String = #filePath) throws -> String {
    let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
        root.appendingPathComponent(".build/debug"),
    ]
    for directory in candidates {
        let path = directory.appendingPathComponent("airavata-gateway").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestSupportError("airavata-gateway binary not found near \(candidates.map(\.path))")
}
