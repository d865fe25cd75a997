import AiravataProtocol
@_private(sourceFile: "TokenVerifier.swift") import AiravataTokenCheck
import Foundation

/// The pre-check that reads a JWT's `alg` before any key is touched (design §3): it sees
/// every token an unauthenticated client sends.
///
/// Invariants: any text as a token returns without trapping; a header `{"alg": X}` written
/// as base64url without padding, in any of the lengths that padding can take, reads back X.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTokenHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = TokenVerifier.headerAlgorithm(of: input)

    var header: [UInt8] = []
    let object: JSONObject = ["alg": .string(input), "typ": .string("JWT")]
    object.write(into: &header)
    let base64url = Data(header).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
    let token = base64url + ".e30.c2ln"
    let algorithm = TokenVerifier.headerAlgorithm(of: token)
    invariant(algorithm == input, "the header \(text(header)) read as \(String(describing: algorithm))")
    return 0
}
