public import Foundation

/// A throw-away certificate authority and a server certificate it signed for `localhost` and
/// `127.0.0.1`, made by the `openssl` found on PATH; P-256 keys, so that making them is quick.
public struct TLSFixtures: Sendable {
    public let directory: URL

    public var caCertificate: String { directory.appendingPathComponent("ca.pem").path }
    public var serverCertificate: String { directory.appendingPathComponent("server.pem").path }
    public var serverKey: String { directory.appendingPathComponent("server.key").path }

    /// Makes the authority and a server certificate holding `serverNames` as subject
    /// alternative names (OpenSSL's form: `DNS:name,IP:address`).
    public static func make(serverNames: String = "DNS:localhost,IP:127.0.0.1") async throws -> TLSFixtures {
        guard let openssl = ProcessRunner.which("openssl") else {
            throw TestSupportError("openssl is not on PATH (apt-get install openssl)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let fixtures = TLSFixtures(directory: directory)
        let extensions = directory.appendingPathComponent("server.ext")
        try "subjectAltName=\(serverNames)\nextendedKeyUsage=serverAuth\n".write(
            to: extensions, atomically: true, encoding: .utf8)
        let caKey = directory.appendingPathComponent("ca.key").path
        let request = directory.appendingPathComponent("server.csr").path
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let steps: [[String]] = [
            ["req", "-x509"] + curve + [
                "-keyout", caKey, "-out", fixtures.caCertificate, "-days", "1", "-subj", "/CN=airavata-test-ca",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            ["req"] + curve + ["-keyout", fixtures.serverKey, "-out", request, "-subj", "/CN=localhost"],
            [
                "x509", "-req", "-in", request, "-CA", fixtures.caCertificate, "-CAkey", caKey, "-CAcreateserial",
                "-out", fixtures.serverCertificate, "-days", "1", "-extfile", extensions.path,
            ],
        ]
        for step in steps {
            let (status, output) = try await runToCompletion(openssl, step)
            guard status == 0 else {
                fixtures.remove()
                throw TestSupportError("openssl \(step.prefix(2).joined(separator: " ")) failed: \(output)")
            }
        }
        return fixtures
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}
