import AiravataProtocol

/// What a browser sends over its WebSocket, parsed on the event loop.
///
/// Invariants: the byte parser agrees with parsing the JSON first; anything that is not
/// JSON is `invalidFormat`; a subscription names an id unless it is for `user` or `system`;
/// an accepted message survives re-serialising its JSON, and its canonical protocol form
/// parses back to the same message.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzClientMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let outcome = Result { () throws(ClientMessage.ParseError) in try ClientMessage(parsing: input) }
    guard let document = try? JSONValue(parsing: input) else {
        invariant(outcome == .failure(.invalidFormat), "non-JSON \(text(input)) gave \(outcome)")
        return 0
    }
    let fromValue = Result { () throws(ClientMessage.ParseError) in try ClientMessage(document) }
    invariant(outcome == fromValue, "bytes gave \(outcome) but the parsed value \(fromValue) for \(text(input))")

    let message: ClientMessage
    switch outcome {
    case .failure(let error):
        invariant(!error.message.isEmpty, "an error without a message for \(text(input))")
        return 0
    case .success(let parsed):
        message = parsed
    }
    if case .subscribe(let request) = message { check(request, input) }
    if case .unsubscribe(let request) = message { check(request, input) }

    var written: [UInt8] = []
    document.write(into: &written)
    let reread = parse(written)
    invariant(reread == .success(message), "re-serialised \(text(written)) gave \(reread), not \(message)")

    let canonical = canonicalForm(of: message)
    let fromCanonical = parse(canonical)
    invariant(fromCanonical == .success(message), "canonical \(text(canonical)) gave \(fromCanonical)")
    return 0
}

private func parse(_ bytes: [UInt8]) -> Result<ClientMessage, ClientMessage.ParseError> {
    bytes.withUnsafeBufferPointer { buffer in
        Result { () throws(ClientMessage.ParseError) in try ClientMessage(parsing: buffer) }
    }
}

private func check(_ request: ClientMessage.SubscriptionRequest, _ input: UnsafeBufferPointer<UInt8>) {
    switch request.resourceID {
    case .none:
        invariant(
            request.resourceType == .user || request.resourceType == .system,
            "a \(request.resourceType) subscription without an id from \(text(input))"
        )
    case .some(let id):
        invariant(!id.isEmpty, "an empty resource id accepted from \(text(input))")
    }
}

/// The message as the protocol document spells it, built from the value alone.
private func canonicalForm(of message: ClientMessage) -> [UInt8] {
    var object: JSONObject
    switch message {
    case .ping(let id):
        object = ["type": .string("ping")]
        if let id { object["id"] = .string(id) }
    case .pong:
        object = ["type": .string("pong")]
    case .statusRequest:
        object = ["type": .string("system_status")]
    case .subscribe(let request), .unsubscribe(let request):
        var data: JSONObject = [
            "action": .string(message == .subscribe(request) ? "subscribe" : "unsubscribe"),
            "resourceType": .string(request.resourceType.rawValue),
        ]
        if let id = request.resourceID { data["resourceId"] = .string(id) }
        object = ["type": .string("system_status"), "data": .object(data)]
    }
    var bytes: [UInt8] = []
    object.write(into: &bytes)
    return bytes
}
