package import AiravataCore
import AiravataProtocol
package import NIOCore

/// How an event travels between nodes and lies in the replay log. Two forms, told apart by
/// their first byte (docs/architecture.md, "The bus message"):
///
/// - v2, `2` first: a one-line header with what routing needs (type, acceptance time, the
///   six routing ids, tab-separated, empty when absent), a line feed, then the client's
///   envelope without its cursor and closing brace, encoded once by the accepting node. A
///   node reads the header, and only when a local connection wants the event does it frame
///   the envelope as it is; the event's JSON is never parsed again.
/// - v1, `{` first: the whole event as compact JSON, as nodes before v2 wrote and read it.
///   Still read (from older nodes and older log entries), and written while such nodes
///   are in the cluster.
package enum EventWireFormat {
    /// The longest v2 header: nine fields, the longest ids, separators.
    static let maxHeaderBytes = 1_200

    package static func encodeV2(_ event: GatewayEvent) -> [UInt8] {
        let routing = event.routing
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + (event.dataBytes?.count ?? 256))
        bytes.append(UInt8(ascii: "2"))
        func field(_ value: String?) {
            bytes.append(UInt8(ascii: "\t"))
            if let value { bytes.append(contentsOf: value.utf8) }
        }
        field(event.type.rawValue)
        bytes.append(UInt8(ascii: "\t"))
        appendDecimal(event.acceptedAtMicros, to: &bytes)
        field(routing.experimentID)
        field(routing.taskID)
        field(routing.workerID)
        field(routing.projectID)
        field(routing.ownerID)
        field(routing.userID)
        bytes.append(UInt8(ascii: "\n"))
        // The envelope without its cursor and closing brace (see `RoutedEvent.envelopeHead`),
        // written in place rather than encoded apart and copied.
        event.writeEnvelopeHead(into: &bytes)
        return bytes
    }

    /// A signed integer in decimal, without a `String` in between.
    private static func appendDecimal(_ value: Int64, to bytes: inout [UInt8]) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        bytes[start...].reverse()
    }

    /// Nil for anything but what `encodeV2` or `encodeV1` writes: the bytes come from Redis,
    /// where anyone with access can publish, so every routing field is checked as strictly as
    /// client input, and the envelope must be UTF-8 opening as every envelope does.
    package static func decode(_ body: ByteBuffer) -> RoutedEvent? {
        switch body.readableBytesView.first {
        case UInt8(ascii: "2"): decodeV2(body)
        case UInt8(ascii: "{"): decodeV1(Array(body.readableBytesView))?.routed
        default: nil
        }
    }

    private static let envelopeOpening = Array(#"{"type":""#.utf8)

    private static func decodeV2(_ body: ByteBuffer) -> RoutedEvent? {
        // Read from the buffer's bytes in place: through `ByteBufferView` (an index check and
        // a storage access per byte) this took about 1.1 µs per event on every node.
        guard let (header, headLength) = body.withUnsafeReadableBytes({ decodeV2Header($0) }) else { return nil }
        let headStart = body.readableBytes - headLength
        guard let head = body.getSlice(at: body.readerIndex + headStart, length: headLength) else { return nil }
        return RoutedEvent(routing: header.routing, acceptedAtMicros: header.acceptedAtMicros, envelopeHead: head)
    }

    /// The v2 header's routing and acceptance time, and the length of the envelope head
    /// after it, once that head is checked (it opens as every envelope does, and is UTF-8).
    private static func decodeV2Header(
        _ bytes: UnsafeRawBufferPointer
    ) -> (header: (routing: EventRouting, acceptedAtMicros: Int64), headLength: Int)? {
        // Field boundaries first: nine fields on the first line.
        var ends = InlineArray<9, Int>(repeating: 0)
        var field = 0
        var newline: Int?
        var index = 0
        let limit = min(bytes.count, maxHeaderBytes + 1)
        while index < limit {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") {
                guard field < 9 else { return nil }
                ends[field] = index
                field += 1
                if byte == UInt8(ascii: "\n") {
                    newline = index
                    break
                }
            }
            index += 1
        }
        guard let newline, field == 9 else { return nil }
        func slice(_ number: Int) -> UnsafeRawBufferPointer {
            let start = number == 0 ? 0 : ends[number - 1] + 1
            return UnsafeRawBufferPointer(rebasing: bytes[start..<ends[number]])
        }
        let version = slice(0)
        guard version.count == 1, version[0] == UInt8(ascii: "2"),
            let type = MessageType(rawValue: String(decoding: slice(1), as: UTF8.self)),
            let acceptedAtMicros = integer(slice(2)), acceptedAtMicros <= maxAcceptedAtMicros
        else { return nil }
        struct InvalidID: Error {}
        func resourceID(_ number: Int) throws(InvalidID) -> String? {
            let bytes = slice(number)
            guard !bytes.isEmpty else { return nil }
            guard bytes.count <= Identifier.maximumResourceIDBytes, bytes.allSatisfy(Identifier.isResourceIDByte) else {
                throw InvalidID()
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        func userID(_ number: Int) throws(InvalidID) -> String? {
            let bytes = slice(number)
            guard !bytes.isEmpty else { return nil }
            guard let text = UTF8Validation.string(bytes), Identifier.isValidUserID(text) else {
                throw InvalidID()
            }
            return text
        }
        let routing: EventRouting
        do {
            routing = EventRouting(
                category: type.category,
                experimentID: try resourceID(3),
                taskID: try resourceID(4),
                workerID: try resourceID(5),
                projectID: try resourceID(6),
                ownerID: try userID(7),
                userID: try userID(8)
            )
        } catch {
            return nil
        }
        let head = UnsafeRawBufferPointer(rebasing: bytes[(newline + 1)...])
        guard head.starts(with: envelopeOpening), UTF8Validation.isValid(head) else { return nil }
        return ((routing, acceptedAtMicros), head.count)
    }

    /// Decimal digits without sign or leading zero, at most 18 of them.
    private static func integer(_ digits: UnsafeRawBufferPointer) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18, digits.count == 1 || digits.first != UInt8(ascii: "0") else {
            return nil
        }
        var value: Int64 = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }

    // MARK: v1

    package static func encodeV1(_ event: GatewayEvent) -> [UInt8] {
        var routing = JSONObject()
        let fields: [(String, String?)] = [
            ("e", event.routing.experimentID), ("k", event.routing.taskID), ("w", event.routing.workerID),
            ("p", event.routing.projectID), ("o", event.routing.ownerID), ("u", event.routing.userID),
        ]
        for (key, value) in fields {
            if let value { routing[key] = .string(value) }
        }
        let object: JSONObject = [
            "t": .string(event.type.rawValue), "i": .string(event.id), "s": .string(event.timestamp),
            "a": .integer(event.acceptedAtMicros), "r": .object(routing), "d": event.data,
        ]
        var bytes: [UInt8] = []
        object.write(into: &bytes)
        return bytes
    }

    /// The year 3000: later acceptance times are corrupt, and would skew the latency figures.
    static let maxAcceptedAtMicros: Int64 = 32_503_680_000_000_000

    /// Nil for anything but what `encodeV1` writes, checked as strictly as `decode`.
    static func decodeV1(_ bytes: [UInt8]) -> GatewayEvent? {
        guard let value = try? JSONValue(parsing: bytes), let object = value.objectValue,
            let typeName = object["t"]?.stringValue, let type = MessageType(rawValue: typeName),
            let id = object["i"]?.stringValue, let timestamp = object["s"]?.stringValue,
            let data = object["d"], case .number(let acceptedText)? = object["a"],
            let acceptedAtMicros = Int64(acceptedText), (0...maxAcceptedAtMicros).contains(acceptedAtMicros)
        else { return nil }
        let fields: JSONObject
        switch object["r"] {
        case nil: fields = [:]
        case .object(let object)?: fields = object
        default: return nil
        }
        // Routing ids pick who receives the event and become keys: checked like a client's.
        struct InvalidID: Error {}
        func routingID(_ key: String, _ isValid: (String) -> Bool) throws(InvalidID) -> String? {
            guard let field = fields[key] else { return nil }
            guard let text = field.stringValue, isValid(text) else { throw InvalidID() }
            return text
        }
        let routing: EventRouting
        do {
            routing = EventRouting(
                category: type.category,
                experimentID: try routingID("e", Identifier.isValidResourceID),
                taskID: try routingID("k", Identifier.isValidResourceID),
                workerID: try routingID("w", Identifier.isValidResourceID),
                projectID: try routingID("p", Identifier.isValidResourceID),
                ownerID: try routingID("o", Identifier.isValidUserID),
                userID: try routingID("u", Identifier.isValidUserID)
            )
        } catch {
            return nil
        }
        return GatewayEvent(
            type: type,
            id: id,
            timestamp: timestamp,
            data: data,
            routing: routing,
            acceptedAtMicros: acceptedAtMicros
        )
    }
}
