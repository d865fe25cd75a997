import AiravataCore
import AiravataProtocol
import Testing

/// Two spellings of "café": precomposed (NFC) and decomposed (NFD). Swift's `String`
/// calls them equal; as identities they are two users and two projects.
@Suite("Identities compare as bytes")
struct ByteIdentityTests {
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"

    @Test("a principal is its user id's bytes, and its projects' bytes")
    func principal() {
        let nfdUser = Principal(userID: Self.nfd, projects: [Self.nfd])
        #expect(!nfdUser.isUser(Self.nfc))
        #expect(nfdUser.isUser(Self.nfd))
        #expect(!nfdUser.isMember(ofProject: Self.nfc))
        #expect(!Principal(userID: "\u{212A}").isUser("K"), "the Kelvin sign is canonically equivalent to K")
        #expect(Principal(userID: Self.nfc) != Principal(userID: Self.nfd))
        #expect(Principal(userID: "u", projects: [Self.nfc, Self.nfd]).projects.count == 2)
    }

    @Test("subscribing to another spelling of one's own user or project is refused")
    func subscribe() {
        let nfdUser = Principal(userID: Self.nfd, projects: ["p-\u{212A}"])
        let other = Authorization.subscribe(.init(resourceType: .user, resourceID: Self.nfc), principal: nfdUser)
        #expect(other == .refused("Not authorized for user \(Self.nfc)"))
        let own = Authorization.subscribe(.init(resourceType: .user, resourceID: nil), principal: nfdUser)
        #expect(own == .allowed(SubscriptionKey(.user, Self.nfd)))
        let project = Authorization.subscribe(.init(resourceType: .project, resourceID: "p-K"), principal: nfdUser)
        guard case .refused = project else {
            Issue.record("expected project p-K to be refused to a token listing p-\u{212A}, got \(project)")
            return
        }
    }

    @Test("an event owned by one spelling does not reach the other")
    func delivery() {
        let nfdUser = Principal(userID: Self.nfd)
        let owned = EventRouting(category: .experiment, experimentID: "e", ownerID: Self.nfc)
        #expect(!Authorization.mayReceive(owned, principal: nfdUser))
        #expect(Authorization.mayReceive(owned, principal: Principal(userID: Self.nfc)))
        let notice = EventRouting(category: .user, userID: Self.nfc)
        #expect(!Authorization.mayReceive(notice, principal: nfdUser))
        #expect(Authorization.mayReceive(notice, principal: Principal(userID: Self.nfc)))
    }

    @Test("subscription keys hash and compare by bytes")
    func subscriptionKeys() {
        #expect(SubscriptionKey(.user, Self.nfc) != SubscriptionKey(.user, Self.nfd))
        let keys: Set = [SubscriptionKey(.user, Self.nfc), SubscriptionKey(.user, Self.nfd)]
        #expect(keys.count == 2)
        #expect(keys.contains(SubscriptionKey(.user, Self.nfd)))
        #expect(SubscriptionKey(.experiment, "e") == SubscriptionKey(.experiment, "e"))
        #expect(SubscriptionKey(.experiment, "e") != SubscriptionKey(.task, "e"))
    }

    @Test("the per-user connection count is kept per byte spelling")
    func limiter() async {
        let limiter = InMemoryConnectionLimiter(limits: ConnectionLimits(perUser: 1))
        let first = ConnectionLease(id: 1, userID: Self.nfc, ip: "10.0.0.1")
        let second = ConnectionLease(id: 2, userID: Self.nfd, ip: "10.0.0.2")
        let third = ConnectionLease(id: 3, userID: Self.nfc, ip: "10.0.0.3")
        func admitted(_ lease: ConnectionLease) async -> Bool {
            if case .success = await limiter.admit(lease) { return true }
            return false
        }
        #expect(await admitted(first))
        #expect(await admitted(second), "the NFD user is not the NFC user, so the NFC user's count does not apply")
        #expect(!(await admitted(third)), "expected the NFC user's second connection to hit the per-user limit")
        await limiter.release(first)
        #expect(await admitted(third))
    }

    @Test("the ownership index keys experiments by bytes")
    func ownership() async {
        let index = InMemoryOwnershipIndex(capacity: 10)
        await index.record(experimentID: Self.nfc, ownership: ExperimentOwnership(projectID: "p", ownerID: "o"))
        #expect(await index.lookup(experimentIDs: [Self.nfd]).isEmpty)
        #expect(await index.lookup(experimentIDs: [Self.nfc])[Self.nfc]?.ownerID == "o")
    }
}
