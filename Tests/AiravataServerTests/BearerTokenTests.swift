import NIOHTTP1
import Testing

@testable import AiravataServer

@Suite("The bearer token of an Authorization header")
struct BearerTokenTests {
    static func token(_ value: String?) -> String? {
        var headers = HTTPHeaders()
        if let value { headers.add(name: "Authorization", value: value) }
        return WebSocketRoute.bearerToken(headers)
    }

    @Test("the scheme in any case, blanks around the token dropped; anything else is no token")
    func parsing() {
        #expect(Self.token("Bearer abc.def.ghi") == "abc.def.ghi")
        #expect(Self.token("bEaReR abc") == "abc")
        #expect(Self.token("Bearer  \tabc \t") == "abc")
        #expect(Self.token(" Bearer abc") == "abc")
        #expect(Self.token("Bearer a b") == "a b", "what follows the first blank is the token; its check refuses it")
        for refused in [
            nil, "", "Bearer", "Bearer ", "Bearer \t ", "Bearer\tabc", "Basic abc", "Bearerabc", "Bearers abc",
        ] {
            #expect(Self.token(refused) == nil, "\(String(describing: refused))")
        }
    }
}
